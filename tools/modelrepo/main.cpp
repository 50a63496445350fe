// SPDX-License-Identifier: MIT
// modelrepo: query the model catalogue from the command line.
//
// Exit status: 0 success, 1 the repository answered an error (printed on stderr with
// its Errc name), 2 usage error.
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include <modelrepo/modelrepo.hpp>

#include "output.hpp"

namespace {

using namespace modelrepo;

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;

constexpr const char* default_priority = "gpt-5,gpt-4o,claude-sonnet-4-5,gemini-2.5-pro,"
                                         "llama-4-maverick";

struct Options {
    std::vector<std::string> sources;
    bool json = false;
    std::vector<std::string> priority;
    std::string slug;
    std::string health;
};

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (!item.empty())
            items.emplace_back(item);
        if (comma == std::string_view::npos)
            break;
        start = comma + 1;
    }
    return items;
}

/// --source, else $MODELREPO_SOURCES, else the bundled catalogue.
std::vector<std::string> resolve_sources(const Options& options) {
    if (!options.sources.empty())
        return options.sources;
    if (const char* env = std::getenv("MODELREPO_SOURCES"); env && *env)
        if (auto list = split_list(env); !list.empty())
            return list;
    return {"builtin:"};
}

/// The source that answered the last call: for a chain, the one that answered.
std::string served_by(ModelRepository& repo) {
    if (auto* chain = dynamic_cast<FallbackRepository*>(&repo))
        if (auto source = chain->last_source(); !source.empty())
            return source;
    return std::string(repo.name());
}

int fail(const Error& error) {
    std::cerr << "modelrepo: error: " << error.to_string() << '\n';
    return exit_error;
}

void print_json(const nlohmann::ordered_json& value) {
    // Text from a database may not be UTF-8 (an SQL_ASCII database passes bytes through):
    // replace what is not, rather than abort on nlohmann::json's type_error.
    std::cout << value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
              << '\n';
}

int run_stats(ModelRepository& repo, const Options& options) {
    auto stats = repo.system_stats();
    if (!stats)
        return fail(stats.error());
    if (options.json)
        print_json(cli::to_json(stats.value()));
    else
        cli::print_stats(std::cout, stats.value());
    return exit_ok;
}

int run_models(ModelRepository& repo, const Options& options, bool priority_given) {
    auto models = priority_given ? repo.find_models(options.priority) : repo.list_models();
    if (!models)
        return fail(models.error());
    if (priority_given)
        for (const std::string& slug : options.priority) {
            bool found = false;
            for (const Model& m : models.value())
                found = found || m.slug == slug;
            if (!found)
                std::cerr << "modelrepo: note: no model '" << slug << "' in " << repo.name()
                          << '\n';
        }
    if (options.json) {
        nlohmann::ordered_json out;
        out["source"] = served_by(repo);
        out["models"] = nlohmann::ordered_json::array();
        for (const Model& m : models.value())
            out["models"].push_back(cli::to_json(m));
        print_json(out);
    } else {
        cli::print_models(std::cout, models.value(), served_by(repo));
    }
    return exit_ok;
}

int run_model(ModelRepository& repo, const Options& options) {
    auto model = repo.find_model(options.slug);
    if (!model)
        return fail(model.error());
    if (!model.value()) {
        Error error = make_error(Errc::not_found, "no model '" + options.slug + "' in " +
                                                      std::string(repo.name()) +
                                                      " (list them with: modelrepo models)");
        return fail(error);
    }
    if (options.json) {
        nlohmann::ordered_json out = cli::to_json(*model.value());
        out["source"] = served_by(repo);
        print_json(out);
    } else {
        cli::print_model(std::cout, *model.value(), served_by(repo));
    }
    return exit_ok;
}

int run_statuses(ModelRepository& repo, const Options& options) {
    auto statuses = repo.list_statuses();
    if (!statuses)
        return fail(statuses.error());
    std::vector<ModelStatus> shown;
    std::optional<Health> wanted;
    if (!options.health.empty())
        wanted = parse_health(options.health);
    for (const ModelStatus& s : statuses.value())
        if (!wanted || s.health == *wanted)
            shown.push_back(s);
    if (options.json) {
        nlohmann::ordered_json out;
        out["source"] = served_by(repo);
        out["statuses"] = nlohmann::ordered_json::array();
        for (const ModelStatus& s : shown)
            out["statuses"].push_back(cli::to_json(s));
        print_json(out);
    } else {
        cli::print_statuses(std::cout, shown, served_by(repo));
    }
    return exit_ok;
}

#if MODELREPO_HAS_POSTGRES
/// The PostgreSQL repository behind `repo`, or an error that says the command needs one.
Result<PostgresRepository*> postgres_of(ModelRepository& repo, const char* command) {
    if (auto* pg = dynamic_cast<PostgresRepository*>(&repo))
        return pg;
    return make_error(Errc::invalid_argument,
                      std::string(command) + " works on a PostgreSQL source; " +
                          std::string(repo.name()) + " is not one (use --source postgresql://…)");
}

int run_migrate(ModelRepository& repo) {
    auto pg = postgres_of(repo, "migrate");
    if (!pg)
        return fail(pg.error());
    auto version = pg.value()->migrate();
    if (!version)
        return fail(version.error());
    std::cout << "schema version " << version.value() << " on " << repo.name() << '\n';
    return exit_ok;
}

int run_doctor(const std::string& url, const std::string& admin_url, bool json) {
    auto report = diagnose_postgres(url, admin_url);
    if (!report)
        return fail(report.error());
    if (json) {
        nlohmann::ordered_json out;
        out["healthy"] = report.value().healthy();
        out["checks"] = nlohmann::ordered_json::array();
        for (const auto& c : report.value().checks)
            out["checks"].push_back({{"scope", c.scope},
                                     {"check", c.name},
                                     {"status", std::string(to_string(c.status))},
                                     {"detail", c.detail},
                                     {"fix", c.fix}});
        print_json(out);
    } else {
        for (const auto& c : report.value().checks) {
            std::cout << "[" << to_string(c.status) << "] " << c.scope << " " << c.name << ": "
                      << c.detail << '\n';
            if (!c.fix.empty())
                std::cout << "       fix: " << c.fix << '\n';
        }
        std::cout << (report.value().healthy() ? "no problems found" : "problems found") << '\n';
    }
    return report.value().healthy() ? exit_ok : exit_error;
}

int run_import(ModelRepository& repo, const std::string& from) {
    auto pg = postgres_of(repo, "import");
    if (!pg)
        return fail(pg.error());
    Result<Snapshot> snapshot = make_error(Errc::invalid_argument, "no snapshot");
    if (from == "builtin:" || from == "builtin")
        snapshot = builtin_snapshot();
    else
        snapshot = read_snapshot_file(from.starts_with("file://") ? from.substr(7) : from);
    if (!snapshot)
        return fail(snapshot.error());
    if (auto done = pg.value()->import_snapshot(snapshot.value()); !done)
        return fail(done.error());
    std::cout << "imported " << snapshot.value().models.size() << " models, "
              << snapshot.value().providers.size() << " providers and "
              << snapshot.value().statuses.size() << " statuses into " << repo.name() << '\n';
    return exit_ok;
}
#endif

/// Runs `calls` mixed reads through the chain, then prints its metrics (Prometheus).
int run_metrics(std::shared_ptr<ModelRepository> repo, int calls) {
    auto chain = std::dynamic_pointer_cast<FallbackRepository>(repo);
    if (!chain) {
        auto wrapped = FallbackRepository::create({repo});
        if (!wrapped)
            return fail(wrapped.error());
        chain = std::move(wrapped).value();
    }
    const std::vector<std::string> priority{"gpt-5", "gpt-4o", "claude-sonnet-4-5"};
    for (int i = 0; i < calls; ++i) {
        switch (i % 3) {
        case 0:
            (void)chain->system_stats();
            break;
        case 1:
            (void)chain->find_models(priority);
            break;
        default:
            (void)chain->list_statuses();
        }
    }
    std::cout << chain->prometheus();
    return exit_ok;
}

int run_export(ModelRepository& repo) {
    auto snapshot = repo.export_snapshot();
    if (!snapshot)
        return fail(snapshot.error());
    std::cout << write_snapshot(snapshot.value());
    std::cerr << "modelrepo: exported " << snapshot.value().models.size() << " models from "
              << served_by(repo) << '\n';
    return exit_ok;
}

} // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"Query the catalogue of AI models, their providers and live status.\n"
                 "Sources are tried in order; every answer says which one served it.",
                 "modelrepo"};
    app.set_version_flag("--version", std::string(modelrepo::version()));
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option("-s,--source", options.sources,
                   "Source URI, repeatable (a chain, in order): builtin:, file:///path.json, "
                   "postgresql://…, github://owner/repo/path@ref, https://…. "
                   "Default: $MODELREPO_SOURCES (comma-separated), then builtin:")
        ->type_name("URI");
    app.add_flag("--json", options.json, "Print JSON instead of tables");
    app.footer("Exit status: 0 ok, 1 the source answered an error, 2 usage error.\n"
               "Examples:\n"
               "  modelrepo stats\n"
               "  modelrepo models --priority gpt-5,claude-sonnet-4-5\n"
               "  modelrepo --source file:///var/lib/models.json model gpt-4o --json\n"
               "  modelrepo --source \"$DATABASE_URL\" migrate\n"
               "  modelrepo --source \"$DATABASE_URL\" import builtin:\n"
               "  modelrepo --source \"$DATABASE_URL\" export > models.json\n");

    auto* stats = app.add_subcommand("stats", "Counts of models and providers, per health");
    auto* models = app.add_subcommand("models", "List models with provider and status");
    auto* priority = models
                         ->add_option("-p,--priority", options.priority,
                                      "Only these slugs, in this order (comma-separated), e.g. " +
                                          std::string(default_priority))
                         ->delimiter(',')
                         ->type_name("SLUG,...");
    auto* model = app.add_subcommand("model", "One model by slug");
    model->add_option("slug", options.slug, "Model slug, e.g. gpt-4o")->required();
    auto* statuses = app.add_subcommand("statuses", "Current status of every model");
    statuses->add_option("--health", options.health, "Only this health")
        ->check(CLI::IsMember({"operational", "degraded", "outage", "unknown"}));
    auto* exported = app.add_subcommand("export", "Write the whole catalogue as snapshot JSON "
                                                  "(modelrepo.snapshot/1) to stdout");
    int metric_calls = 100;
    auto* metrics = app.add_subcommand(
        "metrics", "Run a workload of mixed reads through the sources, then print the "
                   "metrics in Prometheus text format (calls, failures, answers per source, "
                   "breaker state, pool)");
    metrics->add_option("--calls", metric_calls, "Reads to make first (default 100)")
        ->check(CLI::Range(0, 10'000'000));
#if MODELREPO_HAS_POSTGRES
    std::string import_from;
    auto* migrate = app.add_subcommand(
        "migrate", "Create or upgrade modelrepo's tables in the PostgreSQL source (idempotent)");
    auto* import = app.add_subcommand(
        "import", "Replace the PostgreSQL source's catalogue with a snapshot, in one transaction");
    import
        ->add_option("snapshot", import_from, "A snapshot file (modelrepo.snapshot/1) or builtin:")
        ->required();
    std::string doctor_url, admin_url;
    auto* doctor = app.add_subcommand(
        "doctor", "Diagnose a PostgreSQL URL: every address the host resolves to (TCP, TLS, the "
                  "auth method asked, login, database, schema); with --admin-url also the role's "
                  "verifier, the matching pg_hba.conf lines and an unreloaded pg_hba.conf. "
                  "Exit 0 when nothing failed, 1 otherwise");
    doctor->add_option("url", doctor_url,
                       "The URL to diagnose (default: the first --source, "
                       "then $DATABASE_URL)");
    doctor->add_option("--admin-url", admin_url, "A superuser URL for the server-side checks");
#endif

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

#if MODELREPO_HAS_POSTGRES
    if (doctor->parsed()) {
        if (doctor_url.empty() && !options.sources.empty())
            doctor_url = options.sources.front();
        if (const char* env = std::getenv("DATABASE_URL"); doctor_url.empty() && env)
            doctor_url = env;
        if (doctor_url.empty()) {
            std::cerr << "modelrepo: doctor needs a URL (argument, --source or $DATABASE_URL)\n";
            return exit_usage;
        }
        return run_doctor(doctor_url, admin_url, options.json);
    }
#endif

    auto repo = modelrepo::open_chain(resolve_sources(options));
    if (!repo)
        return fail(repo.error());
    ModelRepository& source = *repo.value();

    if (stats->parsed())
        return run_stats(source, options);
    if (models->parsed())
        return run_models(source, options, priority->count() > 0);
    if (model->parsed())
        return run_model(source, options);
    if (statuses->parsed())
        return run_statuses(source, options);
    if (exported->parsed())
        return run_export(source);
    if (metrics->parsed())
        return run_metrics(repo.value(), metric_calls);
#if MODELREPO_HAS_POSTGRES
    if (migrate->parsed())
        return run_migrate(source);
    if (import->parsed())
        return run_import(source, import_from);
#endif
    return exit_usage;
}
