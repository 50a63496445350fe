// SPDX-License-Identifier: MIT
// modelrepo: query the model catalogue from the command line.
//
// Exit status: 0 success, 1 the repository answered an error (printed on stderr with
// its Errc name), 2 usage error.
#include <atomic>
#include <cctype>
#include <charconv>
#include <csignal>
#include <iomanip>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include <CLI/CLI.hpp>
#include <pthread.h>

#include <modelrepo/modelrepo.hpp>

#include "output.hpp"
#include "serve/http_server.hpp"
#include "serve/publisher.hpp"
#include "serve/service.hpp"

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
    // A chain: the database is its primary.
    if (auto* chain = dynamic_cast<FallbackRepository*>(&repo))
        if (auto* pg = dynamic_cast<PostgresRepository*>(chain->sources().front().get()))
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

int run_outbox(ModelRepository& repo, bool drain, bool json) {
    auto pg = postgres_of(repo, "outbox");
    if (!pg)
        return fail(pg.error());
    if (drain) {
        auto drained = pg.value()->drain_outbox();
        if (!drained) {
            std::cerr << "modelrepo: the database cannot take the outbox's writes yet\n";
            return fail(drained.error());
        }
        const auto& d = drained.value();
        std::cout << "applied " << d.statuses << " statuses in " << d.batches << " batches"
                  << (d.dead_letters ? ", " + std::to_string(d.dead_letters) +
                                           " batches moved to the dead letters"
                                     : std::string())
                  << "; " << d.remaining << " pending" << '\n';
        return d.remaining == 0 ? exit_ok : exit_error;
    }
    auto state = pg.value()->outbox_state();
    if (!state)
        return fail(state.error());
    const auto& o = state.value();
    if (json) {
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
        return exit_ok;
    }
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
    return exit_ok;
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

/// Reads a whole file, or standard input for "-", up to 16 MiB.
Result<std::string> read_input(const std::string& from) {
    constexpr std::size_t limit = 16 * 1024 * 1024;
    std::string text;
    if (from == "-") {
        char buffer[65536];
        while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
            text.append(buffer, static_cast<std::size_t>(std::cin.gcount()));
            if (text.size() > limit)
                return make_error(Errc::bad_data, "standard input is larger than 16 MiB");
        }
        return text;
    }
    std::ifstream in(from, std::ios::binary);
    if (!in)
        return make_error(Errc::io_error, "cannot open '" + from + "'");
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in.gcount()));
        if (text.size() > limit)
            return make_error(Errc::bad_data, "'" + from + "' is larger than 16 MiB");
    }
    return text;
}

/// Writes statuses: "applied N", or "queued N in the outbox (PATH)" while the database
/// cannot take them.
int run_upsert(ModelRepository& repo, const std::string& from) {
    auto text = read_input(from);
    if (!text)
        return fail(text.error());
    auto statuses = parse_statuses(text.value());
    if (!statuses)
        return fail(statuses.error());
    auto receipt = repo.write_statuses(statuses.value());
    if (!receipt)
        return fail(receipt.error());
    const auto& r = receipt.value();
    if (r.queued > 0) {
        std::cout << "queued " << r.queued << " in the outbox (" << r.outbox << ")" << '\n';
        if (r.deferred_because)
            std::cerr << "modelrepo: the database could not take them now: "
                      << r.deferred_because->to_string() << '\n';
    } else {
        std::cout << "applied " << r.applied << '\n';
    }
    return exit_ok;
}

/// One line per change until SIGINT or SIGTERM (exit 0). The signals are blocked in
/// every thread (the mask is inherited by the library's threads, which start later) and
/// taken here with sigwait, so nothing runs in a signal handler.
int run_watch(ModelRepository& repo, bool json) {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    std::mutex out;
    auto subscription = repo.watch([&](const CatalogChange& change) {
        std::lock_guard lock(out);
        if (json)
            std::cout << to_json(change) << std::endl;
        else
            std::cout << format_timestamp_precise(change.at) << " " << to_string(change.kind)
                      << (change.slug.empty() ? "" : " " + change.slug) << " (version "
                      << change.version << ")" << std::endl;
    });
    if (!subscription)
        return fail(subscription.error());
    {
        std::lock_guard lock(out);
        std::cerr << "modelrepo: watching " << repo.name() << " (Ctrl-C to stop)" << std::endl;
    }
    int signal = 0;
    sigwait(&stop, &signal);
    subscription.value().cancel();
    return exit_ok;
}

/// The chain `serve` and `publish` work on: the one open_chain() made, or a chain of
/// the single source (so the answers carry the same provenance, breaker and metrics).
Result<std::shared_ptr<FallbackRepository>> as_chain(std::shared_ptr<ModelRepository> repo) {
    if (auto chain = std::dynamic_pointer_cast<FallbackRepository>(repo))
        return chain;
    auto chain = FallbackRepository::create({std::move(repo)});
    if (!chain)
        return std::move(chain).error();
    return std::shared_ptr<FallbackRepository>(std::move(chain).value());
}

struct ServeSettings {
    std::string listen = "127.0.0.1:8080";
    std::string token_file;
    bool log = false;
    std::string publish;
    std::string publish_interval = "5m";
    std::size_t max_streams = 256;
    std::string request_timeout = "10s";
};

/// "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback).
Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& text) {
    auto colon = text.rfind(':');
    auto bad = [&] {
        return make_error(Errc::invalid_argument, "--listen takes HOST:PORT (127.0.0.1:8080, "
                                                  "[::1]:8080, 0.0.0.0:8080), not '" + text + "'");
    };
    if (colon == std::string::npos)
        return bad();
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty())
        host = "127.0.0.1";
    if (host == "localhost")
        host = "127.0.0.1";
    std::string port_text = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
        return bad();
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

/// The token is the file's first line, without surrounding whitespace.
Result<std::string> read_token(const std::string& path) {
    auto text = read_input(path);
    if (!text)
        return std::move(text).error();
    std::string token = text.value().substr(0, text.value().find('\n'));
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front())))
        token.erase(token.begin());
    if (token.empty())
        return make_error(Errc::invalid_argument,
                          "the token file '" + path + "' is empty: put the token on its first line");
    return token;
}

/// Serves until SIGINT/SIGTERM (blocked before any thread started; taken with sigwait),
/// then stops accepting, lets in-flight requests finish (<= 5 s) and exits 0.
int run_serve(std::shared_ptr<ModelRepository> repo, const ServeSettings& settings) {
    auto listen = parse_listen(settings.listen);
    if (!listen)
        return fail(listen.error());
    std::optional<std::string> token;
    if (!settings.token_file.empty()) {
        auto read = read_token(settings.token_file);
        if (!read)
            return fail(read.error());
        token = std::move(read).value();
    }
    std::optional<std::chrono::milliseconds> interval;
    if (!settings.publish.empty()) {
        interval = serve::parse_duration(settings.publish_interval);
        if (!interval)
            return fail(make_error(Errc::invalid_argument,
                                   "--publish-interval takes a duration like 30s, 5m or 1h, not '" +
                                       settings.publish_interval + "'"));
    }
    auto request_timeout = serve::parse_duration(settings.request_timeout);
    if (!request_timeout || request_timeout->count() == 0)
        return fail(make_error(Errc::invalid_argument,
                               "--request-timeout takes a duration like 10s or 500ms, not '" +
                                   settings.request_timeout + "'"));
    auto chain_result = as_chain(std::move(repo));
    if (!chain_result)
        return fail(chain_result.error());
    auto chain = std::move(chain_result).value();

    std::mutex log_mutex;
    auto log = [&](const std::string& line) {
        std::lock_guard lock(log_mutex);
        std::cerr << "modelrepo: " << line << std::endl;
    };

    std::unique_ptr<serve::Publisher> publisher;
    if (!settings.publish.empty()) {
        serve::PublisherOptions p;
        p.destination = settings.publish;
        p.interval = *interval;
        p.log = log;
        auto started = serve::Publisher::start(chain, std::move(p));
        if (!started)
            return fail(started.error());
        publisher = std::move(started).value();
    }

    std::atomic<serve::HttpServer*> server_for_metrics{nullptr};
    serve::ServiceOptions service_options;
    service_options.token = token;
    service_options.max_streams = settings.max_streams;
    service_options.extra_metrics = [&] {
        std::vector<MetricFamily> extra;
        if (auto* server = server_for_metrics.load())
            extra = server->metrics();
        if (publisher)
            for (auto& family : publisher->metrics())
                extra.push_back(std::move(family));
        return extra;
    };
    // Destroyed before the server (below): its streams are the server's connections.
    auto service = std::make_unique<serve::Service>(chain, std::move(service_options));

    serve::ServerOptions server_options;
    server_options.host = listen.value().first;
    server_options.port = listen.value().second;
    server_options.request_timeout = *request_timeout;
    if (settings.log)
        server_options.on_request = [&](const serve::Request& request, int status, std::size_t bytes,
                                        std::chrono::microseconds took) {
            // The path and query only: never a header (the token is in one) or a body.
            std::ostringstream line;
            line << "access " << request.remote << " " << request.method << " " << request.path
                 << (request.query.empty() ? "" : "?" + request.query) << " " << status << " "
                 << bytes << " " << std::fixed << std::setprecision(3) << took.count() / 1000.0
                 << "ms";
            log(line.str());
        };
    auto server = serve::HttpServer::start(
        server_options, [&](const serve::Request& request) { return service->handle(request); });
    if (!server)
        return fail(server.error());
    server_for_metrics.store(server.value().get());
    std::string host = server_options.host.find(':') != std::string::npos
                           ? "[" + server_options.host + "]"
                           : server_options.host;
    // On stdout, for whoever started it with port 0: the one line serve prints there.
    std::cout << "listening on http://" << host << ":" << server.value()->port() << std::endl;
    log("serving " + std::string(chain->name()) + (token ? " (writes need the token)" : " (read-only)") +
        (publisher ? ", publishing to " + settings.publish : ""));

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    int signal = 0;
    sigwait(&stop, &signal);
    log(std::string("stopping (") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") +
        "): finishing requests in flight");
    server.value()->shutdown();
    server_for_metrics.store(nullptr);
    service.reset();
    log("stopped");
    return exit_ok;
}

/// Exports from the first source and stores the catalogue at `destination`.
int run_publish(std::shared_ptr<ModelRepository> repo, const std::string& destination,
                const std::string& message) {
    auto chain_result = as_chain(std::move(repo));
    if (!chain_result)
        return fail(chain_result.error());
    auto chain = std::move(chain_result).value();
    auto snapshot = chain->export_snapshot();
    if (!snapshot)
        return fail(snapshot.error());
    std::string primary(chain->sources().front()->name());
    if (std::string from = chain->last_source(); from != primary)
        return fail(make_error(Errc::unreachable,
                               "the export came from " + from + ", a backup, because " + primary +
                                   " could not answer; publish only what the first source holds "
                                   "(see modelrepo doctor)"));
    PublishOptions options;
    if (!message.empty())
        options.message = message;
    auto result = publish_snapshot(snapshot.value(), destination, options);
    if (!result)
        return fail(result.error());
    const PublishResult& r = result.value();
    if (r.changed)
        std::cout << "published " << snapshot.value().models.size() << " models to "
                  << r.destination << (r.commit.empty() ? "" : " (commit " + r.commit + ")") << '\n';
    else
        std::cout << "unchanged: " << r.destination << " already holds this catalogue" << '\n';
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
    app.footer(
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
        "github://acme/catalogue/models.json@main\n");

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
    auto* watch = app.add_subcommand(
        "watch", "Print one line per change to the catalogue, made by any client, until "
                 "SIGINT/SIGTERM; with --json: {\"kind\",\"slug\",\"version\",\"at\"} "
                 "(at in RFC 3339 UTC with microseconds). PostgreSQL needs schema version 2 "
                 "(modelrepo migrate)");
    std::string upsert_from;
    auto* upsert = app.add_subcommand(
        "upsert", "Write statuses (a JSON array of status objects, the snapshot's form) to the "
                  "first source: says 'applied N', or 'queued N in the outbox (PATH)' while the "
                  "database cannot take them (outbox=PATH)");
    upsert->add_option("file", upsert_from, "A JSON file, or - for standard input")->required();
    auto* exported = app.add_subcommand("export", "Write the whole catalogue as snapshot JSON "
                                                  "(modelrepo.snapshot/1) to stdout");
    int metric_calls = 100;
    auto* metrics = app.add_subcommand(
        "metrics", "Run a workload of mixed reads through the sources, then print the "
                   "metrics in Prometheus text format (calls, failures, answers per source, "
                   "breaker state, pool)");
    metrics->add_option("--calls", metric_calls, "Reads to make first (default 100)")
        ->check(CLI::Range(0, 10'000'000));
    ServeSettings serve_settings;
    auto* serve = app.add_subcommand(
        "serve", "Answer HTTP on the sources until SIGINT/SIGTERM: GET /v1/stats, /v1/models"
                 "[?slug=A&slug=B], /v1/models/{slug}, /v1/statuses[?health=H], /v1/changes "
                 "(server-sent events), /v1/snapshot, /metrics, /healthz, /readyz; PUT /v1/statuses with "
                 "'Authorization: Bearer TOKEN' (needs --token-file). On SIGTERM: stops "
                 "accepting, finishes requests in flight (<= 5 s), exits 0");
    serve->add_option("--listen", serve_settings.listen,
                      "HOST:PORT to listen on (default 127.0.0.1:8080, loopback only; "
                      "0.0.0.0:8080 for every interface; port 0 picks a free one)")
        ->type_name("HOST:PORT");
    serve->add_option("--token-file", serve_settings.token_file,
                      "A file whose first line is the token PUT /v1/statuses needs; without it "
                      "writes are refused (403). The token is never logged")
        ->type_name("FILE");
    serve->add_flag("--log", serve_settings.log,
                    "One access-log line per request on stderr (address, method, path, status, "
                    "bytes, milliseconds)");
    serve->add_option("--publish", serve_settings.publish,
                      "Store the catalogue at DEST (as 'publish' does) at start and after it "
                      "changes, so the backup follows the first source")
        ->type_name("DEST");
    serve->add_option("--publish-interval", serve_settings.publish_interval,
                      "At most one publish per this long (default 5m; 30s, 1h, 500ms)")
        ->type_name("DURATION");
    serve->add_option("--max-streams", serve_settings.max_streams,
                      "GET /v1/changes clients at once; more get 429 (default 256)")
        ->check(CLI::Range(1, 100'000));
    serve->add_option("--request-timeout", serve_settings.request_timeout,
                      "A request's headers and body must arrive within this (default 10s); a "
                      "slower client is disconnected")
        ->type_name("DURATION");
    std::string publish_dest, publish_message;
    auto* publish = app.add_subcommand(
        "publish", "Export the catalogue from the first source and store it at DEST: "
                   "github://OWNER/REPO/PATH@BRANCH through the contents API (needs $GITHUB_TOKEN "
                   "with contents:write; one commit, none when unchanged) or file:///path.json "
                   "(atomic). Refuses an export a backup answered");
    publish->add_option("destination", publish_dest, "github://OWNER/REPO/PATH@BRANCH or file:///path.json")
        ->required();
    publish->add_option("--message", publish_message, "The commit message (github://)");
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
    auto* outbox = app.add_subcommand(
        "outbox", "Show what the PostgreSQL source's outbox (outbox=PATH) holds: pending batches "
                  "and statuses, the oldest, dead letters");
    auto* drain = outbox->add_subcommand(
        "drain", "Apply what the outbox holds now; exit 1 while the database still cannot "
                 "take it");
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

    if (watch->parsed() || serve->parsed()) {
        // Before any thread starts: every thread inherits the mask; sigwait takes them.
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    }
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
    if (watch->parsed())
        return run_watch(source, options.json);
    if (upsert->parsed())
        return run_upsert(source, upsert_from);
    if (metrics->parsed())
        return run_metrics(repo.value(), metric_calls);
    if (serve->parsed())
        return run_serve(repo.value(), serve_settings);
    if (publish->parsed())
        return run_publish(repo.value(), publish_dest, publish_message);
#if MODELREPO_HAS_POSTGRES
    if (migrate->parsed())
        return run_migrate(source);
    if (import->parsed())
        return run_import(source, import_from);
    if (outbox->parsed())
        return run_outbox(source, drain->parsed(), options.json);
#endif
    return exit_usage;
}
