// SPDX-License-Identifier: MIT
// Delivery<Event>: hands events to subscribers, in order, on one thread of its own, so
// that a slow or throwing subscriber delays or loses only events, never the code that
// publishes. What ChangeHub (catalogue changes) and a source's health events are built on.
//
// A subscriber is freed, callback and all, when it is cancelled: at once from another
// thread (after its running callback, if any, returns), or right after the callback
// returns when it cancels itself from inside it. Nothing waits for the next event.
//
// A relay is a subscriber called on the publishing thread instead, inside publish(): for
// a callback that only hands the event on at once (to another Delivery), one thread less
// on the way. Publishers take turns, so relays see events in publish order.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <modelrepo/catalog_change.hpp>

namespace modelrepo::detail {

template <class Event>
class Delivery : public std::enable_shared_from_this<Delivery<Event>> {
public:
    using Callback = std::function<void(const Event&)>;
    /// Given the event that found the queue full: the one event that replaces everything
    /// queued (a resync), or nullopt to drop the new event (counted either way).
    using Overflow = std::function<std::optional<Event>(const Event&)>;

    struct Stats {
        std::uint64_t published = 0, delivered = 0, overflows = 0, slow_callbacks = 0,
                      failed_callbacks = 0;
        std::size_t queued = 0, subscribers = 0;
    };

    Delivery(std::size_t queue_limit, Overflow overflow)
        : queue_limit_(std::max<std::size_t>(queue_limit, 1))
        , overflow_(std::move(overflow)) {}

    /// A new subscriber; the delivery thread starts with the first one.
    Subscription subscribe(Callback callback) {
        auto sub = std::make_shared<Subscriber>();
        sub->callback = std::move(callback);
        std::lock_guard lock(mutex_);
        subscribers_.push_back(sub);
        if (!started_ && !stopping_) {
            started_ = true;
            // The thread keeps this alive: it may outlive an owner destroyed from a callback.
            thread_ = std::thread([self = this->shared_from_this()] { self->run(); });
        }
        return Subscription(std::make_shared<Handle>(this->shared_from_this(), std::move(sub)));
    }

    /// A relay (see the top): `callback` runs inside each publish(), on its thread. It must
    /// not block, and must not publish to, subscribe to, cancel on or stop this delivery.
    /// Cancelling it from another thread waits for a call in progress.
    Subscription relay(Callback callback) {
        auto sub = std::make_shared<Subscriber>();
        sub->callback = std::move(callback);
        sub->relay = true;
        {
            std::lock_guard relay_lock(relay_mutex_);
            std::lock_guard lock(mutex_);
            if (stopping_)
                sub->active = false;
            else
                relays_.push_back(sub);
        }
        return Subscription(std::make_shared<Handle>(this->shared_from_this(), std::move(sub)));
    }

    /// Hands `event` to every relay, then queues it for every subscriber; never blocks on
    /// the subscribers.
    void publish(Event event) {
        std::lock_guard relay_lock(relay_mutex_); // publishers take turns: one order for all
        std::uint64_t relayed = 0, failed = 0;
        for (const auto& r : relays_) {
            ++relayed;
            try {
                r->callback(event);
            } catch (...) {
                ++failed;
            }
        }
        {
            std::lock_guard lock(mutex_);
            ++stats_.published;
            stats_.delivered += relayed;
            stats_.failed_callbacks += failed;
            if (stopping_ || subscribers_.empty())
                return;
            if (queue_.size() >= queue_limit_) {
                ++stats_.overflows;
                auto replacement = overflow_ ? overflow_(event) : std::nullopt;
                if (!replacement)
                    return;
                queue_.clear();
                event = std::move(*replacement);
            }
            queue_.push_back(std::move(event));
        }
        wake_.notify_one();
    }

    /// Stops delivery: waits for a running callback (unless called from inside one), drops
    /// what is queued; subscriptions become inactive and their callbacks are released.
    /// The owner calls it before it goes (the thread keeps this object alive until then).
    void stop() {
        std::vector<std::shared_ptr<Subscriber>> gone;
        std::thread thread;
        {
            std::lock_guard relay_lock(relay_mutex_); // after a relay call in progress
            std::lock_guard lock(mutex_);
            for (auto& r : relays_)
                r->active = false;
            gone.swap(relays_);
            stopping_ = true;
            queue_.clear();
            for (auto& s : subscribers_)
                s->active = false;
            gone.insert(gone.end(), subscribers_.begin(), subscribers_.end());
            subscribers_.clear();
            thread.swap(thread_);
        }
        wake_.notify_all();
        if (thread.joinable()) {
            if (thread.get_id() == std::this_thread::get_id())
                thread.detach(); // from inside a callback: it ends when the callback returns
            else
                thread.join();
        }
        std::vector<Callback> callbacks; // destroyed last, outside the lock
        {
            std::lock_guard lock(mutex_);
            for (auto& s : gone) {
                if (s.get() == running_) {
                    s->freed_by_delivery = true; // stopped from inside its callback
                } else if (s->callback) {
                    callbacks.push_back(std::move(s->callback));
                    s->callback = nullptr;
                }
            }
        }
        finished_.notify_all();
    }

    Stats stats() const {
        std::lock_guard lock(mutex_);
        Stats s = stats_;
        s.queued = queue_.size();
        s.subscribers = subscribers_.size() + relays_.size();
        return s;
    }

private:
    struct Subscriber {
        Callback callback; ///< guarded by the delivery's mutex; emptied when cancelled
        bool active = true;
        /// Cancelled (or stopped) from inside its own running callback: the delivery thread
        /// frees the callback once it returns. Otherwise whoever cancelled frees it, before
        /// cancel() returns.
        bool freed_by_delivery = false;
        bool relay = false; ///< called inside publish() (guarded by relay_mutex_ then)
    };

    /// What a Subscription holds: cancelling it frees the subscriber's callback.
    class Handle final : public SubscriptionHandle {
    public:
        Handle(std::shared_ptr<Delivery> delivery, std::shared_ptr<Subscriber> sub)
            : delivery_(std::move(delivery))
            , sub_(std::move(sub)) {}
        void cancel() noexcept override { delivery_->cancel(sub_); }
        bool active() const noexcept override { return delivery_->active(*sub_); }

    private:
        std::shared_ptr<Delivery> delivery_;
        std::shared_ptr<Subscriber> sub_;
    };

    bool active(const Subscriber& sub) const noexcept {
        std::unique_lock relay_lock(relay_mutex_, std::defer_lock);
        if (sub.relay)
            relay_lock.lock();
        std::lock_guard lock(mutex_);
        return sub.active && !stopping_;
    }

    void cancel(const std::shared_ptr<Subscriber>& sub) noexcept {
        Callback dropped;
        if (sub->relay) {
            {
                std::lock_guard relay_lock(relay_mutex_); // after a call in progress
                std::lock_guard lock(mutex_);
                sub->active = false;
                std::erase(relays_, sub);
                dropped = std::move(sub->callback);
                sub->callback = nullptr;
            }
            return; // `dropped` is destroyed here, outside the locks
        }
        {
            std::unique_lock lock(mutex_);
            sub->active = false;
            std::erase(subscribers_, sub);
            if (running_ == sub.get()) {
                // From inside its own callback: released by the delivery thread once the
                // callback returns. From another thread: wait for it to return.
                if (std::this_thread::get_id() == delivery_thread_) {
                    sub->freed_by_delivery = true;
                    return;
                }
                finished_.wait(lock, [&] { return running_ != sub.get(); });
            }
            dropped = std::move(sub->callback);
            sub->callback = nullptr;
        }
        // `dropped` is destroyed here, outside the lock.
    }

    void run() {
        std::unique_lock lock(mutex_);
        delivery_thread_ = std::this_thread::get_id();
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_)
                return;
            Event event = std::move(queue_.front());
            queue_.pop_front();
            auto targets = subscribers_;
            for (const auto& sub : targets) {
                if (stopping_)
                    return;
                if (!sub->active || !sub->callback)
                    continue;
                running_ = sub.get();
                Callback& callback = sub->callback; // stays put: only this thread empties it now
                lock.unlock();
                auto started_at = std::chrono::steady_clock::now();
                bool threw = false;
                try {
                    callback(event);
                } catch (...) {
                    threw = true; // the subscriber's own business; the next one still runs
                }
                auto took = std::chrono::steady_clock::now() - started_at;
                Callback dropped;
                lock.lock();
                running_ = nullptr;
                if (!sub->active && sub->freed_by_delivery) {
                    // Cancelled from inside the callback. One cancelled from another thread
                    // waits (finished_) and frees it itself, so that its cancel() returns
                    // only once what the callback captured is gone.
                    dropped = std::move(sub->callback);
                    sub->callback = nullptr;
                }
                ++stats_.delivered;
                stats_.failed_callbacks += threw;
                stats_.slow_callbacks += took > std::chrono::milliseconds(100);
                finished_.notify_all();
                if (dropped) {
                    lock.unlock();
                    dropped = nullptr; // may destroy what the callback owned
                    lock.lock();
                }
            }
        }
    }

    const std::size_t queue_limit_;
    const Overflow overflow_;
    /// Taken before mutex_: by publish() around its relay calls, and to change relays_.
    mutable std::mutex relay_mutex_;
    std::vector<std::shared_ptr<Subscriber>> relays_; ///< guarded by relay_mutex_
    mutable std::mutex mutex_;                        ///< guards everything below
    std::condition_variable wake_;                    ///< the delivery thread waits here
    std::condition_variable finished_; ///< cancel() waits here for a running callback
    std::deque<Event> queue_;
    std::vector<std::shared_ptr<Subscriber>> subscribers_; ///< the active ones
    const Subscriber* running_ = nullptr;                  ///< whose callback runs now
    std::thread::id delivery_thread_;
    bool stopping_ = false;
    bool started_ = false;
    std::thread thread_;
    Stats stats_;
};

} // namespace modelrepo::detail
