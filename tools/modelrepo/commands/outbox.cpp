// SPDX-License-Identifier: MIT
// outbox and outbox drain: what the first source's outbox (outbox=PATH) holds.
#include <iostream>

#include "command.hpp"
#include "progress_line.hpp"

namespace modelrepo::cli {

namespace {

int print_drain(const OutboxDrain& d) {
    std::cout << "applied " << d.statuses << " statuses in " << d.batches << " batches"
              << (d.dead_letters
                      ? ", " + std::to_string(d.dead_letters) + " batches moved to the dead letters"
                      : std::string())
              << "; " << d.remaining << " pending" << '\n';
    return d.remaining == 0 ? exit_ok : exit_error;
}

void print_state_json(const OutboxState& o) {
    nlohmann::ordered_json out;
    out["outbox"] = o.path.string();
    out["pending_batches"] = o.batches;
    out["pending_statuses"] = o.statuses;
    out["oldest"] = o.oldest ? nlohmann::ordered_json(format_timestamp(*o.oldest))
                             : nlohmann::ordered_json(nullptr);
    out["last_error"] = o.last_error;
    out["dead_letters"] = o.dead_letters;
    out["recent_dead_letters"] = nlohmann::ordered_json::array();
    for (const auto& d : o.recent_dead_letters)
        out["recent_dead_letters"].push_back({{"batch", d.batch},
                                              {"statuses", d.statuses},
                                              {"queued_at", format_timestamp(d.queued_at)},
                                              {"failed_at", format_timestamp(d.failed_at)},
                                              {"error", d.error}});
    print_json(out);
}

void print_state(const OutboxState& o) {
    std::cout << "outbox " << o.path.string() << ": " << o.statuses << " statuses in " << o.batches
              << " batches pending";
    if (o.oldest)
        std::cout << ", the oldest queued " << format_timestamp(*o.oldest);
    std::cout << '\n';
    if (!o.last_error.empty())
        std::cout << "last attempt: " << o.last_error << '\n';
    std::cout << o.dead_letters << " dead letters" << '\n';
    for (const auto& d : o.recent_dead_letters)
        std::cout << "  batch " << d.batch << " (" << d.statuses << " statuses, queued "
                  << format_timestamp(d.queued_at) << "): " << d.error << '\n';
}

int run_outbox(const Globals& globals, bool drain) {
    auto sources = open_sources(globals);
    if (!sources)
        return fail(sources.error());
    ModelRepository& repo = *sources.value().repo;
    auto* outbox = repo.capability<OutboxControl>();
    if (!outbox)
        return fail(
            make_error(Errc::invalid_argument, "outbox works on a source with an outbox; " +
                                                   std::string(repo.name()) +
                                                   " has none (add outbox=PATH to its URL)"));
    if (drain) {
        ProgressLine progress("outbox drain");
        auto drained = outbox->drain_outbox(progress.fn());
        progress.finish();
        if (!drained) {
            std::cerr << "modelrepo: the database cannot take the outbox's writes yet\n";
            return fail(drained.error());
        }
        return print_drain(drained.value());
    }
    auto state = outbox->outbox_state();
    if (!state)
        return fail(state.error());
    if (globals.json)
        print_state_json(state.value());
    else
        print_state(state.value());
    return exit_ok;
}

} // namespace

Command define_outbox(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "outbox", "Show what the first source's outbox (outbox=PATH) holds: pending batches "
                  "and statuses, the oldest, dead letters");
    auto* drain = sub->add_subcommand(
        "drain", "Apply what the outbox holds now; exit 1 while the database still cannot "
                 "take it");
    return {sub, [&globals, drain] { return run_outbox(globals, drain->parsed()); }};
}

} // namespace modelrepo::cli
