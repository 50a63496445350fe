// SPDX-License-Identifier: MIT
// The SQL of every repository call, generated from a Mapping: modelrepo's own tables are
// the built-in mapping, a user's tables (`mapping=`) another. Names are quoted as
// identifiers and values of the mapping (health spellings) as literals; nothing of the
// mapping is spliced into SQL as it is.
#include <algorithm>
#include <string>

#include "../driver/session_config.hpp"
#include "../feed/feed_sql.hpp"
#include "mapping.hpp"
#include "schema.hpp"

namespace modelrepo::detail {

namespace {

/// A column and the expression written into it.
using Values = std::vector<std::pair<const Column*, std::string>>;

/// The parts of an INSERT … SELECT … ON CONFLICT DO UPDATE over `values`: the columns,
/// their expressions, `SET` of each one not in `keys`, and those set columns (but
/// `uncompared`) as `(cur.…)` and `(EXCLUDED.…)`, for a write only when a row differs.
struct UpsertParts {
    std::string names, exprs, sets, old_values, new_values;
};
UpsertParts upsert_parts(const Values& values, std::initializer_list<const Column*> keys,
                         const Column* uncompared = nullptr) {
    UpsertParts p;
    auto add = [](std::string& list, const std::string& item) {
        list += (list.empty() ? "" : ", ") + item;
    };
    for (const auto& [column, expr] : values) {
        std::string name = quote_identifier(column->name);
        add(p.names, name);
        add(p.exprs, expr);
        if (std::find(keys.begin(), keys.end(), column) != keys.end())
            continue;
        add(p.sets, name + " = EXCLUDED." + name);
        if (column != uncompared) {
            add(p.old_values, "cur." + name);
            add(p.new_values, "EXCLUDED." + name);
        }
    }
    return p;
}

/// Builds the SQL of one mapping: tables with the schema prefix, columns with an alias.
class Sql {
public:
    Sql(const Mapping& m, const std::string& prefix)
        : m_(m)
        , prefix_(prefix) {}

    std::string table(const std::string& name) const { return prefix_ + quote_identifier(name); }
    static std::string col(std::string_view alias, const Column& c) {
        return std::string(alias) + "." + quote_identifier(c.name);
    }
    std::string providers() const { return table(m_.providers.table); }
    std::string models() const { return table(m_.models.table); }
    std::string statuses() const { return table(m_.statuses.table); }

    /// The column a relation to providers (models) goes by: the id, else the slug.
    const Column& provider_key() const {
        return m_.providers.id.mapped() ? m_.providers.id : m_.providers.slug;
    }
    const Column& model_key() const {
        return m_.models.id.mapped() ? m_.models.id : m_.models.slug;
    }

    /// A text column, '' when absent or NULL.
    static std::string text_or_empty(std::string_view alias, const Column& c, bool nullable) {
        if (!c.mapped())
            return "''";
        return nullable ? "coalesce(" + col(alias, c) + ", '')" : col(alias, c);
    }
    /// A number column as float8; `absent` when it is not mapped.
    static std::string number(std::string_view alias, const Column& c, std::string_view absent) {
        if (!c.mapped())
            return std::string(absent);
        return c.type == ColumnType::floating ? col(alias, c) : col(alias, c) + "::float8";
    }
    /// µs since the epoch; a timestamp without time zone holds UTC (extract reads it so).
    /// Held within what a Timestamp holds, as parse_timestamp reads it
    /// (timestamp_first_year to timestamp_last_year):
    /// 'infinity', a year 1 or a year 294276 stored there reads as the nearest end,
    /// instead of failing the whole read ("cannot convert infinity to bigint") or
    /// overflowing. NULL stays NULL.
    static std::string micros(std::string_view alias, const Column& c) {
        const std::string v = col(alias, c);
        const std::string first =
            "'" + std::to_string(timestamp_first_year) + "-01-01 00:00:00+00'";
        const std::string last = "'" + std::to_string(timestamp_last_year) + "-12-31 23:59:59+00'";
        return "(extract(epoch FROM CASE WHEN " + v + " < " + first + " THEN " + first + " WHEN " +
               v + " > " + last + " THEN " + last + " ELSE " + v + " END) * 1000000)::bigint";
    }

    /// The status's health as modelrepo names it.
    std::string health_read(std::string_view alias) const {
        return health_of(col(alias, m_.statuses.health));
    }
    /// `raw`, a value of the health column, as modelrepo names it.
    std::string health_of(const std::string& raw) const {
        std::string value = raw;
        if (m_.statuses.health.type == ColumnType::enumerated)
            value += "::text";
        if (m_.health_values.empty())
            return value;
        std::string out = "CASE " + value;
        for (const auto& [ours, theirs] : m_.health_values)
            out += " WHEN " + quote_literal(theirs) + " THEN " + quote_literal(ours);
        return out + " ELSE " + value + " END";
    }
    /// `text` (modelrepo's health name) as the table's value, of the column's type.
    std::string health_write(const std::string& text) const {
        const Column& h = m_.statuses.health;
        std::string value = text;
        if (!m_.health_values.empty()) {
            value = "CASE " + text;
            for (const auto& [ours, theirs] : m_.health_values)
                value += " WHEN " + quote_literal(ours) + " THEN " + quote_literal(theirs);
            value += " ELSE " + text + " END";
        }
        return h.type == ColumnType::enumerated ? "CAST(" + value + " AS " + h.type_sql + ")"
                                                : value;
    }
    /// A timestamptz expression as the column's value (UTC in a timestamp column).
    static std::string time_write(const Column& c, const std::string& value) {
        return c.type == ColumnType::timestamp ? "(" + value + " AT TIME ZONE 'UTC')" : value;
    }
    /// A new row's id, when the column does not fill itself.
    static std::string new_id(const Column& id) {
        return id.type == ColumnType::uuid ? "gen_random_uuid()"
                                           : "replace(gen_random_uuid()::text, '-', '')";
    }
    static bool needs_id(const Column& id) { return id.mapped() && !id.has_default; }

    /// The six columns of a status (after its model's slug): health, availability,
    /// latency_ms, error_rate, region, checked_at (µs).
    std::string status_columns(std::string_view s) const {
        const auto& st = m_.statuses;
        return health_read(s) + ", " + number(s, st.availability, "0::float8") + ", " +
               number(s, st.latency_ms, "NULL::float8") + ", " +
               number(s, st.error_rate, "0::float8") + ", " +
               text_or_empty(s, st.region, !m_.builtin) + ", " + micros(s, st.checked_at);
    }

    /// slug, name, provider slug, description, context_window, active, provider name,
    /// provider website, then the status columns; FROM models m, providers p, statuses s.
    std::string model_select() const {
        const auto& md = m_.models;
        const auto& p = m_.providers;
        std::string provider_slug = p.id.mapped() ? col("p", p.slug) : col("m", md.provider_id);
        std::string window = md.context_window.mapped()
                                 ? (m_.builtin ? col("m", md.context_window)
                                               : col("m", md.context_window) + "::bigint")
                                 : "NULL::bigint";
        std::string active =
            md.active.mapped()
                ? (m_.builtin ? col("m", md.active) : "coalesce(" + col("m", md.active) + ", true)")
                : "true";
        return "SELECT " + col("m", md.slug) + ", " + col("m", md.name) + ", " + provider_slug +
               ", " + text_or_empty("m", md.description, !m_.builtin) + ", " + window + ", " +
               active + ", " + col("p", p.name) + ", " +
               text_or_empty("p", p.website, !m_.builtin) + ", " + status_columns("s") + " FROM " +
               models() + " m JOIN " + providers() + " p ON " + col("p", provider_key()) + " = " +
               col("m", md.provider_id) + " LEFT JOIN " + statuses() + " s ON " +
               col("s", m_.statuses.model_id) + " = " + col("m", model_key()) + " ";
    }

    /// A status's model slug, and the join it needs (none when statuses go by slug).
    std::string status_slug() const {
        return m_.models.id.mapped() ? col("m", m_.models.slug) : col("s", m_.statuses.model_id);
    }
    std::string status_from() const {
        std::string from = " FROM " + statuses() + " s";
        if (m_.models.id.mapped())
            from += " JOIN " + models() + " m ON " + col("m", m_.models.id) + " = " +
                    col("s", m_.statuses.model_id);
        return from;
    }

    std::string provider_select() const {
        const auto& p = m_.providers;
        return "SELECT " + col("p", p.slug) + ", " + col("p", p.name) + ", " +
               text_or_empty("p", p.website, !m_.builtin) + " FROM " + providers() + " p ";
    }

    std::string system_stats() const {
        const bool plain =
            m_.health_values.empty() && m_.statuses.health.type != ColumnType::enumerated;
        return plain ? system_stats_by_row() : system_stats_by_group();
    }

    /// A text health spelled as modelrepo spells it: counted row by row.
    std::string system_stats_by_row() const {
        std::string health = col("s", m_.statuses.health);
        auto count_of = [&](std::string_view name) {
            return "count(*) FILTER (WHERE " + health + " = '" + std::string(name) + "'), ";
        };
        std::string active = m_.models.active.mapped()
                                 ? "count(*) FILTER (WHERE " + col("m", m_.models.active) + ")"
                                 : "count(*)";
        return "SELECT count(*), " + active + ", (SELECT count(*) FROM " + providers() + "), " +
               count_of("operational") + count_of("degraded") + count_of("outage") +
               "count(*) FILTER (WHERE " + health + " IS NULL OR " + health +
               " = 'unknown'), (extract(epoch FROM now()) * 1000000)::bigint FROM " + models() +
               " m LEFT JOIN " + statuses() + " s ON " + col("s", m_.statuses.model_id) + " = " +
               col("m", model_key());
    }

    /// An enum or other spellings: rows counted by their raw value first, and only those
    /// few groups translated (an enum's text and a CASE per row cost a quarter of the call).
    std::string system_stats_by_group() const {
        std::string health = health_of("g.h");
        auto sum = [](const std::string& filter) {
            return "coalesce(sum(g.n) FILTER (WHERE " + filter + "), 0)::bigint";
        };
        std::string active = m_.models.active.mapped()
                                 ? "coalesce(" + col("m", m_.models.active) + ", true)"
                                 : "true";
        std::string counted = "(SELECT " + col("s", m_.statuses.health) + " AS h, " + active +
                              " AS active, count(*) AS n FROM " + models() + " m LEFT JOIN " +
                              statuses() + " s ON " + col("s", m_.statuses.model_id) + " = " +
                              col("m", model_key()) + " GROUP BY 1, 2) g";
        return "SELECT " + sum("true") + ", " + sum("g.active") + ", (SELECT count(*) FROM " +
               providers() + "), " + sum(health + " = 'operational'") + ", " +
               sum(health + " = 'degraded'") + ", " + sum(health + " = 'outage'") + ", " +
               sum("g.h IS NULL OR " + health + " = 'unknown'") +
               ", (extract(epoch FROM now()) * 1000000)::bigint FROM " + counted;
    }

    /// One multi-row upsert; a row older than the stored one is left alone. The rows come
    /// sorted by slug, so concurrent batches lock rows in one order (no deadlock). A slug
    /// the models lack fails the statement on the relation's foreign key (23503). Returns
    /// the slug of each row it wrote (the others were ignored as older).
    std::string upsert_statuses() const {
        const auto& st = m_.statuses;
        Values values;
        if (needs_id(st.id))
            values.emplace_back(&st.id, new_id(st.id));
        std::string model = "u.slug";
        if (m_.models.id.mapped())
            model =
                m_.models.id.type == ColumnType::text
                    ? "coalesce(" + col("m", m_.models.id) + ", 'modelrepo: no model ' || u.slug)"
                    : col("m", m_.models.id);
        values.emplace_back(&st.model_id, model);
        values.emplace_back(&st.health, health_write("u.health"));
        if (st.availability.mapped())
            values.emplace_back(&st.availability, "u.availability");
        if (st.latency_ms.mapped())
            values.emplace_back(&st.latency_ms, "u.latency");
        if (st.error_rate.mapped())
            values.emplace_back(&st.error_rate, "u.error_rate");
        if (st.region.mapped())
            values.emplace_back(&st.region, "u.region");
        values.emplace_back(&st.checked_at, time_write(st.checked_at, "u.checked_at"));
        if (st.updated_at.mapped())
            values.emplace_back(&st.updated_at, time_write(st.updated_at, "now()"));
        UpsertParts p = upsert_parts(values, {&st.id, &st.model_id});
        std::string from = " FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], "
                           "$5::float8[], $6::text[], $7::timestamptz[]) AS u(slug, health, "
                           "availability, latency, error_rate, region, checked_at)";
        if (m_.models.id.mapped())
            from += " LEFT JOIN " + models() + " m ON " + col("m", m_.models.slug) + " = u.slug";
        std::string upsert =
            "INSERT INTO " + statuses() + " AS cur (" + p.names + ") SELECT " + p.exprs + from +
            " ON CONFLICT (" + quote_identifier(st.model_id.name) + ") DO UPDATE SET " + p.sets +
            " WHERE " + col("cur", st.checked_at) + " <= EXCLUDED." +
            quote_identifier(st.checked_at.name) + " RETURNING " + col("cur", st.model_id);
        if (!m_.models.id.mapped())
            return upsert; // the model's key is its slug
        return "WITH written(k) AS (" + upsert + ") SELECT " + col("m", m_.models.slug) +
               " FROM written JOIN " + models() + " m ON " + col("m", m_.models.id) +
               " = written.k";
    }

private:
    const Mapping& m_;
    const std::string& prefix_;
};

} // namespace

std::string statement_sql(StatementId id, const Mapping& mapping, const std::string& prefix) {
    Sql q(mapping, prefix);
    switch (id) {
    case count_models:
        return "SELECT count(*) FROM " + q.models();
    case count_providers:
        return "SELECT count(*) FROM " + q.providers();
    case list_statuses:
        return "SELECT " + q.status_slug() + ", " + q.status_columns("s") + q.status_from() +
               " ORDER BY 1";
    case find_models:
        return q.model_select() + "WHERE " + Sql::col("m", mapping.models.slug) +
               " = ANY($1::text[])";
    case find_model:
        return q.model_select() + "WHERE " + Sql::col("m", mapping.models.slug) + " = $1";
    case list_models:
        return q.model_select() + "ORDER BY " + Sql::col("m", mapping.models.slug);
    case system_stats:
        return q.system_stats();
    case upsert_statuses:
        return q.upsert_statuses();
    case list_providers:
        return q.provider_select() + "ORDER BY " + Sql::col("p", mapping.providers.slug);
    case find_providers:
        return q.provider_select() + "WHERE " + Sql::col("p", mapping.providers.slug) +
               " = ANY($1::text[]) ORDER BY " + Sql::col("p", mapping.providers.slug);
    case statement_count:
        break;
    }
    return {};
}

ImportSql import_sql(const Mapping& mapping, const std::string& prefix) {
    Sql q(mapping, prefix);
    const auto& p = mapping.providers;
    const auto& m = mapping.models;
    ImportSql out;
    // Rows are merged by slug: a row that is already there keeps its id (the user's other
    // tables may refer to it) and is written only when it differs.
    auto merge = [&](const std::string& table, const std::string& alias_from, Values values,
                     const Column& slug, const Column& id, const Column& updated_at) {
        if (Sql::needs_id(id))
            values.insert(values.begin(), {&id, Sql::new_id(id)});
        if (updated_at.mapped())
            values.emplace_back(&updated_at, Sql::time_write(updated_at, "now()"));
        UpsertParts u = upsert_parts(values, {&id, &slug}, &updated_at);
        return "INSERT INTO " + table + " AS cur (" + u.names + ") SELECT " + u.exprs + alias_from +
               " ON CONFLICT (" + quote_identifier(slug.name) + ") DO UPDATE SET " + u.sets +
               " WHERE (" + u.old_values + ") IS DISTINCT FROM (" + u.new_values + ")";
    };
    Values pv{{&p.slug, "u.a"}, {&p.name, "u.b"}};
    if (p.website.mapped())
        pv.emplace_back(&p.website, "u.c");
    out.providers =
        merge(q.providers(), " FROM unnest($1::text[], $2::text[], $3::text[]) AS u(a, b, c)", pv,
              p.slug, p.id, p.updated_at);
    Values mv{{&m.slug, "u.a"}, {&m.name, "u.b"}};
    std::string from = " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                       "$5::float8[], $6::boolean[]) AS u(a, b, c, d, e, f)";
    if (p.id.mapped()) {
        mv.emplace_back(&m.provider_id, Sql::col("p", p.id));
        from += " JOIN " + q.providers() + " p ON " + Sql::col("p", p.slug) + " = u.c";
    } else {
        mv.emplace_back(&m.provider_id, "u.c");
    }
    if (m.description.mapped())
        mv.emplace_back(&m.description, "u.d");
    if (m.context_window.mapped())
        mv.emplace_back(&m.context_window, "u.e::bigint");
    if (m.active.mapped())
        mv.emplace_back(&m.active, "u.f");
    out.models = merge(q.models(), from, mv, m.slug, m.id, m.updated_at);
    out.delete_statuses = "DELETE FROM " + q.statuses();
    out.delete_models = "DELETE FROM " + q.models() + " m WHERE NOT EXISTS (SELECT FROM " +
                        "unnest($1::text[]) AS k(slug) WHERE k.slug = " + Sql::col("m", m.slug) +
                        ")";
    out.delete_providers = "DELETE FROM " + q.providers() + " p WHERE NOT EXISTS (SELECT FROM " +
                           "unnest($1::text[]) AS k(slug) WHERE k.slug = " + Sql::col("p", p.slug) +
                           ")";
    return out;
}

namespace {

/// Migration 3's tables and functions, made afresh on a schema whose catalogue tables are
/// the user's: the log by transaction id, its settings and listeners, and one function
/// that logs a row's slugs (the triggers below find them).
constexpr std::string_view feed_log = R"sql(
CREATE SEQUENCE catalog_change_seq AS bigint;
CREATE TABLE catalog_changes (
    version bigint PRIMARY KEY DEFAULT nextval('catalog_change_seq'),
    kind    text NOT NULL,
    slug    text NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    xid     xid8 NOT NULL DEFAULT pg_current_xact_id()
);
ALTER SEQUENCE catalog_change_seq OWNED BY catalog_changes.version;
CREATE INDEX catalog_changes_xid_idx ON catalog_changes (xid);
)sql";
constexpr std::string_view create_function = "CREATE FUNCTION ";
constexpr std::string_view log_slugs_head =
    R"sql(-- One log row per slug a row had or has (two when its slug changed); notified only when a
-- feed is asleep or the writer's transaction is not READ COMMITTED (migration 3's rule).
CREATE FUNCTION modelrepo_log_slugs(change_kind text, new_slug text, old_slug text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    wake boolean;
    v bigint;
    slug text;
BEGIN
    IF old_slug = new_slug THEN
        old_slug := NULL;
    END IF;
    wake := current_setting('transaction_isolation') <> 'read committed'
            OR EXISTS (SELECT 1 FROM catalog_listeners WHERE asleep);
    FOREACH slug IN ARRAY ARRAY[new_slug, old_slug] LOOP
        CONTINUE WHEN slug IS NULL;
)sql";
constexpr std::string_view log_slugs_end = R"sql(    END LOOP;
END $$;
)sql";
constexpr std::string_view feed_objects =
    Joined<feed_log, feed_sql::listener_tables, feed_sql::feed_mark, feed_sql::prune_changes,
           create_function, feed_sql::note_change, feed_sql::catalog_resync, feed_sql::truncated,
           log_slugs_head, feed_sql::LogSlug<feed_sql::loop_kind, feed_sql::loop_slug>::value,
           log_slugs_end>::value;

} // namespace

namespace {

/// `body` dollar-quoted with a tag that does not occur in it: the body splices the mapping's
/// quoted names, which may hold `$$` or any other tag.
std::string dollar_quoted(const std::string& body) {
    std::string tag = "$modelrepo$";
    for (int n = 1; body.find(tag) != std::string::npos; ++n)
        tag = "$modelrepo" + std::to_string(n) + "$";
    return tag + body + tag;
}

} // namespace

std::string mapped_feed_sql(const Mapping& mapping, const std::string& prefix) {
    Sql q(mapping, prefix);
    std::string sql(feed_objects);
    const auto& m = mapping.models;
    const auto& s = mapping.statuses;
    auto slug_function = [&](const std::string& name, const std::string& kind,
                             const std::string& new_slug, const std::string& old_slug) {
        std::string body =
            "\nDECLARE\n    new_slug text;\n    old_slug text;\nBEGIN\n"
            "    IF current_setting('modelrepo.bulk', true) = 'on' THEN\n"
            "        RETURN NULL;\n    END IF;\n"
            "    IF TG_OP <> 'DELETE' THEN\n        new_slug := " +
            new_slug +
            ";\n    END IF;\n    IF TG_OP <> 'INSERT' THEN\n        old_slug := " + old_slug +
            ";\n    END IF;\n    PERFORM modelrepo_log_slugs(" + quote_literal(kind) +
            ", new_slug, old_slug);\n    RETURN NULL;\nEND ";
        return "CREATE FUNCTION " + name +
               "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM "
               "CURRENT AS " +
               dollar_quoted(body) + ";\n";
    };
    auto row_slug = [&](const char* row, const Column& slug) {
        return std::string(row) + "." + quote_identifier(slug.name);
    };
    // A status row names its model by id: the trigger looks up the model's slug.
    auto status_slug = [&](const char* row) {
        std::string key = std::string(row) + "." + quote_identifier(s.model_id.name);
        if (!m.id.mapped())
            return key;
        return "(SELECT " + Sql::col("m", m.slug) + " FROM " + q.models() + " m WHERE " +
               Sql::col("m", m.id) + " = " + key + ")";
    };
    sql += slug_function("modelrepo_provider_logged", "provider",
                         row_slug("NEW", mapping.providers.slug),
                         row_slug("OLD", mapping.providers.slug));
    sql += slug_function("modelrepo_model_logged", "model", row_slug("NEW", m.slug),
                         row_slug("OLD", m.slug));
    sql +=
        slug_function("modelrepo_status_logged", "status", status_slug("NEW"), status_slug("OLD"));
    auto triggers = [&](const std::string& table, const std::string& kind) {
        return "CREATE TRIGGER modelrepo_" + kind + "_logged AFTER INSERT OR UPDATE OR DELETE ON " +
               table + " FOR EACH ROW EXECUTE FUNCTION modelrepo_" + kind +
               "_logged();\nCREATE TRIGGER modelrepo_truncated AFTER TRUNCATE ON " + table +
               " FOR EACH STATEMENT EXECUTE FUNCTION modelrepo_truncated();\n";
    };
    sql += triggers(q.statuses(), "status");
    sql += triggers(q.models(), "model");
    sql += triggers(q.providers(), "provider");
    return sql;
}

} // namespace modelrepo::detail
