// SPDX-License-Identifier: MIT
// Webhook alerts: the chain's events folded into states (the primary down or up, a
// backup's breaker open or closed), damped per state, queued per receiver, POSTed by a
// thread per receiver with retries until a deadline.
#include "alerts.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>
#include <unistd.h>

#if MODELREPO_CLI_CURL
#include <curl/curl.h>
#endif

namespace modelrepo::serve {

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0)
        return "serve";
    return name;
}

} // namespace

std::string alert_body(const std::string& event, const std::string& source,
                       const std::string& cause, Timestamp at, const std::string& host) {
    const bool resolved = event == "resolved";
    std::string text = std::string(resolved ? ":white_check_mark: " : ":rotating_light: ") +
                       "modelrepo on " + host + ": " +
                       (resolved                      ? "resolved, " + source
                        : event == "served_by_backup" ? "a backup serves (" + source + ")"
                                                      : event + " " + source) +
                       (cause.empty() ? "" : ": " + cause);
    nlohmann::ordered_json body{{"event", event}, {"source", source},
                                {"cause", cause}, {"at", format_timestamp(at)},
                                {"host", host},   {"text", text}};
    return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

struct Alerter::Impl {
    AlertOptions options;
    std::string primary;
    std::string host = host_name();

    struct Item {
        std::string body;
        steady_clock::time_point give_up, next_at;
        int attempts = 0;
    };
    /// One receiver: its queue and the thread that delivers it.
    struct Receiver {
        std::string url;
        std::string label; ///< "1", "2", …: the URL may hold a secret
        std::mutex mutex;
        std::condition_variable wake;
        std::deque<Item> queue;
        std::atomic<std::uint64_t> queued{0}, sent{0}, failed{0}, given_up{0}, dropped{0};
        std::thread thread;
    };
    std::vector<std::unique_ptr<Receiver>> receivers;

    /// A state alerted about: the primary's outage, or one backup's breaker.
    struct State {
        bool sent_down = false;
        steady_clock::time_point sent_at{};
        bool have_pending = false;
        bool pending_down = false;
        std::string event, source, cause;
        Timestamp at;
    };
    std::mutex mutex; ///< states, stopping (taken before a receiver's, never after)
    std::map<std::string, State> states;
    bool stopping = false;
    std::atomic<bool> stopped{false}; ///< for the receivers, which hold their own mutex
    std::condition_variable wake;
    std::thread damper;

    void send(const State& s, bool down) {
        std::string body = alert_body(down ? s.event : "resolved", s.source, s.cause, s.at, host);
        auto now = steady_clock::now();
        for (auto& r : receivers) {
            std::lock_guard lock(r->mutex);
            if (r->queue.size() >= options.queue) {
                ++r->dropped;
                continue;
            }
            r->queue.push_back({body, now + options.deadline, now});
            ++r->queued;
            r->wake.notify_one();
        }
    }

    void apply(const std::string& key, bool down, const FallbackEvent& e) {
        std::lock_guard lock(mutex);
        auto [it, fresh] = states.try_emplace(key);
        State& s = it->second;
        if (fresh && !down)
            return; // up from the start: nothing to resolve
        s.event = std::string(to_string(e.kind));
        s.source = e.source;
        s.cause = e.cause;
        s.at = e.at;
        auto now = steady_clock::now();
        if (!fresh && now - s.sent_at < options.interval) {
            // Within the interval: the damper sends the state it ends in, if it changed.
            s.have_pending = true;
            s.pending_down = down;
            return;
        }
        s.have_pending = false;
        if (!fresh && s.sent_down == down)
            return;
        s.sent_down = down;
        s.sent_at = now;
        send(s, down);
    }

    /// Sends what changed within an interval once it has passed (a flap that ended where
    /// it began sends nothing).
    void run_damper() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            auto now = steady_clock::now();
            for (auto& [key, s] : states)
                if (s.have_pending && now - s.sent_at >= options.interval) {
                    s.have_pending = false;
                    if (s.pending_down != s.sent_down) {
                        s.sent_down = s.pending_down;
                        s.sent_at = now;
                        send(s, s.sent_down);
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
        if (!options.secret_header.empty())
            headers = curl_slist_append(headers, options.secret_header.c_str());
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

Result<std::unique_ptr<Alerter>> Alerter::start(AlertOptions options, std::string primary) {
#if !MODELREPO_CLI_CURL
    if (!options.webhooks.empty())
        return make_error(Errc::invalid_argument,
                          "--alert-webhook: this modelrepo was built without libcurl");
#endif
    for (const std::string& url : options.webhooks)
        if (!url.starts_with("http://") && !url.starts_with("https://"))
            return make_error(Errc::invalid_argument,
                              "--alert-webhook takes an http:// or https:// URL, not '" +
                                  redact(url) + "'");
    std::unique_ptr<Alerter> alerter(new Alerter());
    alerter->impl_ = std::make_unique<Impl>();
    Impl& impl = *alerter->impl_;
    impl.options = std::move(options);
    impl.primary = std::move(primary);
    for (std::size_t i = 0; i < impl.options.webhooks.size(); ++i) {
        auto r = std::make_unique<Impl::Receiver>();
        r->url = impl.options.webhooks[i];
        r->label = std::to_string(i + 1);
        impl.receivers.push_back(std::move(r));
    }
    for (auto& r : impl.receivers)
        r->thread = std::thread([&impl, receiver = r.get()] { impl.deliver(*receiver); });
    impl.damper = std::thread([&impl] { impl.run_damper(); });
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
    impl_->damper.join();
    for (auto& r : impl_->receivers)
        r->thread.join();
}

void Alerter::on_event(const FallbackEvent& e) {
    using Kind = FallbackEvent::Kind;
    switch (e.kind) {
    case Kind::served_by_backup:
        impl_->apply(impl_->primary, true, e);
        return;
    case Kind::primary_recovered:
        impl_->apply(impl_->primary, false, e);
        return;
    case Kind::breaker_opened:
    case Kind::breaker_closed:
        impl_->apply(e.source, e.kind == Kind::breaker_opened, e);
        return;
    case Kind::breaker_half_open:
        return;
    }
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
    family("modelrepo_alert_queued_total", Type::counter, "Alerts queued for a webhook.",
           [](R& r) { return r.queued.load(); });
    family("modelrepo_alert_sent_total", Type::counter, "Alerts a webhook took (2xx).",
           [](R& r) { return r.sent.load(); });
    family("modelrepo_alert_failed_attempts_total", Type::counter,
           "POSTs to a webhook that failed (tried again until the deadline).",
           [](R& r) { return r.failed.load(); });
    family("modelrepo_alert_given_up_total", Type::counter,
           "Alerts not delivered by their deadline.", [](R& r) { return r.given_up.load(); });
    family("modelrepo_alert_dropped_total", Type::counter,
           "Alerts dropped because the webhook's queue was full.",
           [](R& r) { return r.dropped.load(); });
    family("modelrepo_alert_queue", Type::gauge, "Alerts waiting for a webhook.", [](R& r) {
        std::lock_guard lock(r.mutex);
        return r.queue.size();
    });
    return out;
}

} // namespace modelrepo::serve
