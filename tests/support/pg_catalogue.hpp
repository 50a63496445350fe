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

inline std::shared_ptr<PostgresRepository> open_repo(const std::string& url) {
    auto repo = PostgresRepository::open(url);
    if (!repo)
        FAIL(repo.error().to_string());
    return repo.value();
}

/// Drops and creates database `db` owned by "app".
inline void fresh_database(const std::string& db, const std::string& options = "") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS \"" + db + "\" WITH (FORCE)");
    s.psql("CREATE DATABASE \"" + db + "\" OWNER app " + options);
}

/// A repository on a fresh database with the builtin catalogue imported.
inline std::shared_ptr<PostgresRepository> fresh_catalogue(const std::string& db,
                                                           const std::string& query = "") {
    fresh_database(db);
    auto repo = open_repo(server().url("app", password, db, "127.0.0.1", query));
    auto version = repo->migrate();
    if (!version)
        FAIL(version.error().to_string());
    auto imported = repo->import_snapshot(builtin_snapshot());
    if (!imported)
        FAIL(imported.error().to_string());
    return repo;
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
