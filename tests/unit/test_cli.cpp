// SPDX-License-Identifier: MIT
// Runs the built modelrepo binary and checks its output and exit codes.
#include <chrono>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <modelrepo/snapshot.hpp>
#include <modelrepo/version.hpp>

#include "process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using test::run_process;
using json = nlohmann::json;

namespace {

test::ProcessResult cli(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), test::require_env("MODELREPO_CLI"));
    env.emplace("MODELREPO_SOURCES", ""); // unset unless the test sets it
    return run_process(args, env);
}

} // namespace

TEST_CASE("stats on the builtin catalogue") {
    auto r = cli({"stats"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("source:") != std::string::npos);
    CHECK(r.out.find("builtin") != std::string::npos);
    CHECK(r.out.find("32 (30 active)") != std::string::npos);

    auto j = cli({"stats", "--json"});
    REQUIRE(j.exit_code == 0);
    auto doc = json::parse(j.out);
    CHECK(doc["source"] == "builtin");
    CHECK(doc["models"] == 32);
    CHECK(doc["providers"] == 10);
    CHECK(doc["as_of"] == "2026-11-23T06:00:00Z");
    CHECK(doc["health"]["operational"].get<int>() + doc["health"]["degraded"].get<int>() +
              doc["health"]["outage"].get<int>() + doc["health"]["unknown"].get<int>() ==
          32);
}

TEST_CASE("models --priority keeps order, notes unknown slugs, says the source") {
    auto r = cli({"models", "--priority", "claude-sonnet-4-5,nope,gpt-4o", "--json"});
    REQUIRE(r.exit_code == 0);
    auto doc = json::parse(r.out);
    CHECK(doc["source"] == "builtin");
    REQUIRE(doc["models"].size() == 2);
    CHECK(doc["models"][0]["slug"] == "claude-sonnet-4-5");
    CHECK(doc["models"][0]["provider"]["name"] == "Anthropic");
    CHECK(doc["models"][1]["slug"] == "gpt-4o");
    CHECK(doc["models"][1]["status"]["health"] == "degraded");
    CHECK(r.err.find("no model 'nope'") != std::string::npos);

    auto table = cli({"models"});
    REQUIRE(table.exit_code == 0);
    CHECK(table.out.find("32 models from builtin") != std::string::npos);
    CHECK(table.out.find("SLUG") == 0);
}

TEST_CASE("model SLUG, and a slug that does not exist") {
    auto r = cli({"model", "gemini-2.5-pro"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Gemini 2.5 Pro") != std::string::npos);
    CHECK(r.out.find("source:") != std::string::npos);

    auto missing = cli({"model", "gpt-99"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.out.empty());
    CHECK(missing.err.find("not_found") != std::string::npos);
}

TEST_CASE("statuses --health filters") {
    auto r = cli({"statuses", "--health", "outage", "--json"});
    REQUIRE(r.exit_code == 0);
    auto doc = json::parse(r.out);
    REQUIRE(doc["statuses"].size() == 2);
    for (const auto& s : doc["statuses"])
        CHECK(s["health"] == "outage");

    auto bad = cli({"statuses", "--health", "sunny"});
    CHECK(bad.exit_code == 2);
}

TEST_CASE("export writes a snapshot that reads back") {
    auto r = cli({"export"});
    REQUIRE(r.exit_code == 0);
    auto parsed = parse_snapshot(r.out);
    REQUIRE(parsed);
    CHECK(parsed.value() == sorted_by_slug(builtin_snapshot()));
}

TEST_CASE("--source and MODELREPO_SOURCES choose the source") {
    test::TempDir dir;
    Snapshot small = builtin_snapshot();
    small.models.resize(3);
    small.statuses.clear();
    auto file = dir.path() / "small.json";
    REQUIRE(write_snapshot_file(small, file));

    auto r = cli({"--source", "file://" + file.string(), "stats", "--json"});
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(r.out)["models"] == 3);
    CHECK(json::parse(r.out)["source"] == "file:" + file.string());

    auto env = cli({"stats", "--json"}, {{"MODELREPO_SOURCES", "file://" + file.string()}});
    REQUIRE(env.exit_code == 0);
    CHECK(json::parse(env.out)["models"] == 3);

    // --source wins over the environment.
    auto both = cli({"stats", "--json", "--source", "builtin:"},
                    {{"MODELREPO_SOURCES", "file://" + file.string()}});
    REQUIRE(both.exit_code == 0);
    CHECK(json::parse(both.out)["models"] == 32);
}

TEST_CASE("MODELREPO_SOURCES_FILE: one URI a line, before MODELREPO_SOURCES; a file that "
          "cannot be read (missing, a FIFO, empty) is an error naming it, never waited on") {
    test::TempDir dir;
    Snapshot small = builtin_snapshot();
    small.models.resize(4);
    small.statuses.clear();
    auto file = dir.path() / "small.json";
    REQUIRE(write_snapshot_file(small, file));
    auto list = dir.write("sources", "# the catalogue, then the bundled one\n\n  file://" +
                                         file.string() + "  \nbuiltin:\n");
    auto r = cli({"stats", "--json"},
                 {{"MODELREPO_SOURCES_FILE", list.string()}, {"MODELREPO_SOURCES", "builtin:"}});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(json::parse(r.out)["models"] == 4);

    auto missing = cli({"stats"}, {{"MODELREPO_SOURCES_FILE", (dir.path() / "none").string()}});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("MODELREPO_SOURCES_FILE") != std::string::npos);
    CHECK(missing.err.find("cannot open") != std::string::npos);

    auto fifo = dir.path() / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto started = std::chrono::steady_clock::now();
    auto blocked = cli({"stats"}, {{"MODELREPO_SOURCES_FILE", fifo.string()}});
    CHECK(blocked.exit_code == 1);
    CHECK(blocked.err.find("not a regular file") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30)); // not waited on

    auto empty =
        cli({"stats"}, {{"MODELREPO_SOURCES_FILE", dir.write("empty", "# none\n").string()}});
    CHECK(empty.exit_code == 1);
    CHECK(empty.err.find("holds no source URI") != std::string::npos);
}

TEST_CASE("a bad --source is an error with its Errc name, exit 1") {
    auto r = cli({"--source", "ftp://example/models.json", "stats"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("invalid_argument") != std::string::npos);
    CHECK(r.err.find("ftp") != std::string::npos);

    auto missing = cli({"--source", "file:///nonexistent/models.json", "stats"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("io_error") != std::string::npos);

    auto secret = cli({"--source", "mysql://app:TopS3cretPw@db/x", "stats"});
    CHECK(secret.exit_code == 1);
    CHECK(secret.err.find("TopS3cretPw") == std::string::npos);
}

TEST_CASE("a DATABASE_URL libpq would refuse: invalid_argument naming it, no connect") {
    for (auto [query, named] :
         {std::pair{"foo=bar", "'foo'"}, std::pair{"sslmode=bogus", "sslmode"},
          std::pair{"sslmod=require", "did you mean sslmode?"}}) {
        CAPTURE(query);
        auto start = std::chrono::steady_clock::now();
        auto r = cli({"--source", std::string("postgresql://u:p4ss-W0rd@127.0.0.1:1/db?") + query,
                      "--source", "builtin:", "stats"});
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("invalid_argument") != std::string::npos);
        CHECK(r.err.find(named) != std::string::npos);
        CHECK(r.err.find("p4ss-W0rd") == std::string::npos);
        CHECK(r.out.empty()); // the backup did not answer in its place
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }
}

TEST_CASE("upsert FILE|- on the bundled catalogue: applied N; bad input is bad_data, exit 1") {
    test::TempDir dir;
    auto file = dir.write("s.json", R"([{"model":"gpt-4o","health":"outage","availability":0.1,
        "latency_ms":null,"error_rate":0.9,"region":"x","checked_at":"2026-12-01T00:00:00Z"}])");
    auto r = cli({"upsert", file.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "applied 1\n");
    auto bad = cli({"upsert", dir.write("bad.json", "[{}]").string()});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("bad_data: $[0].model: required member is missing") != std::string::npos);
    auto missing = cli({"upsert", (dir.path() / "nope.json").string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("io_error") != std::string::npos);
}

TEST_CASE("usage errors exit 2; --help and --version exit 0") {
    CHECK(cli({}).exit_code == 2);
    CHECK(cli({"frobnicate"}).exit_code == 2);
    CHECK(cli({"model"}).exit_code == 2);
    CHECK(cli({"stats", "--bogus"}).exit_code == 2);
    auto help = cli({"--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("--source") != std::string::npos);
    CHECK(help.out.find("Exit status") != std::string::npos);
    auto version = cli({"--version"});
    CHECK(version.exit_code == 0);
    CHECK(version.out.find(MODELREPO_VERSION) != std::string::npos); // the project's version
}
