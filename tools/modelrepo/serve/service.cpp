// SPDX-License-Identifier: MIT
// The routes of `modelrepo serve`. Each read is one call on the chain; its answer's
// provenance comes from the chain (SystemStats::source, the Provenance of the call).
#include "service.hpp"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include <modelrepo/uri.hpp>

#include "../json_form.hpp"

namespace modelrepo::serve {

namespace {

using ojson = nlohmann::ordered_json;
using std::chrono::system_clock;

std::string dump(const ojson& value) {
    // Text from a database may not be UTF-8: replace what is not, rather than throw.
    return value.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Response json_answer(int status, const ojson& value) {
    return Response{status, "application/json", dump(value), {}, {}, {}};
}

Response error_answer(int status, std::string_view code, std::string_view message) {
    return Response{status, "application/json", error_body(code, message), {}, {}, {}};
}

/// The Errc name an error answer carries ("other" for a foreign code).
std::string code_name(const Error& error) {
    return error.errc() ? std::string(to_string(*error.errc())) : "other";
}

Response error_answer(const Error& error) {
    Response answer = error_answer(http_status_of(error), code_name(error), error.message);
    if (error.retry_after) {
        auto wait =
            std::chrono::ceil<std::chrono::seconds>(*error.retry_after - system_clock::now());
        answer.headers.emplace_back("Retry-After",
                                    std::to_string(std::max<long long>(1, wait.count())));
    } else if (answer.status == 503) {
        answer.headers.emplace_back("Retry-After", "1");
    }
    return answer;
}

Response method_not_allowed(std::string_view allow) {
    Response answer =
        error_answer(405, "invalid_argument", "this path answers " + std::string(allow) + " only");
    answer.headers.emplace_back("Allow", std::string(allow));
    return answer;
}

/// `{"source": SOURCE, "<member>": [ITEM, …]}`, made as it is written (Response::parts):
/// `items` point into what `owner` keeps, held until the last part is sent; the text is
/// never whole. The items `keep` refuses are left out.
template <class T>
Response list_answer(std::string source, std::string member, std::shared_ptr<const void> owner,
                     std::vector<const T*> items, std::function<bool(const T&)> keep = {}) {
    struct State {
        std::shared_ptr<const void> owner;
        std::vector<const T*> items;
        std::function<bool(const T&)> keep;
        std::string source, member;
        std::string scratch;
        JsonText json{scratch};
        std::size_t at = 0;
    };
    auto state = std::make_shared<State>();
    state->owner = std::move(owner);
    state->items = std::move(items);
    state->keep = std::move(keep);
    state->source = std::move(source);
    state->member = std::move(member);
    Response answer{200, "application/json", {}, {}, {}, {}};
    answer.parts = [state](std::string& out) {
        State& s = *state;
        s.json.write_to(out);
        if (s.at == 0)
            s.json.begin_object().key("source").string(s.source).key(s.member).begin_array();
        const std::size_t stop = out.size() + answer_part_bytes;
        while (s.at < s.items.size() && out.size() < stop) {
            const T& item = *s.items[s.at++];
            if (!s.keep || s.keep(item))
                cli::write_json(s.json, item);
        }
        if (s.at < s.items.size())
            return true;
        s.json.end_array().end_object();
        return false;
    };
    return answer;
}

/// list_answer() over a vector it keeps.
template <class T>
Response list_answer(std::string source, std::string member, std::vector<T> items,
                     std::function<bool(const T&)> keep = {}) {
    auto owned = std::make_shared<const std::vector<T>>(std::move(items));
    std::vector<const T*> pointers;
    pointers.reserve(owned->size());
    for (const T& item : *owned)
        pointers.push_back(&item);
    return list_answer<T>(std::move(source), std::move(member), std::move(owned),
                          std::move(pointers), std::move(keep));
}

/// Compares in time that depends on the expected token's length only.
bool same_token(std::string_view given, std::string_view expected) {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

} // namespace

int http_status_of(const Error& error) {
    return classify(error).http_status;
}

struct Service::Impl {
    Impl(std::shared_ptr<FallbackRepository> c, ServiceOptions o)
        : chain(std::move(c))
        , options(std::move(o))
        , primary(chain->sources().front()->name())
        , view(std::make_unique<OperatorView>(chain, options.operator_view)) {}

    std::shared_ptr<FallbackRepository> chain;
    ServiceOptions options;
    std::string primary;
    /// The status page, the timeline and the diagnosis (GET /, /v1/status, /v1/events…).
    std::unique_ptr<OperatorView> view;

    // GET /v1/changes: one subscription to the chain, made for the first stream, fanned
    // out to every open stream; a heartbeat thread keeps idle streams alive.
    mutable std::mutex mutex; ///< guards all below
    std::vector<std::shared_ptr<EventStream>> streams;
    /// The last events with a version, oldest first, for streams that resume. A null text
    /// marks a resume point with nothing to replay at it (after a resync with no version,
    /// or before the first change).
    std::deque<std::pair<std::int64_t, std::shared_ptr<const std::string>>> recent;
    /// The highest version any change carried (resyncs included).
    std::int64_t latest_version = 0;
    std::optional<Subscription> subscription;
    std::condition_variable wake;
    bool stopping = false;
    std::thread heartbeat;

    // GET /readyz: the last check of a prober thread of its own (ready_answer()).
    std::mutex ready_mutex; ///< guards all below
    std::condition_variable ready_wake;
    std::optional<std::pair<int, ojson>> last_ready; ///< status and body
    std::chrono::steady_clock::time_point ready_checked{}, ready_started{};
    bool probing = false;
    bool ready_stopping = false;
    std::thread prober;

    void probe() {
        std::unique_lock lock(ready_mutex);
        while (!ready_stopping) {
            probing = true;
            ready_started = std::chrono::steady_clock::now();
            lock.unlock();
            auto checked = ready();
            view->on_ready(checked.second);
            lock.lock();
            probing = false;
            last_ready = std::move(checked);
            ready_checked = std::chrono::steady_clock::now();
            ready_wake.wait_for(lock, options.ready_interval, [&] { return ready_stopping; });
        }
    }

    /// The last check, how old it is, and whether one has been running too long; never
    /// waits for one.
    Response ready_answer() {
        std::lock_guard lock(ready_mutex);
        auto now = std::chrono::steady_clock::now();
        auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
        if (!last_ready) {
            Response answer = json_answer(
                503, ojson{{"state", "starting"},
                           {"message", "the first readiness check has been running for " +
                                           std::to_string(seconds(now - ready_started)) + " s"}});
            answer.headers.emplace_back("Retry-After", "1");
            return answer;
        }
        auto [status, body] = *last_ready;
        body["check_age_seconds"] = seconds(now - ready_checked);
        if (probing && now - ready_started > options.ready_stall) {
            // The first source has not answered a check for a while: whatever the last one
            // said, not fully ready.
            if (body["state"] == "ready")
                body["state"] = "degraded";
            body["check_running_seconds"] = seconds(now - ready_started);
        }
        return json_answer(status, body);
    }

    /// Sends `text` to every stream; kept for resuming streams when it has a version.
    void broadcast(std::shared_ptr<const std::string> text, std::int64_t version = 0) {
        std::lock_guard lock(mutex);
        if (version > 0 && options.replay_events > 0) {
            recent.emplace_back(version, text);
            while (recent.size() > options.replay_events)
                recent.pop_front();
        }
        std::erase_if(streams,
                      [&](const std::shared_ptr<EventStream>& s) { return !s->send(text); });
    }

    void on_change(const CatalogChange& change) {
        std::string id;
        if (change.version > 0) {
            id = "id: " + std::to_string(change.version) + "\n";
            std::lock_guard lock(mutex);
            latest_version = std::max(latest_version, change.version);
        } else if (change.kind == CatalogChange::Kind::resync) {
            // What happened before it is not known change by change: a stream resuming
            // from before it gets a resync too. Streams resume after it from a point of
            // its own (its id), so that a reconnect does not resync again.
            std::lock_guard lock(mutex);
            recent.clear();
            if (auto point = resume_point(); point > 0)
                id = "id: " + std::to_string(point) + "\n";
        }
        std::string event = id;
        if (change.kind == CatalogChange::Kind::resync)
            event += "event: resync\n";
        event += "data: " + to_json(change) + "\n\n";
        broadcast(std::make_shared<const std::string>(std::move(event)), change.version);
    }

    /// Where a stream told to resync resumes from (its id; 0 when nothing is known): the
    /// last event kept, else the newest version seen (or the copy's), kept as a point with
    /// nothing to replay. Under `mutex`.
    std::int64_t resume_point() {
        if (!recent.empty())
            return recent.back().first;
        std::int64_t point = latest_version;
        if (point <= 0)
            if (auto* copy = chain->capability<CopyControl>())
                point = copy->copy_state().version;
        if (point > 0 && options.replay_events > 0)
            recent.emplace_back(point, nullptr);
        return point;
    }

    /// A stream resuming after `since`: what it missed from the events kept, or, when they
    /// do not reach back that far (or this server never saw `since`), one resync telling
    /// it to read again. Events are kept in the order they were sent, which is not always
    /// version order (a transaction can commit after one with a later version): what
    /// follows the last event with id `since` is what the stream missed. Under `mutex`, so
    /// that nothing is sent twice or missed.
    void resume(EventStream& stream, std::int64_t since) {
        auto seen = std::find_if(recent.rbegin(), recent.rend(),
                                 [&](const auto& event) { return event.first == since; });
        if (seen == recent.rend()) {
            CatalogChange resync;
            resync.kind = CatalogChange::Kind::resync;
            resync.at = system_clock::now();
            // With an id to resume from, so that the next reconnect resumes there (also
            // after a restart, when nothing is kept yet).
            std::int64_t point = resume_point();
            std::string id = point > 0 ? "id: " + std::to_string(point) + "\n" : "";
            stream.send(std::make_shared<const std::string>(
                id + "event: resync\ndata: " + to_json(resync) + "\n\n"));
            return;
        }
        for (auto next = seen.base(); next != recent.end(); ++next)
            if (next->second)
                stream.send(next->second);
    }

    void beat() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            wake.wait_for(lock, options.heartbeat);
            if (stopping)
                break;
            lock.unlock();
            broadcast(std::make_shared<const std::string>(": heartbeat\n\n"));
            lock.lock();
        }
    }

    Response changes(const Request& request, const std::vector<QueryParam>& query) {
        std::optional<std::int64_t> since;
        std::string given = request.last_event_id;
        for (const auto& param : query) {
            if (param.key != "since")
                return error_answer(400, "invalid_argument",
                                    "unknown query parameter '" + param.key +
                                        "' (this path takes since=VERSION)");
            given = param.value;
        }
        if (!given.empty()) {
            std::int64_t v = 0;
            auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), v);
            if (ec != std::errc() || end != given.data() + given.size() || v < 0)
                return error_answer(400, "invalid_argument",
                                    "Last-Event-ID and since= take a version (the id: of an "
                                    "event), not '" +
                                        given + "'");
            since = v;
        }
        std::unique_lock lock(mutex);
        std::erase_if(streams, [](const std::shared_ptr<EventStream>& s) { return !s->is_open(); });
        if (streams.size() >= options.max_streams)
            return error_answer(429, "too_many_connections",
                                "this server keeps at most " + std::to_string(options.max_streams) +
                                    " change streams open; try again later");
        if (!subscription) {
            lock.unlock(); // watch() may deliver at once, on another thread, into broadcast()
            auto sub = chain->watch([this](const CatalogChange& change) { on_change(change); });
            if (!sub)
                return error_answer(sub.error());
            lock.lock();
            if (!subscription) {
                subscription.emplace(std::move(sub).value());
                heartbeat = std::thread([this] { beat(); });
            }
        }
        Response answer;
        answer.on_stream = [this, since](std::shared_ptr<EventStream> stream) {
            // retry: how long EventSource clients wait before they reconnect.
            stream->send(std::make_shared<const std::string>("retry: 1000\n: connected\n\n"));
            std::lock_guard lock(mutex);
            if (stopping || streams.size() >= options.max_streams)
                return stream->close();
            if (since)
                resume(*stream, *since);
            streams.push_back(std::move(stream));
        };
        return answer;
    }

    /// A read's error: when every source of the chain failed by timing out, a gateway
    /// timeout (504) rather than an outage (503).
    Response read_error(const Error& error) {
        if (error.is(Errc::all_sources_failed)) {
            FallbackMetrics m = chain->metrics(/*with_backend=*/false);
            bool all_timed_out =
                !m.sources.empty() &&
                std::all_of(m.sources.begin(), m.sources.end(),
                            [](const SourceMetrics& s) { return s.last_errc == Errc::timeout; });
            if (all_timed_out) {
                Response answer = error_answer(error);
                answer.status = 504;
                answer.headers.clear();
                return answer;
            }
        }
        return error_answer(error);
    }

    // --- reads ------------------------------------------------------------------------

    Response stats() {
        auto stats = chain->system_stats();
        if (!stats)
            return read_error(stats.error());
        ojson body = cli::to_json(stats.value());
        body["backup"] = stats.value().source != primary;
        return json_answer(200, body);
    }

    Response models(const std::vector<QueryParam>& query) {
        std::vector<std::string> slugs;
        bool asked = false;
        for (const auto& param : query) {
            if (param.key != "slug")
                return error_answer(400, "invalid_argument",
                                    "unknown query parameter '" + param.key +
                                        "' (this path takes slug=)");
            asked = true;
            if (!param.value.empty())
                slugs.push_back(param.value);
        }
        if (slugs.size() > options.max_slugs)
            return error_answer(400, "invalid_argument",
                                "at most " + std::to_string(options.max_slugs) +
                                    " slug= values in one request");
        Provenance from;
        if (!asked) {
            // Shared with the copy (nothing copied per request at 100,000 models).
            auto all = chain->share_models(from);
            if (!all)
                return read_error(all.error());
            return list_answer<Model>(std::string(from.source), "models",
                                      std::move(all.value().owner), std::move(all.value().models));
        }
        auto models = chain->find_models(slugs, from);
        if (!models)
            return read_error(models.error());
        return list_answer(std::string(from.source), "models", std::move(models).value());
    }

    Response model(std::string_view encoded) {
        auto slug = percent_decode(encoded);
        if (!slug || slug->empty() || slug->find('/') != std::string::npos)
            return error_answer(400, "invalid_argument",
                                "not a model slug: '" + std::string(encoded) + "'");
        Provenance from;
        auto model = chain->find_model(*slug, from);
        if (!model)
            return read_error(model.error());
        if (!model.value())
            return error_answer(404, "not_found", "no model '" + *slug + "' in the catalogue");
        ojson body;
        body["source"] = std::string(from.source);
        body["model"] = cli::to_json(*model.value());
        return json_answer(200, body);
    }

    Response statuses(const std::vector<QueryParam>& query) {
        std::optional<Health> only;
        for (const auto& param : query) {
            if (param.key != "health")
                return error_answer(400, "invalid_argument",
                                    "unknown query parameter '" + param.key +
                                        "' (this path takes health=)");
            only = parse_health(param.value);
            if (!only)
                return error_answer(
                    400, "invalid_argument",
                    "health must be operational, degraded, outage or unknown, not '" + param.value +
                        "'");
        }
        Provenance from;
        auto statuses = chain->list_statuses(from);
        if (!statuses)
            return read_error(statuses.error());
        std::function<bool(const ModelStatus&)> keep;
        if (only)
            keep = [health = *only](const ModelStatus& status) { return status.health == health; };
        return list_answer(std::string(from.source), "statuses", std::move(statuses).value(),
                           std::move(keep));
    }

    /// The whole catalogue as snapshot JSON: what another modelrepo reads as a source
    /// (`--source http://HOST:PORT/v1/snapshot`), with an ETag so its polls cost a 304.
    Response snapshot(const Request& request) {
        auto snapshot = chain->export_snapshot();
        if (!snapshot)
            return read_error(snapshot.error());
        auto kept = std::make_shared<const Snapshot>(std::move(snapshot).value());
        // The tag is the text's hash: made once to hash it, part by part, then again as
        // it is sent. Never whole in memory.
        std::size_t hash = 0;
        {
            SnapshotWriter writer(kept);
            std::string part;
            bool more = true;
            while (more) {
                more = writer.next(part, answer_part_bytes);
                hash = hash * 1'000'003 ^ std::hash<std::string_view>{}(part);
                part.clear();
            }
        }
        char tag[32];
        std::snprintf(tag, sizeof tag, "\"%016zx\"", hash);
        Response answer{200, "application/json", {}, {{"ETag", tag}}, {}, {}};
        if (request.if_none_match == tag) {
            answer.status = 304;
            return answer;
        }
        auto writer = std::make_shared<SnapshotWriter>(std::move(kept));
        answer.parts = [writer](std::string& out) { return writer->next(out, answer_part_bytes); };
        return answer;
    }

    // --- writes -----------------------------------------------------------------------

    Response put_statuses(const Request& request) {
        if (!options.token)
            return error_answer(403, "read_only",
                                "this server takes no writes: start it with --token-file FILE");
        std::string_view auth = request.authorization;
        constexpr std::string_view scheme = "bearer ";
        bool bearer = auth.size() > scheme.size() &&
                      std::equal(scheme.begin(), scheme.end(), auth.begin(), [](char a, char b) {
                          return a == std::tolower(static_cast<unsigned char>(b));
                      });
        if (!bearer || !same_token(auth.substr(scheme.size()), *options.token)) {
            Response answer = error_answer(401, "auth_failed",
                                           bearer ? "the bearer token is not this server's"
                                                  : "writes need 'Authorization: Bearer TOKEN'");
            answer.headers.emplace_back("WWW-Authenticate", "Bearer");
            return answer;
        }
        auto statuses = parse_statuses(request.body);
        if (!statuses)
            return error_answer(statuses.error());
        auto receipt = chain->write_statuses(statuses.value());
        if (!receipt)
            return error_answer(receipt.error());
        const WriteReceipt& r = receipt.value();
        ojson body;
        body["applied"] = r.applied;
        body["queued"] = r.queued;
        body["ignored"] = r.ignored;
        if (r.ignored > 0)
            body["ignored_models"] = r.ignored_models; // the stored status is newer
        if (r.queued > 0) {
            body["outbox"] = r.outbox;
            if (r.unchecked > 0)
                body["unchecked"] = r.unchecked;
            if (r.deferred_because)
                body["deferred_because"] = {{"code", code_name(*r.deferred_because)},
                                            {"message", r.deferred_because->message}};
        }
        return json_answer(r.queued > 0 ? 202 : 200, body);
    }

    // --- operations -------------------------------------------------------------------

    Response metrics() {
        std::string text = chain->prometheus();
        if (options.extra_metrics) {
            auto extra = options.extra_metrics();
            text += to_prometheus(extra);
        }
        return Response{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text), {}, {},
                        {}};
    }

    /// One readiness check (on the prober's thread): it may wait for the first source.
    std::pair<int, ojson> ready() {
        auto stats = chain->system_stats();
        auto health = chain->sources().front()->check_health();
        FallbackMetrics m = chain->metrics(/*with_backend=*/false);
        auto now = system_clock::now();
        ojson sources = ojson::array();
        ojson sources_copy; ///< the first source's copy, when it keeps one
        for (std::size_t i = 0; i < m.sources.size(); ++i) {
            const SourceMetrics& s = m.sources[i];
            ojson entry;
            entry["source"] = s.source;
            entry["breaker"] = to_string(s.breaker);
            entry["serving"] = stats && i == m.serving;
            if (s.last_error.empty()) {
                entry["last_error"] = nullptr;
            } else {
                entry["last_error"] = s.last_error;
                if (s.last_error_at)
                    entry["last_error_at"] = format_timestamp(*s.last_error_at);
            }
            if (s.data_as_of) {
                entry["data_as_of"] = format_timestamp(*s.data_as_of);
                entry["data_age_seconds"] =
                    std::chrono::duration<double>(now - *s.data_as_of).count();
            } else {
                entry["data_as_of"] = nullptr;
            }
            entry["health"] = health_json(s.health);
            sources.push_back(std::move(entry));
        }
        // The first source's last-known copy: out of sync, or its file unusable, is worth a
        // look although reads are answered.
        bool copy_trouble = false;
        if (auto* copy = chain->capability<CopyControl>()) {
            CopyState c = copy->copy_state();
            ojson entry{{"has_data", c.has_data}, {"in_sync", c.in_sync}};
            if (c.has_data)
                entry["as_of"] = format_timestamp(c.as_of);
            entry["disk_error"] = c.disk_error.empty() ? ojson(nullptr) : ojson(c.disk_error);
            copy_trouble = !c.disk_error.empty() || (c.has_data && !c.in_sync);
            sources_copy = std::move(entry);
        }
        ojson body;
        if (!stats) {
            body["state"] = "unavailable";
            body["error"] = {{"code", code_name(stats.error())},
                             {"message", stats.error().message}};
        } else {
            bool backup = stats.value().source != primary;
            // Answering from a backup, or the first source answers but its server does
            // not (a copy stands in for it).
            // Or the first source's own layers see its origin down (a copy answering).
            bool first_down = !m.sources.empty() && m.sources.front().health.down();
            body["state"] = backup || !health || copy_trouble || first_down ? "degraded" : "ready";
            body["serving"] = stats.value().source;
        }
        if (!health)
            body["primary_error"] = {{"code", code_name(health.error())},
                                     {"message", health.error().message}};
        body["sources"] = std::move(sources);
        if (!sources_copy.is_null())
            body["copy"] = std::move(sources_copy);
        return {stats ? 200 : 503, std::move(body)};
    }

    /// The methods `path` answers; empty for a path that does not exist.
    static std::string_view allowed(const std::string& path) {
        if (path == "/v1/statuses")
            return "GET, HEAD, OPTIONS, PUT";
        if (path == "/v1/stats" || path == "/v1/models" || path.starts_with("/v1/models/") ||
            path == "/v1/snapshot" || path == "/v1/changes" || path == "/metrics" ||
            path == "/healthz" || path == "/readyz" || is_operator_path(path))
            return "GET, HEAD, OPTIONS";
        return {};
    }

    /// The operator's view: the page and the routes it reads (answered from memory).
    static bool is_operator_path(const std::string& path) {
        return path == "/" || path == "/status.css" || path == "/status.js" ||
               path == "/v1/status" || path == "/v1/events" || path == "/v1/events/stream" ||
               path == "/v1/diagnosis" || path == "/api/v2/summary.json";
    }

    Response operator_answer(const std::string& path, bool head,
                             const std::vector<QueryParam>& query, const std::string& host) {
        if (auto file = OperatorView::page(path))
            return *file;
        if (path == "/api/v2/summary.json")
            return view->statuspage(host);
        if (path == "/v1/status")
            return view->status();
        if (path == "/v1/diagnosis")
            return view->diagnosis();
        if (path == "/v1/events/stream")
            return head ? Response{200, "text/event-stream", {}, {}, {}, {}} : view->event_stream();
        long long since = 0;
        for (const auto& p : query)
            if (p.key == "since") {
                auto [end, ec] =
                    std::from_chars(p.value.data(), p.value.data() + p.value.size(), since);
                if (ec != std::errc() || end != p.value.data() + p.value.size() || since < 0)
                    return error_answer(400, "invalid_argument",
                                        "since must be an event id (a whole number), got '" +
                                            p.value + "'");
            }
        return view->events(since);
    }

    Response handle(const Request& request) {
        const std::string& path = request.path;
        // HEAD is GET without the body (the transport drops it and keeps Content-Length).
        const bool head = request.method == "HEAD";
        const bool get = request.method == "GET" || head;
        std::string_view allow = allowed(path);
        if (request.method == "OPTIONS" && (path == "*" || !allow.empty())) {
            Response answer{204, "text/plain", {}, {}, {}, {}};
            answer.headers.emplace_back("Allow", path == "*" ? "GET, HEAD, OPTIONS, PUT"
                                                             : std::string(allow));
            return answer;
        }
        if (allow.empty())
            return error_answer(404, "not_found",
                                "no such path: " + path +
                                    " (try /, /v1/stats, /v1/models, /v1/statuses, /v1/changes, "
                                    "/v1/status, /v1/events, /metrics, /healthz, /readyz)");
        if (request.method == "PUT" && path == "/v1/statuses")
            return put_statuses(request);
        if (!get)
            return method_not_allowed(allow);
        auto query = parse_query(request.query, /*plus_is_space=*/true);
        if (!query)
            return error_answer(400, "invalid_argument",
                                "the query string has a malformed %-escape");
        if (path == "/v1/stats")
            return stats();
        if (path == "/v1/models")
            return models(*query);
        if (path.starts_with("/v1/models/"))
            return model(std::string_view(path).substr(11));
        if (path == "/v1/statuses")
            return statuses(*query);
        if (path == "/v1/snapshot")
            return snapshot(request);
        if (path == "/v1/changes")
            return head ? Response{200, "text/event-stream", {}, {}, {}, {}}
                        : changes(request, *query);
        if (path == "/metrics")
            return metrics();
        if (is_operator_path(path))
            return operator_answer(path, head, *query, request.host);
        if (path == "/healthz")
            return json_answer(200, ojson{{"state", "alive"}});
        return ready_answer();
    }
};

Service::Service(std::shared_ptr<FallbackRepository> chain, ServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(chain), std::move(options))) {
    impl_->prober = std::thread([impl = impl_.get()] { impl->probe(); });
}

Service::~Service() {
    {
        std::lock_guard lock(impl_->ready_mutex);
        impl_->ready_stopping = true;
    }
    impl_->ready_wake.notify_all();
    impl_->prober.join();
    impl_->view.reset(); // its streams and its thread, once the prober no longer tells it
    std::vector<std::shared_ptr<EventStream>> open;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
        open.swap(impl_->streams);
    }
    impl_->wake.notify_all();
    if (impl_->heartbeat.joinable())
        impl_->heartbeat.join();
    if (impl_->subscription)
        impl_->subscription->cancel();
    for (auto& stream : open)
        stream->close();
}

Response Service::handle(const Request& request) {
    return impl_->handle(request);
}

Lane Service::lane(const Request& request) const {
    const std::string& path = request.path;
    if (request.method == "PUT")
        return path == "/v1/statuses" ? Lane::write : Lane::io; // else a 405 or 404
    if ((request.method != "GET" && request.method != "HEAD") || Impl::allowed(path).empty())
        return Lane::io;
    if (path == "/healthz" || path == "/readyz" || path == "/metrics" ||
        Impl::is_operator_path(path))
        return Lane::io;
    if (path == "/v1/changes") {
        // Once subscribed, a new stream only joins the fan-out.
        std::lock_guard lock(impl_->mutex);
        if (impl_->subscription || impl_->chain->reads_from_memory())
            return Lane::io;
        return Lane::read;
    }
    return impl_->chain->reads_from_memory() ? Lane::io : Lane::read;
}

std::size_t Service::streams() const {
    std::lock_guard lock(impl_->mutex);
    return static_cast<std::size_t>(
        std::count_if(impl_->streams.begin(), impl_->streams.end(),
                      [](const std::shared_ptr<EventStream>& s) { return s->is_open(); }));
}

} // namespace modelrepo::serve
