// SPDX-License-Identifier: MIT
// SqlCatalog's reads: counts, statuses, models by slug (in the order asked), the list,
// the stats; and the snapshot of the whole catalogue in one transaction (export, and the
// last-known copy's load and re-reads, on the primary).
#include <algorithm>

#include "../../core/files.hpp"
#include "../logical/snapshot_handoff.hpp"
#include "calls.hpp"

namespace modelrepo::detail {

Result<std::int64_t> SqlCatalog::count_models() {
    return query(reads(), StatementId::count_models, std::array<const char*, 0>{},
                 [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::int64_t> SqlCatalog::count_providers() {
    return query(reads(), StatementId::count_providers, std::array<const char*, 0>{},
                 [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::vector<ModelStatus>> SqlCatalog::list_statuses() {
    return query(reads(), StatementId::list_statuses, std::array<const char*, 0>{},
                 [](const Rows& rows) {
                     std::vector<ModelStatus> out;
                     out.reserve(static_cast<std::size_t>(rows.size()));
                     for (int row = 0; row < rows.size(); ++row)
                         out.push_back(status_from_row(rows, row));
                     return out;
                 });
}

Result<std::vector<Model>> SqlCatalog::find_models(std::span<const std::string> slugs) {
    return find_models_in(reads(), slugs);
}

Result<std::vector<Model>> SqlCatalog::find_models_in(ConnectionPool& pool,
                                                      std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Model>{};
    std::string array = text_array(slugs);
    return query(pool, StatementId::find_models, params(array), [&](const Rows& rows) {
        // The answer in the order asked for, each row decoded once: the rows sorted by
        // slug (views into the result), one binary search per slug asked for. A slug
        // asked for twice gets a copy of the first answer.
        struct Row {
            std::string_view slug;
            int row;
            int answer = -1; // its position in `ordered`, once decoded
        };
        std::vector<Row> by_slug;
        by_slug.reserve(static_cast<std::size_t>(rows.size()));
        for (int row = 0; row < rows.size(); ++row)
            by_slug.push_back({rows.text(row, 0), row});
        std::sort(by_slug.begin(), by_slug.end(),
                  [](const Row& a, const Row& b) { return a.slug < b.slug; });
        std::vector<Model> ordered;
        ordered.reserve(slugs.size());
        for (const std::string& slug : slugs) {
            auto it = std::lower_bound(by_slug.begin(), by_slug.end(), std::string_view(slug),
                                       [](const Row& r, std::string_view s) { return r.slug < s; });
            if (it == by_slug.end() || it->slug != slug)
                continue;
            if (it->answer >= 0) {
                ordered.push_back(ordered[static_cast<std::size_t>(it->answer)]);
            } else {
                it->answer = static_cast<int>(ordered.size());
                ordered.push_back(model_from_row(rows, it->row));
            }
        }
        return ordered;
    });
}

Result<std::optional<Model>> SqlCatalog::find_model(std::string_view slug) {
    std::string key(slug);
    return query(reads(), StatementId::find_model, params(key), [](const Rows& rows) {
        return rows.empty() ? std::optional<Model>()
                            : std::optional<Model>(model_from_row(rows, 0));
    });
}

Result<std::vector<Model>> SqlCatalog::list_models() {
    return query(reads(), StatementId::list_models, std::array<const char*, 0>{},
                 [](const Rows& rows) {
                     std::vector<Model> out;
                     out.reserve(static_cast<std::size_t>(rows.size()));
                     for (int row = 0; row < rows.size(); ++row)
                         out.push_back(model_from_row(rows, row));
                     return out;
                 });
}

Result<SystemStats> SqlCatalog::system_stats() {
    return query(reads(), StatementId::system_stats, std::array<const char*, 0>{},
                 [&](const Rows& rows) {
                     Columns col(rows, 0);
                     SystemStats s;
                     s.models = col.number<std::int64_t>();
                     s.active_models = col.number<std::int64_t>();
                     s.providers = col.number<std::int64_t>();
                     s.health.operational = col.number<std::int64_t>();
                     s.health.degraded = col.number<std::int64_t>();
                     s.health.outage = col.number<std::int64_t>();
                     s.health.unknown = col.number<std::int64_t>();
                     s.as_of = from_micros(col.number<long long>());
                     s.source = name();
                     return s;
                 });
}

Result<Snapshot> SqlCatalog::export_snapshot() {
    return export_at(reads(), nullptr);
}

std::string SqlCatalog::copy_key() const {
    // The key earlier versions used, so that a copy on disk is found again.
    // A mapped catalogue is another one: its file's content is part of the key.
    // The address, not the display name: naming a source does not lose its copy, and two
    // sources of one name do not share one.
    return "postgres-" + fnv1a_hex(session_->target.display() + "|" + config_.schema +
                                   (mapping_.builtin ? "" : "|" + mapping_.digest));
}

Result<std::pair<Snapshot, std::int64_t>> SqlCatalog::load() {
    std::int64_t version = 0;
    // A resync of the logical feed: read in its slot's snapshot (snapshot_handoff.hpp).
    std::optional<std::string> exported = handoff_ ? handoff_->take() : std::nullopt;
    auto snapshot = export_at(*write_pool_, &version, exported ? &*exported : nullptr);
    if (exported) {
        handoff_->imported(*exported); // also when the read failed before importing it
        if (!snapshot) // the feed went on without us (a slow reader): a snapshot of our own
            snapshot = export_at(*write_pool_, &version);
    }
    if (!snapshot)
        return std::move(snapshot).error();
    return std::pair<Snapshot, std::int64_t>(std::move(snapshot).value(), version);
}

Result<std::vector<Model>> SqlCatalog::models(std::span<const std::string> slugs) {
    // The copy follows the primary's feed: it re-reads there, never from a standby that
    // may not have replayed the change yet.
    return find_models_in(*write_pool_, slugs);
}

Result<std::vector<Provider>> SqlCatalog::providers(std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Provider>{};
    std::string array = text_array(slugs);
    return query(*write_pool_, StatementId::find_providers, params(array), [](const Rows& rows) {
        std::vector<Provider> out;
        for (int row = 0; row < rows.size(); ++row) {
            Columns col(rows, row);
            Provider p;
            p.slug = col.text();
            p.name = col.text();
            p.website = col.text();
            out.push_back(std::move(p));
        }
        return out;
    });
}

Result<Snapshot> SqlCatalog::export_at(ConnectionPool& pool, std::int64_t* version,
                                       const std::string* snapshot) {
    return with_connection(pool, [&](Connection& c, Deadline until) {
        // One snapshot of the database: the statements below run in this transaction.
        return c.transaction(
            "ISOLATION LEVEL REPEATABLE READ READ ONLY", until,
            [&](Connection& c) -> Result<Snapshot> {
                if (snapshot) {
                    // Before any other statement of the transaction, as PostgreSQL requires.
                    auto set =
                        c.script("SET TRANSACTION SNAPSHOT " + quote_literal(*snapshot), until);
                    handoff_->imported(*snapshot);
                    if (!set)
                        return std::move(set).error();
                }
                auto planned = plan(c, until);
                if (!planned)
                    return std::move(planned).error();
                const auto& st = planned.value()->statements;
                constexpr std::array<const char*, 0> none{};
                auto now = c.script("SELECT (extract(epoch FROM now()) * 1000000)::bigint", until);
                if (!now)
                    return std::move(now).error();
                auto providers = c.execute(st[StatementId::list_providers], none, until);
                if (!providers)
                    return std::move(providers).error();
                auto models = c.execute(st[StatementId::list_models], none, until);
                if (!models)
                    return std::move(models).error();
                auto statuses = c.execute(st[StatementId::list_statuses], none, until);
                if (!statuses)
                    return std::move(statuses).error();
                if (version) {
                    // The catalogue version this snapshot is at (the change feed's), in
                    // two steps: naming a missing table fails even in an untaken branch.
                    auto has = c.script(
                        "SELECT to_regclass(" + quote_literal(prefix_ + "catalog_change_seq") +
                            ") IS NOT NULL, to_regclass(" +
                            quote_literal(prefix_ + "catalog_version") + ") IS NOT NULL",
                        until);
                    if (!has)
                        return std::move(has).error();
                    *version = 0;
                    // Schema 3: the newest version handed out; 2: the version row.
                    std::string read;
                    if (has.value().text(0, 0) == "t")
                        read = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " +
                               prefix_ + "catalog_change_seq";
                    else if (has.value().text(0, 1) == "t")
                        read = "SELECT version FROM " + prefix_ + "catalog_version";
                    if (!read.empty()) {
                        auto v = c.script(read, until);
                        if (!v)
                            return std::move(v).error();
                        if (!v.value().empty())
                            *version = number<std::int64_t>(v.value(), 0, 0);
                    }
                }
                Snapshot s;
                s.generated_at = from_micros(number<long long>(now.value(), 0, 0));
                for (int row = 0; row < providers.value().size(); ++row) {
                    Columns col(providers.value(), row);
                    Provider p;
                    p.slug = col.text();
                    p.name = col.text();
                    p.website = col.text();
                    s.providers.push_back(std::move(p));
                }
                for (int row = 0; row < models.value().size(); ++row) {
                    Model m = model_from_row(models.value(), row);
                    m.provider.reset();
                    m.status.reset();
                    s.models.push_back(std::move(m));
                }
                for (int row = 0; row < statuses.value().size(); ++row)
                    s.statuses.push_back(status_from_row(statuses.value(), row));
                return s;
            });
    });
}

} // namespace modelrepo::detail
