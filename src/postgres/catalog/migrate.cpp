// SPDX-License-Identifier: MIT
// SqlCatalog's schema: its version and migrate() (modelrepo's own tables, or the change
// feed installed on a mapping's), serialized across processes by an advisory lock.

#include "../feed/installed_feed.hpp"
#include "../logical/logical_feed.hpp"
#include "calls.hpp"

namespace modelrepo::detail {

Result<int> SqlCatalog::schema_version() {
    return with_connection(direct(), [&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("READ ONLY", until, [&](Connection& c) -> Result<int> {
            if (auto path = local_search_path(); !path.empty())
                if (auto set = c.script(path, until); !set)
                    return std::move(set).error();
            auto has_table = c.script(std::string(sql::has_migrations_table), until);
            if (!has_table)
                return std::move(has_table).error();
            if (has_table.value().text(0, 0) != "t")
                return 0;
            auto version = c.script(std::string(sql::schema_version), until);
            if (!version)
                return std::move(version).error();
            return number<int>(version.value(), 0, 0);
        });
    });
}

Result<SqlCatalog::InstalledFeed> SqlCatalog::installed_feed() {
    // On a session of its own, as the feed's are: asked once at a feed's start, it takes
    // no pooled session (nor counts in the pool's statistics).
    const auto& session = feed_session();
    Watchdog watchdog;
    const Deadline until = SteadyClock::now() + session->connect_timeout + config_.query_timeout;
    auto opened = Connection::open(session, watchdog, until);
    if (!opened)
        return std::move(opened).error();
    auto found = opened.value()->script(
        "SELECT " + installed_feed::publication_sql(logical::publication_name(config_.schema)) +
            ", " +
            installed_feed::triggers_sql(prefix_ + quote_identifier(mapping_.statuses.table)) +
            ", current_setting('wal_level'), " + installed_feed::can_replicate_sql,
        until);
    if (!found)
        return std::move(found).error();
    const auto& row = found.value();
    InstalledFeed out;
    out.triggers = row.text(0, 1) == "t";
    out.kind = row.text(0, 0) == "t"   ? FeedKind::logical
               : row.text(0, 1) == "t" ? FeedKind::triggers
                                       : FeedKind::automatic;
    if (row.text(0, 2) != "logical")
        out.logical_blocked = "the server's wal_level is " + std::string(row.text(0, 2)) +
                              ", not logical (ALTER SYSTEM SET wal_level = logical; restart)";
    else if (row.text(0, 3) != "t")
        out.logical_blocked = "the role may not replicate (ALTER ROLE ... REPLICATION)";
    return out;
}

namespace {

/// A mapped schema's migrations: the catalogue tables are the user's (nothing is created,
/// altered or dropped in them), the change feed is installed on them at version 3, where
/// modelrepo's own tables have theirs.
std::vector<std::pair<int, std::string>> mapped_migrations(const Mapping& m,
                                                           const std::string& prefix) {
    return {{1, ""}, {2, ""}, {3, mapped_feed_sql(m, prefix)}};
}

/// The trigger feed's row trigger on `table` of `kind` ("status", "model", "provider").
/// On modelrepo's own tables it is not called at all while an import runs (modelrepo.bulk,
/// in its WHEN), so that its rows cost the import nothing; a mapping's function (made by
/// its migration 3) checks that itself.
std::string row_trigger(const std::string& table, const char* kind, bool builtin) {
    const std::string head = "CREATE OR REPLACE TRIGGER modelrepo_" + std::string(kind) +
                             "_logged AFTER INSERT OR UPDATE OR DELETE ON " + table +
                             " FOR EACH ROW ";
    if (!builtin)
        return head + "EXECUTE FUNCTION modelrepo_" + kind + "_logged()";
    return head +
           "WHEN (current_setting('modelrepo.bulk', true) IS DISTINCT FROM 'on') "
           "EXECUTE FUNCTION modelrepo_row_logged('" +
           kind + "')";
}

/// Makes publication `publication` for `tables` (quoted, comma-separated) when missing.
std::string create_publication(const std::string& publication, const std::string& tables) {
    return "DO $$ BEGIN IF NOT " + installed_feed::publication_sql(publication) +
           " THEN CREATE PUBLICATION " + quote_identifier(publication) + " FOR TABLE " + tables +
           "; END IF; END $$";
}

/// The statements that put the catalogue's tables (modelrepo's own, or a mapping's, whose
/// migration 3 installed the trigger feed on them) on `feed`, after the migrations: for the
/// logical feed the row and truncate triggers dropped and the publication made; for the
/// trigger feed the other way round. Each statement may run again (IF EXISTS, OR REPLACE, a
/// publication made only when missing), and migrate's advisory lock keeps two of them from
/// running at once.
std::vector<std::string> feed_switch(const Mapping& m, const std::string& prefix, FeedKind feed,
                                     const std::string& publication) {
    struct Table {
        std::string name;
        const char* kind;
    };
    const Table tables[] = {{prefix + quote_identifier(m.statuses.table), "status"},
                            {prefix + quote_identifier(m.models.table), "model"},
                            {prefix + quote_identifier(m.providers.table), "provider"}};
    std::vector<std::string> out;
    if (feed == FeedKind::logical) {
        for (const Table& t : tables) {
            out.push_back("DROP TRIGGER IF EXISTS modelrepo_" + std::string(t.kind) +
                          "_logged ON " + t.name);
            out.push_back("DROP TRIGGER IF EXISTS modelrepo_truncated ON " + t.name);
        }
        out.push_back(create_publication(publication, tables[2].name + ", " + tables[1].name +
                                                          ", " + tables[0].name));
    } else if (feed == FeedKind::triggers) {
        for (const Table& t : tables) {
            out.push_back(row_trigger(t.name, t.kind, m.builtin));
            out.push_back("CREATE OR REPLACE TRIGGER modelrepo_truncated AFTER TRUNCATE ON " +
                          t.name + " FOR EACH STATEMENT EXECUTE FUNCTION modelrepo_truncated()");
        }
        out.push_back("DROP PUBLICATION IF EXISTS " + quote_identifier(publication));
    } else if (m.builtin) {
        // auto leaves the feed as it is, but modelrepo's row triggers made before they had
        // their WHEN (which keeps an import's rows from calling them at all) get it, when
        // the role may (it owns the tables).
        std::string refresh;
        for (const Table& t : tables)
            refresh += row_trigger(t.name, t.kind, true) + "; ";
        out.push_back("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = "
                      "'modelrepo_status_logged' AND tgrelid = " +
                      quote_literal(tables[0].name) +
                      "::regclass AND tgqual IS NULL) AND pg_has_role((SELECT relowner FROM "
                      "pg_class WHERE oid = " +
                      quote_literal(tables[0].name) + "::regclass), 'MEMBER') THEN " + refresh +
                      "END IF; END $$");
    }
    return out;
}

/// A mapped table in a publication needs a replica identity, or every UPDATE and DELETE
/// on it fails: the tables that have none, as an error naming the fix.
Result<void> check_replica_identity(Connection& c, const Mapping& m, const std::string& prefix,
                                    Deadline until) {
    std::string names;
    for (const auto* table : {&m.providers.table, &m.models.table, &m.statuses.table})
        names += (names.empty() ? "" : ", ") + quote_literal(prefix + quote_identifier(*table));
    auto found = c.script(
        "SELECT t.name, c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = "
        "c.oid AND i.indisprimary) FROM unnest(ARRAY[" +
            names + "]) AS t(name) JOIN pg_class c ON c.oid = to_regclass(t.name)",
        until);
    if (!found)
        return std::move(found).error();
    const auto& rows = found.value();
    for (int i = 0; i < rows.size(); ++i) {
        const bool none =
            rows.text(i, 1) == "n" || (rows.text(i, 1) == "d" && rows.text(i, 2) != "t");
        if (!none)
            continue;
        const std::string table(rows.text(i, 0));
        return make_error(
            Errc::schema_missing,
            "the mapped table " + table +
                " has no replica identity (no primary key), and feed=logical puts it in a "
                "publication, where every UPDATE and DELETE on such a table fails: add a "
                "primary key, or ALTER TABLE " +
                table +
                " REPLICA IDENTITY USING INDEX <a unique index on NOT NULL columns>, then run "
                "migrate again (nothing was changed)");
    }
    return success();
}

std::string_view mapped_migration_name(int version) {
    return version == 3 ? "change feed on the mapped tables"
                        : "the mapped tables are the user's (nothing created)";
}

} // namespace

Result<int> SqlCatalog::migrate() {
    return with_connection(direct(), [&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("", until, [&](Connection& c) -> Result<int> {
            auto run = [&](const std::string& sql) { return c.script(sql, until); };
            // Its IF EXISTS and IF NOT EXISTS are expected: no NOTICE on a program's stderr.
            std::vector<std::string> setup{"SET LOCAL client_min_messages = warning",
                                           "SELECT pg_advisory_xact_lock(" +
                                               std::to_string(migration_lock_key) + ")"};
            if (!config_.schema.empty()) {
                setup.push_back("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(config_.schema));
                setup.push_back(local_search_path());
            }
            setup.push_back("CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
                            "PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL "
                            "DEFAULT now())");
            for (const auto& sql : setup)
                if (auto done = run(sql); !done)
                    return std::move(done).error();
            // A user's tables must be what the mapping says before triggers go on them.
            std::vector<std::pair<int, std::string>> steps;
            if (mapping_.builtin) {
                for (const auto& m : migrations())
                    steps.emplace_back(m.version, std::string(m.sql));
            } else {
                auto planned = plan(c, until);
                if (!planned)
                    return std::move(planned).error();
                steps = mapped_migrations(planned.value()->mapping, prefix_);
            }
            auto version = run(std::string(sql::schema_version));
            if (!version)
                return std::move(version).error();
            int current = number<int>(version.value(), 0, 0);
            for (const auto& [number_of, sql] : steps) {
                if (number_of <= current)
                    continue;
                if (!sql.empty())
                    if (auto done = run(sql); !done)
                        return std::move(done).error();
                std::string number_text = std::to_string(number_of);
                std::string name(mapping_.builtin ? migrations()[number_of - 1].name
                                                  : mapped_migration_name(number_of));
                auto noted =
                    c.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              params(number_text, name), until);
                if (!noted)
                    return std::move(noted).error();
                current = number_of;
            }
            // feed= in the URL: the catalogue put on that feed (auto leaves it as it is).
            const std::string publication = logical::publication_name(config_.schema);
            if (!mapping_.builtin && config_.feed == FeedKind::logical)
                if (auto fits = check_replica_identity(c, mapping_, prefix_, until); !fits)
                    return std::move(fits).error();
            for (const auto& sql : feed_switch(mapping_, prefix_, config_.feed, publication))
                if (auto done = run(sql); !done)
                    return std::move(done).error();
            return current;
        });
    });
}

} // namespace modelrepo::detail
