// SPDX-License-Identifier: MIT
// EventQueue: hands events to a subscriber on its own thread, so that a slow or
// throwing subscriber can delay or lose events but never block or break a call.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace modelrepo::detail {

template <class Event>
class EventQueue {
public:
    explicit EventQueue(std::size_t limit)
        : limit_(limit ? limit : 1) {}
    ~EventQueue() { stop(); }

    /// Replaces the subscriber. A call of the one replaced that is under way on another
    /// thread finishes first, and what it captured is let go: after this returns, nothing
    /// of the old subscriber runs (an owner may destroy what it pointed to). From inside a
    /// call it returns at once.
    void subscribe(std::function<void(const Event&)> subscriber) {
        std::unique_lock lock(mutex_);
        subscriber_ = std::move(subscriber);
        if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id())
            idle_.wait(lock, [&] { return !calling_; });
        if (!thread_.joinable() && !stopping_)
            thread_ = std::thread([this] { run(); });
    }

    /// Never blocks: past the limit the event is dropped and counted.
    void push(Event event) {
        {
            std::lock_guard lock(mutex_);
            if (!subscriber_ || stopping_)
                return;
            if (queue_.size() >= limit_) {
                ++dropped_;
                return;
            }
            queue_.push_back(std::move(event));
        }
        wake_.notify_one();
    }

    std::uint64_t dropped() const {
        std::lock_guard lock(mutex_);
        return dropped_;
    }

    /// Stops the thread: waits for a subscriber call under way, drops (and counts) what
    /// is still queued, so a slow subscriber cannot hold up the owner's destruction.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            dropped_ += queue_.size();
            queue_.clear();
        }
        wake_.notify_all();
        if (thread_.joinable())
            thread_.join();
    }

private:
    void run() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_)
                return;
            Event event = std::move(queue_.front());
            queue_.pop_front();
            auto subscriber = subscriber_;
            calling_ = true;
            lock.unlock();
            try {
                subscriber(event);
            } catch (...) {
                // A subscriber's exception is its own business; the next event still goes.
            }
            subscriber = nullptr; // let go before a subscribe() waiting for this returns
            lock.lock();
            calling_ = false;
            idle_.notify_all();
        }
    }

    const std::size_t limit_;
    mutable std::mutex mutex_; ///< guards queue_, subscriber_, dropped_, stopping_
    std::condition_variable wake_;
    std::condition_variable idle_; ///< no call under way (calling_ false)
    std::deque<Event> queue_;
    std::function<void(const Event&)> subscriber_;
    std::uint64_t dropped_ = 0;
    bool stopping_ = false;
    bool calling_ = false; ///< a subscriber call is under way
    std::thread thread_;
};

} // namespace modelrepo::detail
