// SPDX-License-Identifier: MIT
// CopiedRepository: a source with its last-known copy (cache_dir=, cache=live). A read
// goes to the copy when it is live and in sync, else to the source, and to the copy when
// the source cannot answer for an outage and the copy is fresh enough (max_stale). A
// write goes to the source, then into the copy. The copy is kept current through the
// source's change feed, and watch() hears of a change once the copy holds it. Written
// against the source's capabilities only (a reader, a change source): any backend that
// offers them can have a copy.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <modelrepo/durable.hpp>

#include "../../core/capabilities.hpp"
#include "../../core/health_tracker.hpp"
#include "live_copy.hpp"

namespace modelrepo::detail {

/// Thread-safe, as every repository.
class CopiedRepository final : public ModelRepository,
                               public CopyControl,
                               public LocalCopy,
                               public ChangeRelay,
                               public CatalogueVersion {
public:
    /// Errors: `Errc::invalid_argument` when `source` cannot be read whole or reports no
    /// changes (the capabilities a copy needs), saying why.
    static Result<std::shared_ptr<CopiedRepository>> create(std::shared_ptr<ModelRepository> source,
                                                            CopyConfig config);
    CopiedRepository(std::shared_ptr<ModelRepository> source, CatalogReader& reader,
                     ChangeSource& changes, CopyConfig config);
    /// Stops the feed's deliveries into the copy first, then the copy (which writes its
    /// file one last time).
    ~CopiedRepository() override;

    std::string_view name() const noexcept override { return source_->name(); }
    Result<std::int64_t> count_models() override;
    Result<std::int64_t> count_providers() override;
    Result<std::vector<ModelStatus>> list_statuses() override;
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override;
    Result<std::optional<Model>> find_model(std::string_view slug) override;
    Result<SystemStats> system_stats() override;
    Result<void> check_health() override { return source_->check_health(); }
    /// The source's; an applied write shows in the copy at once.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override;
    Result<std::vector<Model>> list_models() override;
    Result<SharedModels> share_models() override;
    Result<Snapshot> export_snapshot() override;
    /// The source's changes, each delivered once the copy holds it.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override;
    /// The source's, and the copy's: `modelrepo_copy_in_sync`, `modelrepo_copy_age_seconds`,
    /// `modelrepo_copy_served_while_down_total`, `modelrepo_copy_reloads_total`, and
    /// `modelrepo_watchers` of its watch().
    std::vector<MetricFamily> backend_metrics() const override;
    /// When the copy was last known current (now while in sync); nullopt without data.
    std::optional<Timestamp> data_as_of() const override;
    /// With `live`, while the copy is in sync.
    bool reads_from_memory() const noexcept override { return config_.live && copy_.in_sync(); }
    /// CopyControl, LocalCopy, ChangeRelay and CatalogueVersion (and the health of a source
    /// that keeps none itself), else the source's.
    void* find_capability(const std::type_info& type) noexcept override;

    // ChangeRelay: watch()'s changes, on the thread that applied them to the copy
    Result<Subscription> relay(std::function<void(const CatalogChange&)> to) override;

    // CatalogueVersion: the copy's, while reads come from it
    std::uint64_t catalogue_version() const noexcept override {
        std::uint64_t version = copy_.version_number();
        return reads_from_memory() ? version : 0;
    }

    // CopyControl
    CopyState copy_state() const override;
    // LocalCopy, for an outbox above
    bool holds_catalogue() const override { return copy_.has_data(); }
    bool knows_model(std::string_view slug) const override;
    void show_writes(std::span<const ModelStatus> statuses) override;

private:
    /// watch() and relay(): the same checks, then `how` on the hub.
    Result<Subscription>
    subscribe(std::function<void(const CatalogChange&)> callback, const char* call,
              Subscription (ChangeHub::*how)(std::function<void(const CatalogChange&)>));

    /// `db()` or the copy (`from_copy(catalog, down)`), as the file's comment says.
    template <class Db, class FromCopy>
    auto read(Db&& db, FromCopy&& from_copy) -> decltype(db());
    /// The copy's state from one reading of its stats.
    CopyState state_of(const LiveCopy::Stats& stats) const;
    /// `answer`, or the copy's when the source could not answer for an outage.
    template <class Answer, class FromCopy>
    Answer or_copy(Answer answer, FromCopy& from_copy);

    // Declared in the order the parts depend on each other: the source first (the copy
    // reads through it), the hub (the copy delivers into it), the copy.
    const std::shared_ptr<ModelRepository> source_;
    /// Where the copy tells that it went stale: the source's health, or its own when the
    /// source keeps none (then offered as the source's HealthControl).
    std::unique_ptr<HealthTracker> own_health_;
    HealthObserver* const health_;
    ChangeSource& changes_;
    const CopyConfig config_;
    const std::string copy_source_; ///< SystemStats::source of answers from the copy
    std::atomic<std::uint64_t> served_while_down_{0};
    ChangeHub hub_;
    LiveCopy copy_;
};

} // namespace modelrepo::detail
