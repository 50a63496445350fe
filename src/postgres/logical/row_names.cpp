// SPDX-License-Identifier: MIT
#include "row_names.hpp"

#include "../driver/session_config.hpp"

namespace modelrepo::detail::logical {

RowNames::RowNames(CatalogueTables tables, std::string schema)
    : tables_(std::move(tables))
    , schema_(std::move(schema))
    , keyed_(tables_.keyed_by_id()) {}

std::string RowNames::load_sql(const std::string& prefix) const {
    std::string sql;
    auto add = [&](int which, const CatalogueTables::Table& t, const std::string& value) {
        if (t.id.empty() || value.empty())
            return;
        sql += (sql.empty() ? "SELECT " : " UNION ALL SELECT ") + std::to_string(which) + ", " +
               quote_identifier(t.id) + "::text, " + quote_identifier(value) + "::text FROM " +
               prefix + quote_identifier(t.name) + " WHERE " + quote_identifier(t.id) +
               " IS NOT NULL";
    };
    add(providers_, tables_.providers, tables_.providers.slug);
    add(models_, tables_.models, tables_.models.slug);
    add(statuses_, tables_.statuses,
        tables_.statuses.model.empty() ? tables_.statuses.slug : tables_.statuses.model);
    return sql;
}

const CatalogueTables::Table& RowNames::table(int which) const {
    return which == providers_ ? tables_.providers
           : which == models_  ? tables_.models
                               : tables_.statuses;
}

void RowNames::clear() {
    for (auto& m : maps_)
        m.clear();
    for (auto& d : deleted_)
        d.clear();
}

void RowNames::load(int table, std::string id, std::string value) {
    if (table >= providers_ && table <= statuses_)
        maps_[table][std::move(id)] = std::move(value);
}

std::optional<std::string> RowNames::value(const Relation& r, const Tuple& row,
                                           const std::string& column) {
    if (column.empty())
        return std::nullopt;
    for (std::size_t i = 0; i < r.columns.size() && i < row.values.size(); ++i)
        if (r.columns[i].name == column) {
            if (i < row.unchanged.size() && row.unchanged[i])
                return std::nullopt; // an unchanged TOASTed value: not sent
            return row.values[i];
        }
    return std::nullopt;
}

std::optional<std::string> RowNames::slug_of(Which which, const Relation& r,
                                             const Tuple& row) const {
    const auto& t = table(which);
    if (auto slug = value(r, row, t.slug))
        return slug;
    if (auto id = value(r, row, t.id)) {
        const auto& map = maps_[which];
        if (auto found = map.find(*id); found != map.end())
            return found->second;
    }
    return std::nullopt;
}

std::optional<std::string> RowNames::model_slug_of(const Relation& r, const Tuple& row) const {
    const auto& t = tables_.statuses;
    // The model, as the row names it (its slug, or its id), else as the status's id did.
    std::optional<std::string> ref = value(r, row, t.model.empty() ? t.slug : t.model);
    if (!ref)
        if (auto id = value(r, row, t.id)) {
            const auto& map = maps_[statuses_];
            if (auto found = map.find(*id); found != map.end())
                ref = found->second;
        }
    if (!ref || t.model.empty())
        return ref;
    const auto& models = maps_[models_];
    if (auto found = models.find(*ref); found != models.end())
        return found->second;
    return std::nullopt;
}

std::optional<std::string> RowNames::follow(Which which, const Relation& r, const Tuple& new_row) {
    const auto& t = table(which);
    auto id = value(r, new_row, t.id);
    if (!id)
        return std::nullopt;
    auto held = value(r, new_row, which == statuses_ && !t.model.empty() ? t.model : t.slug);
    if (!held)
        return std::nullopt;
    deleted_[which].erase(*id); // deleted and made again in one transaction
    auto& slot = maps_[which][*id];
    std::optional<std::string> replaced;
    if (!slot.empty() && slot != *held)
        replaced = std::move(slot);
    slot = std::move(*held);
    return replaced;
}

void RowNames::forget(Which which, const Relation& r, const Tuple& old_row) {
    const auto& t = table(which);
    if (auto id = value(r, old_row, t.id))
        deleted_[which].insert(std::move(*id));
}

void RowNames::committed() {
    for (int which = providers_; which <= statuses_; ++which) {
        for (const auto& id : deleted_[which])
            maps_[which].erase(id);
        deleted_[which].clear();
    }
}

void RowNames::truncated(const Relation& r) {
    if (r.schema != schema_)
        return;
    for (int which = providers_; which <= statuses_; ++which) {
        const auto& t = table(which);
        if (r.name == t.name) {
            maps_[which].clear();
            deleted_[which].clear();
        }
    }
}

bool RowNames::name(const Change& change, Named& out) {
    const Relation& r = *change.relation;
    if (r.schema != schema_)
        return true;
    Which which;
    CatalogChange::Kind kind;
    if (r.name == tables_.statuses.name) {
        which = statuses_;
        kind = CatalogChange::Kind::status;
    } else if (r.name == tables_.models.name) {
        which = models_;
        kind = CatalogChange::Kind::model;
    } else if (r.name == tables_.providers.name) {
        which = providers_;
        kind = CatalogChange::Kind::provider;
    } else {
        return true;
    }
    auto name_of = [&](const Tuple& row) {
        return which == statuses_ ? model_slug_of(r, row) : slug_of(which, r, row);
    };
    if (change.new_row) {
        auto slug = name_of(*change.new_row);
        // A status's model, or a row's slug, that the update replaced: news as well (a
        // key-only old row does not carry it).
        std::optional<std::string> replaced;
        if (keyed_) {
            replaced = follow(which, r, *change.new_row);
            if (which == statuses_ && replaced && !tables_.statuses.model.empty()) {
                const auto& models = maps_[models_];
                auto found = models.find(*replaced);
                replaced = found == models.end() ? std::nullopt
                                                 : std::optional<std::string>(found->second);
            }
            if (!slug)
                slug = name_of(*change.new_row); // its own id, now followed
        }
        if (!slug)
            return !keyed_;
        out.emplace_back(kind, std::move(*slug));
        if (replaced && *replaced != out.back().second)
            out.emplace_back(kind, std::move(*replaced));
    }
    if (change.old_row) {
        auto slug = name_of(*change.old_row);
        if (!slug) {
            if (keyed_)
                return false;
        } else {
            out.emplace_back(kind, std::move(*slug));
        }
        if (keyed_) {
            const auto& t = table(which);
            auto old_id = value(r, *change.old_row, t.id);
            if (change.kind == Change::Kind::delete_ ||
                (change.new_row && old_id != value(r, *change.new_row, t.id)))
                forget(which, r, *change.old_row);
        }
    }
    return true;
}

} // namespace modelrepo::detail::logical
