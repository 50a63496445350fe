// SPDX-License-Identifier: MIT
// migrate and import: the schema and bulk loads of a source that owns its tables
// (the CatalogAdmin capability; PostgreSQL has it).
#include <iostream>

#include "command.hpp"
#include "progress_line.hpp"

namespace modelrepo::cli {

namespace {

/// The first source's CatalogAdmin, or an error that says the command needs one.
Result<CatalogAdmin*> admin_of(ModelRepository& repo, const char* command) {
    if (auto* admin = repo.capability<CatalogAdmin>())
        return admin;
    return make_error(Errc::invalid_argument,
                      std::string(command) + " works on a PostgreSQL source; " +
                          std::string(repo.name()) + " is not one (use --source postgresql://…)");
}

int run_migrate(const Globals& globals) {
    auto sources = open_sources(globals);
    if (!sources)
        return fail(sources.error());
    ModelRepository& repo = *sources.value().repo;
    auto admin = admin_of(repo, "migrate");
    if (!admin)
        return fail(admin.error());
    auto version = admin.value()->migrate();
    if (!version)
        return fail(version.error());
    std::cout << "schema version " << version.value() << " on " << repo.name() << '\n';
    return exit_ok;
}

int run_import(const Globals& globals, const std::string& from) {
    auto sources = open_sources(globals);
    if (!sources)
        return fail(sources.error());
    ModelRepository& repo = *sources.value().repo;
    auto admin = admin_of(repo, "import");
    if (!admin)
        return fail(admin.error());
    ProgressLine progress("import");
    Result<Snapshot> snapshot =
        from == "builtin:" || from == "builtin"
            ? builtin_snapshot()
            : read_snapshot_file(from.starts_with("file://") ? from.substr(7) : from);
    if (!snapshot)
        return fail(snapshot.error());
    const auto models = static_cast<std::int64_t>(snapshot.value().models.size());
    progress.tell({"models read", models, models});
    auto done = admin.value()->import_snapshot(snapshot.value(), progress.fn());
    progress.finish();
    if (!done)
        return fail(done.error());
    std::cout << "imported " << snapshot.value().models.size() << " models, "
              << snapshot.value().providers.size() << " providers and "
              << snapshot.value().statuses.size() << " statuses into " << repo.name() << '\n';
    return exit_ok;
}

} // namespace

Command define_migrate(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "migrate", "Create or upgrade modelrepo's tables in the PostgreSQL source (idempotent); "
                   "with mapping=FILE in its URL, only the change feed's tables and triggers on "
                   "the mapped tables (no column of them is created, altered or dropped)");
    return {sub, [&globals] { return run_migrate(globals); }};
}

Command define_import(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "import", "Make the PostgreSQL source's catalogue the snapshot's, in one transaction: "
                  "rows merged by slug (kept rows keep their ids), the rest deleted");
    auto from = std::make_shared<std::string>();
    sub->add_option("snapshot", *from, "A snapshot file (modelrepo.snapshot/1) or builtin:")
        ->required();
    return {sub, [&globals, from] { return run_import(globals, *from); }};
}

} // namespace modelrepo::cli
