// SPDX-License-Identifier: MIT
// What every command of the modelrepo CLI is: a function that adds its subcommand and
// options to the app and returns what runs it once parsed. main.cpp lists them in one
// table (as git's commands[] does) and calls the one that was parsed. The helpers below
// are what several commands share: exit codes, errors, the sources, stop signals.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::cli {

constexpr int exit_ok = 0;
constexpr int exit_error = 1; ///< the source answered an error (printed with its Errc name)
constexpr int exit_usage = 2;

/// The options before the command, shared by all.
struct Globals {
    std::vector<std::string> sources; ///< --source, in order
    bool json = false;                ///< --json
};

/// A defined command: its subcommand, and what runs it.
struct Command {
    CLI::App* app = nullptr;
    std::function<int()> run;
};
/// Adds one command to `app`. `globals` outlives the returned Command.
using DefineCommand = Command (*)(CLI::App& app, const Globals& globals);

// The commands, one file each (or one per small family) in tools/modelrepo/commands/.
Command define_stats(CLI::App& app, const Globals& globals);
Command define_models(CLI::App& app, const Globals& globals);
Command define_model(CLI::App& app, const Globals& globals);
Command define_statuses(CLI::App& app, const Globals& globals);
Command define_watch(CLI::App& app, const Globals& globals);
Command define_upsert(CLI::App& app, const Globals& globals);
Command define_export(CLI::App& app, const Globals& globals);
Command define_metrics(CLI::App& app, const Globals& globals);
Command define_serve(CLI::App& app, const Globals& globals); // serve/serve_command.cpp
Command define_publish(CLI::App& app, const Globals& globals);
Command define_migrate(CLI::App& app, const Globals& globals);
Command define_import(CLI::App& app, const Globals& globals);
Command define_doctor(CLI::App& app, const Globals& globals);
Command define_outbox(CLI::App& app, const Globals& globals);

/// --source, else $MODELREPO_SOURCES_FILE (one URI a line), else $MODELREPO_SOURCES
/// (comma-separated), else the bundled catalogue. Fails only for a sources file that cannot
/// be read or holds none.
Result<std::vector<std::string>> resolve_sources(const Globals& globals);

/// The sources a command works on: one repository, or a chain of several.
struct Sources {
    std::shared_ptr<ModelRepository> repo;     ///< what the command calls
    std::shared_ptr<FallbackRepository> chain; ///< `repo` as a chain, when several sources
};
/// Opens the resolved sources: one as it is (its errors are its own), several as a chain.
Result<Sources> open_sources(const Globals& globals);
/// Opens them always as a chain (serve, publish, metrics need the chain's parts).
Result<std::shared_ptr<FallbackRepository>> open_chain_of(const Globals& globals);

/// `call(repo)`, or `call(chain, provenance)` for a chain; `served_by` gets the name of
/// the source that answered.
template <class Call>
auto answered(Sources& sources, std::string& served_by, Call&& call) {
    if (sources.chain) {
        Provenance from;
        auto answer = call(*sources.chain, from);
        served_by = answer ? std::string(from.source) : std::string(sources.chain->name());
        return answer;
    }
    served_by = std::string(sources.repo->name());
    return call(*sources.repo);
}

/// Prints "modelrepo: error: <errc>: <message>" on stderr; returns exit_error.
int fail(const Error& error);
/// Pretty JSON on stdout.
void print_json(const nlohmann::ordered_json& value);
/// A whole file, or standard input for "-", up to 16 MiB.
Result<std::string> read_input(const std::string& from);
/// Comma-separated items, trimmed, empty ones dropped.
std::vector<std::string> split_list(std::string_view text);

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts later (call it
/// before any source is opened); `wait_for_stop()` then takes one with sigwait, so
/// nothing runs in a signal handler. Returns the signal.
void block_stop_signals();
int wait_for_stop();

} // namespace modelrepo::cli
