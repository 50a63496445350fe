// SPDX-License-Identifier: MIT
// LiveCopy: the last-known copy of a source's catalogue (cache_dir=, cache=live). Kept
// current from the source's change feed — each change re-reads the rows it names, a
// resync reloads everything, and statuses the feed decoded from the database's log are
// applied as written — held in memory for reads and written to cache_dir, so that a
// process started during an outage answers with the newest state its previous run saw.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/error.hpp>

#include "../../core/capabilities.hpp"
#include "../../index/catalog.hpp"
#include "../../index/published.hpp"

namespace modelrepo::detail {

class LiveCopy {
public:
    struct Options {
        std::filesystem::path dir; ///< empty: memory only
        std::string key;           ///< file name stem in `dir`
        std::chrono::milliseconds save_interval{1'000};
        /// Out of sync for longer than this, the copy is stale: `on_stale(true, why)`, and
        /// `on_stale(false, …)` once it is in sync again. Zero: never.
        std::chrono::milliseconds max_stale{0};
        std::function<void(bool stale, const std::string& why)> on_stale;
    };

    /// `downstream` gets each batch of changes once the copy has applied it (so a
    /// watcher that reads on a change reads the changed copy).
    LiveCopy(Options options, CatalogReader& reader, ChangeHub& downstream);
    /// Writes the copy if it changed since the last write; stops the thread.
    ~LiveCopy();
    LiveCopy(const LiveCopy&) = delete;
    LiveCopy& operator=(const LiveCopy&) = delete;

    /// Loads the copy an earlier run left in `dir` (if any), starts the thread.
    void start();

    /// The change feed's sink: queued, applied on the copy's thread.
    void on_changes(std::vector<CatalogChange> changes);
    /// The change feed's status rows (ChangeSource::RowSink): taken while the copy is in
    /// sync and holds every model they name with a status no newer than theirs, else
    /// declined (false, nothing moved from; the feed then makes the re-read's way).
    /// Applied at once on the caller's thread when nothing is queued before them (one
    /// thread less between the database and the watchers), else queued behind it.
    bool on_rows(std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows);
    /// The change feed's session came or went.
    void on_feed(bool connected);
    /// This process's own writes, applied at once (read your writes).
    void apply_statuses(std::span<const ModelStatus> statuses);
    /// Statuses a read from the database returned: applied when newer, so the copy
    /// never stands for an older state than this process has served.
    void note_statuses(std::span<const ModelStatus> statuses);
    /// The source answered a read: it can be loaded from at exit, even when the feed had
    /// not yet connected (a short-lived process).
    void note_answered() noexcept { answered_.store(true, std::memory_order_relaxed); }

    /// Whether there is a copy at all (loaded from disk or the database).
    bool has_data() const noexcept { return has_data_.load(std::memory_order_acquire); }
    /// Loaded from the database and kept current by a connected feed: answers are the
    /// database's, within the feed's delay.
    bool in_sync() const noexcept { return in_sync_.load(std::memory_order_acquire); }
    /// When the copy was last known to be current (now while in sync).
    Timestamp as_of() const noexcept;
    /// The current catalogue. See Published<T>::read for how long the reference lives.
    const Catalog& catalog() const { return published_.read(); }
    /// Which catalogue is current (Published<T>::number): changes with every publish.
    std::uint64_t version_number() const noexcept { return published_.number(); }
    /// The current catalogue, counted: for a caller that keeps it.
    std::shared_ptr<const Catalog> share() const { return published_.share(); }

    struct Stats {
        std::uint64_t reloads = 0, applied = 0, reload_failures = 0, saves = 0, save_failures = 0,
                      loaded_from_disk = 0, load_failures = 0;
        std::uint64_t rows_applied = 0; ///< of `applied`: statuses taken as the feed decoded them
        std::int64_t version = 0;
        std::string disk_error; ///< the last problem with the copy's files, for a person
    };
    Stats stats() const;

private:
    /// A change waiting for the copy's thread, with the status it wrote when the feed
    /// decoded it (nothing to read again then).
    struct Queued {
        CatalogChange change;
        std::optional<ModelStatus> row;
    };

    void run();
    /// Tells on_stale when the copy became stale or fresh; when to look again.
    std::chrono::steady_clock::time_point check_stale();
    void reload();
    void apply(const std::vector<Queued>& changes);
    /// Applies `batch` (no resync in it) and tells `downstream` of each change.
    void apply_and_tell(std::vector<Queued>& batch);
    void publish(std::shared_ptr<const Catalog> next);
    void save();
    void load_from_disk();
    std::filesystem::path snapshot_path() const;
    std::filesystem::path meta_path() const;

    const Options options_;
    CatalogReader& reader_;
    ChangeHub& downstream_;
    Published<Catalog> published_;
    std::atomic<bool> has_data_{false};
    std::atomic<bool> in_sync_{false};
    std::atomic<bool> feed_connected_{false};
    std::atomic<bool> answered_{false}; ///< the source answered a read (note_answered)
    std::atomic<std::int64_t> as_of_ns_{0};

    std::mutex write_mutex_; ///< serializes edits of the published catalogue
    std::mutex mutex_;       ///< guards the queue, flags and stats below
    std::condition_variable wake_;
    std::vector<Queued> queue_;
    /// A batch is being applied (by the copy's thread, or on_rows' caller): the next
    /// waits, so that watchers hear of changes in the order they came.
    bool busy_ = false;
    bool needs_reload_ = true;
    bool dirty_ = false;
    bool stopping_ = false;
    Stats stats_;
    std::chrono::steady_clock::time_point last_save_{};
    bool told_stale_ = false; ///< on_stale(true) was the last told; the copy's thread's
    std::thread thread_;
};

} // namespace modelrepo::detail
