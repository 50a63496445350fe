// SPDX-License-Identifier: MIT
// watch: one line per change until SIGINT or SIGTERM (exit 0).
#include <iostream>
#include <mutex>

#include "command.hpp"

namespace modelrepo::cli {

Command define_watch(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "watch", "Print one line per change to the catalogue, made by any client, until "
                 "SIGINT/SIGTERM; with --json: {\"kind\",\"slug\",\"version\",\"at\"} "
                 "(at in RFC 3339 UTC with microseconds). PostgreSQL needs schema version 2 "
                 "(modelrepo migrate)");
    return {sub, [&globals] {
                block_stop_signals(); // before the library's threads start
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                ModelRepository& repo = *sources.value().repo;
                std::mutex out;
                auto subscription = repo.watch([&](const CatalogChange& change) {
                    std::lock_guard lock(out);
                    if (globals.json)
                        std::cout << to_json(change) << std::endl;
                    else
                        std::cout << format_timestamp_precise(change.at) << " "
                                  << to_string(change.kind)
                                  << (change.slug.empty() ? "" : " " + change.slug) << " (version "
                                  << change.version << ")" << std::endl;
                });
                if (!subscription)
                    return fail(subscription.error());
                {
                    std::lock_guard lock(out);
                    std::cerr << "modelrepo: watching " << repo.name() << " (Ctrl-C to stop)"
                              << std::endl;
                }
                wait_for_stop();
                subscription.value().cancel();
                return exit_ok;
            }};
}

} // namespace modelrepo::cli
