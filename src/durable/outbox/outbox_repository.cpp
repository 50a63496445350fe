// SPDX-License-Identifier: MIT
#include "outbox_repository.hpp"

#include "../../core/backend_metrics.hpp"
#include "../../core/catalog_view.hpp"
#include "../../core/write_check.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

namespace {

OutboxReplay::Options replay_options(HealthObserver* health) {
    OutboxReplay::Options options;
    options.backoff_initial = milliseconds(100);
    options.backoff_max = milliseconds(5'000);
    options.health = health;
    return options;
}

} // namespace

Result<std::shared_ptr<OutboxRepository>>
OutboxRepository::create(std::shared_ptr<ModelRepository> source, const OutboxConfig& config) {
    auto* writer = source->capability<StatusWriter>();
    if (!writer) {
        Error error = make_error(Errc::invalid_argument,
                                 "outbox= keeps status writes for a source that takes them; " +
                                     std::string(source->name()) + " is read-only");
        error.source = std::string(source->name());
        return error;
    }
    if (config.max_statuses < 1)
        return make_error(Errc::invalid_argument, "OutboxConfig::max_statuses must be positive");
    auto store = OutboxStore::open(config.file, config.max_statuses, writer->outbox_identity());
    if (!store)
        return std::move(store).error();
    return std::make_shared<OutboxRepository>(std::move(source), *writer, std::move(store).value());
}

OutboxRepository::OutboxRepository(std::shared_ptr<ModelRepository> source, StatusWriter& writer,
                                   std::unique_ptr<OutboxStore> store)
    : source_(std::move(source))
    , copy_(source_->capability<LocalCopy>())
    , own_health_(health_unless_kept(*source_))
    , writer_(writer)
    , store_(std::move(store))
    , replay_(
          *store_, writer,
          replay_options(own_health_ ? own_health_.get() : source_->capability<HealthObserver>())) {
    replay_.start(); // drains what an earlier process left, within a second
}

OutboxRepository::~OutboxRepository() = default;

Result<WriteReceipt> OutboxRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                      const WriteOptions& options) {
    // The door: checked here once; the source below trusts it (WriteOptions::checked).
    const detail::WriteCheck check{writer_.max_clock_skew(), source_->name(),
                                   "nothing was written or queued"};
    if (!detail::vouched(options, statuses, check.max_skew))
        if (auto refused = detail::check_write(statuses, check))
            return *refused;
    if (options.source_down)
        return defer(statuses, *options.source_down);
    const detail::CheckedBatch checked{statuses.data(), statuses.size(), check.max_skew};
    WriteOptions below = options;
    below.checked = &checked;
    auto written = source_->write_statuses(statuses, below);
    if (written || !classify(written.error()).outage)
        return written;
    return defer(statuses, written.error());
}

Result<WriteReceipt> OutboxRepository::defer(std::span<const ModelStatus> statuses,
                                             const Error& cause) {
    // Checked here as the source would: the ranges, and the model slugs against the copy
    // when there is one.
    // The statuses' own values were checked at the door (write_statuses); what only the
    // outbox can check is whether the copy knows their models.
    const detail::WriteCheck check{writer_.max_clock_skew(), source_->name(),
                                   "nothing was written or queued"};
    if (copy_ && copy_->holds_catalogue())
        for (std::size_t i = 0; i < statuses.size(); ++i)
            if (!copy_->knows_model(statuses[i].model_slug))
                return detail::refused_status(i,
                                              "unknown model '" + statuses[i].model_slug +
                                                  "' (not in the last-known copy)",
                                              check);
    auto queued = store_->enqueue(statuses);
    if (!queued) {
        if (queued.error().is(Errc::outbox_full))
            return std::move(queued).error();
        if (queued.error().is(Errc::disk_full)) {
            // Its own cause: the write is refused, not queued, until there is space.
            Error e = std::move(queued).error();
            e.message +=
                "; the write was refused, not queued (the source: " + cause.to_string() + ")";
            return e;
        }
        // Not durable, so not acknowledged: the source's error, and the outbox's.
        Error e = cause;
        e.message += "; the outbox could not keep the write either: " + queued.error().message;
        return e;
    }
    if (copy_)
        copy_->show_writes(statuses); // read your writes during the outage
    queued_statuses_.fetch_add(static_cast<std::uint64_t>(queued.value()),
                               std::memory_order_relaxed);
    replay_.wake();
    WriteReceipt receipt;
    receipt.queued = queued.value();
    receipt.outbox = store_->path().string();
    if (!copy_ || !copy_->holds_catalogue())
        receipt.unchecked = queued.value();
    receipt.deferred_because = cause;
    return receipt;
}

std::vector<MetricFamily> OutboxRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    std::vector<MetricFamily> out = source_->backend_metrics();
    auto add = [&](const char* name, Type type, const char* help, double value) {
        append_metric(out, name, type, help, value);
    };
    if (auto state = store_->state()) {
        out.push_back({"modelrepo_outbox_pending",
                       Type::gauge,
                       "What the outbox holds for the database.",
                       {}});
        out.back()
            .add({{"unit", "statuses"}}, static_cast<double>(state.value().statuses))
            .add({{"unit", "batches"}}, static_cast<double>(state.value().batches));
        add("modelrepo_outbox_oldest_age_seconds", Type::gauge,
            "Age of the oldest pending batch (0 when empty).",
            state.value().oldest ? duration<double>(Clock::now() - *state.value().oldest).count()
                                 : 0.0);
        add("modelrepo_outbox_dead_letters", Type::gauge,
            "Batches the database refused for good, kept aside.",
            static_cast<double>(state.value().dead_letters));
    }
    add("modelrepo_outbox_queued_total", Type::counter, "Statuses this process queued.",
        static_cast<double>(queued_statuses_.load()));
    add("modelrepo_outbox_replayed_total", Type::counter, "Statuses this process replayed.",
        static_cast<double>(replay_.stats().replayed_statuses));
    return out;
}

void* OutboxRepository::find_capability(const std::type_info& type) noexcept {
    if (void* p = offer<OutboxControl>(type, this))
        return p;
    if (void* p = detail::offer_own_health(type, own_health_.get()))
        return p;
    return source_->find_capability(type);
}

Result<OutboxState> OutboxRepository::outbox_state() const {
    auto state = store_->state();
    if (!state)
        return std::move(state).error();
    OutboxState out;
    out.path = store_->path();
    out.batches = state.value().batches;
    out.statuses = state.value().statuses;
    out.oldest = state.value().oldest;
    out.dead_letters = state.value().dead_letters;
    out.last_error = state.value().last_error;
    auto dead = store_->dead_letters(100);
    if (!dead)
        return std::move(dead).error();
    for (const auto& d : dead.value())
        out.recent_dead_letters.push_back({d.id, d.queued_at, d.failed_at, d.statuses, d.error});
    return out;
}

Result<OutboxDrain> OutboxRepository::drain_outbox(const ProgressFn& progress) {
    return replay_.drain(progress);
}

void OutboxRepository::on_outbox_event(std::function<void(const OutboxEvent&)> listener) {
    replay_.set_listener(std::move(listener));
}

} // namespace modelrepo::detail
