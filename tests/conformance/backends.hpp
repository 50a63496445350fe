// SPDX-License-Identifier: MIT
// The backends the conformance suite runs, one factory each. Every factory serves the
// bundled catalogue (builtin_snapshot()) and says what its backend can do; a new backend
// is one more factory here and one more name in MODELREPO_BACKENDS.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <modelrepo/modelrepo.hpp>

#include "temp_dir.hpp"

#if MODELREPO_HAS_POSTGRES
#include "pg_catalogue.hpp"
#endif
#if MODELREPO_HAS_GITHUB
#include "http_server.hpp"
#endif

namespace modelrepo::test {

/// One backend under test, opened by URI as services open it.
struct Backend {
    std::shared_ptr<ModelRepository> repo;
    bool writes = false;  ///< takes status writes
    bool watches = false; ///< reports changes
    /// Reports a change as `resync` (re-read everything) rather than by slug: a source that
    /// only knows its whole copy changed (an HTTP backup).
    bool changes_as_resync = false;
    bool copy = false;   ///< has a last-known copy (CopyControl)
    bool outbox = false; ///< has an outbox (OutboxControl)
    /// Changes `slug`'s status to `health` through another client of the same source (for
    /// watch); empty when no other client exists (the change is made through `repo`).
    std::function<void(const std::string& slug, const std::string& health)> other_client;
    std::shared_ptr<void> keep; ///< what the backend needs alive (a server, a directory)
};

struct MemoryBackend {
    static constexpr const char* name = "memory (builtin:)";
    static Backend make() {
        Backend b;
        b.repo = modelrepo::open("builtin:").value();
        b.writes = b.watches = true;
        return b;
    }
};

struct FileBackend {
    static constexpr const char* name = "file (file://)";
    static Backend make() {
        auto dir = std::make_shared<TempDir>();
        auto path = dir->write("catalogue.json", write_snapshot(builtin_snapshot()));
        Backend b;
        b.repo = modelrepo::open("file://" + path.string()).value();
        b.writes = b.watches = true; // a MemoryRepository loaded from the file
        b.keep = dir;
        return b;
    }
};

#if MODELREPO_HAS_GITHUB
struct HttpBackend {
    static constexpr const char* name = "HTTP (https://, github://) on loopback";
    /// What the server serves; another client "changes" it by publishing a new body.
    struct Served {
        std::mutex mutex;
        Snapshot snapshot = builtin_snapshot();
        std::string body = write_snapshot(snapshot);
        int etag = 1;
    };
    static Backend make() {
        auto server = std::make_shared<HttpServer>();
        auto served = std::make_shared<Served>();
        server->handle([served](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(served->mutex);
            std::string etag = "\"" + std::to_string(served->etag) + "\"";
            if (req.get_header_value("If-None-Match") == etag) {
                res.status = 304;
                return;
            }
            res.set_header("ETag", etag);
            res.set_content(served->body, "application/json");
        });
        Backend b;
        b.repo = modelrepo::open(server->base() + "/models.json?refresh_interval=100ms").value();
        b.watches = true; // it revalidates every refresh_interval
        b.changes_as_resync = true;
        b.other_client = [served](const std::string& slug, const std::string& health) {
            std::lock_guard lock(served->mutex);
            for (auto& st : served->snapshot.statuses)
                if (st.model_slug == slug) {
                    st.health = parse_health(health).value();
                    st.checked_at = Clock::now();
                }
            served->snapshot.generated_at = Clock::now();
            served->body = write_snapshot(served->snapshot);
            ++served->etag;
        };
        b.keep = server;
        return b;
    }
};
#endif

#if MODELREPO_HAS_POSTGRES
/// A fresh database with the bundled catalogue (migrated with `migrate_query`: "feed=logical"
/// for a publication instead of triggers), opened with `query`.
inline Backend postgres_backend(const std::string& db, const std::string& query, bool copy,
                                bool outbox, const std::string& migrate_query = "") {
    auto dir = std::make_shared<TempDir>();
    std::string q = "connect_timeout=2";
    if (copy)
        q += "&cache=live&cache_dir=" + dir->path().string();
    if (outbox)
        q += "&outbox=" + (dir->path() / "outbox.db").string();
    if (!query.empty())
        q += "&" + query;
    fresh_catalogue(db, migrate_query);
    Backend b;
    auto opened = modelrepo::open(server().url("app", password, db, "127.0.0.1", q));
    REQUIRE(opened);
    b.repo = opened.value();
    b.writes = b.watches = true;
    b.copy = copy;
    b.outbox = outbox;
    b.other_client = [db](const std::string& slug, const std::string& health) {
        server().psql("UPDATE model_status SET health = '" + health +
                          "', checked_at = now() WHERE model_slug = '" + slug + "'",
                      db);
    };
    b.keep = dir;
    return b;
}

struct PostgresBackend {
    static constexpr const char* name = "PostgreSQL";
    static Backend make() { return postgres_backend("conformance_pg", "", false, false); }
};
struct PostgresCopyBackend {
    static constexpr const char* name = "PostgreSQL with cache=live and cache_dir";
    static Backend make() { return postgres_backend("conformance_copy", "", true, false); }
};
struct PostgresOutboxBackend {
    static constexpr const char* name = "PostgreSQL with cache=live and outbox";
    static Backend make() { return postgres_backend("conformance_outbox", "", true, true); }
};
/// The logical feed (the server runs with wal_level=logical; the role may replicate).
inline Backend postgres_logical_backend(const std::string& db, bool copy) {
    static const bool granted = (server().psql("ALTER ROLE app REPLICATION"), true);
    (void)granted;
    return postgres_backend(db, "feed=logical", copy, false, "feed=logical");
}
struct PostgresLogicalBackend {
    static constexpr const char* name = "PostgreSQL with feed=logical";
    static Backend make() { return postgres_logical_backend("conformance_logical", false); }
};
struct PostgresLogicalCopyBackend {
    static constexpr const char* name = "PostgreSQL with feed=logical and cache=live";
    static Backend make() { return postgres_logical_backend("conformance_logical_copy", true); }
};
#endif

} // namespace modelrepo::test
