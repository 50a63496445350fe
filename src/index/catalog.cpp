// SPDX-License-Identifier: MIT
#include "catalog.hpp"

#include <algorithm>

#include "../core/catalog_view.hpp"

namespace modelrepo::detail {

namespace {

void count_health(SystemStats& stats, const Model& m, int sign) {
    stats.models += sign;
    stats.active_models += m.active ? sign : 0;
    switch (m.status ? m.status->health : Health::unknown) {
    case Health::operational:
        stats.health.operational += sign;
        break;
    case Health::degraded:
        stats.health.degraded += sign;
        break;
    case Health::outage:
        stats.health.outage += sign;
        break;
    case Health::unknown:
        stats.health.unknown += sign;
        break;
    }
}

std::shared_ptr<const SlugIndex> index_of(const std::vector<std::shared_ptr<const Model>>& models) {
    auto index = std::make_shared<SlugIndex>();
    index->reserve(models.size());
    for (std::size_t i = 0; i < models.size(); ++i)
        index->emplace(models[i]->slug, static_cast<std::uint32_t>(i));
    return index;
}

/// A catalogue with `models` (sorted by slug) and `providers`, its stats and index
/// computed; `index` reused when given (the slugs are the same as its catalogue's).
std::shared_ptr<Catalog> assemble(const Catalog& base,
                                  std::vector<std::shared_ptr<const Model>> models,
                                  std::shared_ptr<const std::vector<Provider>> providers,
                                  std::shared_ptr<const SlugIndex> index) {
    auto next = std::make_shared<Catalog>();
    next->generated_at = base.generated_at;
    next->version = base.version;
    next->providers = std::move(providers);
    next->stats.providers = static_cast<std::int64_t>(next->providers->size());
    next->stats.as_of = base.generated_at;
    for (const auto& m : models)
        count_health(next->stats, *m, +1);
    next->index = index ? std::move(index) : index_of(models);
    next->models = ModelList(models);
    return next;
}

/// `base`'s catalogue with other `models`, the same slugs (index) and providers.
std::shared_ptr<Catalog> same_slugs(const Catalog& base, ModelList models, SystemStats stats) {
    auto next = std::make_shared<Catalog>();
    next->models = std::move(models);
    next->index = base.index;
    next->providers = base.providers;
    next->stats = stats;
    next->generated_at = base.generated_at;
    next->version = base.version;
    return next;
}

} // namespace

ModelList::ModelList(const std::vector<Ptr>& models)
    : size_(models.size()) {
    own_.assign((models.size() + chunk_size - 1) / chunk_size, false);
    chunks_.reserve((models.size() + chunk_size - 1) / chunk_size);
    for (std::size_t at = 0; at < models.size(); at += chunk_size)
        chunks_.push_back(std::make_shared<Chunk>(
            models.begin() + static_cast<std::ptrdiff_t>(at),
            models.begin() +
                static_cast<std::ptrdiff_t>(std::min(at + chunk_size, models.size()))));
}

void ModelList::set(std::size_t i, Ptr model) {
    const std::size_t c = i / chunk_size;
    // A chunk this list copied (an earlier set() of the same edit) is changed in place;
    // one it shares is copied first. (Not use_count(): a reader letting go of a shared
    // chunk on another thread does not make it ours to write.)
    if (!own_[c]) {
        chunks_[c] = std::make_shared<Chunk>(*chunks_[c]);
        own_[c] = true;
    }
    (*chunks_[c])[i % chunk_size] = std::move(model);
}

std::vector<ModelList::Ptr> ModelList::to_vector() const {
    std::vector<Ptr> out;
    out.reserve(size_);
    for (const auto& chunk : chunks_)
        out.insert(out.end(), chunk->begin(), chunk->end());
    return out;
}

const Model* Catalog::find(std::string_view slug) const {
    auto it = index->find(slug);
    return it == index->end() ? nullptr : models[it->second].get();
}

std::vector<Model> Catalog::find_all(std::span<const std::string> slugs) const {
    std::vector<Model> found;
    found.reserve(slugs.size());
    for (const std::string& slug : slugs)
        if (const Model* m = find(slug))
            found.push_back(*m);
    return found;
}

Snapshot Catalog::snapshot() const {
    Snapshot s;
    s.generated_at = generated_at;
    s.providers = *providers;
    s.models.reserve(models.size());
    for (const auto& m : models) {
        Model bare = *m;
        bare.provider.reset();
        if (bare.status)
            s.statuses.push_back(std::move(*bare.status));
        bare.status.reset();
        s.models.push_back(std::move(bare));
    }
    return s;
}

std::vector<ModelStatus> Catalog::statuses() const {
    std::vector<ModelStatus> out;
    out.reserve(models.size());
    for (const auto& m : models)
        if (m->status)
            out.push_back(*m->status);
    return out;
}

SharedModels share_models(std::shared_ptr<const Catalog> catalog) {
    SharedModels shared;
    shared.models.reserve(catalog->models.size());
    for (const auto& m : catalog->models)
        shared.models.push_back(m.get());
    shared.owner = std::move(catalog);
    return shared;
}

std::shared_ptr<Catalog> build_catalog(const Snapshot& snapshot, std::int64_t version) {
    auto catalog = std::make_shared<Catalog>();
    catalog->generated_at = snapshot.generated_at;
    catalog->version = version;
    auto providers = std::make_shared<std::vector<Provider>>(snapshot.providers);
    std::sort(providers->begin(), providers->end(),
              [](const Provider& a, const Provider& b) { return a.slug < b.slug; });
    std::vector<std::shared_ptr<const Model>> models;
    for (Model& m : assemble_models(snapshot))
        models.push_back(std::make_shared<const Model>(std::move(m)));
    return assemble(*catalog, std::move(models), std::move(providers), nullptr);
}

Edit with_statuses(const Catalog& base, std::span<const ModelStatus> statuses,
                   bool keep_newer_status) {
    Edit edit;
    ModelList models = base.models; // shares every chunk until one changes
    SystemStats stats = base.stats;
    for (const ModelStatus& s : statuses) {
        auto it = base.index->find(s.model_slug);
        if (it == base.index->end())
            continue;
        const auto& held = models[it->second];
        if (keep_newer_status && held->status && held->status->checked_at > s.checked_at) {
            edit.ignored.push_back(s.model_slug); // older than what is held: a replay
            continue;
        }
        auto updated = std::make_shared<Model>(*held);
        count_health(stats, *updated, -1);
        updated->status = s;
        count_health(stats, *updated, +1);
        models.set(it->second, std::move(updated));
        edit.changed.push_back(s.model_slug);
    }
    if (!edit.changed.empty())
        edit.next = same_slugs(base, std::move(models), stats);
    return edit;
}

namespace {

/// `upserts` joined to `base`'s providers (those whose provider `base` lacks skipped),
/// keeping a held status newer than the one given when `keep_newer_status`.
std::vector<std::shared_ptr<Model>>
joined_models(const Catalog& base, std::span<const Model> upserts, bool keep_newer_status) {
    std::vector<std::shared_ptr<Model>> out;
    for (const Model& m : upserts) {
        auto provider =
            std::lower_bound(base.providers->begin(), base.providers->end(), m.provider_slug,
                             [](const Provider& p, const std::string& s) { return p.slug < s; });
        if (provider == base.providers->end() || provider->slug != m.provider_slug)
            continue;
        auto joined = std::make_shared<Model>(m);
        joined->provider = *provider;
        if (const Model* held = keep_newer_status ? base.find(m.slug) : nullptr)
            if (held->status && joined->status &&
                held->status->checked_at > joined->status->checked_at)
                joined->status = held->status;
        out.push_back(std::move(joined));
    }
    return out;
}

} // namespace

Edit with_models(const Catalog& base, std::span<const Model> upserts,
                 std::span<const std::string> removed, bool keep_newer_status) {
    Edit edit;
    auto joined = joined_models(base, upserts, keep_newer_status);
    bool same = std::none_of(removed.begin(), removed.end(),
                             [&](const std::string& slug) { return base.find(slug); }) &&
                std::all_of(joined.begin(), joined.end(),
                            [&](const auto& m) { return base.find(m->slug); });
    if (same) {
        // Models replaced in place, the stats adjusted: no cost that grows with the
        // catalogue (the common case: a status or a model's fields changed).
        ModelList models = base.models;
        SystemStats stats = base.stats;
        for (auto& m : joined) {
            auto at = base.index->find(m->slug)->second;
            if (*models[at] == *m)
                continue;
            count_health(stats, *models[at], -1);
            count_health(stats, *m, +1);
            edit.changed.push_back(m->slug);
            models.set(at, std::move(m));
        }
        if (!edit.changed.empty())
            edit.next = same_slugs(base, std::move(models), stats);
        return edit;
    }
    std::vector<std::shared_ptr<const Model>> models = base.models.to_vector();
    auto position = [&](const std::string& slug) {
        return std::lower_bound(models.begin(), models.end(), slug,
                                [](const auto& m, const std::string& s) { return m->slug < s; });
    };
    for (const std::string& slug : removed) {
        auto it = position(slug);
        if (it == models.end() || (*it)->slug != slug)
            continue;
        models.erase(it);
        edit.changed.push_back(slug);
    }
    for (auto& m : joined) {
        auto it = position(m->slug);
        if (it != models.end() && (*it)->slug == m->slug) {
            if (**it == *m)
                continue;
            edit.changed.push_back(m->slug);
            *it = std::move(m);
        } else {
            edit.changed.push_back(m->slug);
            models.insert(it, std::move(m));
        }
    }
    if (!edit.changed.empty())
        edit.next = assemble(base, std::move(models), base.providers, nullptr);
    return edit;
}

Edit with_providers(const Catalog& base, std::span<const Provider> upserts,
                    std::span<const std::string> removed) {
    Edit edit;
    auto providers = std::make_shared<std::vector<Provider>>(*base.providers);
    std::vector<std::shared_ptr<const Model>> models = base.models.to_vector();
    bool slugs_changed = false;
    for (const std::string& slug : removed) {
        auto before = providers->size();
        std::erase_if(*providers, [&](const Provider& p) { return p.slug == slug; });
        if (providers->size() == before)
            continue;
        auto models_before = models.size();
        std::erase_if(models, [&](const auto& m) { return m->provider_slug == slug; });
        slugs_changed = slugs_changed || models.size() != models_before;
        edit.changed.push_back(slug);
    }
    for (const Provider& p : upserts) {
        auto it =
            std::lower_bound(providers->begin(), providers->end(), p.slug,
                             [](const Provider& a, const std::string& s) { return a.slug < s; });
        if (it != providers->end() && it->slug == p.slug) {
            if (*it == p)
                continue;
            *it = p;
        } else {
            providers->insert(it, p);
        }
        for (auto& m : models)
            if (m->provider_slug == p.slug) {
                auto joined = std::make_shared<Model>(*m);
                joined->provider = p;
                m = std::move(joined);
            }
        edit.changed.push_back(p.slug);
    }
    if (edit.changed.empty())
        return edit;
    edit.next = assemble(base, std::move(models), std::move(providers),
                         slugs_changed ? nullptr : base.index);
    return edit;
}

} // namespace modelrepo::detail
