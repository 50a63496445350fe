// SPDX-License-Identifier: MIT
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <modelrepo/open.hpp>
#include <modelrepo/snapshot.hpp>

#include "temp_dir.hpp"

using namespace modelrepo;
using json = nlohmann::json;

namespace {

json builtin_json() {
    return json::parse(builtin_snapshot_json());
}

// Parses `doc` and requires Errc::bad_data whose message starts with `path`.
void check_text_rejected(const std::string& text, const std::string& path) {
    auto parsed = parse_snapshot(text);
    REQUIRE_FALSE(parsed);
    CAPTURE(parsed.error().message);
    CHECK(parsed.error().is(Errc::bad_data));
    CHECK(parsed.error().message.starts_with(path + ":"));
}

void check_rejected(const json& doc, const std::string& path) {
    check_text_rejected(doc.dump(), path);
}

} // namespace

TEST_CASE("the bundled catalogue is valid and complete") {
    const Snapshot& s = builtin_snapshot();
    CHECK(s.models.size() == 32);
    CHECK(s.providers.size() >= 8);
    std::set<Health> seen;
    for (const ModelStatus& st : s.statuses)
        seen.insert(st.health);
    CHECK(seen.size() == 4);
    CHECK(validate(s));
}

TEST_CASE("write then parse gives the same snapshot") {
    const Snapshot& s = builtin_snapshot();
    auto again = parse_snapshot(write_snapshot(s));
    REQUIRE(again);
    CHECK(again.value() == s);
    auto compact = parse_snapshot(write_snapshot(s, -1));
    REQUIRE(compact);
    CHECK(compact.value() == s);
    CHECK(write_snapshot(again.value()) == write_snapshot(s));
}

TEST_CASE("optional members take their defaults; unknown members are ignored") {
    json doc = {
        {"format", "modelrepo.snapshot/1"},
        {"generated_at", "2026-01-01T00:00:00Z"},
        {"future_member", {{"anything", {1, {{"deep", {true, nullptr}}}}}}},
        {"future_scalar", 3.5},
        {"providers", {{{"slug", "p"}, {"name", "P"}, {"extra", true}}}},
        {"models", {{{"slug", "m"}, {"name", "M"}, {"provider", "p"}, {"tags", {"a", "b"}}}}},
        {"statuses",
         {{{"model", "m"},
           {"health", "outage"},
           {"availability", 0},
           {"error_rate", 1},
           {"checked_at", "2026-01-01T00:00:00Z"}}}}};
    auto parsed = parse_snapshot(doc.dump());
    REQUIRE(parsed);
    const Snapshot& s = parsed.value();
    CHECK(s.providers[0].website.empty());
    CHECK(s.models[0].active);
    CHECK_FALSE(s.models[0].context_window.has_value());
    CHECK(s.models[0].description.empty());
    CHECK_FALSE(s.statuses[0].latency_ms.has_value());
    CHECK(s.statuses[0].region.empty());
    CHECK(s.statuses[0].health == Health::outage);
}

TEST_CASE("malformed and truncated JSON is bad_data at $") {
    std::string text(builtin_snapshot_json());
    check_text_rejected(text.substr(0, text.size() / 2), "$");
    check_text_rejected("", "$");
    check_text_rejected("{\"format\": ", "$");
    check_text_rejected("not json", "$");
    check_text_rejected("[]", "$");
    check_text_rejected("null", "$");
    check_text_rejected(std::string(10000, '[') + std::string(10000, ']'), "$");
    // Deep nesting inside an unknown member is refused, not recursed into.
    std::string deep = R"({"format": "modelrepo.snapshot/1", "x": )" + std::string(100000, '[') +
                       std::string(100000, ']') + "}";
    check_text_rejected(deep, "$");
    check_text_rejected(std::string(builtin_snapshot_json()) + "{}", "$");
}

TEST_CASE("wrong or missing format") {
    json doc = builtin_json();
    doc.erase("format");
    check_rejected(doc, "$.format");
    doc["format"] = "modelrepo.snapshot/2";
    check_rejected(doc, "$.format");
    doc["format"] = 1;
    check_rejected(doc, "$.format");
}

TEST_CASE("missing required members name their path") {
    struct Case {
        std::string list;
        std::size_t index;
        std::string member;
    };
    for (const Case& c :
         {Case{"providers", 2, "slug"}, Case{"providers", 0, "name"}, Case{"models", 3, "slug"},
          Case{"models", 5, "name"}, Case{"models", 7, "provider"}, Case{"statuses", 1, "model"},
          Case{"statuses", 4, "health"}, Case{"statuses", 2, "availability"},
          Case{"statuses", 0, "error_rate"}, Case{"statuses", 9, "checked_at"}}) {
        json doc = builtin_json();
        doc[c.list][c.index].erase(c.member);
        check_rejected(doc, "$." + c.list + "[" + std::to_string(c.index) + "]." + c.member);
    }
    for (const char* top : {"generated_at", "providers", "models", "statuses"}) {
        json doc = builtin_json();
        doc.erase(top);
        check_rejected(doc, std::string("$.") + top);
    }
}

TEST_CASE("wrong types name their path") {
    json doc = builtin_json();
    doc["models"][4]["context_window"] = "128k";
    check_rejected(doc, "$.models[4].context_window");

    doc = builtin_json();
    doc["models"][4]["context_window"] = 1.5;
    check_rejected(doc, "$.models[4].context_window");

    doc = builtin_json();
    doc["models"][1]["active"] = "yes";
    check_rejected(doc, "$.models[1].active");

    doc = builtin_json();
    doc["statuses"][3]["availability"] = "99%";
    check_rejected(doc, "$.statuses[3].availability");

    doc = builtin_json();
    doc["statuses"][3]["health"] = "fine";
    check_rejected(doc, "$.statuses[3].health");

    doc = builtin_json();
    doc["providers"][0]["name"] = nullptr;
    check_rejected(doc, "$.providers[0].name");

    doc = builtin_json();
    doc["models"] = json::object();
    check_rejected(doc, "$.models");

    doc = builtin_json();
    doc["models"][2] = "gpt";
    check_rejected(doc, "$.models[2]");
}

TEST_CASE("duplicate slugs, unknown references and ranges") {
    json doc = builtin_json();
    doc["models"][6]["slug"] = doc["models"][0]["slug"];
    check_rejected(doc, "$.models[6].slug");

    doc = builtin_json();
    doc["providers"][3]["slug"] = doc["providers"][1]["slug"];
    check_rejected(doc, "$.providers[3].slug");

    doc = builtin_json();
    doc["models"][8]["provider"] = "nobody";
    check_rejected(doc, "$.models[8].provider");

    doc = builtin_json();
    doc["statuses"][5]["model"] = "gpt-99";
    check_rejected(doc, "$.statuses[5].model");

    doc = builtin_json();
    doc["statuses"][5]["model"] = doc["statuses"][4]["model"];
    check_rejected(doc, "$.statuses[5].model");

    doc = builtin_json();
    doc["statuses"][6]["availability"] = 1.01;
    check_rejected(doc, "$.statuses[6].availability");

    doc = builtin_json();
    doc["statuses"][6]["error_rate"] = -0.1;
    check_rejected(doc, "$.statuses[6].error_rate");

    doc = builtin_json();
    doc["statuses"][6]["latency_ms"] = -5;
    check_rejected(doc, "$.statuses[6].latency_ms");

    doc = builtin_json();
    doc["models"][0]["slug"] = "";
    check_rejected(doc, "$.models[0].slug");

    doc = builtin_json();
    doc["models"][0]["context_window"] = 0;
    check_rejected(doc, "$.models[0].context_window");
}

TEST_CASE("timestamps that are not RFC 3339 UTC name their path") {
    json doc = builtin_json();
    doc["generated_at"] = "2026-11-24 06:00:00";
    check_rejected(doc, "$.generated_at");

    doc = builtin_json();
    doc["statuses"][7]["checked_at"] = "2026-11-24T06:00:00+09:00";
    check_rejected(doc, "$.statuses[7].checked_at");
}

TEST_CASE("snapshot files: atomic write, read back, missing file") {
    test::TempDir dir;
    auto path = dir.path() / "models.json";
    REQUIRE(write_snapshot_file(builtin_snapshot(), path));
    auto read = read_snapshot_file(path);
    REQUIRE(read);
    CHECK(read.value() == builtin_snapshot());
    // No temporary file is left behind.
    int files = 0;
    for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator(dir.path()))
        ++files;
    CHECK(files == 1);

    auto missing = read_snapshot_file(dir.path() / "nope.json");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(Errc::io_error));
    CHECK(missing.error().message.find("nope.json") != std::string::npos);

    auto bad = read_snapshot_file(dir.write("bad.json", "{\"format\": 3}"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().is(Errc::bad_data));
    CHECK(bad.error().message.find("$.format") != std::string::npos);

    auto unwritable = write_snapshot_file(builtin_snapshot(), dir.path() / "no/such/dir.json");
    REQUIRE_FALSE(unwritable);
    CHECK(unwritable.error().is(Errc::io_error));
}

TEST_CASE("a snapshot write never follows a symlink planted where a temporary file would go") {
    test::TempDir dir;
    auto victim = dir.write("victim.txt", "keep me");
    auto path = dir.path() / "models.json";
    // The name a predictable temporary file had (path + ".tmp." + pid).
    auto planted = path;
    planted += ".tmp." + std::to_string(::getpid());
    std::filesystem::create_symlink(victim, planted);
    REQUIRE(write_snapshot_file(builtin_snapshot(), path));
    std::ifstream in(victim);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(content == "keep me");
    CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(path)));
    CHECK(read_snapshot_file(path).value() == builtin_snapshot());
}

TEST_CASE("a device, a FIFO or a directory is refused at once, never read or waited on") {
    auto start = std::chrono::steady_clock::now();
    auto endless = read_snapshot_file("/dev/zero");
    REQUIRE_FALSE(endless);
    CHECK(endless.error().is(Errc::io_error));
    CHECK(endless.error().message.find("not a regular file (a device)") != std::string::npos);
    // And through open(): the same refusal.
    auto repo = modelrepo::open("file:///dev/zero");
    REQUIRE_FALSE(repo);
    CHECK(repo.error().is(Errc::io_error));

    test::TempDir dir;
    auto fifo = dir.path() / "models.json";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto from_fifo = modelrepo::open("file://" + fifo.string()); // no writer: would block
    REQUIRE_FALSE(from_fifo);
    CHECK(from_fifo.error().message.find("a FIFO") != std::string::npos);
    auto from_dir = read_snapshot_file(dir.path());
    REQUIRE_FALSE(from_dir);
    CHECK(from_dir.error().message.find("a directory") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("a JSON array of statuses reads back; each problem names its path") {
    Timestamp t =
        std::chrono::sys_days{std::chrono::year{2026} / 12 / 1} + std::chrono::microseconds(1234);
    std::vector<ModelStatus> statuses{{"gpt-4o", Health::degraded, 0.5, 12.5, 0.1, "eu", t},
                                      {"gpt-5", Health::outage, 0.0, std::nullopt, 1.0, "", t}};
    auto text = statuses_json(statuses);
    auto back = parse_statuses(text);
    REQUIRE(back);
    CHECK(back.value() == statuses);
    CHECK(parse_statuses("[]").value().empty());
    struct Bad {
        const char* json;
        const char* path;
    };
    for (
        auto [json, path] :
        {Bad{"{", "$: expected an array of statuses"}, Bad{"{}", "$: expected an array"},
         Bad{"[", "$: malformed"}, Bad{"3", "$: expected an array of statuses"},
         Bad{"[1]", "$[0]: expected an object"},
         Bad{R"([{"health":"outage","availability":0,"error_rate":0,"checked_at":"2026-12-01T00:00:00Z"}])",
             "$[0].model: required member is missing"},
         Bad{R"([{"model":"a","health":"sunny","availability":0,"error_rate":0,"checked_at":"2026-12-01T00:00:00Z"}])",
             "$[0].health"},
         Bad{R"([{"model":"a","health":"outage","availability":2,"error_rate":0,"checked_at":"2026-12-01T00:00:00Z"}])",
             "$[0].availability: must be within 0..1"},
         Bad{R"([{"model":"a","health":"outage","availability":0,"error_rate":0,"checked_at":"yesterday"}])",
             "$[0].checked_at"},
         Bad{R"([{"model":"a","health":"outage","availability":0,"error_rate":0,"region":"eu\u0000w","checked_at":"2026-12-01T00:00:00Z"}])",
             "$[0].region: must not hold a NUL"}}) {
        CAPTURE(json);
        auto r = parse_statuses(json);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(Errc::bad_data));
        CHECK(r.error().message.starts_with(path));
    }
}
