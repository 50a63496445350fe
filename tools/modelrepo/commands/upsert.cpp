// SPDX-License-Identifier: MIT
// upsert: status writes to the first source.
#include <iostream>

#include "command.hpp"

namespace modelrepo::cli {

Command define_upsert(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "upsert",
        "Write statuses (a JSON array of status objects, the snapshot's form) to the "
        "first source: says 'applied N' (and on stderr the statuses ignored as older than "
        "the stored ones), or 'queued N in the outbox (PATH)' while the database "
        "cannot take them (outbox=PATH). A checked_at more than max_clock_skew (5 "
        "min) ahead of the clock is refused");
    auto from = std::make_shared<std::string>();
    sub->add_option("file", *from, "A JSON file, or - for standard input")->required();
    return {sub, [&globals, from] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                auto text = read_input(*from);
                if (!text)
                    return fail(text.error());
                auto statuses = parse_statuses(text.value());
                if (!statuses)
                    return fail(statuses.error());
                auto receipt = sources.value().repo->write_statuses(statuses.value());
                if (!receipt)
                    return fail(receipt.error());
                const auto& r = receipt.value();
                if (r.queued == 0) {
                    std::cout << "applied " << r.applied << '\n';
                    if (r.ignored > 0) {
                        std::cerr << "modelrepo: ignored " << r.ignored
                                  << " older than the stored status (checked_at):";
                        for (const auto& slug : r.ignored_models)
                            std::cerr << ' ' << slug;
                        std::cerr << '\n';
                    }
                    return exit_ok;
                }
                std::cout << "queued " << r.queued << " in the outbox (" << r.outbox << ")" << '\n';
                if (r.deferred_because)
                    std::cerr << "modelrepo: the database could not take them now: "
                              << r.deferred_because->to_string() << '\n';
                if (r.unchecked > 0)
                    std::cerr << "modelrepo: " << r.unchecked
                              << " of them name models nothing could check (no last-known copy); "
                                 "one the database does not know goes to the dead letters\n";
                return exit_ok;
            }};
}

} // namespace modelrepo::cli
