// SPDX-License-Identifier: MIT
// Runs the example services on the bundled catalogue and on a chain whose primary is down.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "process.hpp"

using modelrepo::test::require_env;
using modelrepo::test::run_process;

namespace {

const std::string dead_primary = "postgresql://nobody:Hidden-Pw-1@127.0.0.1:1/models";

modelrepo::test::ProcessResult example(const char* env, std::vector<std::string> args) {
    args.insert(args.begin(), require_env(env));
    return run_process(args, {{"MODELREPO_SOURCES", ""}});
}

} // namespace

TEST_CASE("every example has a --help") {
    for (const char* env : {"EXAMPLE_REALTIME_STATS", "EXAMPLE_PRIORITY_SYNC"}) {
        auto r = example(env, {"--help"});
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("--source") != std::string::npos);
    }
}

TEST_CASE("realtime_stats keeps publishing with the primary down, and alerts") {
    auto r = example("EXAMPLE_REALTIME_STATS",
                     {"-s", dead_primary, "-s", "builtin:", "-n", "7", "-i", "0.05"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("update 7 (refresh): 32 models") != std::string::npos);
    CHECK(r.out.find("pushing on every change") != std::string::npos);
    CHECK(r.out.find("from builtin") != std::string::npos);
    CHECK(r.out.find("ALERT") != std::string::npos);
    CHECK(r.out.find("served_by_backup builtin") != std::string::npos);
    CHECK(r.out.find("breaker_opened postgresql://nobody@127.0.0.1:1/models") != std::string::npos);
    CHECK(r.out.find("Hidden-Pw-1") == std::string::npos);
}

TEST_CASE("priority_sync reads from the backup but reports that writes did not happen") {
    auto ok = example("EXAMPLE_PRIORITY_SYNC", {"-n", "1"});
    CHECK(ok.exit_code == 0);
    CHECK(ok.out.find("wrote 5 statuses to the primary") != std::string::npos);

    auto down = example("EXAMPLE_PRIORITY_SYNC",
                        {"-s", dead_primary, "-s", "builtin:", "-n", "2", "-i", "0.05"});
    CHECK(down.exit_code == 1);
    CHECK(down.out.find("5 priority models from builtin") != std::string::npos);
    CHECK(down.out.find("statuses NOT written (unreachable") != std::string::npos);
    CHECK(down.out.find("wrote") == std::string::npos);
}
