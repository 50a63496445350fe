// SPDX-License-Identifier: MIT
// serve's status page in a real browser: Debian's chromium, headless, driven by
// puppeteer-core (tests/browser/status_page.mjs), against serve on a real PostgreSQL with
// the builtin backup. A psql UPDATE shows without a reload; killing the database shows the
// backup serving and the timeline's entry; its return shows primary_recovered.
#include <filesystem>
#include <fstream>

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

} // namespace

TEST_CASE("the status page in chromium: sources and models shown, a psql UPDATE within 2 s, "
          "the database killed and back on the timeline, readable at 375 px, no console error") {
    if (!have_browser())
        return;
    auto& s = server();
    fresh_catalogue("status_page");
    TempDir dir;
    // No copy: with the database gone, the chain's backup answers (what the page must say).
    const std::string url = s.url("app", password, "status_page", "127.0.0.1", "connect_timeout=2");
    Serve serve({url, "builtin:"});

    ChildProcess node(
        {"node", (browser_dir() / "status_page.mjs").string(), serve.base(), dir.path().string()},
        {});
    std::vector<json> steps;
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

    json loaded = next_step("loaded");
    CHECK(loaded["models"] == 32);
    REQUIRE(loaded["sources"].size() == 2);
    CHECK(loaded["sources"][0].get<std::string>().starts_with("postgresql://app@127.0.0.1:"));
    CHECK(loaded["sources"][1] == "builtin");
    CHECK(loaded["health"] != "outage");

    next_step("wait");
    s.psql("UPDATE model_status SET health = 'outage' WHERE model_slug = 'gpt-5'", "status_page");
    act("update");
    json updated = next_step("updated");
    MESSAGE("psql UPDATE -> the page's cell: " << updated["ms"] << " ms");
    CHECK(updated["ms"].get<long long>() <= 2'000);

    next_step("wait");
    s.kill9();
    RestartOnExit restart{s};
    act("killed");
    json backup = next_step("backup");
    MESSAGE("kill -9 -> the page shows the backup serving and served_by_backup: " << backup["ms"]
                                                                                  << " ms");
    CHECK(backup["ms"].get<long long>() <= 5'000);
    CHECK(backup["state"].get<std::string>().find("a backup is serving: builtin") !=
          std::string::npos);
    CHECK(backup["text"].get<std::string>().find(password) == std::string::npos);

    next_step("wait");
    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    act("restarted");
    json recovered = next_step("recovered");
    CHECK(recovered["state"].get<std::string>().find("postgresql://") != std::string::npos);

    json narrow = next_step("narrow");
    CHECK(narrow["scroll_width"].get<int>() <= 375);
    CHECK(narrow["html"].get<std::string>().find(password) == std::string::npos);
    json done = next_step("done");
    CHECK_MESSAGE(done["errors"].empty(), done["errors"].dump(2));
    CHECK(node.wait(30s) == 0);

    for (const char* shot : {"status-page.png", "status-page-375.png"}) {
        REQUIRE(fs::exists(dir.path() / shot));
        CHECK(fs::file_size(dir.path() / shot) > 10'000);
        fs::copy_file(dir.path() / shot, output_dir() / shot, fs::copy_options::overwrite_existing);
    }
    MESSAGE("screenshots: " << (output_dir() / "status-page.png").string());
}
