// SPDX-License-Identifier: MIT
// The operator's view of serve: the timeline of the chain's events, the backup share over
// 15 minutes, each source's pool, feed, copy and outbox, and the doctor's diagnosis, kept
// current by a thread of its own so that the routes answer from memory.
#include "operator_view.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "../../json_form.hpp"
#include "headline.hpp"
#include "incidents.hpp"
#include "inspections.hpp"
#include "statuspage.hpp"

namespace modelrepo::serve {

// The page's files (operator_page.cpp, generated from serve/page/ at build time).
extern const char* const status_page_html;
extern const char* const status_page_css;
extern const char* const status_page_js;

namespace {

using ojson = nlohmann::ordered_json;
using std::chrono::steady_clock;
using std::chrono::system_clock;

std::string dump(const ojson& value) {
    return value.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

/// The samples of `name` in `families` whose labels include `label` (empty: any).
double metric(const std::vector<MetricFamily>& families, std::string_view name,
              std::pair<std::string_view, std::string_view> label = {}) {
    for (const MetricFamily& f : families) {
        if (f.name != name)
            continue;
        for (const auto& s : f.samples) {
            if (!s.suffix.empty())
                continue;
            if (label.first.empty() ||
                std::any_of(s.labels.begin(), s.labels.end(), [&](const auto& l) {
                    return l.first == label.first && l.second == label.second;
                }))
                return s.value;
        }
    }
    return 0;
}

/// The value of `label` on the first sample of `name` ("" when none).
std::string label_of(const std::vector<MetricFamily>& families, std::string_view name,
                     std::string_view label) {
    for (const MetricFamily& f : families)
        if (f.name == name)
            for (const auto& s : f.samples)
                for (const auto& l : s.labels)
                    if (l.first == label)
                        return l.second;
    return "";
}

bool has(const std::vector<MetricFamily>& families, std::string_view name) {
    return std::any_of(families.begin(), families.end(),
                       [&](const MetricFamily& f) { return f.name == name; });
}

/// What a source says of itself, in the page's terms: its pool, feed, copy, outbox.
ojson backend_of(const std::vector<MetricFamily>& b) {
    ojson out = ojson::object();
    if (has(b, "modelrepo_pool_connections"))
        out["pool"] = {{"open", metric(b, "modelrepo_pool_connections", {"state", "open"})},
                       {"idle", metric(b, "modelrepo_pool_connections", {"state", "idle"})},
                       {"busy", metric(b, "modelrepo_pool_connections", {"state", "busy"})},
                       {"max", metric(b, "modelrepo_pool_connections", {"state", "max"})},
                       {"waiting", metric(b, "modelrepo_pool_waiting")},
                       {"acquire_timeouts", metric(b, "modelrepo_pool_acquire_timeouts_total")},
                       {"connect_failures", metric(b, "modelrepo_pool_connect_failures_total")},
                       {"server_down", metric(b, "modelrepo_pool_server_down") > 0}};
    if (has(b, "modelrepo_feed_connected"))
        out["feed"] = {{"kind", label_of(b, "modelrepo_feed_info", "feed")},
                       {"connected", metric(b, "modelrepo_feed_connected") > 0},
                       {"version", metric(b, "modelrepo_feed_version")},
                       {"changes", metric(b, "modelrepo_feed_changes_total")},
                       {"reconnects", metric(b, "modelrepo_feed_reconnects_total")},
                       {"resyncs", metric(b, "modelrepo_feed_resyncs_total")}};
    if (has(b, "modelrepo_copy_in_sync"))
        out["copy"] = {{"in_sync", metric(b, "modelrepo_copy_in_sync") > 0},
                       {"age_seconds", has(b, "modelrepo_copy_age_seconds")
                                           ? ojson(metric(b, "modelrepo_copy_age_seconds"))
                                           : ojson(nullptr)},
                       {"served_while_down", metric(b, "modelrepo_copy_served_while_down_total")}};
    if (has(b, "modelrepo_outbox_queued_total"))
        out["outbox"] = {{"pending", metric(b, "modelrepo_outbox_pending", {"unit", "statuses"})},
                         {"batches", metric(b, "modelrepo_outbox_pending", {"unit", "batches"})},
                         {"oldest_age_seconds", metric(b, "modelrepo_outbox_oldest_age_seconds")},
                         {"dead_letters", metric(b, "modelrepo_outbox_dead_letters")}};
    return out;
}

/// A connection or login failure: what the doctor can name the cause of.
bool doctor_can_tell(const std::optional<Errc>& errc) {
    return errc && (*errc == Errc::auth_failed || *errc == Errc::unreachable ||
                    *errc == Errc::timeout || *errc == Errc::too_many_connections);
}

ojson event_json(long long id, const FallbackEvent& e) {
    return {{"id", id},
            {"event", std::string(to_string(e.kind))},
            {"source", e.source},
            {"cause", e.cause},
            {"errc", e.errc ? ojson(std::string(to_string(*e.errc))) : ojson(nullptr)},
            {"at", format_timestamp(e.at)}};
}

} // namespace

ojson health_json(const SourceHealth& h) {
    return {{"state", std::string(to_string(h.state))},
            {"errc", h.errc ? ojson(std::string(to_string(*h.errc))) : ojson(nullptr)},
            {"cause", h.down() ? ojson(h.cause) : ojson(nullptr)},
            {"since", h.state == SourceHealth::State::unknown ? ojson(nullptr)
                                                              : ojson(format_timestamp(h.since))},
            {"seen_by", h.seen_by.empty() ? ojson(nullptr) : ojson(h.seen_by)},
            {"copy_stale", h.copy_stale},
            {"dead_letters", h.dead_letters}};
}

namespace {

/// The failure the doctor should look at: the source's own health when it is down for a
/// connection or login cause (whoever answers reads), else its last failed call.
std::pair<std::optional<Errc>, std::optional<Timestamp>> diagnosable(const SourceMetrics& s) {
    if (s.health.down() && doctor_can_tell(s.health.errc))
        return {s.health.errc, s.health.since};
    return {s.last_errc, s.last_error_at};
}

} // namespace

struct OperatorView::Watch {
    Watch(std::shared_ptr<FallbackRepository> c, OperatorOptions o)
        : chain(std::move(c))
        , options(std::move(o))
        , incidents(std::string(chain->sources().front()->name())) {}

    std::shared_ptr<FallbackRepository> chain;
    OperatorOptions options;
    /// Each outage of a source, from the event that began it to the one that ended it.
    IncidentBook incidents;

    mutable std::mutex mutex; ///< everything below
    std::deque<std::pair<long long, FallbackEvent>> events;
    long long next_id = 1;
    std::vector<std::shared_ptr<EventStream>> streams;
    std::map<std::string, Timestamp> breaker_since; ///< by source: its last breaker event
    ojson ready = ojson::object();
    struct Sample {
        Timestamp at;
        std::uint64_t answers = 0, backup = 0;
    };
    std::deque<Sample> samples; ///< cumulative counters, one per sample_every
    ojson diagnosis;            ///< null until the doctor ran
    std::optional<Timestamp> diagnosed_error_at;
    std::string status_body = "{}";
    /// Statuses stored with a date in the future (they keep real ones out): how many, the
    /// latest, a few of their models; null when none.
    ojson future_statuses;
    std::optional<steady_clock::time_point> next_future_check;
    std::vector<ojson> backends; ///< each source's pool, feed, copy, outbox, as last read
    bool backends_read = false;  ///< whether `backends` has been read once (the page asks first)
    /// When /v1/status was last asked for: the sources' own metrics (an outbox's count is
    /// a query of its file) are read only while someone looks; the rest every second.
    std::atomic<steady_clock::rep> status_asked{0};
    bool stopping = false;
    bool look_now = false; ///< a source_down the doctor can tell the cause of: look at once
    std::condition_variable wake, inspect_wake;
    std::thread worker, inspector;
    const Timestamp started = system_clock::now();

    void on_event(const FallbackEvent& e) {
        std::vector<std::shared_ptr<EventStream>> to;
        std::shared_ptr<const std::string> text;
        {
            std::lock_guard lock(mutex);
            long long id = next_id++;
            events.emplace_back(id, e);
            while (events.size() > options.keep_events)
                events.pop_front();
            if (e.kind == FallbackEvent::Kind::breaker_opened ||
                e.kind == FallbackEvent::Kind::breaker_half_open ||
                e.kind == FallbackEvent::Kind::breaker_closed)
                breaker_since[e.source] = e.at;
            text = std::make_shared<const std::string>(
                "id: " + std::to_string(id) + "\nevent: chain\ndata: " + dump(event_json(id, e)) +
                "\n\n");
            std::erase_if(streams, [](const auto& s) { return !s->is_open(); });
            to = streams;
        }
        for (auto& s : to)
            s->send(text);
        incidents.apply(e);
        // The doctor looks at once at the first source's login or connection failure,
        // whichever layer saw it (rate-limited after that).
        if (e.kind == FallbackEvent::Kind::source_down && doctor_can_tell(e.errc)) {
            {
                std::lock_guard lock(mutex);
                look_now = true;
            }
            inspect_wake.notify_all();
        }
        if (options.on_event)
            options.on_event(e);
    }

    /// Once a second: the backup share's sample when due, the page's JSON, a heartbeat when
    /// due. Never waits on a source (the inspector does that).
    void run() {
        auto next_sample = steady_clock::now();
        auto next_heartbeat = steady_clock::now() + options.heartbeat;
        std::unique_lock lock(mutex);
        while (!stopping) {
            lock.unlock();
            auto now = steady_clock::now();
            const bool looked_at =
                now - steady_clock::time_point(steady_clock::duration(status_asked.load())) <
                std::chrono::seconds(10);
            FallbackMetrics m = chain->metrics(/*with_backend=*/looked_at);
            if (now >= next_sample) {
                Sample s{system_clock::now()};
                for (std::size_t i = 0; i < m.sources.size(); ++i) {
                    s.answers += m.sources[i].answers;
                    if (i > 0)
                        s.backup += m.sources[i].answers;
                }
                next_sample = now + options.sample_every;
                std::lock_guard guard(mutex);
                samples.push_back(s);
                const auto keep = std::chrono::minutes(15) / options.sample_every + 2;
                while (samples.size() > static_cast<std::size_t>(keep))
                    samples.pop_front();
            }
            std::string body = build_status(m, looked_at);
            bool beat = now >= next_heartbeat;
            if (beat)
                next_heartbeat = now + options.heartbeat;
            lock.lock();
            status_body = std::move(body);
            if (beat) {
                auto comment = std::make_shared<const std::string>(": heartbeat\n\n");
                std::erase_if(streams, [](const auto& s) { return !s->is_open(); });
                for (auto& s : streams)
                    s->send(comment);
            }
            wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
        }
    }

    /// What may wait on a source, on a thread of its own so that the page's JSON stays
    /// current meanwhile: the doctor (at once on a new outage, then at most every
    /// diagnosis_every) and the look for statuses dated in the future.
    void inspect() {
        std::optional<steady_clock::time_point> last_diagnosis, next_future_check;
        bool urgent = false; ///< a new outage began: the doctor looks without waiting
        std::unique_lock lock(mutex);
        while (!stopping) {
            urgent = std::exchange(look_now, false) || urgent;
            lock.unlock();
            auto now = steady_clock::now();
            FallbackMetrics m = chain->metrics(/*with_backend=*/false);
            if (!m.sources.empty())
                maybe_diagnose(m.sources.front(), now, last_diagnosis, urgent);
            if (!next_future_check || now >= *next_future_check)
                next_future_check = now + look_for_future_statuses();
            lock.lock();
            inspect_wake.wait_for(lock, std::chrono::seconds(1),
                                  [&] { return stopping || look_now; });
        }
    }

    /// The doctor on the first source, after a connection or login failure newer than the
    /// last diagnosis, at most once per diagnosis_every (it connects: a few seconds at most).
    /// `urgent`: a new outage began; the doctor looks at once (at most every 5 s), and the
    /// flag is cleared when it has.
    void maybe_diagnose(const SourceMetrics& first, steady_clock::time_point now,
                        std::optional<steady_clock::time_point>& last, bool& urgent) {
#if MODELREPO_HAS_POSTGRES
        const std::string& url = options.first_source;
        auto [errc, error_at] = diagnosable(first);
        if (!url.starts_with("postgres") || !doctor_can_tell(errc) || !error_at)
            return;
        {
            std::lock_guard lock(mutex);
            if (diagnosed_error_at && *diagnosed_error_at >= *error_at)
                return;
        }
        if (last &&
            now - *last < (urgent ? std::chrono::milliseconds(5'000) : options.diagnosis_every))
            return;
        last = now;
        urgent = false;
        std::string admin_url;
        {
            std::lock_guard lock(mutex);
            admin_url = options.admin_url; // SIGHUP may replace it (set_admin_url)
        }
        ojson d = doctor_json(first.source, *errc, url, admin_url);
        std::string finding = first_finding(d);
        if (!finding.empty())
            incidents.diagnosed(first.source, "the doctor: " + finding, system_clock::now());
        std::lock_guard lock(mutex);
        diagnosis = std::move(d);
        diagnosed_error_at = error_at;
        patch_status("diagnosis", diagnosis);
#else
        (void)first;
        (void)now;
        (void)last;
        (void)urgent;
#endif
    }

    /// Puts what the inspector found into the page's JSON at once (under `mutex`), not at
    /// the worker's next round: /v1/status agrees with /v1/diagnosis as soon as it changed.
    void patch_status(const char* member, const ojson& value) {
        auto body = ojson::parse(status_body, nullptr, false);
        if (!body.is_object())
            return;
        body[member] = value;
        status_body = dump(body);
    }

    /// Looks for statuses dated past the allowed skew in what the chain serves; when to look
    /// again: every 15 s from memory (a pointer walk), every minute from a database.
    steady_clock::duration look_for_future_statuses() {
        const bool memory = chain->reads_from_memory();
        ojson found = future_statuses_in(*chain);
        std::lock_guard lock(mutex);
        future_statuses = std::move(found);
        patch_status("future_statuses", future_statuses);
        return memory ? std::chrono::seconds(15) : std::chrono::seconds(60);
    }

    /// `fresh_backend`: `m` holds the sources' own metrics; else the last ones are shown.
    std::string build_status(const FallbackMetrics& m, bool fresh_backend) {
        auto now = system_clock::now();
        ojson sources = ojson::array();
        std::lock_guard lock(mutex);
        if (backends.size() != m.sources.size())
            backends.assign(m.sources.size(), ojson::object());
        for (std::size_t i = 0; i < m.sources.size(); ++i) {
            const SourceMetrics& s = m.sources[i];
            auto since = breaker_since.find(s.source);
            ojson entry{
                {"source", s.source},
                {"position", i},
                {"breaker", std::string(to_string(s.breaker))},
                {"breaker_since",
                 format_timestamp(since == breaker_since.end() ? started : since->second)},
                {"serving", i == m.serving},
                {"answers", s.answers},
                {"last_error", s.last_error.empty() ? ojson(nullptr) : ojson(s.last_error)},
                {"last_error_at",
                 s.last_error_at ? ojson(format_timestamp(*s.last_error_at)) : ojson(nullptr)},
                {"data_as_of",
                 s.data_as_of ? ojson(format_timestamp(*s.data_as_of)) : ojson(nullptr)},
                {"data_age_seconds",
                 s.data_as_of ? ojson(std::chrono::duration<double>(now - *s.data_as_of).count())
                              : ojson(nullptr)},
                {"health", health_json(s.health)}};
            if (fresh_backend)
                backends[i] = backend_of(s.backend);
            const ojson& backend = backends[i];
            for (auto it = backend.begin(); it != backend.end(); ++it)
                entry[it.key()] = it.value();
            entry["parts_read"] = backends_read || fresh_backend;
            sources.push_back(std::move(entry));
        }
        backends_read = backends_read || fresh_backend;
        ojson points = ojson::array();
        for (std::size_t i = 1; i < samples.size(); ++i)
            points.push_back({{"at", format_timestamp(samples[i].at)},
                              {"answers", samples[i].answers - samples[i - 1].answers},
                              {"backup", samples[i].backup - samples[i - 1].backup}});
        double share = 0;
        if (samples.size() > 1) {
            auto answers = samples.back().answers - samples.front().answers;
            auto backup = samples.back().backup - samples.front().backup;
            share = answers ? static_cast<double>(backup) / static_cast<double>(answers) : 0.0;
        }
        ojson recent = ojson::array();
        for (auto it = events.rbegin(); it != events.rend() && recent.size() < 50; ++it)
            recent.push_back(event_json(it->first, it->second));
        const bool answering = ready.value("state", "starting") != "unavailable";
        ojson incident_list = ojson::array();
        for (const Incident& i : incidents.list())
            incident_list.push_back(IncidentBook::to_json(i));
        ojson body{
            {"generated_at", format_timestamp(now)},
            {"started_at", format_timestamp(started)},
            {"summary", to_json(headline_of(m, diagnosis, future_statuses, answering, started))},
            {"incidents", std::move(incident_list)},
            {"state", ready.value("state", "starting")},
            {"serving",
             m.serving < m.sources.size() ? ojson(m.sources[m.serving].source) : ojson(nullptr)},
            {"backup", m.serving > 0},
            {"primary_error",
             ready.contains("primary_error") ? ready["primary_error"] : ojson(nullptr)},
            {"sources", std::move(sources)},
            {"backup_share",
             {{"window_seconds", 900},
              {"sample_seconds", std::chrono::duration<double>(options.sample_every).count()},
              {"share", share},
              {"points", std::move(points)}}},
            {"diagnosis", diagnosis},
            {"future_statuses", future_statuses},
            {"events", std::move(recent)}};
        return dump(body);
    }
};

OperatorView::OperatorView(std::shared_ptr<FallbackRepository> chain, OperatorOptions options)
    : watch_(std::make_unique<Watch>(std::move(chain), std::move(options))) {
    watch_->chain->subscribe(
        [watch = watch_.get()](const FallbackEvent& e) { watch->on_event(e); });
    watch_->worker = std::thread([watch = watch_.get()] { watch->run(); });
    watch_->inspector = std::thread([watch = watch_.get()] { watch->inspect(); });
}

OperatorView::~OperatorView() {
    watch_->chain->subscribe({});
    std::vector<std::shared_ptr<EventStream>> open;
    {
        std::lock_guard lock(watch_->mutex);
        watch_->stopping = true;
        open.swap(watch_->streams);
    }
    watch_->wake.notify_all();
    watch_->inspect_wake.notify_all();
    watch_->worker.join();
    watch_->inspector.join();
    for (auto& s : open)
        s->close();
}

std::optional<Response> OperatorView::page(const std::string& path) {
    auto file = [](const char* type, const char* text) {
        Response r{200, type, text, {}, {}, {}};
        // Nothing from elsewhere: the page works on an isolated network, and a script
        // injected into a model's name could not run or send anything anywhere.
        r.headers.emplace_back("Content-Security-Policy",
                               "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'");
        r.headers.emplace_back("X-Content-Type-Options", "nosniff");
        r.headers.emplace_back("Cache-Control", "no-cache");
        return r;
    };
    if (path == "/")
        return file("text/html; charset=utf-8", status_page_html);
    if (path == "/status.css")
        return file("text/css; charset=utf-8", status_page_css);
    if (path == "/status.js")
        return file("text/javascript; charset=utf-8", status_page_js);
    return std::nullopt;
}

void OperatorView::on_ready(const nlohmann::ordered_json& ready) {
    std::lock_guard lock(watch_->mutex);
    watch_->ready = ready;
}

Response OperatorView::status() const {
    watch_->status_asked = steady_clock::now().time_since_epoch().count();
    std::lock_guard lock(watch_->mutex);
    return Response{
        200, "application/json", watch_->status_body, {{"Cache-Control", "no-store"}}, {}, {}};
}

Response OperatorView::events(long long since) const {
    ojson list = ojson::array();
    {
        std::lock_guard lock(watch_->mutex);
        for (const auto& [id, e] : watch_->events)
            if (id > since)
                list.push_back(event_json(id, e));
    }
    return Response{200, "application/json", dump(ojson{{"events", std::move(list)}}), {}, {}, {}};
}

Response OperatorView::event_stream() {
    Response r{200, "text/event-stream", {}, {}, {}, {}};
    r.on_stream = [watch = watch_.get()](std::shared_ptr<EventStream> stream) {
        stream->send(std::make_shared<const std::string>(": connected\n\n"));
        std::lock_guard lock(watch->mutex);
        if (watch->stopping) {
            stream->close();
            return;
        }
        watch->streams.push_back(std::move(stream));
    };
    std::lock_guard lock(watch_->mutex);
    std::erase_if(watch_->streams, [](const auto& s) { return !s->is_open(); });
    if (watch_->streams.size() >= watch_->options.max_streams)
        return Response{429,
                        "application/json",
                        error_body("too_many_connections",
                                   "at most " + std::to_string(watch_->options.max_streams) +
                                       " clients on /v1/events/stream"),
                        {{"Retry-After", "5"}},
                        {},
                        {}};
    return r;
}

Response OperatorView::statuspage(const std::string& host_header) const {
    StatuspageInput in;
    char name[256] = {};
    in.host = gethostname(name, sizeof name - 1) == 0 ? name : "serve";
    in.page_url = "http://" + (host_header.empty() ? std::string("localhost") : host_header) + "/";
    in.started = watch_->started;
    FallbackMetrics m = watch_->chain->metrics(/*with_backend=*/false);
    in.metrics = &m;
    {
        std::lock_guard lock(watch_->mutex);
        in.answering = watch_->ready.value("state", "starting") != "unavailable";
    }
    in.incidents = watch_->incidents.list();
    Response r{200, "application/json", statuspage_summary(in), {}, {}, {}};
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

void OperatorView::set_admin_url(std::string url) {
    std::lock_guard lock(watch_->mutex);
    watch_->options.admin_url = std::move(url);
}

Response OperatorView::diagnosis() const {
    std::lock_guard lock(watch_->mutex);
    ojson body = watch_->diagnosis.is_null()
                     ? ojson{{"diagnosis", nullptr},
                             {"why", watch_->options.first_source.starts_with("postgres")
                                         ? "the first source has had no connection or login "
                                           "failure since serve started"
                                         : "the first source is not PostgreSQL"}}
                     : ojson{{"diagnosis", watch_->diagnosis}};
    return Response{200, "application/json", dump(body), {}, {}, {}};
}

} // namespace modelrepo::serve
