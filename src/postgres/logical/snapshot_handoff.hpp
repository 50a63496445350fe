// SPDX-License-Identifier: MIT
// SnapshotHandoff: makes a resync of the logical feed exact. A new slot exports the
// snapshot its changes start after, valid only until the feed's next command on the
// replication session. The feed offers it here before it starts streaming; the copy's full
// re-read (SqlCatalog::load, woken by the resync) takes it and imports it with SET
// TRANSACTION SNAPSHOT; then the feed starts. The re-read then holds exactly what the
// database held at the slot's consistent point, and the stream every change after it:
// nothing missed, nothing twice.
//
// Offered only while a copy takes the feed (`wanted`): a watch() alone re-reads on its
// own, and the feed must not wait for a reader that never comes. A reader that is late
// (past the feed's wait) finds the snapshot gone: its import fails, and the copy reads
// again in a snapshot of its own (a change may then come twice; the copy converges).
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

namespace modelrepo::detail::logical {

class SnapshotHandoff {
public:
    /// Whether a reader will come for offered snapshots (a copy takes the feed). No longer
    /// wanted, a feed waiting in settle() goes on at once.
    void want(bool wanted) {
        {
            std::lock_guard lock(mutex_);
            wanted_ = wanted;
        }
        changed_.notify_all();
    }

    /// The feed: offers snapshot `name`; false when nobody wants it (nothing offered).
    bool offer(std::string name) {
        std::lock_guard lock(mutex_);
        if (!wanted_)
            return false;
        offered_ = std::move(name);
        taken_ = imported_ = false;
        return true;
    }

    /// The feed: waits until a reader imported the offer, for at most `limit`, then
    /// withdraws it. True when it was imported.
    bool settle(std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, limit, [&] { return imported_ || !wanted_; });
        offered_.reset();
        return imported_;
    }

    /// A reader: the snapshot on offer, now taken (nullopt when none is).
    std::optional<std::string> take() {
        std::lock_guard lock(mutex_);
        if (!offered_ || taken_)
            return std::nullopt;
        taken_ = true;
        return offered_;
    }

    /// A reader: its SET TRANSACTION SNAPSHOT of `name` ran (whether or not it succeeded,
    /// or it could not run); nothing when `name` is no longer on offer.
    void imported(const std::string& name) {
        {
            std::lock_guard lock(mutex_);
            if (!offered_ || *offered_ != name)
                return;
            imported_ = true;
        }
        changed_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool wanted_ = false;
    std::optional<std::string> offered_;
    bool taken_ = false;
    bool imported_ = false;
};

} // namespace modelrepo::detail::logical
