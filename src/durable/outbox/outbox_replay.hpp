// SPDX-License-Identifier: MIT
// OutboxReplay: applies what the outbox keeps as soon as the source takes it again:
// a thread of its own (backoff while the database cannot, no traffic needed), oldest
// batch first, each in one transaction, removed after commit; a batch the database
// refuses for good is applied status by status and only what it refuses goes to the dead
// letters; a batch that does not read back goes there with why; neither blocks the rest.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <modelrepo/outbox.hpp>

#include "../../core/capabilities.hpp"
#include "../../core/health_tracker.hpp"
#include "outbox_store.hpp"

namespace modelrepo::detail {

class OutboxReplay {
public:
    struct Options {
        std::chrono::milliseconds backoff_initial{100};
        std::chrono::milliseconds backoff_max{5'000};
        /// A look at the outbox this often when nothing woke the thread (another process
        /// may have queued into the same file).
        std::chrono::milliseconds idle_check{2'000};
        /// The thread's first look at what an earlier process left, unless a write wakes
        /// it sooner: a program that drains at once (`modelrepo outbox drain`) does the
        /// work on its own thread and can report it, instead of finding it done.
        std::chrono::milliseconds first_look{1'000};
        /// Told of each dead letter (the source's health events); may be null.
        HealthObserver* health = nullptr;
    };
    using Listener = std::function<void(const OutboxEvent&)>;

    OutboxReplay(OutboxStore& outbox, StatusWriter& writer, Options options);
    /// Stops the thread (waits for a batch being applied).
    ~OutboxReplay();
    OutboxReplay(const OutboxReplay&) = delete;
    OutboxReplay& operator=(const OutboxReplay&) = delete;

    void start();
    /// Something was queued, or the database may be back: look now.
    void wake();
    /// Applies what is pending, on the caller's thread, until the outbox is empty or the
    /// database cannot take a batch (that error).
    Result<OutboxDrain> drain(const ProgressFn& progress = {});
    void set_listener(Listener listener);

    struct Stats {
        std::uint64_t replayed_batches = 0, replayed_statuses = 0, dead_letters = 0,
                      failed_attempts = 0;
    };
    Stats stats() const;

private:
    void run();
    void emit(const OutboxEvent& event);
    /// Applies a group of batches; removes those applied, buries what is refused for good.
    Result<void> apply_group(const std::vector<OutboxStore::Batch>& batches, OutboxDrain& report);
    /// A batch the database refuses for good: status by status, the valid ones applied and
    /// the others dead-lettered with why.
    Result<void> refused(const OutboxStore::Batch& batch, const Error& error, OutboxDrain& report);
    void count_dead(const OutboxStore::Batch& batch, std::int64_t statuses, const std::string& why,
                    std::optional<Errc> errc, OutboxDrain& report);

    OutboxStore& outbox_;
    StatusWriter& writer_;
    const Options options_;
    std::mutex drain_mutex_; ///< one drain at a time in this process; guards unremoved_
    /// Batches applied whose removal failed (a full disk): removed before anything else is
    /// read, so that they are not applied again.
    std::vector<std::int64_t> unremoved_;
    mutable std::mutex mutex_; ///< guards everything below
    std::condition_variable wake_;
    bool woken_ = false;
    bool stopping_ = false;
    Stats stats_;
    Listener listener_;
    std::thread thread_;
};

} // namespace modelrepo::detail
