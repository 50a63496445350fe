// SPDX-License-Identifier: MIT
// Mapping: which tables and columns hold the catalogue (`mapping=FILE`, format
// modelrepo.mapping/1). modelrepo's own tables are the built-in mapping; the statements
// are generated from a mapping either way (statements.cpp), so there is one code path.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <modelrepo/error.hpp>
#include <modelrepo/types.hpp>

#include "../driver/connection.hpp"

namespace modelrepo::detail {

/// What a mapped column holds, as far as the generated SQL needs to know.
enum class ColumnType {
    text,        ///< text, varchar, char
    enumerated,  ///< a user-defined enum type: cast to text to read, to the type to write
    integer,     ///< smallint, integer, bigint, numeric
    floating,    ///< double precision, real (and the integer types, for numbers)
    boolean,     ///< boolean
    timestamp,   ///< timestamp without time zone: holds UTC
    timestamptz, ///< timestamp with time zone
    uuid,        ///< uuid (an id)
    other,       ///< anything else (an id of another type)
};

/// One mapped column; empty `name`: not mapped (an optional field read as absent).
struct Column {
    std::string name;
    ColumnType type = ColumnType::text;
    /// The quoted, schema-qualified type, for a cast (an enum's).
    std::string type_sql;
    /// The column fills itself (a DEFAULT, an identity or a generated column).
    bool has_default = false;
    /// A unique index on this column alone (not partial).
    bool unique = false;

    bool mapped() const noexcept { return !name.empty(); }
};

struct ProviderColumns {
    std::string table;
    Column id, slug, name, website, updated_at;
};

struct ModelColumns {
    std::string table;
    Column id, provider_id, slug, name, description, context_window, active, updated_at;
};

struct StatusColumns {
    std::string table;
    Column id, model_id, health, availability, latency_ms, error_rate, region, checked_at,
        updated_at;
};

/// A field of the format: the JSON key, its column, whether the format requires it, and
/// the column types it may have.
struct MappedField {
    std::string_view table_key; ///< "providers", "models", "statuses"
    std::string_view key;       ///< "slug", "provider_id", …
    Column* column;
    std::string* table;
    bool required;
    std::vector<ColumnType> accepts; ///< empty: any type (ids)
};

/// The catalogue's tables and columns. Thread-safe to read; built once per repository.
struct Mapping {
    ProviderColumns providers;
    ModelColumns models;
    StatusColumns statuses;
    /// modelrepo's health names to the table's values (`health_values`), when they differ.
    std::vector<std::pair<std::string, std::string>> health_values;
    /// modelrepo's own tables (providers, models, model_status), types known in advance.
    bool builtin = true;
    /// The file it came from (for messages); a digest of its content (for the copy's key).
    std::string file;
    std::string digest;

    /// modelrepo's own tables: slugs as keys, relations by slug, no updated_at.
    static Mapping builtin_tables();

    /// Every field of the format, in the format's order.
    std::vector<MappedField> fields();
};

/// Parses a modelrepo.mapping/1 document. Errors: `Errc::invalid_argument` naming the
/// file and the key (a missing required key, a value that is not a column name, an
/// unknown key or format).
Result<Mapping> parse_mapping(std::string_view json, const std::string& file);

/// Reads and parses the file (at most 1 MiB; a FIFO or a directory is refused).
Result<Mapping> load_mapping(const std::string& path);

/// The facts of the mapped columns, from the catalogue: one statement, `$1` the schema
/// (empty: the session's current schema), `$2` the table names as a text[]. Columns:
/// table, column, data_type, quoted type, has_default, unique.
std::string_view mapping_facts_sql();
/// Its `$2`: the mapping's three table names as a text[] literal (a parameter, never SQL).
std::string mapped_tables_literal(const Mapping& mapping);

/// One thing a mapping needs that the database lacks, and what to do.
struct MappingProblem {
    std::string what;
    std::string fix;
};

/// One row of mapping_facts_sql().
struct ColumnFact {
    std::string table, column, data_type, type_sql;
    bool has_default = false;
    bool unique = false;
};
std::vector<ColumnFact> column_facts(const Rows& rows);

/// The problems of `mapping` against those facts (a missing table or column, a type
/// that cannot be read); fills in the column facts. `schema_shown`: `"app".` or "".
std::vector<MappingProblem> apply_facts(Mapping& mapping, const std::vector<ColumnFact>& facts,
                                        const std::string& schema_shown);

/// What the writes need beyond apply_facts: unique indexes for ON CONFLICT, ids for new
/// rows. Empty when the mapping can be written through.
std::vector<MappingProblem> write_problems(const Mapping& mapping, const std::string& schema_shown);

/// `ColumnType` of an information_schema data_type.
ColumnType column_type_of(std::string_view data_type);
std::string_view to_string(ColumnType type) noexcept;

} // namespace modelrepo::detail
