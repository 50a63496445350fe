// SPDX-License-Identifier: MIT
// WorkPool: a few threads and a bounded queue, for the requests of `modelrepo serve` that
// may wait on a database, so that they never hold the I/O threads (http_server.cpp).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace modelrepo::serve {

/// Thread-safe: submit(), stop() and the getters may be called from any thread (stop()
/// not from a job). stop() and the destructor run what is queued (each job must be quick
/// to give up when the server is stopping) and join the threads.
class WorkPool {
public:
    /// `threads` workers (at least 1) and at most `max_queued` jobs waiting for one.
    WorkPool(std::string name, std::size_t threads, std::size_t max_queued);
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    /// Queues `job`; false, and `job` is not kept, when every worker is busy (or has a
    /// job to take) and `max_queued` jobs wait beyond them.
    bool submit(std::function<void()> job);
    /// Refuses new jobs, runs the queued ones, joins the workers. Idempotent.
    void stop();

    const std::string& name() const noexcept { return name_; }
    std::size_t threads() const noexcept { return workers_.size(); }
    std::size_t max_queued() const noexcept { return max_queued_; }
    std::size_t queued() const;
    std::size_t busy() const;

private:
    void work();

    const std::string name_;
    const std::size_t max_queued_;
    mutable std::mutex mutex_; ///< guards queue_, busy_, stopping_
    std::condition_variable wake_;
    std::deque<std::function<void()>> queue_;
    std::size_t busy_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
};

} // namespace modelrepo::serve
