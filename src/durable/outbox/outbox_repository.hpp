// SPDX-License-Identifier: MIT
// OutboxRepository: a source with an outbox (outbox=PATH). A write goes to the source
// first; a batch it cannot take for an outage-class cause is checked here (ranges; slugs
// against the last-known copy below, when there is one), committed to the outbox's file
// (fsync'ed) and acknowledged as queued, and shown in the copy's reads at once. A
// background thread replays what the outbox holds through the source's status writer as
// soon as it takes writes again. Reads pass through. Written against the source's
// capabilities only: any backend that takes status writes can have an outbox.
#pragma once

#include <atomic>
#include <memory>

#include <modelrepo/durable.hpp>

#include "../../core/capabilities.hpp"
#include "outbox_replay.hpp"
#include "outbox_store.hpp"

namespace modelrepo::detail {

/// Thread-safe, as every repository.
class OutboxRepository final : public ModelRepository, public OutboxControl {
public:
    /// Opens (or creates) the outbox's file now, so that a file that cannot be one is an
    /// error naming it, not a surprise at the first outage. Errors: `Errc::invalid_argument`
    /// when `source` takes no status writes, `Errc::io_error` for the file.
    static Result<std::shared_ptr<OutboxRepository>> create(std::shared_ptr<ModelRepository> source,
                                                            const OutboxConfig& config);
    OutboxRepository(std::shared_ptr<ModelRepository> source, StatusWriter& writer,
                     std::unique_ptr<OutboxStore> store);
    /// Stops the replay thread (waits for a batch being applied).
    ~OutboxRepository() override;

    std::string_view name() const noexcept override { return source_->name(); }
    Result<std::int64_t> count_models() override { return source_->count_models(); }
    Result<std::int64_t> count_providers() override { return source_->count_providers(); }
    Result<std::vector<ModelStatus>> list_statuses() override { return source_->list_statuses(); }
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override {
        return source_->find_models(slugs);
    }
    Result<std::optional<Model>> find_model(std::string_view slug) override {
        return source_->find_model(slug);
    }
    Result<SystemStats> system_stats() override { return source_->system_stats(); }
    Result<void> check_health() override { return source_->check_health(); }
    /// As the file's comment says. With `WriteOptions::source_down` the source is not
    /// tried: the batch is checked and queued for that cause. A wrong write
    /// (`invalid_argument`, a constraint the server rejects) is refused at once, never
    /// queued. A write the outbox cannot make durable is not acknowledged: the error is the
    /// source's, with the outbox's failure. Errors also: `Errc::outbox_full`.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override;
    Result<std::vector<Model>> list_models() override { return source_->list_models(); }
    Result<SharedModels> share_models() override { return source_->share_models(); }
    Result<Snapshot> export_snapshot() override { return source_->export_snapshot(); }
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override {
        return source_->watch(std::move(on_change));
    }
    /// The source's, and the outbox's: `modelrepo_outbox_pending{unit}`,
    /// `modelrepo_outbox_oldest_age_seconds`, `modelrepo_outbox_dead_letters`,
    /// `modelrepo_outbox_queued_total`, `modelrepo_outbox_replayed_total`.
    std::vector<MetricFamily> backend_metrics() const override;
    std::optional<Timestamp> data_as_of() const override { return source_->data_as_of(); }
    bool reads_from_memory() const noexcept override { return source_->reads_from_memory(); }
    /// OutboxControl, else the source's.
    void* find_capability(const std::type_info& type) noexcept override;

    // OutboxControl
    Result<OutboxState> outbox_state() const override;
    Result<OutboxDrain> drain_outbox(const ProgressFn& progress = {}) override;
    void on_outbox_event(std::function<void(const OutboxEvent&)> listener) override;

private:
    /// Keeps a batch the source could not take (for `cause`).
    Result<WriteReceipt> defer(std::span<const ModelStatus> statuses, const Error& cause);

    // The source first (the replay writes through it), the store, the replay thread.
    const std::shared_ptr<ModelRepository> source_;
    LocalCopy* const copy_; ///< the last-known copy below, when there is one
    /// Where dead letters are told: the source's health, or its own when the source keeps
    /// none (then offered as the source's HealthControl).
    std::unique_ptr<HealthTracker> own_health_;
    StatusWriter& writer_; ///< the source's, for the replay and its allowed clock skew
    std::unique_ptr<OutboxStore> store_;
    OutboxReplay replay_;
    std::atomic<std::uint64_t> queued_statuses_{0};
};

} // namespace modelrepo::detail
