// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include <modelrepo/memory_repository.hpp>

#include "../core/catalog_view.hpp"
#include "published.hpp"

namespace modelrepo {

namespace {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

} // namespace

/// One immutable version of the catalogue, with everything the read calls need
/// precomputed. Never modified after publication, so readers share it freely.
struct MemoryRepository::Catalog {
    Snapshot snapshot;
    std::vector<Model> models; ///< joined with provider and status, ordered by slug
    std::unordered_map<std::string, std::size_t, StringHash, std::equal_to<>> by_slug;
    std::vector<ModelStatus> statuses; ///< ordered by model slug
    SystemStats stats;
};

struct MemoryRepository::State {
    explicit State(std::string repository_name, Snapshot snapshot)
        : name(std::move(repository_name))
        , catalog(build(name, std::move(snapshot))) {}

    const std::string name;
    /// The published catalogue; readers read it lock-free, writers replace it.
    detail::Published<Catalog> catalog;
    /// Serializes writers, so no update is lost between reading and publishing.
    std::mutex write_mutex;

    const Catalog& current() const { return catalog.read(); }

    void publish(Snapshot snapshot) { catalog.publish(build(name, std::move(snapshot))); }

    static std::shared_ptr<const Catalog> build(const std::string& name, Snapshot snapshot) {
        auto next = std::make_shared<Catalog>();
        next->models = detail::assemble_models(snapshot);
        next->by_slug.reserve(next->models.size());
        for (std::size_t i = 0; i < next->models.size(); ++i)
            next->by_slug.emplace(next->models[i].slug, i);
        next->statuses = snapshot.statuses;
        std::sort(
            next->statuses.begin(), next->statuses.end(),
            [](const ModelStatus& a, const ModelStatus& b) { return a.model_slug < b.model_slug; });
        next->stats = detail::compute_stats(snapshot);
        next->stats.source = name;
        next->snapshot = std::move(snapshot);
        return next;
    }
};

MemoryRepository::MemoryRepository(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

MemoryRepository::~MemoryRepository() = default;

Result<std::shared_ptr<MemoryRepository>> MemoryRepository::create(Snapshot snapshot,
                                                                   std::string name) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    auto state = std::make_unique<State>(std::move(name), std::move(snapshot));
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
    return state_->current().statuses;
}

Result<std::vector<Model>> MemoryRepository::find_models(std::span<const std::string> slugs) {
    const Catalog& catalog = state_->current();
    std::vector<Model> found;
    found.reserve(slugs.size());
    for (const std::string& slug : slugs)
        if (auto it = catalog.by_slug.find(slug); it != catalog.by_slug.end())
            found.push_back(catalog.models[it->second]);
    return found;
}

Result<std::optional<Model>> MemoryRepository::find_model(std::string_view slug) {
    const Catalog& catalog = state_->current();
    using Answer = Result<std::optional<Model>>;
    if (auto it = catalog.by_slug.find(slug); it != catalog.by_slug.end())
        return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>, std::in_place,
                      catalog.models[it->second]);
    return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>);
}

Result<SystemStats> MemoryRepository::system_stats() {
    return state_->current().stats;
}

Result<void> MemoryRepository::check_health() {
    return success();
}

Result<std::int64_t> MemoryRepository::upsert_statuses(std::span<const ModelStatus> statuses) {
    std::lock_guard lock(state_->write_mutex);
    const Catalog& catalog = state_->current();

    // Check the whole batch before touching anything: all or nothing.
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        const ModelStatus& s = statuses[i];
        std::string where = "statuses[" + std::to_string(i) + "]";
        auto reject = [&](std::string_view what) {
            Error error = make_error(Errc::invalid_argument,
                                     where + ": " + std::string(what) + "; nothing was applied");
            error.source = state_->name;
            return error;
        };
        if (auto problem = detail::status_problem(s))
            return reject(*problem);
        if (!catalog.by_slug.contains(s.model_slug))
            return reject("unknown model '" + s.model_slug + "'");
    }

    Snapshot next = catalog.snapshot;
    std::unordered_map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < next.statuses.size(); ++i)
        position.emplace(next.statuses[i].model_slug, i);
    std::int64_t applied = 0;
    for (const ModelStatus& s : statuses) {
        auto it = position.find(s.model_slug);
        if (it == position.end()) {
            position.emplace(s.model_slug, next.statuses.size());
            next.statuses.push_back(s);
        } else if (next.statuses[it->second].checked_at <= s.checked_at) {
            next.statuses[it->second] = s;
        } else {
            continue; // older than what is stored: a replay, ignored
        }
        ++applied;
    }
    if (applied > 0)
        state_->publish(std::move(next));
    return applied;
}

Result<std::vector<Model>> MemoryRepository::list_models() {
    return state_->current().models;
}

Result<Snapshot> MemoryRepository::export_snapshot() {
    return state_->current().snapshot;
}

Result<void> MemoryRepository::replace(Snapshot snapshot) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    std::lock_guard lock(state_->write_mutex);
    state_->publish(std::move(snapshot));
    return success();
}

} // namespace modelrepo
