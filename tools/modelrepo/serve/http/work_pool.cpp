// SPDX-License-Identifier: MIT
#include "work_pool.hpp"

#include <algorithm>

namespace modelrepo::serve {

WorkPool::WorkPool(std::string name, std::size_t threads, std::size_t max_queued)
    : name_(std::move(name))
    , max_queued_(max_queued) {
    threads = std::max<std::size_t>(1, threads);
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i)
        workers_.emplace_back([this] { work(); });
}

WorkPool::~WorkPool() {
    stop();
}

void WorkPool::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_)
            return;
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_)
        worker.join();
}

bool WorkPool::submit(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        // Jobs not yet taken by an idle worker do not count against the bound.
        std::size_t idle = workers_.size() - busy_;
        if (stopping_ || queue_.size() >= max_queued_ + idle)
            return false;
        queue_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
}

std::size_t WorkPool::queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t WorkPool::busy() const {
    std::lock_guard lock(mutex_);
    return busy_;
}

void WorkPool::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty())
            return; // stopping, and nothing is left to run
        auto job = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
        lock.unlock();
        job();
        job = nullptr; // what it holds goes before the next wait
        lock.lock();
        --busy_;
    }
}

} // namespace modelrepo::serve
