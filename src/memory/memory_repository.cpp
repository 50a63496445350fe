// SPDX-License-Identifier: MIT
#include <algorithm>
#include <atomic>
#include <mutex>

#include <modelrepo/memory_repository.hpp>

#include "../core/catalog_view.hpp"
#include "../core/write_check.hpp"
#include "../index/catalog.hpp"
#include "../index/published.hpp"

namespace modelrepo {

struct MemoryRepository::State final : CatalogueVersion {
    State(std::string repository_name, const Snapshot& snapshot)
        : name(std::move(repository_name))
        , catalog(build_catalog(name, snapshot, 0)) {}

    const std::string name;
    /// The published catalogue; readers read it lock-free, writers replace it.
    detail::Published<detail::Catalog> catalog;
    /// Serializes writers, so no update is lost between reading and publishing.
    std::mutex write_mutex;
    /// This repository's own writes, for watch().
    ChangeHub hub;
    std::atomic<std::int64_t> max_skew_ms{default_max_clock_skew.count()};

    const detail::Catalog& current() const { return catalog.read(); }

    std::uint64_t catalogue_version() const noexcept override { return catalog.number(); }

    static std::shared_ptr<detail::Catalog>
    build_catalog(const std::string& name, const Snapshot& snapshot, std::int64_t version) {
        auto next = detail::build_catalog(snapshot, version);
        next->stats.source = name;
        return next;
    }
};

MemoryRepository::MemoryRepository(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

MemoryRepository::~MemoryRepository() = default;

void* MemoryRepository::find_capability(const std::type_info& type) noexcept {
    if (void* p = offer<CatalogueVersion>(type, static_cast<State*>(state_.get())))
        return p;
    return ModelRepository::find_capability(type);
}

Result<std::shared_ptr<MemoryRepository>> MemoryRepository::create(Snapshot snapshot,
                                                                   std::string name) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    auto state = std::make_unique<State>(std::move(name), snapshot);
    return std::shared_ptr<MemoryRepository>(new MemoryRepository(std::move(state)));
}

std::shared_ptr<MemoryRepository> MemoryRepository::builtin() {
    return create(builtin_snapshot(), "builtin").value();
}

Result<std::shared_ptr<MemoryRepository>>
MemoryRepository::from_file(const std::filesystem::path& path) {
    auto snapshot = read_snapshot_file(path);
    if (!snapshot)
        return snapshot.error();
    return create(std::move(snapshot).value(), "file:" + path.string());
}

std::string_view MemoryRepository::name() const noexcept {
    return state_->name;
}

Result<std::int64_t> MemoryRepository::count_models() {
    return state_->current().stats.models;
}

Result<std::int64_t> MemoryRepository::count_providers() {
    return state_->current().stats.providers;
}

Result<std::vector<ModelStatus>> MemoryRepository::list_statuses() {
    return state_->current().statuses();
}

Result<std::vector<Model>> MemoryRepository::find_models(std::span<const std::string> slugs) {
    return state_->current().find_all(slugs);
}

Result<std::optional<Model>> MemoryRepository::find_model(std::string_view slug) {
    const detail::Catalog& catalog = state_->current();
    using Answer = Result<std::optional<Model>>;
    if (const Model* m = catalog.find(slug))
        return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>, std::in_place, *m);
    return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>);
}

Result<SystemStats> MemoryRepository::system_stats() {
    return state_->current().stats;
}

std::optional<Timestamp> MemoryRepository::data_as_of() const {
    return state_->current().stats.as_of;
}

Result<void> MemoryRepository::check_health() {
    return success();
}

Result<WriteReceipt> MemoryRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                      const WriteOptions& options) {
    if (options.source_down)
        return *options.source_down;
    std::lock_guard lock(state_->write_mutex);
    const detail::Catalog& catalog = state_->current();
    const Timestamp now = Clock::now();
    const std::chrono::milliseconds skew(state_->max_skew_ms.load(std::memory_order_relaxed));

    // Check the whole batch before touching anything: all or nothing.
    const detail::WriteCheck check{skew, state_->name, "nothing was applied", now};
    if (!detail::vouched(options, statuses, skew))
        if (auto refused = detail::check_write(statuses, check))
            return *refused;
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (!catalog.find(statuses[i].model_slug))
            return detail::refused_status(i, "unknown model '" + statuses[i].model_slug + "'",
                                          check);
    auto edit = detail::with_statuses(catalog, statuses);
    WriteReceipt receipt;
    receipt.ignored = static_cast<std::int64_t>(edit.ignored.size());
    receipt.ignored_models = std::move(edit.ignored);
    if (!edit.next)
        return receipt; // all older than what is stored: a replay
    std::int64_t version = catalog.version;
    edit.next->version = version + static_cast<std::int64_t>(edit.changed.size());
    edit.next->stats.source = state_->name;
    state_->catalog.publish(std::move(edit.next));

    for (const std::string& slug : edit.changed)
        state_->hub.publish({CatalogChange::Kind::status, slug, ++version, now});
    receipt.applied = static_cast<std::int64_t>(edit.changed.size());
    return receipt;
}

Result<std::vector<Model>> MemoryRepository::list_models() {
    const detail::Catalog& catalog = state_->current();
    std::vector<Model> out;
    out.reserve(catalog.models.size());
    for (const auto& m : catalog.models)
        out.push_back(*m);
    return out;
}

Result<SharedModels> MemoryRepository::share_models() {
    return detail::share_models(state_->catalog.share());
}

Result<Snapshot> MemoryRepository::export_snapshot() {
    return state_->current().snapshot();
}

Result<void> MemoryRepository::replace(Snapshot snapshot) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    std::lock_guard lock(state_->write_mutex);
    std::int64_t version = state_->current().version + 1;
    state_->catalog.publish(State::build_catalog(state_->name, snapshot, version));
    state_->hub.publish({CatalogChange::Kind::resync, "", version, Clock::now()});
    return success();
}

void MemoryRepository::set_max_clock_skew(std::chrono::milliseconds skew) noexcept {
    state_->max_skew_ms.store(skew.count(), std::memory_order_relaxed);
}

Result<Subscription> MemoryRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    return state_->hub.subscribe(std::move(on_change));
}

} // namespace modelrepo
