// SPDX-License-Identifier: MIT
// modelrepo: query the model catalogue from the command line. main() parses the options
// and runs the command that was asked for; each command is a file of commands/ (serve's is
// serve/serve_command.cpp), listed once in the table below.
//
// Exit status: 0 success, 1 the repository answered an error (printed on stderr with
// its Errc name), 2 usage error.
#include <array>

#include "commands/command.hpp"

namespace {

using namespace modelrepo::cli;

/// Every command, in the order `--help` lists them.
constexpr std::array commands = std::to_array<DefineCommand>({
    define_stats, define_models, define_model, define_statuses, define_watch, define_upsert,
        define_export, define_metrics, define_serve, define_publish, define_migrate, define_import,
#if MODELREPO_HAS_POSTGRES
        define_doctor,
#endif
        define_outbox,
});

constexpr const char* examples =
    "Exit status: 0 ok, 1 the source answered an error, 2 usage error.\n"
    "Examples:\n"
    "  modelrepo stats\n"
    "  modelrepo models --priority gpt-5,claude-sonnet-4-5\n"
    "  modelrepo --source file:///var/lib/models.json model gpt-4o --json\n"
    "  modelrepo --source \"$DATABASE_URL\" migrate\n"
    "  modelrepo --source \"$DATABASE_URL\" import builtin:\n"
    "  modelrepo --source \"$DATABASE_URL\" export > models.json\n"
    "  modelrepo --source \"$DATABASE_URL\" watch --json\n"
    "  modelrepo --source \"$DATABASE_URL&outbox=/var/lib/app/outbox.db\" upsert s.json\n"
    "  modelrepo --source \"$DATABASE_URL&outbox=/var/lib/app/outbox.db\" outbox drain\n"
    "  modelrepo --source \"$DATABASE_URL&cache=live\" --source builtin: serve "
    "--token-file /run/secrets/modelrepo-token\n"
    "  GITHUB_TOKEN=… modelrepo --source \"$DATABASE_URL\" publish "
    "github://acme/catalogue/models.json@main\n";

} // namespace

int main(int argc, char** argv) {
    Globals globals;
    CLI::App app{"Query the catalogue of AI models, their providers and live status.\n"
                 "Sources are tried in order; every answer says which one served it.",
                 "modelrepo"};
    app.set_version_flag("--version", std::string(modelrepo::version()));
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("-s,--source", globals.sources,
                   "Source URI, repeatable (a chain, in order): builtin:, file:///path.json, "
                   "postgresql://…, github://owner/repo/path@ref, https://…. "
                   "Default: $MODELREPO_SOURCES_FILE (a file of URIs, one a line), then "
                   "$MODELREPO_SOURCES (comma-separated), then builtin:")
        ->type_name("URI");
    app.add_flag("--json", globals.json, "Print JSON instead of tables");
    app.footer(examples);

    std::vector<Command> defined;
    for (DefineCommand define : commands)
        defined.push_back(define(app, globals));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return exit_usage;
    }
    for (const Command& command : defined)
        if (command.app->parsed())
            return command.run();
    return exit_usage;
}
