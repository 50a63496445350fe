// SPDX-License-Identifier: MIT
// RowNames: which slugs a decoded change names. modelrepo's own tables carry the slug in
// every row and every key; a mapping's tables (mapping=) may not: a model is keyed by its
// id, a status names its model by id, and a DELETE carries only the key columns. For
// those, RowNames keeps each table's id → slug (a status's id → its model's id), read in
// the slot's snapshot when the session starts and followed change by change after it, so
// that a DELETE, a status and a renamed slug are named as the trigger feed names them.
//
// Thread safety: none; one feed session's thread owns it.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <modelrepo/catalog_change.hpp>

#include "pgoutput.hpp"

namespace modelrepo::detail::logical {

/// The catalogue's tables, as the logical feed reads them. Column names unquoted; an
/// empty name is not mapped.
struct CatalogueTables {
    struct Table {
        std::string name;  ///< the table
        std::string slug;  ///< the column holding the slug (statuses: the model's, if they hold it)
        std::string id;    ///< the column rows are keyed by, when it is not the slug
        std::string model; ///< statuses: the column naming the model by its id
    };
    Table providers{"providers", "slug", "", ""};
    Table models{"models", "slug", "", ""};
    Table statuses{"model_status", "model_slug", "", ""};
    /// modelrepo's own tables (no mapping): their rows read as the catalogue reads them.
    bool builtin = true;

    /// Whether any table is keyed by an id (RowNames then keeps maps).
    bool keyed_by_id() const {
        return !providers.id.empty() || !models.id.empty() || !statuses.id.empty() ||
               !statuses.model.empty();
    }
};

class RowNames {
public:
    using Named = std::vector<std::pair<CatalogChange::Kind, std::string>>;

    /// `schema`: where the tables are ("public" by default).
    RowNames(CatalogueTables tables, std::string schema);

    /// One statement reading the maps (columns: table 0/1/2, id, slug or model id), to run
    /// in the slot's snapshot; empty when no table is keyed by an id. `prefix`: the
    /// quoted schema and a dot, or "".
    std::string load_sql(const std::string& prefix) const;
    /// Forgets the maps (a new session reads them again).
    void clear();
    /// One row of load_sql().
    void load(int table, std::string id, std::string value);

    /// Appends the slugs `change` names (its row as it is and as it was), each once. Nothing for a
    /// table not the catalogue's. False when a row of the catalogue's could not be named
    /// (an id never seen): the transaction is then one resync.
    bool name(const Change& change, Named& out);
    /// A TRUNCATE of `r`: its map emptied.
    void truncated(const Relation& r);
    /// The transaction committed: the ids its DELETEs named are forgotten now (a cascade
    /// deletes a model before its status, whose DELETE still names the model by id).
    void committed();

private:
    enum Which { providers_, models_, statuses_ };
    const CatalogueTables::Table& table(int which) const;
    /// The value of `column` in `row`, if sent and not NULL.
    static std::optional<std::string> value(const Relation& r, const Tuple& row,
                                            const std::string& column);
    /// A provider's or model's row: its slug, from the row or (a key) the map.
    std::optional<std::string> slug_of(Which which, const Relation& r, const Tuple& row) const;
    /// A status row's model slug.
    std::optional<std::string> model_slug_of(const Relation& r, const Tuple& row) const;
    /// Follows an insert or update of `new_row` in the maps; what it replaced (a slug, or
    /// a status's model id), if anything.
    std::optional<std::string> follow(Which which, const Relation& r, const Tuple& new_row);
    /// The map's entry for `id`.
    std::optional<std::string> lookup(Which which, const std::string& id) const;
    /// The slug of the model a status names by `ref` (its slug, or its id).
    std::optional<std::string> model_slug(const std::string& ref) const;

    CatalogueTables tables_;
    std::string schema_;
    bool keyed_;
    /// providers' and models' id → slug, statuses' id → model id (or slug).
    std::unordered_map<std::string, std::string> maps_[3];
    /// Ids deleted by the transaction being read, forgotten at its commit.
    std::unordered_set<std::string> deleted_[3];
};

} // namespace modelrepo::detail::logical
