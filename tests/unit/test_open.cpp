// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "core/uri.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;

TEST_CASE("open builtin:") {
    auto repo = open("builtin:");
    REQUIRE(repo);
    CHECK(repo.value()->name() == "builtin");
    CHECK(repo.value()->count_models().value() == 32);
    CHECK(open("BUILTIN:"));
    auto bad = open("builtin:something");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().is(Errc::invalid_argument));
}

TEST_CASE("open file: in its URI forms") {
    test::TempDir dir;
    auto path = dir.path() / "my models.json";
    REQUIRE(write_snapshot_file(builtin_snapshot(), path));
    std::string encoded = dir.path().string() + "/my%20models.json";

    for (const std::string& uri :
         {"file://" + encoded, "file://localhost" + encoded, "file:" + encoded}) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE(repo);
        CHECK(repo.value()->count_models().value() == 32);
        CHECK(repo.value()->name() == "file:" + path.string());
    }

    auto missing = open("file://" + dir.path().string() + "/absent.json");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(Errc::io_error));

    auto remote = open("file://otherhost/x.json");
    REQUIRE_FALSE(remote);
    CHECK(remote.error().is(Errc::invalid_argument));

    auto bad_data = open("file://" + dir.write("bad.json", "{").string());
    REQUIRE_FALSE(bad_data);
    CHECK(bad_data.error().is(Errc::bad_data));
}

TEST_CASE("bad URIs are invalid_argument naming the problem") {
    for (const char* uri :
         {"", "no-scheme", "://x", "1http://x", "ftp://host/file.json", "file:///tmp/x%zz.json"}) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
        CHECK_FALSE(repo.error().message.empty());
    }
    auto ftp = open("ftp://host/file.json");
    CHECK(ftp.error().message.find("'ftp'") != std::string::npos);
}

TEST_CASE("messages about URIs never carry the password") {
    auto repo = open("mysql://app:Sup3r-S3cret@db/models");
    REQUIRE_FALSE(repo);
    CHECK(repo.error().message.find("Sup3r-S3cret") == std::string::npos);
    CHECK(repo.error().message.find("app:***@db") != std::string::npos);
}

TEST_CASE("open_chain") {
    CHECK(open_chain({}).error().is(Errc::invalid_argument));
    std::vector<std::string> one{"builtin:"};
    auto repo = open_chain(one);
    REQUIRE(repo);
    CHECK(repo.value()->name() == "builtin");
    std::vector<std::string> bad{"nope:"};
    CHECK(open_chain(bad).error().is(Errc::invalid_argument));
}

TEST_CASE("uri splitting") {
    auto uri =
        detail::parse_uri("postgresql://u:p%40ss@h1:5432,h2/db?sslmode=require&schema=a%20b&x")
            .value();
    CHECK(uri.scheme == "postgresql");
    CHECK(uri.has_authority);
    CHECK(uri.authority == "u:p%40ss@h1:5432,h2");
    CHECK(uri.path == "/db");
    CHECK(uri.param("sslmode") == "require");
    CHECK(uri.param("schema") == "a b");
    CHECK(uri.param("x") == "");
    CHECK_FALSE(uri.param("y").has_value());

    auto github = detail::parse_uri("github://owner/repo/data/models.json@main").value();
    CHECK(github.authority == "owner");
    CHECK(github.path == "/repo/data/models.json@main");

    auto raw_slash = detail::parse_uri("postgres://u:pa/ss@host/db").value();
    CHECK(raw_slash.authority == "u:pa/ss@host");
    CHECK(raw_slash.path == "/db");

    CHECK(detail::percent_decode("a%2Fb") == "a/b");
    CHECK_FALSE(detail::percent_decode("a%2").has_value());
    CHECK_FALSE(detail::percent_decode("%g0").has_value());
}

#if MODELREPO_HAS_POSTGRES
TEST_CASE("a libpq key=value conninfo opens PostgreSQL, as libpq reads it") {
    // open() does not connect: nothing listens on port 1, and nothing needs to.
    auto repo = open("host=127.0.0.1 port=1 dbname=catalogue user=app connect_timeout=2");
    REQUIRE(repo);
    CHECK(repo.value()->name() == "postgresql://app@127.0.0.1:1/catalogue");
    CHECK(repo.value()->capability<CatalogAdmin>() != nullptr);
    auto typo = open("host=127.0.0.1 dbnmae=catalogue");
    REQUIRE_FALSE(typo);
    CHECK(typo.error().is(Errc::invalid_argument));
    CHECK(typo.error().message.find("dbnmae") != std::string::npos);
}
#endif

TEST_CASE("every backend refuses, by name, each parameter it does not take: nothing asked for "
          "is silently ignored") {
    test::TempDir dir;
    auto file = dir.path() / "models.json";
    REQUIRE(write_snapshot_file(builtin_snapshot(), file));
    struct Case {
        std::string uri;
        std::string named;
    };
    std::vector<Case> cases{
        // The durable layer's parameters where they cannot work: memory is not a source to
        // copy or to keep writes for.
        {"builtin:?outbox=" + (dir.path() / "o.db").string(), "outbox"},
        {"builtin:?cache=live", "cache"},
        {"builtin:?cache_dir=" + dir.path().string(), "cache_dir"},
        {"builtin:?anything=at_all", "anything"},
        {"file://" + file.string() + "?cache=live", "cache"},
        {"file://" + file.string() + "?outbox=/tmp/o.db", "outbox"},
        {"file://" + file.string() + "?max_stale=1h", "max_stale"},
    };
#if MODELREPO_HAS_GITHUB
    // A backup is a copy already and takes no writes; github:// takes its own parameters.
    cases.push_back({"github://acme/cat/models.json@main?cache=live", "cache"});
    cases.push_back({"github://acme/cat/models.json@main?outbox=/tmp/o.db", "outbox"});
    cases.push_back({"github://acme/cat/models.json@main?anything=1", "anything"});
    cases.push_back({"https://example.org/models.json?outbox_max=5", "outbox_max"});
#endif
#if MODELREPO_HAS_POSTGRES
    cases.push_back({"postgresql://app@127.0.0.1:5432/db?anything=1", "anything"});
    cases.push_back({"postgresql://app@127.0.0.1:5432/db?cache=sometimes", "cache"});
#endif
    for (const auto& c : cases) {
        CAPTURE(c.uri);
        auto repo = open(c.uri);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
        CHECK(repo.error().message.find(c.named) != std::string::npos);
    }
#if MODELREPO_HAS_GITHUB
    // A plain URL's own query belongs to its server: passed on, not refused.
    CHECK(open("https://example.org/models.json?version=3"));
#endif
}

TEST_CASE("a NUL in a path parameter is refused; a fragment in a database URL is refused and "
          "never shown") {
    for (const char* uri : {"file:///tmp/models%00.json", "builtin:?max_clock_skew=1s%00"}) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
    }
#if MODELREPO_HAS_POSTGRES
    for (const char* uri : {"postgresql://app@127.0.0.1/db?outbox=/tmp/o%00.db",
                            "postgresql://app@127.0.0.1/db?cache_dir=/tmp/c%00d"}) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
        CHECK(repo.error().message.find("NUL") != std::string::npos);
    }
    const std::string secret = "Fragment-Secret-31";
    for (const std::string& uri :
         {"postgresql://app@127.0.0.1/db#password=" + secret,
          "postgresql://app:pw@127.0.0.1:5432/db?sslmode=disable#" + secret}) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
        CHECK(repo.error().message.find("fragment") != std::string::npos);
        CHECK(repo.error().message.find(secret) == std::string::npos);
        CHECK(repo.error().source.find(secret) == std::string::npos);
    }
    // A '#' in the password is the password's (percent-encoding is not needed there).
    auto hashed = PostgresConfig::from_url("postgresql://app:pa#ss@127.0.0.1/db");
    CHECK(hashed);
    CHECK(detail::redact_url("postgresql://app@127.0.0.1/db#password=" + secret).find(secret) ==
          std::string::npos);
#endif
}

TEST_CASE("name= gives any source a display name, in place of its address") {
    test::TempDir dir;
    auto file = dir.path() / "models.json";
    REQUIRE(write_snapshot_file(builtin_snapshot(), file));
    std::vector<std::pair<std::string, std::string>> named{
        {"builtin:?name=bundled", "bundled"},
        {"file://" + file.string() + "?name=disk%20copy&max_clock_skew=1m", "disk copy"},
    };
#if MODELREPO_HAS_GITHUB
    named.emplace_back("github://acme/cat/models.json@main?name=backup", "backup");
    named.emplace_back("https://example.org/models.json?version=3&name=mirror", "mirror");
#endif
#if MODELREPO_HAS_POSTGRES
    named.emplace_back("postgresql://app:Secret-1@db.internal:5432/models?name=catalogue",
                       "catalogue");
    named.emplace_back("postgresql://app@127.0.0.1:1/db?cache=live&name=live&cache_dir=" +
                           dir.path().string(),
                       "live");
    named.emplace_back("host=db.internal user=app name='prod db' dbname=models", "prod db");
#endif
    for (const auto& [uri, name] : named) {
        CAPTURE(uri);
        auto repo = open(uri);
        REQUIRE_MESSAGE(repo, repo.error().message);
        CHECK(repo.value()->name() == name);
        if (uri.starts_with("builtin:") || uri.starts_with("file:")) // no network here
            CHECK(repo.value()->system_stats().value().source == name);
    }
    for (const std::string& bad :
         {std::string("builtin:?name="), "builtin:?name=" + std::string(65, 'n'),
          std::string("builtin:?name=a%0Ab"), std::string("builtin:?name=https://x.example")}) {
        CAPTURE(bad);
        auto repo = open(bad);
        REQUIRE_FALSE(repo);
        CHECK(repo.error().is(Errc::invalid_argument));
        CHECK(repo.error().message.find("name") != std::string::npos);
    }
#if MODELREPO_HAS_POSTGRES
    // The conninfo's other words still go to libpq, which judges them.
    auto typo = open("host=127.0.0.1 name=x dbnmae=catalogue");
    REQUIRE_FALSE(typo);
    CHECK(typo.error().message.find("dbnmae") != std::string::npos);
#endif
}

#if MODELREPO_HAS_POSTGRES
TEST_CASE("feed= picks the change feed: auto, triggers, logical or polling; anything else is "
          "named") {
    auto config = [](const std::string& query) {
        return PostgresConfig::from_url("postgresql://app@127.0.0.1:1/db" + query);
    };
    CHECK(config("").value().feed == FeedKind::automatic);
    CHECK(config("?feed=auto").value().feed == FeedKind::automatic);
    CHECK(config("?feed=triggers").value().feed == FeedKind::triggers);
    CHECK(config("?feed=logical").value().feed == FeedKind::logical);
    CHECK(config("?feed=polling").value().feed == FeedKind::polling);
    CHECK(to_string(FeedKind::logical) == "logical");
    CHECK(to_string(FeedKind::polling) == "polling");
    auto bad = config("?feed=wal2json");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("auto, triggers, logical or polling") != std::string::npos);
    // The polling feed's interval: a duration, positive.
    CHECK(config("").value().poll_interval == std::chrono::seconds(5));
    CHECK(config("?poll_interval=250ms").value().poll_interval == std::chrono::milliseconds(250));
    CHECK_FALSE(config("?poll_interval=0s"));
    CHECK_FALSE(config("?poll_interval=soon"));
    CHECK(config("?poll_interval=1m").value().conninfo.find("poll") == std::string::npos);
    // libpq never sees it, nor a near miss of it.
    CHECK(config("?feed=logical").value().conninfo.find("feed") == std::string::npos);
    auto typo = config("?fed=logical");
    REQUIRE_FALSE(typo);
    CHECK(typo.error().message.find("feed") != std::string::npos);
}
#endif
