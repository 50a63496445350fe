// SPDX-License-Identifier: MIT
// FallbackRepository's calls: each read through the chain, writes to the first source,
// the watches, events and capabilities. Metrics are in fallback_metrics.cpp.
#include <modelrepo/fallback_repository.hpp>

#include "chain.hpp"

namespace modelrepo {

using namespace std::chrono;

FallbackRepository::FallbackRepository(std::unique_ptr<Chain> chain)
    : chain_(std::move(chain)) {}

FallbackRepository::~FallbackRepository() {
    // The sources stop calling into the hub and the event queue before they go.
    {
        std::lock_guard lock(chain_->watch_mutex);
        chain_->source_watches.clear();
    }
    chain_->health_watches.clear();
    {
        std::lock_guard lock(chain_->probe_mutex);
        chain_->stopping = true;
    }
    chain_->probe_wake.notify_all();
    if (chain_->prober.joinable())
        chain_->prober.join();
    chain_->events.stop();
}

Result<std::shared_ptr<FallbackRepository>>
FallbackRepository::create(std::vector<std::shared_ptr<ModelRepository>> sources,
                           FallbackConfig config, CircuitBreaker::ClockFn clock) {
    if (sources.empty())
        return make_error(Errc::invalid_argument, "FallbackRepository needs at least one source");
    for (const auto& s : sources)
        if (!s)
            return make_error(Errc::invalid_argument, "FallbackRepository: a source is null");
    auto chain = std::make_unique<Chain>(config);
    chain->repos = sources;
    chain->name = "fallback(";
    for (std::size_t i = 0; i < sources.size(); ++i) {
        auto source = std::make_unique<Source>();
        source->repo = sources[i];
        source->name = std::string(sources[i]->name());
        source->breaker = std::make_unique<CircuitBreaker>(config.breaker, clock);
        chain->name += (i ? " -> " : "") + source->name;
        chain->sources.push_back(std::move(source));
    }
    chain->name += ")";
    Chain* raw = chain.get();
    for (auto& s : chain->sources) {
        std::string name = s->name;
        s->breaker->on_transition([raw, name](const BreakerTransition& t) {
            auto kind = t.to == BreakerState::open        ? FallbackEvent::Kind::breaker_opened
                        : t.to == BreakerState::half_open ? FallbackEvent::Kind::breaker_half_open
                                                          : FallbackEvent::Kind::breaker_closed;
            raw->emit(kind, name, t.cause);
        });
        // What the source's own layers see (its pool, its feed, its copy): the same stream.
        if ((s->health = s->repo->capability<HealthControl>()))
            chain->health_watches.push_back(
                s->health->on_health_event([raw](const FallbackEvent& e) { raw->events.push(e); }));
    }
    chain->prober = std::thread([raw] { raw->probe_loop(); });
    return std::shared_ptr<FallbackRepository>(new FallbackRepository(std::move(chain)));
}

std::string_view FallbackRepository::name() const noexcept {
    return chain_->name;
}

Result<std::int64_t> FallbackRepository::count_models() {
    return chain_->read<std::int64_t>("count_models",
                                      [](ModelRepository& r) { return r.count_models(); });
}
Result<std::int64_t> FallbackRepository::count_models(Provenance& answered_by) {
    return chain_->read<std::int64_t>(
        "count_models", [](ModelRepository& r) { return r.count_models(); }, &answered_by);
}

Result<std::int64_t> FallbackRepository::count_providers() {
    return chain_->read<std::int64_t>("count_providers",
                                      [](ModelRepository& r) { return r.count_providers(); });
}
Result<std::int64_t> FallbackRepository::count_providers(Provenance& answered_by) {
    return chain_->read<std::int64_t>(
        "count_providers", [](ModelRepository& r) { return r.count_providers(); }, &answered_by);
}

Result<std::vector<ModelStatus>> FallbackRepository::list_statuses() {
    return chain_->read<std::vector<ModelStatus>>(
        "list_statuses", [](ModelRepository& r) { return r.list_statuses(); });
}
Result<std::vector<ModelStatus>> FallbackRepository::list_statuses(Provenance& answered_by) {
    return chain_->read<std::vector<ModelStatus>>(
        "list_statuses", [](ModelRepository& r) { return r.list_statuses(); }, &answered_by);
}

Result<std::vector<Model>> FallbackRepository::find_models(std::span<const std::string> slugs) {
    return chain_->read<std::vector<Model>>(
        "find_models", [&](ModelRepository& r) { return r.find_models(slugs); });
}
Result<std::vector<Model>> FallbackRepository::find_models(std::span<const std::string> slugs,
                                                           Provenance& answered_by) {
    return chain_->read<std::vector<Model>>(
        "find_models", [&](ModelRepository& r) { return r.find_models(slugs); }, &answered_by);
}

Result<std::optional<Model>> FallbackRepository::find_model(std::string_view slug) {
    return chain_->read<std::optional<Model>>(
        "find_model", [&](ModelRepository& r) { return r.find_model(slug); });
}
Result<std::optional<Model>> FallbackRepository::find_model(std::string_view slug,
                                                            Provenance& answered_by) {
    return chain_->read<std::optional<Model>>(
        "find_model", [&](ModelRepository& r) { return r.find_model(slug); }, &answered_by);
}

Result<SystemStats> FallbackRepository::system_stats() {
    return chain_->read<SystemStats>("system_stats",
                                     [](ModelRepository& r) { return r.system_stats(); });
}
Result<SystemStats> FallbackRepository::system_stats(Provenance& answered_by) {
    return chain_->read<SystemStats>(
        "system_stats", [](ModelRepository& r) { return r.system_stats(); }, &answered_by);
}

Result<std::vector<Model>> FallbackRepository::list_models() {
    return chain_->read<std::vector<Model>>("list_models",
                                            [](ModelRepository& r) { return r.list_models(); });
}
Result<SharedModels> FallbackRepository::share_models() {
    return chain_->read<SharedModels>("list_models",
                                      [](ModelRepository& r) { return r.share_models(); });
}
Result<SharedModels> FallbackRepository::share_models(Provenance& answered_by) {
    return chain_->read<SharedModels>(
        "list_models", [](ModelRepository& r) { return r.share_models(); }, &answered_by);
}
Result<std::vector<Model>> FallbackRepository::list_models(Provenance& answered_by) {
    return chain_->read<std::vector<Model>>(
        "list_models", [](ModelRepository& r) { return r.list_models(); }, &answered_by);
}

Result<Snapshot> FallbackRepository::export_snapshot() {
    return chain_->read<Snapshot>("export_snapshot",
                                  [](ModelRepository& r) { return r.export_snapshot(); });
}
Result<Snapshot> FallbackRepository::export_snapshot(Provenance& answered_by) {
    return chain_->read<Snapshot>(
        "export_snapshot", [](ModelRepository& r) { return r.export_snapshot(); }, &answered_by);
}

Result<void> FallbackRepository::check_health() {
    std::string causes;
    for (auto& s : chain_->sources) {
        auto r = s->repo->check_health();
        if (r)
            return success();
        causes += "\n  " + s->name + ": " + r.error().to_string();
    }
    return make_error(Errc::all_sources_failed, "no source is healthy:" + causes);
}

Result<WriteReceipt> FallbackRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                        const WriteOptions& options) {
    // Writes go to the primary only: a backup answering a write would lose it.
    Source& primary = *chain_->sources.front();
    if (auto permit = primary.breaker->allow(primary.name); !permit) {
        primary.rejections.fetch_add(1, std::memory_order_relaxed);
        // The primary is known to be down: it may still keep the write for later.
        Error cause = permit.error();
        cause.message =
            "status writes go to the primary only, and it is not taking calls: " + cause.message;
        return primary.repo->write_statuses(statuses, WriteOptions{std::move(cause)});
    }
    auto result = chain_->attempt<WriteReceipt>(
        primary, [&](ModelRepository& r) { return r.write_statuses(statuses, options); });
    if (const Error* failure = failure_of(result))
        primary.count_failure(*failure);
    else
        primary.write_successes.fetch_add(1, std::memory_order_relaxed);
    return result;
}

void* FallbackRepository::find_capability(const std::type_info& type) noexcept {
    return chain_->sources.front()->repo->find_capability(type);
}

Result<Subscription>
FallbackRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    return chain_->watch(std::move(on_change));
}

std::vector<MetricFamily> FallbackRepository::backend_metrics() const {
    std::vector<MetricFamily> out;
    for (const auto& s : chain_->sources)
        for (auto& family : s->repo->backend_metrics())
            merge_into(out, std::move(family), {{"source", s->name}});
    return out;
}

std::optional<Timestamp> FallbackRepository::data_as_of() const {
    auto index = static_cast<std::size_t>(chain_->last_served.load(std::memory_order_relaxed));
    return chain_->sources[index]->repo->data_as_of();
}

bool FallbackRepository::reads_from_memory() const noexcept {
    for (const auto& s : chain_->sources)
        if (s->breaker->state() != BreakerState::open)
            return s->repo->reads_from_memory();
    return false;
}

void FallbackRepository::subscribe(std::function<void(const FallbackEvent&)> subscriber) {
    chain_->events.subscribe(std::move(subscriber));
}

const std::vector<std::shared_ptr<ModelRepository>>& FallbackRepository::sources() const noexcept {
    return chain_->repos;
}

CircuitBreaker& FallbackRepository::breaker(std::size_t index) {
    return *chain_->sources.at(index)->breaker;
}

} // namespace modelrepo
