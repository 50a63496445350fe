// SPDX-License-Identifier: MIT
#include "catalog_view.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace modelrepo::detail {

std::vector<Model> assemble_models(const Snapshot& snapshot) {
    std::unordered_map<std::string_view, const Provider*> providers;
    for (const Provider& p : snapshot.providers)
        providers.emplace(p.slug, &p);
    std::unordered_map<std::string_view, const ModelStatus*> statuses;
    for (const ModelStatus& s : snapshot.statuses)
        statuses.emplace(s.model_slug, &s);

    std::vector<Model> models;
    models.reserve(snapshot.models.size());
    for (const Model& m : snapshot.models) {
        Model full = m;
        if (auto p = providers.find(m.provider_slug); p != providers.end())
            full.provider = *p->second;
        if (auto s = statuses.find(m.slug); s != statuses.end())
            full.status = *s->second;
        models.push_back(std::move(full));
    }
    std::sort(models.begin(), models.end(),
              [](const Model& a, const Model& b) { return a.slug < b.slug; });
    return models;
}

std::optional<StatusProblem> check_status(const ModelStatus& s) {
    auto unit = [](double v) { return std::isfinite(v) && v >= 0.0 && v <= 1.0; };
    if (s.model_slug.empty())
        return StatusProblem{"model", "must not be empty"};
    if (!unit(s.availability))
        return StatusProblem{"availability", "must be within 0..1"};
    if (!unit(s.error_rate))
        return StatusProblem{"error_rate", "must be within 0..1"};
    if (s.latency_ms && !(std::isfinite(*s.latency_ms) && *s.latency_ms >= 0))
        return StatusProblem{"latency_ms", "must be a non-negative number"};
    return std::nullopt;
}

std::optional<std::string> status_problem(const ModelStatus& s) {
    auto problem = check_status(s);
    if (!problem)
        return std::nullopt;
    return std::string(problem->member) + " " + std::string(problem->what);
}

SystemStats compute_stats(const Snapshot& snapshot) {
    SystemStats stats;
    stats.models = static_cast<std::int64_t>(snapshot.models.size());
    stats.providers = static_cast<std::int64_t>(snapshot.providers.size());
    stats.as_of = snapshot.generated_at;
    std::unordered_map<std::string_view, Health> health;
    for (const ModelStatus& s : snapshot.statuses)
        health.emplace(s.model_slug, s.health);
    for (const Model& m : snapshot.models) {
        if (m.active)
            ++stats.active_models;
        auto it = health.find(m.slug);
        switch (it == health.end() ? Health::unknown : it->second) {
        case Health::operational:
            ++stats.health.operational;
            break;
        case Health::degraded:
            ++stats.health.degraded;
            break;
        case Health::outage:
            ++stats.health.outage;
            break;
        case Health::unknown:
            ++stats.health.unknown;
            break;
        }
    }
    return stats;
}

} // namespace modelrepo::detail
