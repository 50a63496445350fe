// SPDX-License-Identifier: MIT
// The realtime service of the incident, as it should have been: it pushes global counts
// and statuses when the catalogue changes (watch), with a full refresh every INTERVAL as a
// safety net; says which source answered, and when that is a last-known copy standing in
// for the database; and turns the chain's events into alerts. It keeps publishing while
// the database is down.
#include <condition_variable>
#include <iostream>
#include <mutex>

#include <CLI/CLI.hpp>

#include <modelrepo/modelrepo.hpp>

#include "common.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> sources;
    double interval = 30;
    int iterations = 0;
    CLI::App app{"Publish model/provider counts and statuses when the catalogue changes and "
                 "every INTERVAL seconds, from the first source that answers; print breaker and "
                 "backup events as alerts.",
                 "realtime_stats"};
    app.add_option("-s,--source", sources,
                   "Source URI, repeatable, in order (default: $MODELREPO_SOURCES, then builtin:)");
    app.add_option("-i,--interval", interval, "Seconds between full refreshes (default 30)")
        ->check(CLI::PositiveNumber);
    app.add_option("-n,--iterations", iterations, "Stop after this many updates (0: run forever)");
    CLI11_PARSE(app, argc, argv);

    auto opened = modelrepo::open_fallback(example::sources_or_default(sources));
    if (!opened) {
        std::cerr << "realtime_stats: " << opened.error().to_string() << '\n';
        return 1;
    }
    auto repo = opened.value();
    std::mutex mutex; // guards the output and `changed`
    std::condition_variable wake;
    int changed = 0;
    repo->subscribe([&](const modelrepo::FallbackEvent& e) {
        std::lock_guard lock(mutex);
        std::cout << "ALERT " << modelrepo::format_timestamp(e.at) << " "
                  << modelrepo::to_string(e.kind) << " " << e.source << ": " << e.cause
                  << std::endl;
    });
    // Push on change; the periodic refresh stays as the safety net.
    auto watching = repo->watch([&](const modelrepo::CatalogChange&) {
        std::lock_guard lock(mutex);
        ++changed;
        wake.notify_one();
    });
    {
        std::lock_guard lock(mutex);
        if (watching)
            std::cout << "pushing on every change, and a full refresh every " << interval << " s"
                      << std::endl;
        else
            std::cout << "no change feed (" << watching.error().to_string()
                      << "); a full refresh every " << interval << " s" << std::endl;
    }

    int failures = 0;
    for (int i = 0; iterations == 0 || i < iterations; ++i) {
        const char* why = "refresh";
        if (i > 0) {
            std::unique_lock lock(mutex);
            if (wake.wait_for(lock, std::chrono::duration<double>(interval),
                              [&] { return changed > 0; }))
                why = "change";
            changed = 0;
        }
        auto stats = repo->system_stats();
        auto statuses = repo->list_statuses();
        std::lock_guard lock(mutex);
        if (!stats || !statuses) {
            ++failures;
            std::cout << "update " << i + 1
                      << " failed: " << (!stats ? stats.error() : statuses.error()).to_string()
                      << std::endl;
            continue;
        }
        const auto& s = stats.value();
        std::cout << "update " << i + 1 << " (" << why << "): " << s.models << " models, "
                  << s.providers << " providers, " << statuses.value().size()
                  << " statuses (operational " << s.health.operational << ", degraded "
                  << s.health.degraded << ", outage " << s.health.outage << ", unknown "
                  << s.health.unknown << ") from " << s.source << " as of "
                  << modelrepo::format_timestamp(s.as_of) << std::endl;
        if (s.source.find("last-known copy") != std::string::npos)
            std::cout << "  the database does not answer: this is the last state it was seen in"
                      << std::endl;
    }
    return failures == 0 ? 0 : 1;
}
