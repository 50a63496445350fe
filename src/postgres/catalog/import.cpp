// SPDX-License-Identifier: MIT
// SqlCatalog's import: a snapshot merged into the catalogue in one transaction with the
// feed quiet, then one resync.
#include <functional>

#include "../../core/catalog_view.hpp"
#include "calls.hpp"

namespace modelrepo::detail {

namespace {

/// The import's arrays: providers (slug, name, website), models (slug, name, provider,
/// description, context_window, active), the slugs of each, and the statuses'.
struct ImportArrays {
    std::array<std::string, 3> providers;
    std::array<std::string, 6> models;
    std::optional<std::array<std::string, 7>> statuses;
};

ImportArrays import_arrays(const Snapshot& snapshot) {
    std::vector<std::string_view> p_slug, p_name, p_site;
    for (const Provider& p : snapshot.providers) {
        p_slug.push_back(p.slug);
        p_name.push_back(p.name);
        p_site.push_back(p.website);
    }
    std::vector<std::string_view> m_slug, m_name, m_provider, m_description, m_active;
    std::vector<std::optional<double>> m_context;
    for (const Model& m : snapshot.models) {
        m_slug.push_back(m.slug);
        m_name.push_back(m.name);
        m_provider.push_back(m.provider_slug);
        m_description.push_back(m.description);
        m_active.push_back(m.active ? "true" : "false");
        m_context.push_back(m.context_window ? std::optional<double>(*m.context_window)
                                             : std::nullopt);
    }
    ImportArrays a;
    a.providers = {text_array(p_slug), text_array(p_name), text_array(p_site)};
    a.models = {text_array(m_slug),        text_array(m_name),      text_array(m_provider),
                text_array(m_description), number_array(m_context), text_array(m_active)};
    if (!snapshot.statuses.empty())
        a.statuses = status_arrays(snapshot.statuses);
    return a;
}

} // namespace

Result<void> SqlCatalog::importable(const Snapshot& snapshot) const {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    // An import writes its statuses: one from the future would keep every real one out.
    const Timestamp now = Clock::now();
    for (std::size_t i = 0; i < snapshot.statuses.size(); ++i)
        if (auto problem = future_problem(snapshot.statuses[i], now, config_.max_clock_skew)) {
            Error e =
                make_error(Errc::invalid_argument, "$.statuses[" + std::to_string(i) + "] (" +
                                                       snapshot.statuses[i].model_slug +
                                                       "): " + *problem + "; nothing was imported");
            e.source = name();
            return e;
        }
    return success();
}

Result<void> SqlCatalog::import_snapshot(const Snapshot& snapshot, const ProgressFn& progress) {
    if (auto valid = importable(snapshot); !valid)
        return valid;
    const ImportArrays a = import_arrays(snapshot);
    const std::string& t = prefix_;
    // The deadline grows with the catalogue (a large import is not an outage): the query
    // timeout, and 0.5 ms per row on top, here and as the server's statement_timeout.
    const auto rows = snapshot.providers.size() + snapshot.models.size() + snapshot.statuses.size();
    const auto allowance = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::microseconds(500) * static_cast<long long>(rows));
    const auto statement_limit = config_.query_timeout + allowance;
    auto r =
        with_connection(*write_pool_, allowance, [&](Connection& c, Deadline until) -> Result<int> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            const Plan& p = *planned.value();
            if (!p.write_problems.empty())
                return mapping_error(p.write_problems, "cannot be written through");
            return c.transaction("", until, [&](Connection& c) -> Result<int> {
                // The triggers stay quiet for the rows; one resync at the end says it all.
                auto step = [&](const std::string& sql, auto... values) -> Result<Rows> {
                    return c.execute(sql.c_str(), params(values...), until);
                };
                if (auto done = c.script(
                        "SET LOCAL statement_timeout = " + std::to_string(statement_limit.count()) +
                            "; SET LOCAL modelrepo.bulk = 'on'",
                        until);
                    !done)
                    return std::move(done).error();
                // Statuses first (the snapshot's replace them), then providers and models
                // merged by slug, then what the snapshot no longer has: models, then providers.
                // Each step is told with the snapshot's rows it covered, or (-1) the rows its
                // statement deleted.
                const auto providers = static_cast<std::int64_t>(snapshot.providers.size());
                const auto models = static_cast<std::int64_t>(snapshot.models.size());
                const auto statuses = static_cast<std::int64_t>(snapshot.statuses.size());
                struct Step {
                    std::string_view told;
                    std::int64_t rows;
                    std::function<Result<Rows>()> run;
                };
                const std::array<Step, 5> steps{
                    Step{"statuses cleared", -1, [&] { return step(p.import.delete_statuses); }},
                    Step{"providers merged", providers,
                         [&] {
                             return step(p.import.providers, a.providers[0], a.providers[1],
                                         a.providers[2]);
                         }},
                    Step{"models merged", models,
                         [&] {
                             return step(p.import.models, a.models[0], a.models[1], a.models[2],
                                         a.models[3], a.models[4], a.models[5]);
                         }},
                    Step{"models removed", -1,
                         [&] { return step(p.import.delete_models, a.models[0]); }},
                    Step{"providers removed", -1,
                         [&] { return step(p.import.delete_providers, a.providers[0]); }},
                };
                auto tell = [&](std::string_view told, std::int64_t rows) {
                    if (progress)
                        progress(Progress{told, rows, rows});
                };
                for (const auto& s : steps) {
                    auto done = s.run();
                    if (!done)
                        return std::move(done).error();
                    tell(s.told, s.rows >= 0 ? s.rows : done.value().affected());
                }
                if (a.statuses) {
                    const auto& s = *a.statuses;
                    if (auto done =
                            c.execute(p.statements[StatementId::upsert_statuses],
                                      params(s[0], s[1], s[2], s[3], s[4], s[5], s[6]), until);
                        !done)
                        return std::move(done).error();
                    tell("statuses written", statuses);
                }
                auto feed =
                    c.script("SELECT to_regprocedure(" +
                                 quote_literal(t + "modelrepo_catalog_resync()") + ") IS NOT NULL",
                             until);
                if (!feed)
                    return std::move(feed).error();
                if (feed.value().text(0, 0) == "t")
                    if (auto done = c.script("SELECT " + t + "modelrepo_catalog_resync()", until);
                        !done)
                        return std::move(done).error();
                return 0;
            });
        });
    if (!r)
        return std::move(r).error();
    return success();
}

} // namespace modelrepo::detail
