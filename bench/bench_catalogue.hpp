// SPDX-License-Identifier: MIT
// The benchmarks' catalogue in PostgreSQL: `n` models under 10 providers, each with a
// status, in a database at a given schema version; and the writers that update it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <modelrepo/modelrepo.hpp>

#include "peers.hpp"
#include "pg_server.hpp"
#include "postgres/catalog/schema.hpp"
#include "temp_dir.hpp"

namespace bench {

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

inline const std::string password = "bench-Scale-Pw-2718";

/// The DDL `prisma migrate` writes for the Prisma fixture (tests/prisma/owned, under the
/// source tree `root`) and that fixture's mapping file; empty DDL when it cannot be read.
inline std::string prisma_ddl(const std::string& root) {
    std::ifstream in(root + "/tests/prisma/owned/migration.sql");
    std::stringstream ddl;
    ddl << in.rdbuf();
    return in ? ddl.str() : std::string();
}
inline std::string prisma_mapping_file(const std::string& root) {
    return root + "/tests/prisma/owned/mapping.json";
}

/// A catalogue of `n` models (slugs m1 … mN) under 10 providers, each with a status.
inline Snapshot catalogue(int n) {
    Snapshot s;
    for (int p = 0; p < 10; ++p)
        s.providers.push_back({"p" + std::to_string(p), "Provider " + std::to_string(p), ""});
    auto now = system_clock::now();
    for (int i = 1; i <= n; ++i) {
        Model m;
        m.slug = "m" + std::to_string(i);
        m.name = "Model " + std::to_string(i);
        m.provider_slug = "p" + std::to_string(i % 10);
        m.description = "a model of the benchmark's catalogue";
        m.context_window = 128'000;
        s.models.push_back(std::move(m));
        ModelStatus st;
        st.model_slug = "m" + std::to_string(i);
        st.health = Health::operational;
        st.availability = 0.99;
        st.latency_ms = 120;
        st.error_rate = 0.01;
        st.region = "eu-west";
        st.checked_at = now;
        s.statuses.push_back(std::move(st));
    }
    return s;
}

/// Database `db` at schema `version` (the migrations up to it), owned by "app", holding
/// `snapshot`.
inline bool make_database(test::PgServer& server, const std::string& db, int version,
                          const Snapshot& snapshot) {
    server.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    server.psql("CREATE DATABASE " + db + " OWNER app");
    std::string sql = "SET ROLE app; CREATE TABLE schema_migrations (version integer PRIMARY "
                      "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());";
    for (const auto& m : detail::migrations())
        if (m.version <= version)
            sql += std::string(m.sql) + "; INSERT INTO schema_migrations (version, name) VALUES (" +
                   std::to_string(m.version) + ", 'bench');";
    server.psql(sql, db);
    auto repo = PostgresRepository::open(
        server.url("app", password, db, "127.0.0.1", "socket_timeout=600"));
    if (!repo) {
        std::fprintf(stderr, "%s\n", repo.error().to_string().c_str());
        return false;
    }
    // At the current schema, what `modelrepo migrate` does after the migrations too (the
    // row triggers' WHEN, which keeps an import's rows from calling them).
    if (version >= detail::sql::feed_schema_version)
        if (auto migrated = repo.value()->migrate(); !migrated) {
            std::fprintf(stderr, "migrate %s: %s\n", db.c_str(),
                         migrated.error().to_string().c_str());
            return false;
        }
    if (auto imported = repo.value()->import_snapshot(snapshot); !imported) {
        std::fprintf(stderr, "import into %s: %s\n", db.c_str(),
                     imported.error().to_string().c_str());
        return false;
    }
    server.psql("VACUUM ANALYZE", db);
    return true;
}

/// pgbench, 8 clients, each UPDATE one status: on rows of its own (`distinct`), or all
/// on the same 8 rows. Transactions per second, 0 on failure.
inline double writers_tps(const test::PgServer& server, const test::TempDir& dir,
                          const std::string& db, int models, bool distinct, int seconds) {
    // Client c writes rows c+1, c+9, c+17, …: no two clients share a row.
    std::string pick = distinct ? "\\set id 1 + :client_id + 8 * random(0, " +
                                      std::to_string(std::max(models / 8 - 1, 0)) + ")\n"
                                : "\\set id random(1, 8)\n";
    auto file = dir.write("writers.sql", pick + "UPDATE model_status SET availability = "
                                                "random(), checked_at = now() WHERE model_slug "
                                                "= 'm' || :id;\n");
    return pgbench_file_tps(server, file, db, "app", password, 8, 2, seconds);
}

} // namespace bench
