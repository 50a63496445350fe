// SPDX-License-Identifier: MIT
#include "row_names.hpp"

#include <algorithm>

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

std::optional<std::string> RowNames::lookup(Which which, const std::string& id) const {
    const auto& map = maps_[which];
    if (auto found = map.find(id); found != map.end())
        return found->second;
    return std::nullopt;
}

std::optional<std::string> RowNames::model_slug(const std::string& ref) const {
    return tables_.statuses.model.empty() ? std::optional<std::string>(ref) : lookup(models_, ref);
}

std::optional<std::string> RowNames::slug_of(Which which, const Relation& r,
                                             const Tuple& row) const {
    const auto& t = table(which);
    if (auto slug = value(r, row, t.slug))
        return slug;
    if (auto id = value(r, row, t.id))
        return lookup(which, *id);
    return std::nullopt;
}

std::optional<std::string> RowNames::model_slug_of(const Relation& r, const Tuple& row) const {
    const auto& t = tables_.statuses;
    // The model, as the row names it (its slug, or its id), else as the status's id did.
    std::optional<std::string> ref = value(r, row, t.model.empty() ? t.slug : t.model);
    if (!ref)
        if (auto id = value(r, row, t.id))
            ref = lookup(statuses_, *id);
    return ref ? model_slug(*ref) : std::nullopt;
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
    // Each slug once a change (the key sent for an update that kept it names it again).
    const std::size_t first = out.size();
    auto add = [&](std::string slug) {
        std::pair<CatalogChange::Kind, std::string> item{kind, std::move(slug)};
        if (std::find(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(), item) ==
            out.end())
            out.push_back(std::move(item));
    };
    // The maps follow every change first, also one that cannot be named (its transaction
    // is then one resync, and the changes after it are named from the maps).
    std::optional<std::string> replaced; // a row's slug, or a status's model id
    if (keyed_ && change.new_row)
        replaced = follow(which, r, *change.new_row);
    if (keyed_ && change.old_row) {
        // Forgotten at the commit: deleted, or its id changed.
        const auto& t = table(which);
        auto old_id = value(r, *change.old_row, t.id);
        if (old_id && (change.kind == Change::Kind::delete_ ||
                       (change.new_row && old_id != value(r, *change.new_row, t.id))))
            deleted_[which].insert(std::move(*old_id));
    }
    if (change.new_row) {
        auto slug = name_of(*change.new_row);
        if (!slug)
            return !keyed_;
        add(std::move(*slug));
        // What the update replaced is news as well (a key-only old row does not carry it).
        if (replaced)
            if (auto was = which == statuses_ ? model_slug(*replaced) : replaced)
                add(std::move(*was));
    }
    if (change.old_row) {
        if (auto slug = name_of(*change.old_row))
            add(std::move(*slug));
        else if (keyed_)
            return false;
    }
    return true;
}

} // namespace modelrepo::detail::logical
