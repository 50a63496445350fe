// SPDX-License-Identifier: MIT
// The modelrepo CLI and the example services against a real server.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;
namespace fs = std::filesystem;

TEST_CASE("CLI: migrate, import, stats, export against PostgreSQL; errors exit 1") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS catalogue_cli WITH (FORCE)");
    s.psql("CREATE DATABASE catalogue_cli OWNER app");
    std::string url = s.url("app", password, "catalogue_cli");
    std::string cli = test::require_env("MODELREPO_CLI");
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {cli, "--source", url});
        return test::run_process(args, {{"MODELREPO_SOURCES", ""}});
    };
    auto before = run({"stats"});
    CHECK(before.exit_code == 1);
    CHECK(before.err.find("schema_missing") != std::string::npos);
    CHECK(before.err.find("modelrepo migrate") != std::string::npos);

    auto migrated = run({"migrate"});
    CHECK(migrated.exit_code == 0);
    CHECK(migrated.out.find("schema version 3") != std::string::npos);
    auto imported = run({"import", "builtin:"});
    CHECK(imported.exit_code == 0);
    CHECK(imported.out.find("imported 32 models") != std::string::npos);
    // No terminal, no progress: stderr stays empty for scripts and logs.
    CHECK_MESSAGE(imported.err.empty(), imported.err);
    // At a terminal, each step with its count (and its rate, once it took a measurable time).
    auto shown = test::run_on_terminal({cli, "--source", url, "import", "builtin:"},
                                       {{"MODELREPO_SOURCES", ""}});
    CAPTURE(shown.out);
    CHECK(shown.exit_code == 0);
    for (const char* step :
         {"import: 32/32 models read", " statuses cleared", "import: 32/32 models merged",
          "import: 0/0 models removed", " statuses written", "imported 32 models"})
        CHECK_MESSAGE(shown.out.find(step) != std::string::npos, step);

    auto stats = run({"stats"});
    CHECK(stats.exit_code == 0);
    CHECK(stats.out.find("32 (30 active)") != std::string::npos);
    CHECK(stats.out.find("postgresql://app@127.0.0.1:") != std::string::npos);

    auto exported = run({"export"});
    REQUIRE(exported.exit_code == 0);
    CHECK(exported.err.find("bytes written") == std::string::npos);
    TempDir out_dir;
    auto exported_shown =
        test::run_on_terminal({cli, "--source", url, "export"}, {{"MODELREPO_SOURCES", ""}},
                              "> '" + (out_dir.path() / "s.json").string() + "'");
    CHECK(exported_shown.exit_code == 0);
    CHECK_MESSAGE(exported_shown.out.find("export: 32/32 models read") != std::string::npos,
                  exported_shown.out);
    // The whole body, counted as a person reads it: "15,701/15,701 bytes written". The file
    // is the measure: its `generated_at` is another moment than the first export's, and a
    // timestamp's fraction drops its trailing zeros, so the two may differ by a few bytes.
    std::string file_text;
    {
        std::ifstream in(out_dir.path() / "s.json", std::ios::binary);
        file_text.assign(std::istreambuf_iterator<char>(in), {});
    }
    // Both exports' text, but for the moment each was made at.
    auto undated = [](std::string text) {
        auto at = text.find("\"generated_at\": \"");
        if (at != std::string::npos)
            text.erase(at, text.find('"', at + 17) + 1 - at);
        return text;
    };
    CHECK(undated(file_text) == undated(exported.out));
    CHECK(undated(file_text).size() < file_text.size());
    std::string size = std::to_string(file_text.size());
    for (auto at = static_cast<std::ptrdiff_t>(size.size()) - 3; at > 0; at -= 3)
        size.insert(static_cast<std::size_t>(at), ",");
    CHECK_MESSAGE(exported_shown.out.find(size + "/" + size + " bytes written") !=
                      std::string::npos,
                  exported_shown.out);
    auto snapshot = parse_snapshot(exported.out);
    REQUIRE(snapshot);
    CHECK(snapshot.value().models.size() == 32);

    for (const auto& r : {before, migrated, imported, stats, exported}) {
        CHECK(r.out.find(password) == std::string::npos);
        CHECK(r.err.find(password) == std::string::npos);
    }
    auto wrong = test::run_process(
        {cli, "--source", s.url("app", "Wrong-" + password, "catalogue_cli"), "stats"});
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.err.find("auth_failed") != std::string::npos);
    CHECK(wrong.err.find(password) == std::string::npos);
}

TEST_CASE("examples against the chain PostgreSQL -> builtin") {
    auto& s = server();
    if (!std::getenv("EXAMPLE_API_STATS")) {
        MESSAGE("examples not built (-Dexamples=false)");
        return;
    }
    fresh_catalogue("catalogue_examples");
    std::string url = s.url("app", password, "catalogue_examples");
    auto run = [&](const char* env, std::vector<std::string> args) {
        args.insert(args.begin(), {test::require_env(env), "-s", url, "-s", "builtin:"});
        return test::run_process(args, {{"MODELREPO_SOURCES", ""}});
    };
    auto api = run("EXAMPLE_API_STATS", {});
    REQUIRE(api.exit_code == 0);
    CHECK(api.out.find("\"source\":\"postgresql://app@127.0.0.1:") != std::string::npos);
    CHECK(api.out.find("\"backup\":false") != std::string::npos);

    auto sync = run("EXAMPLE_PRIORITY_SYNC", {"-n", "1"});
    CHECK(sync.exit_code == 0);
    CHECK(sync.out.find("wrote 5 statuses to the primary") != std::string::npos);
    // The write reached PostgreSQL: five statuses are newer than the bundled ones.
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE checked_at > '2026-11-24'",
                 "catalogue_examples") == "5");

    auto realtime = run("EXAMPLE_REALTIME_STATS", {"-n", "2", "-i", "0.05"});
    CHECK(realtime.exit_code == 0);
    CHECK(realtime.out.find("from postgresql://app@") != std::string::npos);
    for (const auto& r : {api, sync, realtime})
        CHECK(r.out.find(password) == std::string::npos);
}

TEST_CASE("text that is not UTF-8 in an SQL_ASCII database: bad_data that says so, no abort") {
    fresh_database("catalogue_ascii", "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
                                      "TEMPLATE template0");
    std::string url = server().url("app", password, "catalogue_ascii");
    auto repo = open_repo(url);
    REQUIRE(repo->migrate());
    REQUIRE(repo->import_snapshot(builtin_snapshot()));
    // An SQL_ASCII database stores bytes as given: here a LATIN1 'é'. Sessions speak
    // UTF-8, so the server refuses to send it as text.
    server().psql("UPDATE models SET description = convert_from('\\x436166e9'::bytea, "
                  "'SQL_ASCII') WHERE slug = 'gpt-4o'",
                  "catalogue_ascii");
    auto e = expect_error(repo->find_model("gpt-4o"), Errc::bad_data);
    CHECK(e.sqlstate == "22021");
    CHECK(e.message.find("not valid UTF-8") != std::string::npos);
    CHECK(repo->find_model("gpt-5").value().has_value()); // the other rows still read
    std::string cli = test::require_env("MODELREPO_CLI");
    auto r = test::run_process({cli, "--source", url, "--json", "model", "gpt-4o"},
                               {{"MODELREPO_SOURCES", ""}});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("bad_data") != std::string::npos);
}
