// SPDX-License-Identifier: MIT
// publish: the first source's catalogue, stored at a destination.
#include <iostream>

#include "command.hpp"

namespace modelrepo::cli {

namespace {

int run_publish(const Globals& globals, const std::string& destination,
                const std::string& message) {
    auto chain = open_chain_of(globals);
    if (!chain)
        return fail(chain.error());
    Provenance from;
    auto snapshot = chain.value()->export_snapshot(from);
    if (!snapshot)
        return fail(snapshot.error());
    if (from.backup()) {
        std::string primary(chain.value()->sources().front()->name());
        return fail(make_error(Errc::unreachable,
                               "the export came from " + std::string(from.source) +
                                   ", a backup, because " + primary +
                                   " could not answer; publish only what the first source holds "
                                   "(see modelrepo doctor)"));
    }
    PublishOptions options;
    if (!message.empty())
        options.message = message;
    auto result = publish_snapshot(snapshot.value(), destination, options);
    if (!result)
        return fail(result.error());
    const PublishResult& r = result.value();
    if (r.changed)
        std::cout << "published " << snapshot.value().models.size() << " models to "
                  << r.destination << (r.commit.empty() ? "" : " (commit " + r.commit + ")")
                  << '\n';
    else
        std::cout << "unchanged: " << r.destination << " already holds this catalogue" << '\n';
    return exit_ok;
}

} // namespace

Command define_publish(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "publish", "Export the catalogue from the first source and store it at DEST: "
                   "github://OWNER/REPO/PATH@BRANCH through the contents API (needs $GITHUB_TOKEN "
                   "with contents:write; one commit, none when unchanged) or file:///path.json "
                   "(atomic). Refuses an export a backup answered");
    auto destination = std::make_shared<std::string>();
    auto message = std::make_shared<std::string>();
    sub->add_option("destination", *destination,
                    "github://OWNER/REPO/PATH@BRANCH or file:///path.json")
        ->required();
    sub->add_option("--message", *message, "The commit message (github://)");
    return {sub, [&globals, destination, message] {
                return run_publish(globals, *destination, *message);
            }};
}

} // namespace modelrepo::cli
