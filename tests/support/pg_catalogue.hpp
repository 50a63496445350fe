// SPDX-License-Identifier: MIT
// What the PostgreSQL integration tests share: the harness's server with a test role,
// a fresh catalogue per test database, and the record of every error message seen, so
// that each test binary can check that none held the password.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_server.hpp"

namespace modelrepo::test {

/// A distinctive password: every message and log line is scanned for it.
inline const std::string password = "Pw-Zx81-qUuX-7745";

/// Every error message the tests of this binary looked at.
inline std::vector<std::string>& seen_messages() {
    static std::vector<std::string> messages;
    return messages;
}

/// The binary's server, with the login role "app" (SCRAM, `password`).
inline PgServer& server() {
    auto& s = shared_pg_server();
    require_pg(s);
    static bool prepared = [&] {
        s.create_role("app", password, "modelrepo");
        return true;
    }();
    (void)prepared;
    return s;
}

/// Starts the server again when the scope ends, however it ends (a test that kill9()s it).
struct RestartOnExit {
    PgServer& s;
    ~RestartOnExit() {
        if (!s.available())
            s.start();
    }
};

/// The backend alone (a URL without the durable layer's parameters).
inline std::shared_ptr<PostgresRepository> open_repo(const std::string& url) {
    auto repo = PostgresRepository::open(url);
    if (!repo)
        FAIL(repo.error().to_string());
    return repo.value();
}

/// A PostgreSQL source as open() makes it (the copy and the outbox its URL asks for, around
/// the backend), built the way a program that wants both does: the backend, then
/// make_durable(). `->` reaches the layered repository; `pg` the backend below it.
struct Layered {
    std::shared_ptr<PostgresRepository> pg;
    std::shared_ptr<ModelRepository> repo;

    ModelRepository* operator->() const { return repo.get(); }
    CopyState copy_state() const {
        auto* copy = repo->capability<CopyControl>();
        REQUIRE(copy);
        return copy->copy_state();
    }
    OutboxControl& outbox() const {
        auto* outbox = repo->capability<OutboxControl>();
        REQUIRE(outbox);
        return *outbox;
    }
};

inline Layered open_layered(const std::string& url) {
    std::string backend_url = url;
    auto durable = DurableConfig::take_from(backend_url);
    if (!durable)
        FAIL(durable.error().to_string());
    Layered out;
    out.pg = open_repo(backend_url);
    auto layered = make_durable(out.pg, durable.value());
    if (!layered)
        FAIL(layered.error().to_string());
    out.repo = std::move(layered).value();
    return out;
}

/// The feed `repo` runs (modelrepo_feed_info's label): "logical", "triggers", "polling",
/// or "deciding" while feed=auto has not asked the database yet.
inline std::string feed_kind(PostgresRepository& repo) {
    for (const auto& family : repo.backend_metrics())
        if (family.name == "modelrepo_feed_info" && !family.samples.empty())
            for (const auto& [label, value] : family.samples[0].labels)
                if (label == "feed")
                    return value;
    return "";
}

/// Drops and creates database `db` owned by "app".
inline void fresh_database(const std::string& db, const std::string& options = "") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS \"" + db + "\" WITH (FORCE)");
    s.psql("CREATE DATABASE \"" + db + "\" OWNER app " + options);
}

/// A repository on a fresh database with the builtin catalogue imported: through the
/// backend itself, or, when the query asks for the durable layer, through a loader before
/// the layer is put around the backend (so the copy starts from the imported catalogue).
inline Layered fresh_catalogue(const std::string& db, const std::string& query = "") {
    fresh_database(db);
    std::string url = server().url("app", password, db, "127.0.0.1", query);
    std::string backend_url = url;
    auto durable = DurableConfig::take_from(backend_url);
    if (!durable)
        FAIL(durable.error().to_string());
    auto load = [](PostgresRepository& repo) {
        auto version = repo.migrate();
        if (!version)
            FAIL(version.error().to_string());
        auto imported = repo.import_snapshot(builtin_snapshot());
        if (!imported)
            FAIL(imported.error().to_string());
    };
    if (durable.value().empty()) {
        Layered out;
        out.pg = open_repo(backend_url);
        load(*out.pg);
        out.repo = out.pg;
        return out;
    }
    load(*open_repo(backend_url));
    return open_layered(url);
}

/// The value, or `fallback` when the call failed.
template <class T>
T value_or(const Result<T>& r, T fallback) {
    return r ? r.value() : fallback;
}

/// The error of a call that must fail with `code`; its message is recorded.
template <class T>
Error expect_error(const Result<T>& r, Errc code) {
    REQUIRE_FALSE(r);
    CAPTURE(r.error().to_string());
    CHECK(r.error().is(code));
    seen_messages().push_back(r.error().message);
    return r.error();
}

/// Checks every recorded message (at least `at_least` of them) for the password.
inline void check_no_password_seen(std::size_t at_least) {
    CHECK(seen_messages().size() >= at_least);
    for (const std::string& m : seen_messages()) {
        CAPTURE(m);
        CHECK(m.find(password) == std::string::npos);
    }
}

} // namespace modelrepo::test
