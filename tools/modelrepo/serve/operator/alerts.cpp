// SPDX-License-Identifier: MIT
// Alerts: the chain's and the sources' events folded into outages (one per source: its
// origin down, its breaker open, or a backup serving for it; its copy stale), each alerted
// once and resolved once, queued per receiver and POSTed by a thread per receiver with
// retries until a deadline. A timer thread sends what is due: a resolved whose recovery
// held, an alert held back while a source flapped, Alertmanager's re-posts.
#include "alerts.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "outages.hpp"

#if MODELREPO_CLI_CURL
#include <curl/curl.h>
#endif

namespace modelrepo::serve {

namespace {

using ojson = nlohmann::ordered_json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0)
        return "serve";
    return name;
}

std::string dump(const ojson& value) {
    return value.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string errc_name(const std::optional<Errc>& errc) {
    return errc ? std::string(to_string(*errc)) : std::string();
}

/// "2m13s", "41s".
std::string lasted(Timestamp from, Timestamp to) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
    if (s < 0)
        s = 0;
    return s >= 60 ? std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s"
                   : std::to_string(s) + "s";
}

/// One line for a person: what is down and why, what serves meanwhile; or that it is over.
std::string summary(const AlertNotice& n) {
    if (n.event == "resolved")
        return n.alertname == "ModelrepoCopyStale"
                   ? "the last-known copy of " + n.source + " is in sync again"
                   : n.source + " answers again, after " + lasted(n.started, n.at);
    if (n.alertname == "ModelrepoCopyStale")
        return "the last-known copy of " + n.source + " is stale";
    if (n.alertname == "ModelrepoOutboxDeadLetter")
        return "the outbox of " + n.source + " set aside writes the source refused";
    return n.source + " is down" + (n.errc ? " (" + errc_name(n.errc) + ")" : std::string());
}

} // namespace

std::string alert_body(const AlertNotice& n, const std::string& host) {
    const bool resolved = n.event == "resolved";
    std::string text = std::string(resolved ? ":white_check_mark: " : ":rotating_light: ") +
                       "modelrepo on " + host + ": " + (resolved ? "resolved, " : "") + summary(n) +
                       (n.cause.empty() || resolved ? "" : ": " + n.cause) +
                       (n.meanwhile.empty() || resolved ? "" : ". Meanwhile: " + n.meanwhile);
    ojson body{{"event", n.event},
               {"alert", n.alertname},
               {"source", n.source},
               {"cause", n.cause},
               {"errc", n.errc ? ojson(errc_name(n.errc)) : ojson(nullptr)},
               {"meanwhile", n.meanwhile},
               {"at", format_timestamp(n.at)},
               {"since", format_timestamp(n.started)},
               {"host", host},
               {"text", text}};
    return dump(body);
}

std::string alertmanager_body(const AlertNotice& n, Timestamp ends_at, const std::string& host) {
    std::string description = n.cause;
    if (!n.meanwhile.empty())
        description += (description.empty() ? "" : "\n") + std::string("Meanwhile: ") + n.meanwhile;
    ojson alert{
        {"labels",
         {{"alertname", n.alertname},
          {"source", n.source},
          {"cause", n.errc ? errc_name(n.errc) : std::string("none")},
          {"severity", n.severity},
          {"instance", host}}},
        {"annotations",
         {{"summary", summary(n)}, {"description", description}, {"runbook_url", n.runbook}}},
        {"startsAt", format_timestamp(n.started)},
        {"endsAt", format_timestamp(ends_at)}};
    return dump(ojson::array({alert}));
}

struct Alerter::Impl {
    AlertOptions options; ///< options.secret_header: under header_mutex (SIGHUP replaces it)
    mutable std::mutex header_mutex;
    std::string primary;
    std::function<std::string(const std::string&)> meanwhile;
    std::string host = host_name();

    struct Item {
        std::string body;
        steady_clock::time_point give_up, next_at;
        int attempts = 0;
    };
    /// One receiver: its queue and the thread that delivers it.
    struct Receiver {
        std::string url;
        std::string label; ///< "1", "am1", …: the URL may hold a secret
        bool alertmanager = false;
        std::mutex mutex;
        std::condition_variable wake;
        std::deque<Item> queue;
        std::atomic<std::uint64_t> queued{0}, sent{0}, failed{0}, given_up{0}, dropped{0};
        std::thread thread;
    };
    std::vector<std::unique_ptr<Receiver>> receivers;

    /// The alert of one outage (OutageFold's key): whether it fires, what it says, and the
    /// timers of its settle, its resolved and Alertmanager's re-posts.
    struct Outage {
        bool down = false;                                  ///< the fold says it is down now
        bool firing = false;                                ///< alerted, not resolved
        AlertNotice notice;                                 ///< what was (or will be) alerted
        std::optional<steady_clock::time_point> fire_at;    ///< settling, or held back (a flap)
        std::optional<steady_clock::time_point> resolve_at; ///< recovered: resolved then
        steady_clock::time_point last_resolved{};
        steady_clock::time_point last_posted{}; ///< Alertmanager's re-post
        bool ever_resolved = false;
    };
    OutageFold fold{""};
    std::mutex mutex; ///< outages, stopping (taken before a receiver's, never after)
    std::map<std::string, Outage> outages;
    bool stopping = false;
    std::atomic<bool> stopped{false}; ///< for the receivers, which hold their own mutex
    std::condition_variable wake;
    std::thread timer;

    void enqueue(Receiver& r, std::string body, steady_clock::time_point now) {
        std::lock_guard lock(r.mutex);
        if (r.queue.size() >= options.queue) {
            ++r.dropped;
            return;
        }
        r.queue.push_back({std::move(body), now + options.deadline, now});
        ++r.queued;
        r.wake.notify_one();
    }

    /// Alertmanager's endsAt for a firing alert: well past the next re-post.
    Timestamp firing_ends() const { return Clock::now() + 4 * options.resend; }

    void send(Outage& o, bool resolved) {
        auto now = steady_clock::now();
        AlertNotice n = o.notice;
        if (resolved) {
            n.event = "resolved";
            n.at = Clock::now();
        }
        std::string hook = alert_body(n, host);
        std::string am = alertmanager_body(n, resolved ? n.at : firing_ends(), host);
        for (auto& r : receivers)
            enqueue(*r, r->alertmanager ? am : hook, now);
        o.last_posted = now;
    }

    /// Schedules, holds back or resolves `o` after what holds it down changed. An outage is
    /// alerted once it has settled (`settle`), or, for a source that flapped, once `interval`
    /// has passed since its last resolved; it is resolved once its recovery has held.
    void evaluate(Outage& o) {
        auto now = steady_clock::now();
        if (o.down) {
            o.resolve_at.reset(); // not over after all: the same outage goes on
            if (o.firing || o.fire_at)
                return;
            o.notice.started = o.notice.at;
            o.fire_at = now + options.settle;
            if (o.ever_resolved && now - o.last_resolved < options.interval)
                o.fire_at = std::max(*o.fire_at, o.last_resolved + options.interval);
            return;
        }
        o.fire_at.reset(); // an alert that was never sent needs no resolved
        if (o.firing && !o.resolve_at)
            o.resolve_at = now + options.resolve_after;
    }

    /// The alert of outage `key`, its notice's fixed parts set when new.
    Outage& outage(const std::string& key, const std::string& alertname, const std::string& source,
                   const std::string& runbook) {
        auto [it, fresh] = outages.try_emplace(key);
        if (fresh) {
            it->second.notice.alertname = alertname;
            it->second.notice.source = source;
            it->second.notice.runbook = options.runbook_base + runbook;
            it->second.notice.severity =
                alertname == "ModelrepoSourceDown" && source == primary ? "critical" : "warning";
        }
        return it->second;
    }

    /// The cause of an outage not yet alerted: the event that began it (`began`), or the
    /// origin's own latest cause (source_down), which says most (`origin_down`: the origin
    /// is down now). An alert keeps the cause it was sent with, so that it stays one alert.
    static void note_cause(Outage& o, const FallbackEvent& e, bool began, bool origin_down) {
        if (o.firing)
            return;
        if (!began && origin_down && e.kind != FallbackEvent::Kind::source_down)
            return;
        if (began || o.notice.event.empty())
            o.notice.event = std::string(to_string(e.kind));
        o.notice.cause = e.cause;
        o.notice.errc = e.errc;
        if (began)
            o.notice.at = e.at;
    }

    void apply(const FallbackEvent& e) {
        std::lock_guard lock(mutex);
        if (e.kind == FallbackEvent::Kind::outbox_dead_letter)
            return dead_letter(e);
        for (const OutageFold::Change& c : fold.apply(e)) {
            const auto& fold_outage = *c.outage;
            Outage& o = outage(c.key, fold_outage.alertname, fold_outage.source,
                               fold_outage.alertname == "ModelrepoCopyStale" ? "#the-copy-is-stale"
                                                                             : "#a-source-is-down");
            o.down = fold_outage.down();
            if (o.down)
                note_cause(o, e, c.began, fold_outage.health_down);
            evaluate(o);
        }
    }

    /// A dead letter: told once per interval per source (the rest are in the count).
    void dead_letter(const FallbackEvent& e) {
        Outage& o =
            outage("dead:" + e.source, "ModelrepoOutboxDeadLetter", e.source, "#dead-letters");
        auto now = steady_clock::now();
        if (o.ever_resolved && now - o.last_resolved < options.interval)
            return;
        o.notice.event = std::string(to_string(e.kind));
        o.notice.cause = e.cause;
        o.notice.errc = e.errc;
        o.notice.at = o.notice.started = e.at;
        o.ever_resolved = true;
        o.last_resolved = now;
        auto posted = steady_clock::now();
        AlertNotice n = o.notice;
        // Alertmanager keeps it an hour: a notice, not a state that resolves.
        std::string am = alertmanager_body(n, Clock::now() + std::chrono::hours(1), host);
        std::string hook = alert_body(n, host);
        for (auto& r : receivers)
            enqueue(*r, r->alertmanager ? am : hook, posted);
    }

    /// Every 200 ms: alerts held back and now due, resolveds whose recovery held,
    /// Alertmanager's re-posts of what still fires.
    void run_timer() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            auto now = steady_clock::now();
            for (auto& [key, o] : outages) {
                if (o.fire_at && now >= *o.fire_at) {
                    o.fire_at.reset();
                    if (o.down) {
                        o.notice.meanwhile = meanwhile ? meanwhile(o.notice.source) : "";
                        o.firing = true;
                        send(o, false);
                    }
                }
                if (o.resolve_at && now >= *o.resolve_at) {
                    o.resolve_at.reset();
                    o.firing = false;
                    o.ever_resolved = true;
                    o.last_resolved = now;
                    send(o, true);
                    o.notice.cause.clear();
                }
                if (o.firing && now - o.last_posted >= options.resend) {
                    std::string am = alertmanager_body(o.notice, firing_ends(), host);
                    for (auto& r : receivers)
                        if (r->alertmanager)
                            enqueue(*r, am, now);
                    o.last_posted = now;
                }
            }
            wake.wait_for(lock, milliseconds(200), [&] { return stopping; });
        }
    }

    bool post(Receiver& r, const std::string& body) {
#if MODELREPO_CLI_CURL
        CURL* curl = curl_easy_init();
        if (!curl)
            return false;
        curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
        std::string secret;
        {
            std::lock_guard lock(header_mutex);
            secret = options.secret_header;
        }
        if (!secret.empty())
            headers = curl_slist_append(headers, secret.c_str());
        curl_easy_setopt(curl, CURLOPT_URL, r.url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(options.attempt_timeout.count()));
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(
            curl, CURLOPT_WRITEFUNCTION,
            +[](char*, size_t size, size_t n, void*) { return size * n; });
        CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return code == CURLE_OK && status >= 200 && status < 300;
#else
        (void)r;
        (void)body;
        return false;
#endif
    }

    /// Oldest first; the head is tried again (1 s doubling to 30 s) until its deadline, so
    /// an alert and its "resolved" arrive in order.
    void deliver(Receiver& r) {
        std::unique_lock lock(r.mutex);
        for (;;) {
            r.wake.wait(lock, [&] { return stopped.load() || !r.queue.empty(); });
            if (stopped.load())
                return;
            auto now = steady_clock::now();
            Item& head = r.queue.front();
            if (head.next_at > now) {
                r.wake.wait_until(lock, head.next_at);
                continue;
            }
            std::string body = head.body;
            lock.unlock();
            bool ok = post(r, body);
            lock.lock();
            Item& item = r.queue.front();
            if (ok) {
                ++r.sent;
                r.queue.pop_front();
                continue;
            }
            ++r.failed;
            ++item.attempts;
            auto pause = std::min<milliseconds>(
                milliseconds(1'000L << std::min(item.attempts - 1, 5)), milliseconds(30'000));
            item.next_at = steady_clock::now() + pause;
            if (item.next_at > item.give_up) {
                ++r.given_up;
                r.queue.pop_front();
            }
        }
    }
};

Result<std::unique_ptr<Alerter>>
Alerter::start(AlertOptions options, std::string primary,
               std::function<std::string(const std::string&)> meanwhile) {
#if !MODELREPO_CLI_CURL
    if (!options.webhooks.empty() || !options.alertmanagers.empty())
        return make_error(Errc::invalid_argument,
                          "--alert-webhook and --alertmanager: this modelrepo was built without "
                          "libcurl");
#endif
    auto check = [](const std::string& option, const std::string& url) -> Result<void> {
        if (!url.starts_with("http://") && !url.starts_with("https://"))
            return make_error(Errc::invalid_argument, option +
                                                          " takes an http:// or https:// URL, "
                                                          "not '" +
                                                          redact(url) + "'");
        return success();
    };
    for (const std::string& url : options.webhooks)
        if (auto ok = check("--alert-webhook", url); !ok)
            return ok.error();
    for (const std::string& url : options.alertmanagers)
        if (auto ok = check("--alertmanager", url); !ok)
            return ok.error();
    std::unique_ptr<Alerter> alerter(new Alerter());
    alerter->impl_ = std::make_unique<Impl>();
    Impl& impl = *alerter->impl_;
    impl.options = std::move(options);
    impl.primary = primary;
    impl.fold = OutageFold(std::move(primary));
    impl.meanwhile = std::move(meanwhile);
    for (std::size_t i = 0; i < impl.options.webhooks.size(); ++i) {
        auto r = std::make_unique<Impl::Receiver>();
        r->url = impl.options.webhooks[i];
        r->label = std::to_string(i + 1);
        impl.receivers.push_back(std::move(r));
    }
    for (std::size_t i = 0; i < impl.options.alertmanagers.size(); ++i) {
        auto r = std::make_unique<Impl::Receiver>();
        std::string base = impl.options.alertmanagers[i];
        while (base.ends_with('/'))
            base.pop_back();
        r->url = base.ends_with("/api/v2/alerts") ? base : base + "/api/v2/alerts";
        r->label = "am" + std::to_string(i + 1);
        r->alertmanager = true;
        impl.receivers.push_back(std::move(r));
    }
    for (auto& r : impl.receivers)
        r->thread = std::thread([&impl, receiver = r.get()] { impl.deliver(*receiver); });
    impl.timer = std::thread([&impl] { impl.run_timer(); });
    return alerter;
}

Alerter::~Alerter() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_all();
    for (auto& r : impl_->receivers) {
        {
            std::lock_guard lock(r->mutex); // a receiver between its check and its wait
            impl_->stopped = true;
        }
        r->wake.notify_all();
    }
    impl_->stopped = true;
    impl_->timer.join();
    for (auto& r : impl_->receivers)
        r->thread.join();
}

void Alerter::on_event(const FallbackEvent& e) {
    impl_->apply(e);
}

void Alerter::set_secret_header(std::string header) {
    std::lock_guard lock(impl_->header_mutex);
    impl_->options.secret_header = std::move(header);
}

std::vector<MetricFamily> Alerter::metrics() const {
    using Type = MetricFamily::Type;
    std::vector<MetricFamily> out;
    auto family = [&](const char* name, Type type, const char* help, auto value) {
        MetricFamily f{name, type, help, {}};
        for (const auto& r : impl_->receivers)
            f.add({{"receiver", r->label}}, static_cast<double>(value(*r)));
        out.push_back(std::move(f));
    };
    using R = Impl::Receiver;
    family("modelrepo_alert_queued_total", Type::counter, "Alerts queued for a receiver.",
           [](R& r) { return r.queued.load(); });
    family("modelrepo_alert_sent_total", Type::counter, "Alerts a receiver took (2xx).",
           [](R& r) { return r.sent.load(); });
    family("modelrepo_alert_failed_attempts_total", Type::counter,
           "POSTs to a receiver that failed (tried again until the deadline).",
           [](R& r) { return r.failed.load(); });
    family("modelrepo_alert_given_up_total", Type::counter,
           "Alerts not delivered by their deadline.", [](R& r) { return r.given_up.load(); });
    family("modelrepo_alert_dropped_total", Type::counter,
           "Alerts dropped because the receiver's queue was full.",
           [](R& r) { return r.dropped.load(); });
    family("modelrepo_alert_queue", Type::gauge, "Alerts waiting for a receiver.", [](R& r) {
        std::lock_guard lock(r.mutex);
        return r.queue.size();
    });
    return out;
}

} // namespace modelrepo::serve
