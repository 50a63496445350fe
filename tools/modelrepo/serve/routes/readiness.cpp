// SPDX-License-Identifier: MIT
#include "readiness.hpp"

#include "answers.hpp"

namespace modelrepo::serve {

using std::chrono::system_clock;

Readiness::Readiness(std::shared_ptr<FallbackRepository> chain, ReadinessOptions options,
                     OperatorView* view)
    : chain_(std::move(chain))
    , options_(std::move(options))
    , view_(view)
    , primary_(chain_->sources().front()->name()) {
    prober_ = std::thread([this] { probe(); });
}

Readiness::~Readiness() {
    {
        std::lock_guard lock(ready_mutex_);
        ready_stopping_ = true;
    }
    ready_wake_.notify_all();
    prober_.join();
}

void Readiness::add_to(RouteTable& table) {
    table.add({"GET",
               "/healthz",
               Lane::io,
               Scope::none,
               "alive: 200 while the process runs",
               [](const RouteCall&) {
                   return json_answer(200, ojson{{"state", "alive"}});
               },
               {},
               {"Alive"}});
    table.add({"GET",
               "/readyz",
               Lane::io,
               Scope::none,
               "ready, degraded (a backup or a copy answers) or unavailable, with each source",
               [this](const RouteCall& call) { return ready_answer(call.discreet); },
               {},
               {"Readiness"}});
    table.add({"GET",
               "/metrics",
               Lane::io,
               Scope::operate,
               "Prometheus' text format",
               [this](const RouteCall&) { return metrics(); },
               {},
               {"Text", "text/plain"}});
}

void Readiness::probe() {
    std::unique_lock lock(ready_mutex_);
    while (!ready_stopping_) {
        probing_ = true;
        ready_started_ = std::chrono::steady_clock::now();
        lock.unlock();
        auto checked = ready();
        view_->on_ready(checked.second);
        lock.lock();
        probing_ = false;
        last_ready_ = std::move(checked);
        ready_checked_ = std::chrono::steady_clock::now();
        ready_wake_.wait_for(lock, options_.interval, [&] { return ready_stopping_; });
    }
}

namespace {

constexpr std::string_view hidden = "(told to token holders, in /v1/status)";

/// /readyz for a caller without a token on a discreet listener: the states, codes and
/// times kept; every message (a host, a role, a database, a file may be in one) replaced.
void keep_details(ojson& body) {
    auto hide = [](ojson& object, const char* key) {
        if (object.is_object() && object.contains(key) && object[key].is_string())
            object[key] = hidden;
    };
    for (const char* key : {"error", "primary_error"})
        if (body.contains(key))
            hide(body[key], "message");
    if (body.contains("sources"))
        for (ojson& source : body["sources"]) {
            hide(source, "last_error");
            if (source.contains("health"))
                hide(source["health"], "cause");
        }
    if (body.contains("copy"))
        hide(body["copy"], "disk_error");
}

} // namespace

Response Readiness::ready_answer(bool discreet) {
    std::lock_guard lock(ready_mutex_);
    auto now = std::chrono::steady_clock::now();
    auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
    if (!last_ready_) {
        Response answer = json_answer(
            503, ojson{{"state", "starting"},
                       {"message", "the first readiness check has been running for " +
                                       std::to_string(seconds(now - ready_started_)) + " s"}});
        answer.headers.emplace_back("Retry-After", "1");
        return answer;
    }
    auto [status, body] = *last_ready_;
    body["check_age_seconds"] = seconds(now - ready_checked_);
    if (probing_ && now - ready_started_ > options_.stall) {
        // The first source has not answered a check for a while: whatever the last one
        // said, not fully ready.
        if (body["state"] == "ready")
            body["state"] = "degraded";
        body["check_running_seconds"] = seconds(now - ready_started_);
    }
    if (discreet)
        keep_details(body);
    return json_answer(status, body);
}

Response Readiness::metrics() {
    std::string text = chain_->prometheus();
    if (options_.extra_metrics) {
        auto extra = options_.extra_metrics();
        text += to_prometheus(extra);
    }
    return Response{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text), {}, {}, {}};
}

std::pair<int, ojson> Readiness::ready() {
    auto stats = chain_->system_stats();
    auto health = chain_->sources().front()->check_health();
    FallbackMetrics m = chain_->metrics(/*with_backend=*/false);
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
            entry["data_age_seconds"] = std::chrono::duration<double>(now - *s.data_as_of).count();
        } else {
            entry["data_as_of"] = nullptr;
        }
        entry["health"] = health_json(s.health);
        sources.push_back(std::move(entry));
    }
    // The first source's last-known copy: out of sync, or its file unusable, is worth a
    // look although reads are answered.
    bool copy_trouble = false;
    if (auto* copy = chain_->capability<CopyControl>()) {
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
        body["error"] = {{"code", code_name(stats.error())}, {"message", stats.error().message}};
    } else {
        bool backup = stats.value().source != primary_;
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

} // namespace modelrepo::serve
