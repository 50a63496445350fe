// SPDX-License-Identifier: MIT
// The serve command: its options, and the wiring of the chain, the routes (Service), the
// HTTP transport (HttpServer) and the publisher, until SIGINT/SIGTERM.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <thread>

#include <modelrepo/uri.hpp>

#include "../commands/command.hpp"
#include "http/http_server.hpp"
#include "operator/alerts.hpp"
#include "operator/headline.hpp"
#include "publisher.hpp"
#include "serve_plan.hpp"
#include "service.hpp"
#include "systemd_notify.hpp"

namespace modelrepo::cli {

namespace {

/// "?slug=***&token=***": the names of a query's parameters, their values masked ("" for no
/// query).
std::string loggable_query(std::string_view query) {
    if (query.empty())
        return "";
    auto params = parse_query(query);
    if (!params)
        return "?(a malformed query)";
    std::string out;
    for (const auto& p : *params)
        out += (out.empty() ? "?" : "&") + redact(p.key) + (p.value.empty() ? "" : "=***");
    return out;
}

/// What answers reads while `source` is down, in words, for an alert.
std::string serving_meanwhile(const FallbackRepository& chain, const std::string& source) {
    FallbackMetrics m = chain.metrics(/*with_backend=*/false);
    for (std::size_t i = 0; i < m.sources.size(); ++i)
        if (m.sources[i].source == source)
            return serve::meanwhile_of(m, i);
    return serve::meanwhile_of(m, 0);
}

/// The secret header of --alert-header-file: its first line, "Name: value".
Result<std::string> read_alert_header(const std::string& path) {
    auto header = read_token(path, "alert header");
    if (!header)
        return std::move(header).error();
    if (header.value().find(':') == std::string::npos)
        return make_error(Errc::invalid_argument, "the alert header file '" + path +
                                                      "' must hold one header line, 'Name: value'");
    return header;
}

/// The Alerter (nullptr without --alert-webhook or --alertmanager). The secret header is a
/// file's first line ("Authorization: Bearer …"), never an argument.
Result<std::unique_ptr<serve::Alerter>>
start_alerts(const ServeSettings& settings, const std::shared_ptr<FallbackRepository>& chain) {
    if (settings.alert_webhooks.empty() && settings.alertmanagers.empty())
        return std::unique_ptr<serve::Alerter>();
    serve::AlertOptions options;
    options.webhooks = settings.alert_webhooks;
    options.alertmanagers = settings.alertmanagers;
    auto interval = serve::parse_duration(settings.alert_interval);
    if (!interval)
        return make_error(Errc::invalid_argument,
                          "--alert-interval takes a duration like 60s or 5m, not '" +
                              settings.alert_interval + "'");
    options.interval = *interval;
    auto resolve_after = serve::parse_duration(settings.alert_resolve_after);
    if (!resolve_after)
        return make_error(Errc::invalid_argument,
                          "--alert-resolve-after takes a duration like 3s or 500ms, not '" +
                              settings.alert_resolve_after + "'");
    options.resolve_after = *resolve_after;
    options.queue = settings.alert_queue;
    if (!settings.alert_header_file.empty()) {
        auto header = read_alert_header(settings.alert_header_file);
        if (!header)
            return std::move(header).error();
        options.secret_header = std::move(header).value();
    }
    return serve::Alerter::start(
        std::move(options), std::string(chain->sources().front()->name()),
        [chain](const std::string& source) { return serving_meanwhile(*chain, source); });
}

/// The status page's: the doctor on the first source, with admin rights only when an admin
/// URL is given (read from a file: never on a command line); the webhooks' alerter, told
/// of the chain's events (`alerter`: nullptr without --alert-webhook).
Result<serve::OperatorOptions> operator_options(const std::vector<std::string>& sources,
                                                const ServeSettings& settings,
                                                const std::shared_ptr<FallbackRepository>& chain,
                                                std::unique_ptr<serve::Alerter>& alerter) {
    serve::OperatorOptions options;
    if (!sources.empty())
        options.first_source = sources.front();
    if (!settings.admin_url_file.empty()) {
        auto admin = read_token(settings.admin_url_file, "admin URL");
        if (!admin)
            return std::move(admin).error();
        options.admin_url = std::move(admin).value();
    }
    auto alerts = start_alerts(settings, chain);
    if (!alerts)
        return std::move(alerts).error();
    alerter = std::move(alerts).value();
    if (auto* a = alerter.get())
        options.on_event = [a](const FallbackEvent& e) { a->on_event(e); };
    return options;
}

/// The access log's line: the path and the query's names only; never a header (the token
/// is in one), a body, or a query value (a client may put a secret there).
std::string access_line(const serve::Request& request, int status, std::size_t bytes,
                        std::chrono::microseconds took) {
    std::ostringstream line;
    line << "access " << request.remote << " " << request.method << " " << redact(request.path)
         << loggable_query(request.query) << " " << status << " " << bytes << " " << std::fixed
         << std::setprecision(3) << took.count() / 1000.0 << "ms";
    return line.str();
}

/// SIGHUP is taken by sigwait, like the stop signals: blocked before any thread starts.
void block_reload_signal() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

/// SIGINT, SIGTERM or SIGHUP, whichever comes.
int wait_for_stop_or_reload() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&set, s);
    int signal = 0;
    sigwait(&set, &signal);
    return signal;
}

/// SIGHUP: the token files, the certificate, the admin URL and the alert header read
/// again; what cannot be read is said and the old stays in force.
void reload(const ServeSettings& settings, const ServePlan& plan, serve::Service& service,
            serve::HttpServer& server, serve::Alerter* alerter,
            const std::function<void(const std::string&)>& log) {
    auto access = access_of(settings, plan.listen.first);
    if (!access) {
        log("SIGHUP: the tokens stay as they were: " + access.error().to_string());
    } else {
        log("SIGHUP: " + std::to_string(access.value().write_tokens.size()) + " write and " +
            std::to_string(access.value().read_tokens.size()) + " read tokens in force");
        service.reload(std::move(access).value());
    }
    if (server.tls()) {
        if (auto tls = server.reload_tls(); !tls)
            log("SIGHUP: the certificate stays as it was: " + tls.error().to_string());
        else
            log("SIGHUP: certificate and key read again; new connections use them");
    }
    if (!settings.admin_url_file.empty()) {
        if (auto admin = read_token(settings.admin_url_file, "admin URL"); !admin) {
            log("SIGHUP: the admin URL stays as it was: " + admin.error().to_string());
        } else {
            service.set_admin_url(std::move(admin).value());
            log("SIGHUP: the admin URL read again");
        }
    }
    if (alerter && !settings.alert_header_file.empty()) {
        if (auto header = read_alert_header(settings.alert_header_file); !header) {
            log("SIGHUP: the alert header stays as it was: " + header.error().to_string());
        } else {
            alerter->set_secret_header(std::move(header).value());
            log("SIGHUP: the alert header read again");
        }
    }
}

/// The start line's tail: who may call what, the publisher, the limits.
std::string serving_summary(const ServeSettings& settings, const ServePlan& plan, bool publishing) {
    return (plan.access.write_tokens.empty() ? " (read-only)" : " (writes need a token)") +
           std::string(plan.access.read_tokens.empty() ? ""
                       : plan.access.public_catalogue  ? ", the operator's routes need a read token"
                                                       : ", reads need a token") +
           (publishing ? ", publishing to " + settings.publish : "") + "; at most " +
           std::to_string(plan.max_connections) + " connections, " +
           std::to_string(plan.max_streams) +
           " change streams (open files: " + std::to_string(plan.files) + ")";
}

/// The transport's options from serve's (the handlers are set by the caller).
serve::ServerOptions server_options_of(const ServeSettings& settings, const ServePlan& plan) {
    serve::ServerOptions options;
    options.host = plan.listen.first;
    options.port = plan.listen.second;
    options.request_timeout = plan.request_timeout;
    options.max_connections = plan.max_connections;
    options.max_queued = settings.max_queued;
    options.deadline = plan.deadline;
    options.tls_cert = settings.tls_cert;
    options.tls_key = settings.tls_key;
    return options;
}

/// systemd's Type=notify: READY=1 once serve answers from any source, asked every second
/// until one does (a database down at boot does not hold serve back while a backup
/// answers for it). Nothing without $NOTIFY_SOCKET.
std::jthread tell_ready(const serve::SystemdNotifier& notifier,
                        std::shared_ptr<FallbackRepository> chain, std::uint16_t port) {
    if (!notifier.enabled())
        return {};
    return std::jthread([&notifier, chain = std::move(chain), port](std::stop_token stop) {
        std::mutex mutex;
        std::condition_variable_any wake;
        while (!stop.stop_requested()) {
            if (auto answered = chain->count_models()) {
                notifier.send("READY=1\nSTATUS=serving " + std::to_string(answered.value()) +
                              " models on port " + std::to_string(port));
                return;
            }
            std::unique_lock lock(mutex);
            wake.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
        }
    });
}

/// Serves until SIGINT/SIGTERM (blocked before any thread started; taken with sigwait),
/// then stops accepting, lets in-flight requests finish (<= 5 s) and exits 0.
int run_serve(const Globals& globals, const ServeSettings& settings) {
    auto planned = plan_serve(settings);
    if (!planned)
        return fail(planned.error());
    const ServePlan& plan = planned.value();
    block_stop_signals(); // before the library's threads start
    block_reload_signal();
    // On a network listener, sources without a name= are named by kind and position.
    auto resolved = resolve_sources(globals);
    if (!resolved)
        return fail(resolved.error());
    const std::vector<std::string> sources =
        served_sources(std::move(resolved).value(), plan.access.discreet);
    auto chain_result = open_fallback(sources);
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
        auto started =
            serve::Publisher::start(chain, {settings.publish, *plan.publish_interval, {}, log});
        if (!started)
            return fail(started.error());
        publisher = std::move(started).value();
    }

    std::unique_ptr<serve::Alerter> alerter; // outlives the service, which tells it
    std::atomic<serve::HttpServer*> server_for_metrics{nullptr};
    serve::ServiceOptions service_options;
    service_options.access = plan.access;
    service_options.max_streams = plan.max_streams;
    auto view = operator_options(sources, settings, chain, alerter);
    if (!view)
        return fail(view.error());
    service_options.operator_view = std::move(view).value();
    service_options.extra_metrics = [&] {
        std::vector<MetricFamily> extra;
        if (auto* server = server_for_metrics.load())
            extra = server->metrics();
        if (publisher)
            for (auto& family : publisher->metrics())
                extra.push_back(std::move(family));
        if (alerter)
            for (auto& family : alerter->metrics())
                extra.push_back(std::move(family));
        return extra;
    };
    // Destroyed before the server (below): its streams are the server's connections.
    auto service = std::make_unique<serve::Service>(chain, std::move(service_options));

    serve::ServerOptions server_options = server_options_of(settings, plan);
    server_options.lane = [&](const serve::Request& request) { return service->lane(request); };
    if (settings.log)
        server_options.on_request = [&](const serve::Request& request, int status,
                                        std::size_t bytes, std::chrono::microseconds took) {
            log(access_line(request, status, bytes, took));
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
    std::cout << "listening on " << (server.value()->tls() ? "https://" : "http://") << host << ":"
              << server.value()->port() << std::endl;
    log("serving " + std::string(chain->name()) +
        serving_summary(settings, plan, publisher != nullptr));

    serve::SystemdNotifier notifier;
    auto readiness = tell_ready(notifier, chain, server.value()->port());
    int signal = 0;
    while ((signal = wait_for_stop_or_reload()) == SIGHUP) {
        notifier.send("RELOADING=1");
        reload(settings, plan, *service, *server.value(), alerter.get(), log);
        notifier.send("READY=1");
    }
    notifier.send("STOPPING=1");
    readiness = {};
    log(std::string("stopping (") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") +
        "): finishing requests in flight");
    server.value()->shutdown();
    server_for_metrics.store(nullptr);
    service.reset();
    log("stopped");
    return exit_ok;
}

/// serve's options of who may call what: tokens, --public-catalogue, Host, CORS.
void add_access_options(CLI::App& sub, ServeSettings& settings_) {
    ServeSettings* settings = &settings_;
    sub.add_option("--token-file", settings->token_file,
                   "A file of write tokens, one a line: PUT /v1/statuses needs one "
                   "(Authorization: Bearer TOKEN, or Basic with it as the password); they "
                   "read too. Without it writes are refused (403). Tokens are never logged")
        ->type_name("FILE");
    sub.add_option("--tls-cert", settings->tls_cert,
                   "Speak HTTPS on the listening port with this PEM certificate (its chain "
                   "after it); needs --tls-key. TLS 1.2 and later; plain HTTP to the port is "
                   "closed at the handshake. SIGHUP reads it again")
        ->type_name("FILE");
    sub.add_option("--tls-key", settings->tls_key,
                   "The PEM private key of --tls-cert (read once at start and at SIGHUP; "
                   "never logged)")
        ->type_name("FILE");
    sub.add_option("--read-token-file", settings->read_token_file,
                   "A file of read tokens, one a line: then every route but /healthz and "
                   "/readyz needs a read or write token (401 with WWW-Authenticate; a read "
                   "token writing gets 403)")
        ->type_name("FILE");
    sub.add_flag("--public-catalogue", settings->public_catalogue,
                 "With --read-token-file: catalogue reads (/v1/stats, /v1/models, "
                 "/v1/statuses, /v1/snapshot, /v1/changes) need no token; the status page, "
                 "/v1/status, /v1/events, /v1/diagnosis and /metrics still do");
    sub.add_flag("--expose-details", settings->expose_details,
                 "On a --listen that is not loopback, serve the status page, /v1/status, "
                 "/v1/events, /v1/diagnosis and /metrics to callers without a token, name "
                 "sources by their addresses, and leave error messages in /readyz and in "
                 "failed reads: they show the database's host, port, role, database name, "
                 "its pg_hba.conf line and verifier. Off by default: without a token such "
                 "a listener shows display names (name=, else kind and position) and codes");
    sub.add_option("--allow-host", settings->allow_hosts,
                   "On a loopback --listen, answer this Host name too (repeatable); any other "
                   "gets 421 (a DNS-rebinding page cannot read serve)")
        ->type_name("NAME");
    sub.add_option("--cors-origin", settings->cors_origins,
                   "Let a browser app on ORIGIN (https://app.example.com) call serve: CORS "
                   "preflights and headers, Authorization allowed, ETag exposed (repeatable; "
                   "'*' for any, only when reads need no token)")
        ->type_name("ORIGIN");
}

} // namespace

Command define_serve(CLI::App& app, const Globals& globals) {
    auto settings = std::make_shared<ServeSettings>();
    auto* sub = app.add_subcommand(
        "serve",
        "Answer HTTP on the sources until SIGINT/SIGTERM: GET /v1/stats, /v1/models"
        "[?slug=A&slug=B], /v1/models/{slug}, /v1/statuses[?health=H], /v1/changes "
        "(server-sent events), /v1/snapshot, /metrics, /healthz, /readyz; the status page at / "
        "(with /v1/status, /v1/events[/stream], /v1/diagnosis); PUT /v1/statuses with "
        "'Authorization: Bearer TOKEN' (needs --token-file); HEAD and OPTIONS on each. On "
        "SIGTERM: stops "
        "accepting, finishes requests in flight (<= 5 s), exits 0");
    sub->add_option("--listen", settings->listen,
                    "HOST:PORT to listen on (default 127.0.0.1:8080, loopback only; "
                    "0.0.0.0:8080 for every interface; port 0 picks a free one)")
        ->type_name("HOST:PORT");
    add_access_options(*sub, *settings);
    sub->add_flag("--log", settings->log,
                  "One access-log line per request on stderr (address, method, path, status, "
                  "bytes, milliseconds)");
    sub->add_option("--publish", settings->publish,
                    "Store the catalogue at DEST (as 'publish' does) at start and after it "
                    "changes, so the backup follows the first source")
        ->type_name("DEST");
    sub->add_option("--publish-interval", settings->publish_interval,
                    "At most one publish per this long (default 5m; 30s, 1h, 500ms)")
        ->type_name("DURATION");
    sub->add_option("--max-connections", settings->max_connections,
                    "Connections at once (default: the open-file limit, raised to its hard "
                    "limit at start, less 1/8 for the rest). When full, an idle keep-alive "
                    "connection is closed to make room, else the new one gets 503 with "
                    "Retry-After")
        ->check(CLI::Range(1, 1'000'000));
    sub->add_option("--max-streams", settings->max_streams,
                    "GET /v1/changes clients at once; more get 429 (default: half of "
                    "--max-connections, at most 10000)")
        ->check(CLI::Range(1, 1'000'000));
    sub->add_option("--max-queued", settings->max_queued,
                    "Requests that may wait for a database worker (16 for reads, 8 for writes) "
                    "on each lane; more get 503 with Retry-After (default 1024)")
        ->check(CLI::Range(1, 1'000'000));
    sub->add_option("--deadline", settings->deadline,
                    "A request that waits on a database is answered within this (default 30s): "
                    "503 if it never started, 504 if it did (a write it made stands)")
        ->type_name("DURATION");
    sub->add_option("--request-timeout", settings->request_timeout,
                    "A request's headers and body must arrive within this (default 10s); a "
                    "slower client is disconnected")
        ->type_name("DURATION");
    sub->add_option("--alert-webhook", settings->alert_webhooks,
                    "POST one JSON object ({event, alert, source, cause, errc, meanwhile, at, "
                    "since, host, text}; Slack-compatible) when a source goes down (its "
                    "origin, its breaker, a backup serving for it; its copy stale; a dead "
                    "letter), and one 'resolved' when it is back, to URL; repeatable. Queued "
                    "and retried, never in a request's way")
        ->type_name("URL");
    sub->add_option("--alertmanager", settings->alertmanagers,
                    "Post the same alerts to Prometheus Alertmanager's v2 API at URL "
                    "(http://am:9093; labels alertname, source, cause, severity; re-posted "
                    "while firing, endsAt on resolve); repeatable")
        ->type_name("URL");
    sub->add_option("--alert-resolve-after", settings->alert_resolve_after,
                    "A recovery must hold this long before its 'resolved' is sent (default 3s)")
        ->type_name("DURATION");
    sub->add_option("--alert-header-file", settings->alert_header_file,
                    "A file whose first line is a header sent with every alert, e.g. "
                    "'Authorization: Bearer …' (the webhook's secret)")
        ->type_name("FILE");
    sub->add_option("--alert-interval", settings->alert_interval,
                    "Flap damping (default 60s): a source that goes down again within this of "
                    "its last 'resolved' is alerted only once it has passed, if still down")
        ->type_name("DURATION");
    sub->add_option("--alert-queue", settings->alert_queue,
                    "Alerts waiting per webhook (default 64; more are dropped and counted in "
                    "modelrepo_alert_dropped_total)")
        ->check(CLI::Range(1, 100'000));
    sub->add_option("--admin-url-file", settings->admin_url_file,
                    "A file whose first line is a superuser URL: the status page's diagnosis "
                    "of the first source then also checks the role's verifier, pg_hba.conf and "
                    "an unreloaded configuration (without it, what the role itself may read)")
        ->type_name("FILE");
    return {sub, [&globals, settings] { return run_serve(globals, *settings); }};
}

} // namespace modelrepo::cli
