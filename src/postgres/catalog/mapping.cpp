// SPDX-License-Identifier: MIT
// The mapping file (modelrepo.mapping/1) and its check against the database's catalogue.
#include "mapping.hpp"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "../../core/files.hpp"
#include "../driver/session_config.hpp"

namespace modelrepo::detail {

namespace {

using enum ColumnType;

const std::vector<ColumnType> texts{text};
const std::vector<ColumnType> numbers{floating, integer};
const std::vector<ColumnType> whole_numbers{integer};
const std::vector<ColumnType> booleans{boolean};
const std::vector<ColumnType> times{timestamp, timestamptz};
const std::vector<ColumnType> healths{text, enumerated};
const std::vector<ColumnType> any_type{};

Column named(std::string name, ColumnType type) {
    Column c;
    c.name = std::move(name);
    c.type = type;
    return c;
}

Error invalid(const std::string& file, const std::string& what) {
    return make_error(Errc::invalid_argument, "mapping file '" + file + "': " + what);
}

/// "a string", "42", "null": what a value was, for a message (short, never the whole).
std::string shown(const nlohmann::json& value) {
    std::string text = value.dump();
    if (text.size() > 40)
        text = text.substr(0, 37) + "...";
    return text;
}

/// A column or table name: a non-empty string without NUL, at most 63 bytes (longer
/// names are truncated by the server, so they would never match).
std::optional<std::string> name_problem(const nlohmann::json& value) {
    if (!value.is_string())
        return "must be a column name (a string), got " + shown(value);
    const auto& text = value.get_ref<const std::string&>();
    if (text.empty())
        return std::string("must not be empty");
    if (text.find('\0') != std::string::npos)
        return std::string("holds a NUL byte");
    if (text.size() > 63)
        return "is longer than PostgreSQL's 63-byte names: " + shown(value);
    return std::nullopt;
}

} // namespace

Mapping Mapping::builtin_tables() {
    Mapping m;
    m.providers.table = "providers";
    m.providers.slug = named("slug", text);
    m.providers.name = named("name", text);
    m.providers.website = named("website", text);
    m.models.table = "models";
    m.models.provider_id = named("provider_slug", text);
    m.models.slug = named("slug", text);
    m.models.name = named("name", text);
    m.models.description = named("description", text);
    m.models.context_window = named("context_window", integer);
    m.models.active = named("active", boolean);
    m.statuses.table = "model_status";
    m.statuses.model_id = named("model_slug", text);
    m.statuses.health = named("health", text);
    m.statuses.availability = named("availability", floating);
    m.statuses.latency_ms = named("latency_ms", floating);
    m.statuses.error_rate = named("error_rate", floating);
    m.statuses.region = named("region", text);
    m.statuses.checked_at = named("checked_at", timestamptz);
    for (Column* c : {&m.providers.slug, &m.models.slug, &m.statuses.model_id})
        c->unique = true;
    return m;
}

std::vector<MappedField> Mapping::fields() {
    auto& p = providers;
    auto& m = models;
    auto& s = statuses;
    return {
        {"providers", "id", &p.id, &p.table, false, any_type},
        {"providers", "slug", &p.slug, &p.table, true, texts},
        {"providers", "name", &p.name, &p.table, true, texts},
        {"providers", "website", &p.website, &p.table, false, texts},
        {"providers", "updated_at", &p.updated_at, &p.table, false, times},
        {"models", "id", &m.id, &m.table, false, any_type},
        {"models", "provider_id", &m.provider_id, &m.table, true, any_type},
        {"models", "slug", &m.slug, &m.table, true, texts},
        {"models", "name", &m.name, &m.table, true, texts},
        {"models", "description", &m.description, &m.table, false, texts},
        {"models", "context_window", &m.context_window, &m.table, false, whole_numbers},
        {"models", "active", &m.active, &m.table, false, booleans},
        {"models", "updated_at", &m.updated_at, &m.table, false, times},
        {"statuses", "id", &s.id, &s.table, false, any_type},
        {"statuses", "model_id", &s.model_id, &s.table, true, any_type},
        {"statuses", "health", &s.health, &s.table, true, healths},
        {"statuses", "availability", &s.availability, &s.table, false, numbers},
        {"statuses", "latency_ms", &s.latency_ms, &s.table, false, numbers},
        {"statuses", "error_rate", &s.error_rate, &s.table, false, numbers},
        {"statuses", "region", &s.region, &s.table, false, texts},
        {"statuses", "checked_at", &s.checked_at, &s.table, true, times},
        {"statuses", "updated_at", &s.updated_at, &s.table, false, times},
    };
}

Result<Mapping> parse_mapping(std::string_view json, const std::string& file) {
    nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
    if (doc.is_discarded())
        return invalid(file, "not valid JSON");
    if (!doc.is_object())
        return invalid(file, "must be a JSON object, got " + shown(doc));
    if (!doc.contains("format") || doc["format"] != "modelrepo.mapping/1")
        return invalid(file, "\"format\" must be \"modelrepo.mapping/1\", got " +
                                 (doc.contains("format") ? shown(doc["format"]) : "nothing"));
    Mapping m;
    m.builtin = false;
    m.file = file;
    m.digest = fnv1a_hex(json);
    auto fields = m.fields();
    for (auto& [key, value] : doc.items()) {
        if (key == "format" || key == "health_values")
            continue;
        if (key != "providers" && key != "models" && key != "statuses")
            return invalid(file, "unknown key \"" + key +
                                     "\" (known: format, providers, models, statuses, "
                                     "health_values)");
        if (!value.is_object())
            return invalid(file, key + " must be an object, got " + shown(value));
        for (auto& item : value.items()) {
            const std::string& field = item.key();
            if (field == "table")
                continue;
            const std::string& table_key = key; // (clang 14 cannot capture a binding)
            auto it = std::find_if(fields.begin(), fields.end(), [&](const MappedField& f) {
                return f.table_key == table_key && f.key == field;
            });
            if (it == fields.end()) {
                std::string known = "table";
                for (const MappedField& f : fields)
                    if (f.table_key == key)
                        known += ", " + std::string(f.key);
                return invalid(file,
                               "unknown key " + key + "." + field + " (known: " + known + ")");
            }
        }
    }
    for (std::string_view table_key : {"providers", "models", "statuses"}) {
        std::string k(table_key);
        if (!doc.contains(k))
            return invalid(file, "missing \"" + k + "\"");
        const auto& table = doc[k];
        if (!table.contains("table"))
            return invalid(file, "missing " + k + ".table");
        if (auto problem = name_problem(table["table"]))
            return invalid(file, k + ".table " + *problem);
        std::string name = table["table"];
        for (MappedField& f : fields) {
            if (f.table_key != table_key)
                continue;
            *f.table = name;
            std::string key(f.key);
            std::string path = k + "." + key;
            if (!table.contains(key) || table[key].is_null()) {
                if (f.required)
                    return invalid(file, "missing " + path + " (a column name is required)");
                continue;
            }
            if (auto problem = name_problem(table[key]))
                return invalid(file, path + " " + *problem);
            f.column->name = table[key];
        }
    }
    if (doc.contains("health_values") && !doc["health_values"].is_null()) {
        const auto& values = doc["health_values"];
        if (!values.is_object())
            return invalid(file, "health_values must be an object like {\"operational\": "
                                 "\"OPERATIONAL\"}, got " +
                                     shown(values));
        for (auto& [ours, theirs] : values.items()) {
            if (!parse_health(ours))
                return invalid(file, "health_values." + ours +
                                         ": not a health (operational, degraded, outage, "
                                         "unknown)");
            if (!theirs.is_string() || theirs.get_ref<const std::string&>().empty())
                return invalid(file, "health_values." + ours +
                                         " must be the table's value (a non-empty string), got " +
                                         shown(theirs));
            m.health_values.emplace_back(ours, theirs.get<std::string>());
        }
    }
    return m;
}

Result<Mapping> load_mapping(const std::string& path) {
    auto text = read_file_limited(path, 1 << 20);
    if (!text) {
        Error e = text.error();
        e.code = Errc::invalid_argument;
        e.message = "mapping file: " + e.message;
        return e;
    }
    return parse_mapping(text.value(), path);
}

std::string_view mapping_facts_sql() {
    return "WITH s AS (SELECT coalesce(nullif($1, ''), current_schema()) AS name), "
           "uniq AS (SELECT c.relname AS t, a.attname AS col FROM pg_index i "
           "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
           "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
           "WHERE i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL "
           "AND n.nspname = (SELECT name FROM s)) "
           "SELECT col.table_name::text, col.column_name::text, col.data_type::text, "
           "format('%I.%I', col.udt_schema, col.udt_name), "
           "col.column_default IS NOT NULL OR col.is_identity = 'YES' "
           "OR col.is_generated <> 'NEVER', "
           "EXISTS (SELECT 1 FROM uniq WHERE uniq.t = col.table_name AND "
           "uniq.col = col.column_name) "
           "FROM information_schema.columns col "
           "WHERE col.table_schema = (SELECT name FROM s) AND col.table_name = ANY($2::text[])";
}

std::string mapped_tables_literal(const Mapping& mapping) {
    std::string out = "{";
    for (const std::string* t :
         {&mapping.providers.table, &mapping.models.table, &mapping.statuses.table}) {
        out += out.size() > 1 ? ",\"" : "\"";
        for (char ch : *t) {
            if (ch == '"' || ch == '\\')
                out.push_back('\\');
            out.push_back(ch);
        }
        out += "\"";
    }
    return out + "}";
}

ColumnType column_type_of(std::string_view data_type) {
    if (data_type == "text" || data_type == "character varying" || data_type == "character")
        return text;
    if (data_type == "USER-DEFINED")
        return enumerated;
    if (data_type == "smallint" || data_type == "integer" || data_type == "bigint" ||
        data_type == "numeric")
        return integer;
    if (data_type == "double precision" || data_type == "real")
        return floating;
    if (data_type == "boolean")
        return boolean;
    if (data_type == "timestamp without time zone")
        return timestamp;
    if (data_type == "timestamp with time zone")
        return timestamptz;
    if (data_type == "uuid")
        return uuid;
    return other;
}

std::string_view to_string(ColumnType type) noexcept {
    switch (type) {
    case text:
        return "text";
    case enumerated:
        return "an enum";
    case integer:
        return "a whole number (integer, bigint, numeric)";
    case floating:
        return "a number (double precision, real)";
    case boolean:
        return "boolean";
    case timestamp:
        return "timestamp (without time zone, read as UTC)";
    case timestamptz:
        return "timestamp with time zone";
    case uuid:
        return "uuid";
    case other:
        break;
    }
    return "another type";
}

namespace {

std::string accepted(const std::vector<ColumnType>& types) {
    std::string out;
    for (std::size_t i = 0; i < types.size(); ++i) {
        if (i)
            out += i + 1 == types.size() ? " or " : ", ";
        out += to_string(types[i]);
    }
    return out;
}

} // namespace

std::vector<ColumnFact> column_facts(const Rows& rows) {
    std::vector<ColumnFact> out;
    for (int r = 0; r < rows.size(); ++r)
        out.push_back({std::string(rows.text(r, 0)), std::string(rows.text(r, 1)),
                       std::string(rows.text(r, 2)), std::string(rows.text(r, 3)),
                       rows.text(r, 4) == "t", rows.text(r, 5) == "t"});
    return out;
}

std::vector<MappingProblem> apply_facts(Mapping& mapping, const std::vector<ColumnFact>& facts,
                                        const std::string& schema_shown) {
    std::vector<MappingProblem> problems;
    auto fact_of = [&](const std::string& table, const std::string& column) -> const ColumnFact* {
        for (const ColumnFact& f : facts)
            if (f.table == table && f.column == column)
                return &f;
        return nullptr;
    };
    auto has_table = [&](const std::string& table) {
        return std::any_of(facts.begin(), facts.end(),
                           [&](const ColumnFact& f) { return f.table == table; });
    };
    std::vector<std::string> missing_tables;
    for (MappedField& f : mapping.fields()) {
        const std::string& table = *f.table;
        const std::string where = schema_shown + quote_identifier(table);
        if (!has_table(table)) {
            if (std::find(missing_tables.begin(), missing_tables.end(), table) ==
                missing_tables.end()) {
                missing_tables.push_back(table);
                problems.push_back({"table " + where + " (" + std::string(f.table_key) +
                                        ".table) does not exist or this role cannot read it",
                                    "create it, grant SELECT on it, or fix " +
                                        std::string(f.table_key) + ".table in the mapping"});
            }
            continue;
        }
        if (!f.column->mapped())
            continue;
        const ColumnFact* fact = fact_of(table, f.column->name);
        std::string key = std::string(f.table_key) + "." + std::string(f.key);
        if (!fact) {
            problems.push_back(
                {"column " + where + "." + quote_identifier(f.column->name) + " (" + key +
                     ") does not exist",
                 "add it, or fix " + key + " in the mapping (names are case-sensitive)"});
            continue;
        }
        Column& c = *f.column;
        const std::string& data_type = fact->data_type;
        c.type = column_type_of(data_type);
        c.type_sql = fact->type_sql;
        c.has_default = fact->has_default;
        c.unique = fact->unique;
        // Integer columns hold numbers too (Prisma's Int for a response time).
        bool fits = f.accepts.empty() ||
                    std::find(f.accepts.begin(), f.accepts.end(), c.type) != f.accepts.end();
        if (!fits)
            problems.push_back({"column " + where + "." + quote_identifier(c.name) + " (" + key +
                                    ") is " + data_type + "; modelrepo reads it as " +
                                    accepted(f.accepts),
                                "map " + key + " to another column, or change its type"});
    }
    return problems;
}

std::vector<MappingProblem> write_problems(const Mapping& mapping,
                                           const std::string& schema_shown) {
    std::vector<MappingProblem> problems;
    auto need_unique = [&](const std::string& table, const Column& c, std::string_view key,
                           std::string_view why) {
        if (c.unique)
            return;
        std::string where = schema_shown + quote_identifier(table);
        problems.push_back(
            {"no unique index on " + where + "." + quote_identifier(c.name) + " (" +
                 std::string(key) + "): " + std::string(why),
             "CREATE UNIQUE INDEX ON " + where + " (" + quote_identifier(c.name) + ")"});
    };
    need_unique(mapping.providers.table, mapping.providers.slug, "providers.slug",
                "an import finds providers by slug");
    need_unique(mapping.models.table, mapping.models.slug, "models.slug",
                "modelrepo finds models by slug");
    need_unique(mapping.statuses.table, mapping.statuses.model_id, "statuses.model_id",
                "a model has one status row, upserted by model");
    auto need_id = [&](const std::string& table, const Column& id, std::string_view key) {
        if (!id.mapped() || id.has_default || id.type == ColumnType::text ||
            id.type == ColumnType::uuid)
            return;
        problems.push_back({"column " + schema_shown + quote_identifier(table) + "." +
                                quote_identifier(id.name) + " (" + std::string(key) +
                                ") has no default and is neither text nor uuid: modelrepo "
                                "cannot make an id for a row it inserts",
                            "give it a default (an identity column), or make it text"});
    };
    need_id(mapping.providers.table, mapping.providers.id, "providers.id");
    need_id(mapping.models.table, mapping.models.id, "models.id");
    need_id(mapping.statuses.table, mapping.statuses.id, "statuses.id");
    return problems;
}

} // namespace modelrepo::detail
