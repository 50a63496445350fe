// SPDX-License-Identifier: MIT
// metrics: a workload of mixed reads through the chain, then its metrics.
#include <iostream>

#include "command.hpp"

namespace modelrepo::cli {

Command define_metrics(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "metrics", "Run a workload of mixed reads through the sources, then print the "
                   "metrics in Prometheus text format (calls, failures, answers per source, "
                   "breaker state, pool)");
    auto calls = std::make_shared<int>(100);
    sub->add_option("--calls", *calls, "Reads to make first (default 100)")
        ->check(CLI::Range(0, 10'000'000));
    return {sub, [&globals, calls] {
                auto chain = open_chain_of(globals);
                if (!chain)
                    return fail(chain.error());
                FallbackRepository& c = *chain.value();
                const std::vector<std::string> priority{"gpt-5", "gpt-4o", "claude-sonnet-4-5"};
                for (int i = 0; i < *calls; ++i) {
                    if (i % 3 == 0)
                        (void)c.system_stats();
                    else if (i % 3 == 1)
                        (void)c.find_models(priority);
                    else
                        (void)c.list_statuses();
                }
                std::cout << c.prometheus();
                return exit_ok;
            }};
}

} // namespace modelrepo::cli
