// SPDX-License-Identifier: MIT
// serve's status page in a real browser: Debian's chromium, headless, driven by
// puppeteer-core (tests/browser/status_page.mjs), against serve on a real PostgreSQL with
// the builtin backup. A psql UPDATE shows without a reload; killing the database shows the
// backup serving and the timeline's entry; its return shows primary_recovered.
#include <filesystem>
#include <fstream>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path browser_dir() {
    return fs::path(require_env("MODELREPO_SOURCE_ROOT")) / "tests" / "browser";
}

/// puppeteer-core and chromium (scripts/setup test installs both): in CI their absence
/// fails.
bool have_browser() {
    bool have = fs::exists(browser_dir() / "node_modules" / "puppeteer-core") &&
                fs::exists("/usr/bin/chromium");
    if (!have && in_ci())
        FAIL("chromium or tests/browser/node_modules is missing: scripts/setup test installs "
             "them");
    return have;
}

/// Where the screenshots go: the test's output directory (meson's build dir).
fs::path output_dir() {
    const char* dir = std::getenv("MODELREPO_TEST_OUTPUT");
    return dir && *dir ? fs::path(dir) : fs::current_path();
}

/// summary.json against Statuspage's documented shape: every field of the page, the status,
/// each component and each incident (with its updates), and their allowed values.
void check_statuspage(const json& summary) {
    CAPTURE(summary.dump(2));
    REQUIRE(summary.is_object());
    for (const char* key : {"id", "name", "url", "time_zone", "updated_at"})
        CHECK(summary["page"][key].is_string());
    CHECK(parse_timestamp(summary["page"]["updated_at"].get<std::string>()));
    const std::set<std::string> indicators{"none", "minor", "major", "critical"};
    CHECK(indicators.count(summary["status"]["indicator"].get<std::string>()) == 1);
    CHECK(summary["status"]["description"].is_string());
    const std::set<std::string> states{"operational", "degraded_performance", "partial_outage",
                                       "major_outage"};
    REQUIRE(summary["components"].is_array());
    for (const auto& c : summary["components"]) {
        for (const char* key : {"id", "name", "status", "created_at", "updated_at", "page_id"})
            CHECK(c[key].is_string());
        CHECK(states.count(c["status"].get<std::string>()) == 1);
        CHECK(c["position"].is_number_integer());
        for (const char* key : {"showcase", "group", "only_show_if_degraded"})
            CHECK(c[key].is_boolean());
        CHECK((c["description"].is_string() || c["description"].is_null()));
        CHECK(c["group_id"].is_null());
        CHECK(c["page_id"] == summary["page"]["id"]);
    }
    REQUIRE(summary["incidents"].is_array());
    const std::set<std::string> incident_states{"investigating", "identified", "monitoring",
                                                "resolved", "postmortem"};
    for (const auto& i : summary["incidents"]) {
        for (const char* key : {"id", "name", "status", "created_at", "updated_at", "impact",
                                "shortlink", "started_at", "page_id"})
            CHECK(i[key].is_string());
        CHECK(incident_states.count(i["status"].get<std::string>()) == 1);
        CHECK(indicators.count(i["impact"].get<std::string>()) == 1);
        CHECK(i["resolved_at"].is_null()); // the summary lists unresolved incidents
        REQUIRE(i["incident_updates"].is_array());
        CHECK_FALSE(i["incident_updates"].empty());
        for (const auto& u : i["incident_updates"]) {
            for (const char* key :
                 {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at"})
                CHECK(u[key].is_string());
            CHECK(u["incident_id"] == i["id"]);
            CHECK(u["affected_components"].is_array());
        }
        CHECK(i["components"].is_array());
    }
    CHECK(summary["scheduled_maintenances"].is_array());
}

} // namespace

TEST_CASE("the status page in chromium at 1440x900 and 390x844, healthy and during the "
          "incident (cache=live): the first screen names the cause and the fix within 5 s, no "
          "word split across lines, no sideways scroll; summary.json in Statuspage's shape") {
    if (!have_browser())
        return;
    auto& s = server();
    fresh_catalogue("status_page");
    TempDir dir;
    auto admin = dir.write("admin-url", s.admin_conninfo() + "\n");
    // The README's configuration: the database with a live copy, the bundled catalogue last.
    const std::string url =
        s.url("app", password, "status_page", "127.0.0.1", "connect_timeout=2&cache=live");
    Serve serve({url, "builtin:"}, {"--admin-url-file", admin.string()});
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));

    ChildProcess node(
        {"node", (browser_dir() / "status_page.mjs").string(), serve.base(), dir.path().string()},
        {});
    auto next_step = [&](const std::string& name) -> json {
        auto line = node.read_line_until(
            [&](const std::string& l) {
                auto j = json::parse(l, nullptr, false);
                return !j.is_discarded() && (j["step"] == name || j["step"] == "failed");
            },
            120s);
        REQUIRE_MESSAGE(line, "no '" << name << "' from the browser: " << node.err());
        json j = json::parse(*line);
        CHECK(line->find(password) == std::string::npos);
        REQUIRE_MESSAGE(j["step"] == name, j.dump(2) << "\n" << node.err());
        return j;
    };
    auto act = [&](const std::string& name) { dir.write(name, "go"); };
    // At each width: no word split across lines, nothing wider than the screen, and the
    // first screen's words within it.
    auto readable = [](const json& look, int height) {
        CAPTURE(look.dump(2));
        CHECK(look["split"].empty());
        CHECK(look["scroll_width"].get<int>() <= look["inner_width"].get<int>());
        CHECK(look["facts_bottom"].get<double>() <= height);
    };

    json healthy = next_step("healthy");
    CHECK(healthy["models"] == 32);
    REQUIRE(healthy["sources"].size() == 2);
    CHECK(healthy["sources"][0].get<std::string>().starts_with("postgresql://app@127.0.0.1:"));
    CHECK(healthy["sources"][1] == "builtin");
    readable(healthy["wide"], 900);
    readable(healthy["phone"], 844);
    CHECK(healthy["wide"]["first_screen"].get<std::string>().find(
              "The primary has answered since") != std::string::npos);
    auto summary = json::parse(curl({serve.base() + "/api/v2/summary.json"}).body);
    check_statuspage(summary);
    CHECK(summary["status"]["indicator"] == "none");
    CHECK(summary["status"]["description"] == "All Systems Operational");
    REQUIRE(summary["components"].size() == 2);
    CHECK(summary["components"][0]["status"] == "operational");
    CHECK(summary["incidents"].empty());

    next_step("wait");
    s.psql("UPDATE model_status SET health = 'outage' WHERE model_slug = 'gpt-5'", "status_page");
    act("update");
    json updated = next_step("updated");
    MESSAGE("psql UPDATE -> the page's cell: " << updated["ms"] << " ms");
    CHECK(updated["ms"].get<long long>() <= 5'000); // a deadline, with slack: it takes about 1 s

    // The incident: the role's password changed under serve, its sessions ended.
    next_step("wait");
    s.psql("ALTER ROLE app PASSWORD 'Changed-On-The-Page-77'");
    s.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'app'");
    act("incident");
    json incident = next_step("incident");
    MESSAGE("the password changed -> the first screen names it: " << incident["ms"] << " ms");
    CHECK(incident["ms"].get<long long>() <= 5'000);
    const std::string first = incident["wide"]["first_screen"];
    CAPTURE(first);
    CHECK(first.find("The primary's login fails: the server rejects role app's password") !=
          std::string::npos);
    CHECK(first.find("auth_failed, since") != std::string::npos);
    CHECK(first.find("its last-known copy answers reads") != std::string::npos); // meanwhile
    CHECK(first.find("ALTER ROLE") != std::string::npos);                        // the doctor's fix
    readable(incident["wide"], 900);
    readable(incident["phone"], 844);
    CHECK(incident["text"].get<std::string>().find(password) == std::string::npos);
    summary = json::parse(curl({serve.base() + "/api/v2/summary.json"}).body);
    check_statuspage(summary);
    CHECK(summary["status"]["indicator"] == "major");
    CHECK(summary["components"][0]["status"] == "partial_outage"); // its copy answers
    CHECK(summary["components"][1]["status"] == "operational");
    REQUIRE(summary["incidents"].size() == 1);
    CHECK(summary["incidents"][0]["name"].get<std::string>().find("(auth_failed)") !=
          std::string::npos);
    CHECK(summary["incidents"][0]["impact"] == "major");
    CHECK(summary.dump().find(password) == std::string::npos);

    next_step("wait");
    s.psql("ALTER ROLE app PASSWORD '" + password + "'");
    act("fixed");
    next_step("recovered");
    json done = next_step("done");
    CHECK_MESSAGE(done["errors"].empty(), done["errors"].dump(2));
    CHECK(node.wait(30s) == 0);
    summary = json::parse(curl({serve.base() + "/api/v2/summary.json"}).body);
    CHECK(summary["status"]["indicator"] == "none");
    CHECK(summary["incidents"].empty());

    for (const char* shot : {"status-page-1440-healthy.png", "status-page-390-healthy.png",
                             "status-page-1440-incident.png", "status-page-390-incident.png"}) {
        REQUIRE(fs::exists(dir.path() / shot));
        CHECK(fs::file_size(dir.path() / shot) > 10'000);
        fs::copy_file(dir.path() / shot, output_dir() / shot, fs::copy_options::overwrite_existing);
    }
    MESSAGE("screenshots: " << output_dir().string() << "/status-page-*.png");
}
