// SPDX-License-Identifier: MIT
// ChangeHub and Subscription: one delivery thread per hub, callbacks in order.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <modelrepo/catalog_change.hpp>

#include "backend_metrics.hpp"

namespace modelrepo {

namespace detail {

struct Subscriber {
    std::function<void(const CatalogChange&)> on_change;
    std::atomic<bool> active{true};
};

/// The hub's state, shared with its subscriptions (which may outlive the hub).
struct HubCore {
    explicit HubCore(std::size_t limit)
        : queue_limit(std::max<std::size_t>(limit, 1)) {}

    const std::size_t queue_limit;
    mutable std::mutex mutex;         ///< guards everything below
    std::condition_variable wake;     ///< the delivery thread waits here
    std::condition_variable finished; ///< cancel() waits here for a running callback
    std::deque<CatalogChange> queue;
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    const Subscriber* running = nullptr; ///< whose callback runs now
    std::thread::id delivery_thread;
    bool stopping = false;
    bool started = false;
    std::thread thread;
    ChangeHub::Stats stats;

    void run() {
        std::unique_lock lock(mutex);
        delivery_thread = std::this_thread::get_id();
        for (;;) {
            wake.wait(lock, [&] { return stopping || !queue.empty(); });
            if (stopping)
                return;
            CatalogChange change = std::move(queue.front());
            queue.pop_front();
            auto targets = subscribers;
            for (const auto& sub : targets) {
                if (stopping)
                    return;
                if (!sub->active.load(std::memory_order_acquire))
                    continue;
                running = sub.get();
                lock.unlock();
                auto started_at = std::chrono::steady_clock::now();
                bool threw = false;
                try {
                    sub->on_change(change);
                } catch (...) {
                    threw = true; // the subscriber's own business; the next one still runs
                }
                auto took = std::chrono::steady_clock::now() - started_at;
                lock.lock();
                running = nullptr;
                ++stats.delivered;
                stats.failed_callbacks += threw;
                stats.slow_callbacks += took > std::chrono::milliseconds(100);
                finished.notify_all();
            }
            std::erase_if(subscribers, [](const auto& s) { return !s->active.load(); });
        }
    }

    void cancel(Subscriber& sub) {
        sub.active.store(false, std::memory_order_release);
        std::unique_lock lock(mutex);
        if (std::this_thread::get_id() == delivery_thread)
            return; // from inside a callback: no further call comes, nothing to wait for
        finished.wait(lock, [&] { return running != &sub; });
    }
};

} // namespace detail

std::string_view to_string(CatalogChange::Kind k) noexcept {
    switch (k) {
    case CatalogChange::Kind::status:
        return "status";
    case CatalogChange::Kind::model:
        return "model";
    case CatalogChange::Kind::provider:
        return "provider";
    case CatalogChange::Kind::resync:
        break;
    }
    return "resync";
}

std::string to_json(const CatalogChange& change) {
    nlohmann::ordered_json out;
    out["kind"] = std::string(to_string(change.kind));
    out["slug"] = change.slug;
    out["version"] = change.version;
    out["at"] = format_timestamp_precise(change.at);
    return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Subscription::Subscription(std::shared_ptr<detail::HubCore> hub,
                           std::shared_ptr<detail::Subscriber> sub)
    : hub_(std::move(hub))
    , subscriber_(std::move(sub)) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
    if (this != &other) {
        cancel();
        hub_ = std::move(other.hub_);
        subscriber_ = std::move(other.subscriber_);
    }
    return *this;
}

Subscription::~Subscription() {
    cancel();
}

void Subscription::cancel() {
    if (hub_ && subscriber_)
        hub_->cancel(*subscriber_);
}

bool Subscription::active() const noexcept {
    if (!hub_ || !subscriber_ || !subscriber_->active.load(std::memory_order_acquire))
        return false;
    std::lock_guard lock(hub_->mutex);
    return !hub_->stopping;
}

ChangeHub::ChangeHub(std::size_t queue_limit)
    : core_(std::make_shared<detail::HubCore>(queue_limit)) {}

ChangeHub::~ChangeHub() {
    {
        std::lock_guard lock(core_->mutex);
        core_->stopping = true;
        core_->queue.clear();
        for (auto& s : core_->subscribers)
            s->active.store(false);
    }
    core_->wake.notify_all();
    if (core_->thread.joinable()) {
        // Destroyed from inside a callback: the thread ends when the callback returns.
        if (core_->thread.get_id() == std::this_thread::get_id())
            core_->thread.detach();
        else
            core_->thread.join();
    }
    core_->finished.notify_all();
}

Subscription ChangeHub::subscribe(std::function<void(const CatalogChange&)> on_change) {
    auto sub = std::make_shared<detail::Subscriber>();
    sub->on_change = std::move(on_change);
    std::lock_guard lock(core_->mutex);
    core_->subscribers.push_back(sub);
    if (!core_->started) {
        core_->started = true;
        // The thread keeps the core alive: it may outlive a hub destroyed from a callback.
        core_->thread = std::thread([core = core_] { core->run(); });
    }
    return Subscription(core_, sub);
}

void ChangeHub::publish(CatalogChange change) {
    {
        std::lock_guard lock(core_->mutex);
        ++core_->stats.published;
        if (core_->stopping || core_->subscribers.empty())
            return;
        if (core_->queue.size() >= core_->queue_limit) {
            // Collapse the backlog: one resync says everything queued may be missed.
            core_->queue.clear();
            ++core_->stats.overflows;
            change = CatalogChange{CatalogChange::Kind::resync, "", change.version, change.at};
        }
        core_->queue.push_back(std::move(change));
    }
    core_->wake.notify_one();
}

ChangeHub::Stats ChangeHub::stats() const {
    std::lock_guard lock(core_->mutex);
    Stats s = core_->stats;
    s.queued = core_->queue.size();
    s.subscribers =
        static_cast<std::size_t>(std::count_if(core_->subscribers.begin(), core_->subscribers.end(),
                                               [](const auto& sub) { return sub->active.load(); }));
    return s;
}

} // namespace modelrepo

namespace modelrepo::detail {

void append_metric(std::vector<MetricFamily>& out, const char* name, MetricFamily::Type type,
                   const char* help, double value) {
    out.push_back({name, type, help, {}});
    out.back().add({}, value);
}

void append_hub_metrics(std::vector<MetricFamily>& out, const ChangeHub::Stats& h) {
    using Type = MetricFamily::Type;
    append_metric(out, "modelrepo_watchers", Type::gauge, "Active watch() subscriptions.",
                  static_cast<double>(h.subscribers));
    append_metric(out, "modelrepo_watch_slow_callbacks_total", Type::counter,
                  "Watch callbacks that took over 100 ms.", static_cast<double>(h.slow_callbacks));
    append_metric(out, "modelrepo_watch_overflows_total", Type::counter,
                  "Times a backlog of undelivered changes collapsed into one resync.",
                  static_cast<double>(h.overflows));
}

} // namespace modelrepo::detail
