// SPDX-License-Identifier: MIT
// The priority sync of the incident, as it should have been: every N seconds it loads
// the priority models by slug (provider and status included) from whichever source
// answers, then writes fresh statuses to the primary. With an outbox on the primary
// (postgresql://…&outbox=PATH) it keeps writing through an outage: the writes are queued
// durably and applied when the database is back; it says which happened. Without one it
// says plainly when they cannot be written (writes never go to a backup).
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include <modelrepo/modelrepo.hpp>

#include "common.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> sources;
    std::vector<std::string> priority{"gpt-5", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro",
                                      "llama-4-maverick"};
    double interval = 300;
    int iterations = 0;
    CLI::App app{"Every INTERVAL seconds: load the priority models, then upsert their "
                 "statuses (checked now) to the first source.",
                 "priority_sync"};
    app.add_option("-s,--source", sources,
                   "Source URI, repeatable, in order (default: $MODELREPO_SOURCES, then builtin:)");
    app.add_option("-p,--priority", priority, "Priority model slugs (comma-separated)")
        ->delimiter(',');
    app.add_option("-i,--interval", interval, "Seconds between syncs (default 300)")
        ->check(CLI::PositiveNumber);
    app.add_option("-n,--iterations", iterations, "Stop after this many syncs (0: run forever)");
    CLI11_PARSE(app, argc, argv);

    auto opened = modelrepo::open_fallback(example::sources_or_default(sources));
    if (!opened) {
        std::cerr << "priority_sync: " << opened.error().to_string() << '\n';
        return 1;
    }
    auto repo = opened.value(); // a chain, even of one source: it says who answered
    int unwritten = 0;
    for (int i = 0; iterations == 0 || i < iterations; ++i) {
        if (i > 0)
            std::this_thread::sleep_for(std::chrono::duration<double>(interval));
        modelrepo::Provenance answered_by;
        auto models = repo->find_models(priority, answered_by);
        if (!models) {
            std::cout << "sync " << i + 1
                      << ": cannot load priority models: " << models.error().to_string()
                      << std::endl;
            continue;
        }
        std::string from(answered_by.source);
        std::vector<modelrepo::ModelStatus> fresh;
        for (const auto& m : models.value()) {
            modelrepo::ModelStatus s;
            if (m.status)
                s = *m.status;
            s.model_slug = m.slug;
            s.checked_at = modelrepo::Clock::now(); // a real sync would measure here
            fresh.push_back(s);
        }
        std::cout << "sync " << i + 1 << ": " << models.value().size() << " priority models from "
                  << from << std::endl;
        auto written = repo->write_statuses(fresh);
        if (written && written.value().queued > 0)
            std::cout << "  queued " << written.value().queued << " statuses in the outbox ("
                      << written.value().outbox << "): the primary cannot take them now ("
                      << (written.value().deferred_because
                              ? written.value().deferred_because->to_string()
                              : std::string("down"))
                      << "); they are applied when it is back" << std::endl;
        else if (written)
            std::cout << "  wrote " << written.value().applied << " statuses to the primary"
                      << std::endl;
        else {
            ++unwritten;
            std::cout << "  statuses NOT written (" << written.error().to_string() << ")"
                      << std::endl;
        }
    }
    return unwritten == 0 ? 0 : 1;
}
