// SPDX-License-Identifier: MIT
// The incident of the report, replayed against `modelrepo serve` as an operator runs it: in
// each configuration (the plain chain, cache_dir, cache=live, cache=live with an outbox —
// the README's recommendation — and through PgBouncer with direct_url), each fault (the
// role's password changed, an MD5 verifier under a scram-sha-256 rule, the database
// killed, the role's pg_hba.conf line removed and reloaded; the role's sessions ended, as
// in the incident) must be seen and told within seconds: an event in /v1/events, one
// webhook alert, an alert in a real Alertmanager (Debian's, on loopback) that it delivers
// to its own webhook, the cause on the status page's first screen in chromium, and the
// doctor's diagnosis. Each fix must bring one resolved everywhere, and a write
// acknowledged during the outage must land.
//
// One TEST_CASE per configuration; meson runs each in a process of its own (its own
// PostgreSQL), two at a time.
#include <filesystem>
#include <fstream>
#include <functional>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "alertmanager.hpp"
#include "hook_receiver.hpp"
#include "pg_catalogue.hpp"
#include "pgbouncer.hpp"
#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "tls_files.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// Detection and recovery bounds the issue sets (5 s after a fault, 15 s after a fix),
/// with generous slack for a busy CI machine (a run of the whole CI on two cores took one
/// check past 10 s); the times measured are printed.
constexpr auto seen_within = 30s;
constexpr auto resolved_within = 30s;

fs::path browser_dir() {
    return fs::path(require_env("MODELREPO_SOURCE_ROOT")) / "tests" / "browser";
}

bool have_browser() {
    bool have = fs::exists(browser_dir() / "node_modules" / "puppeteer-core") &&
                fs::exists("/usr/bin/chromium");
    if (!have && in_ci())
        FAIL("chromium or tests/browser/node_modules is missing: scripts/setup test installs "
             "them");
    return have;
}

/// A fault of the incident, and its fix.
struct Fault {
    const char* name;
    const char* errc; ///< the cause every part must name
    std::function<void(PgServer&)> apply, fix;
};

/// Ends the role's sessions, as a restart or an administrator would: what a password change
/// alone does not do (logged-in sessions go on working).
void end_sessions(PgServer& s) {
    s.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'app'");
}

std::vector<Fault> faults() {
    return {
        {"the role's password changed", "auth_failed",
         [](PgServer& s) {
             s.psql("ALTER ROLE app PASSWORD 'Changed-Under-Serve-91'");
             end_sessions(s);
         },
         [](PgServer& s) { s.psql("ALTER ROLE app PASSWORD '" + password + "'"); }},
        {"an MD5 verifier under a scram-sha-256 rule", "auth_failed",
         [](PgServer& s) {
             s.psql("SET password_encryption = 'md5'; ALTER ROLE app PASSWORD '" + password + "'");
             end_sessions(s);
         },
         [](PgServer& s) {
             s.psql("SET password_encryption = 'scram-sha-256'; ALTER ROLE app PASSWORD '" +
                    password + "'");
         }},
        {"the database killed", "unreachable", [](PgServer& s) { s.kill9(); },
         [](PgServer& s) {
             s.start();
             REQUIRE_MESSAGE(s.available(), s.why());
         }},
        {"the role's pg_hba.conf line removed and reloaded", "auth_failed",
         [](PgServer& s) {
             // Kept as the fix's text in a file of the test's: replace_hba returns it.
             static std::string kept;
             kept = s.replace_hba("host all nobody 127.0.0.1/32 scram-sha-256\n"
                                  "host all nobody ::1/128 scram-sha-256");
             s.reload();
             end_sessions(s);
             std::ofstream(s.data_dir().parent_path() / "hba.kept") << kept;
         },
         [](PgServer& s) {
             std::ifstream in(s.data_dir().parent_path() / "hba.kept");
             std::stringstream kept;
             kept << in.rdbuf();
             s.restore_hba(kept.str());
             s.reload();
         }},
    };
}

/// serve's view from outside: its events, alerts, page and diagnosis.
class Watch {
public:
    /// `client`: curl's arguments for serve's operator routes (TLS trust, a read token).
    Watch(Serve& serve, std::vector<std::string> client, HookReceiver& hooks,
          AlertmanagerServer& am, HookReceiver& am_hooks, ChildProcess* page,
          const fs::path& page_dir, std::string primary)
        : serve_(serve)
        , client_(std::move(client))
        , hooks_(hooks)
        , am_(am)
        , am_hooks_(am_hooks)
        , page_(page)
        , page_dir_(page_dir)
        , primary_(std::move(primary)) {}

    /// The events after the last one seen.
    std::vector<json> new_events() {
        auto body = json::parse(get("/v1/events?since=" + std::to_string(last_event_)).body,
                                nullptr, false);
        std::vector<json> out;
        if (!body.is_object())
            return out;
        for (const auto& e : body["events"]) {
            last_event_ = std::max(last_event_, e["id"].get<long long>());
            out.push_back(e);
        }
        return out;
    }

    /// Waits up to `limit` for an event of `kind` on the primary (with `errc` when given);
    /// how long it took, or nullopt.
    std::optional<milliseconds> event(const std::string& kind, const std::string& errc,
                                      steady_clock::time_point from, seconds limit) {
        bool found = false;
        eventually(
            [&] {
                for (const auto& e : new_events())
                    if (e["event"] == kind && e["source"] == primary_ &&
                        (errc.empty() || (e["errc"].is_string() && e["errc"] == errc)))
                        found = true;
                return found;
            },
            limit);
        if (!found)
            return std::nullopt;
        return duration_cast<milliseconds>(steady_clock::now() - from);
    }

    /// The webhook's bodies from `index` on, by event.
    std::vector<json> hooks_since(std::size_t index) {
        auto all = hooks_.alerts();
        return {all.begin() + static_cast<std::ptrdiff_t>(std::min(index, all.size())), all.end()};
    }

    /// Alertmanager holds a firing ModelrepoSourceDown for the primary with this cause.
    bool am_firing(const std::string& errc) {
        for (const auto& a : am_.alerts())
            if (a["labels"]["alertname"] == "ModelrepoSourceDown" &&
                a["labels"]["source"] == primary_ && a["labels"]["cause"] == errc)
                return true;
        return false;
    }
    bool am_clear() {
        for (const auto& a : am_.alerts())
            if (a["labels"]["alertname"] == "ModelrepoSourceDown" &&
                a["labels"]["source"] == primary_)
                return false;
        return true;
    }
    /// Alertmanager's own webhook got a notification with this status after `index`.
    bool am_notified(const std::string& status, std::size_t index) {
        auto all = am_hooks_.alerts();
        for (std::size_t i = index; i < all.size(); ++i)
            if (all[i].is_object() && all[i]["status"] == status)
                for (const auto& a : all[i]["alerts"])
                    if (a["labels"]["source"] == primary_)
                        return true;
        return false;
    }

    /// The page's banner comes to hold `text` (the browser waits; its answer: ok, ms).
    std::optional<json> banner(const std::string& text) {
        if (!page_)
            return json{{"ok", true}, {"ms", 0}, {"skipped", true}};
        ++banner_n_;
        std::ofstream(page_dir_ / ("expect-" + std::to_string(banner_n_))) << text << "\n";
        auto line = page_->read_line_until(
            [&](const std::string& l) {
                return l.find("\"n\":" + std::to_string(banner_n_)) != std::string::npos;
            },
            40s);
        if (!line)
            return std::nullopt;
        return json::parse(*line, nullptr, false);
    }

    json diagnosis() { return json::parse(get("/v1/diagnosis").body, nullptr, false); }

    /// GET `path` as the operator (with the client's arguments).
    CurlAnswer get(const std::string& path) {
        auto args = client_;
        args.push_back(serve_.base() + path);
        return curl(args);
    }

    std::size_t hooks_count() { return hooks_.count(); }
    std::size_t am_hooks_count() { return am_hooks_.count(); }

private:
    Serve& serve_;
    std::vector<std::string> client_;
    HookReceiver& hooks_;
    AlertmanagerServer& am_;
    HookReceiver& am_hooks_;
    ChildProcess* page_;
    fs::path page_dir_;
    std::string primary_;
    long long last_event_ = 0;
    int banner_n_ = 0;
};

/// One status as PUT /v1/statuses takes it, dated now.
std::string status_body(const std::string& slug, double availability) {
    return json::array({{{"model", slug},
                         {"health", "degraded"},
                         {"availability", availability},
                         {"latency_ms", 100},
                         {"error_rate", 0.01},
                         {"region", "incident"},
                         {"checked_at", format_timestamp(Clock::now())}}})
        .dump();
}

struct Config {
    std::string name;
    std::string query; ///< the durable layer's parameters (DIR is the test's directory)
    bool pgbouncer = false;
    bool outbox = false;
    /// As the README recommends serve on a network: every interface, HTTPS, read and write
    /// tokens; what a caller without a token gets is checked for details at each fault.
    bool network = false;
};

/// What a caller without a token on the network gets while the primary is down: /readyz and
/// /v1/stats answer without the database's host, port, role or database name, or the
/// cause's words; the operator's routes ask for a token.
void check_discreet(Serve& serve, const std::vector<std::string>& anonymous, PgServer& s) {
    auto get = [&](const std::string& path) {
        auto args = anonymous;
        args.push_back(serve.base() + path);
        return curl(args);
    };
    for (std::string path : {"/readyz", "/v1/stats", "/healthz"}) {
        auto answer = get(path);
        CAPTURE(path);
        CAPTURE(answer.body);
        for (const std::string& detail : std::vector<std::string>{
                 "app@", "user \"app\"", ":" + std::to_string(s.port()), "/incident", "pg_hba",
                 "password authentication", "scram", "SCRAM"})
            CHECK_MESSAGE(answer.body.find(detail) == std::string::npos, detail);
    }
    for (std::string path : {"/v1/status", "/v1/diagnosis", "/metrics", "/"})
        CHECK_MESSAGE(get(path).status == 401, path);
}

void replay(const Config& config) {
    auto& s = server();
    const std::string db = "incident";
    fresh_catalogue(db);
    TempDir dir;
    HookReceiver hooks, am_hooks;
    AlertmanagerServer am(am_hooks.url());
    require_alertmanager(am);
    std::string query = "connect_timeout=2";
    if (!config.query.empty())
        query += "&" + config.query;
    std::size_t at = 0;
    while ((at = query.find("DIR", at)) != std::string::npos)
        query.replace(at, 3, dir.path().string());
    std::unique_ptr<PgBouncerServer> bouncer;
    std::string url = s.url("app", password, db, "127.0.0.1", query);
    if (config.pgbouncer) {
        bouncer = std::make_unique<PgBouncerServer>(
            s, std::vector<std::pair<std::string, std::string>>{{"app", password}});
        require_pgbouncer(*bouncer);
        url = bouncer->url("app", password, db,
                           "pgbouncer=true&" + query +
                               "&direct_url=" + percent_encode(s.url("app", password, db)));
    }
    auto token = token_file(dir, "incident-Token-5521");
    auto admin = dir.write("admin-url", s.admin_conninfo() + "\n");
    // The README's configuration for serve: the database first, the bundled catalogue as
    // the last resort; alerts to a webhook and to Alertmanager.
    std::vector<std::string> args{
        "--token-file",          token,    "--alert-webhook",  hooks.url(),
        "--alertmanager",        am.url(), "--alert-interval", "1s",
        "--alert-resolve-after", "1s",     "--admin-url-file", admin.string()};
    // curl's arguments: as anyone (TLS trust only), as the operator (a read token too).
    std::vector<std::string> anonymous, client;
    const std::string reader = "incident-Read-3307";
    if (config.network) {
        auto certs = make_certificates(dir, "serve", 4001);
        auto readers = dir.write("readers", reader + "\n");
        for (std::string a : {"--listen", "0.0.0.0:0", "--tls-cert", certs.cert.c_str(),
                              "--tls-key", certs.key.c_str(), "--read-token-file", readers.c_str()})
            args.push_back(a);
        anonymous = {"--cacert", certs.ca};
        client = {"--cacert", certs.ca, "-H", "Authorization: Bearer " + reader};
    }
    Serve serve({url, "builtin:"}, args);
    auto ready = ready_when(
        serve, [](const json& r) { return r["state"] == "ready"; }, client);
    REQUIRE_MESSAGE(json::parse(ready.body)["state"] == "ready", ready.body);
    const std::string primary = json::parse(ready.body)["sources"][0]["source"];

    // The status page, open in chromium throughout (its banner checked at each step).
    TempDir page_dir;
    std::unique_ptr<ChildProcess> page;
    if (have_browser()) {
        // On the network, the browser is asked for the token (Basic) and trusts the test's CA.
        page = std::make_unique<ChildProcess>(
            std::vector<std::string>{"node", (browser_dir() / "banner.mjs").string(), serve.base(),
                                     page_dir.path().string()},
            std::map<std::string, std::string>{{"BANNER_TOKEN", config.network ? reader : ""}});
        REQUIRE_MESSAGE(
            page->read_line_until(
                [](const std::string& l) { return l.find("ready") != std::string::npos; }, 60s),
            page->err());
    }
    Watch watch(serve, client, hooks, am, am_hooks, page.get(), page_dir.path(), primary);
    watch.new_events();
    RestartOnExit restart{s};

    int n = 0;
    for (const Fault& fault : faults()) {
        ++n;
        const std::string fault_name = fault.name;
        CAPTURE(config.name);
        CAPTURE(fault_name);
        const std::size_t hooks_before = watch.hooks_count();
        const std::size_t am_before = watch.am_hooks_count();
        const auto from = steady_clock::now();
        const auto fault_at = Clock::now();
        fault.apply(s);

        // Seen and told: the timeline, the webhook, Alertmanager, the page, the doctor.
        auto event = watch.event("source_down", fault.errc, from, seen_within);
        CHECK_MESSAGE(event, "no source_down (" << fault.errc << ") in /v1/events");
        CHECK(eventually([&] { return !watch.hooks_since(hooks_before).empty(); }, seen_within));
        CHECK(eventually([&] { return watch.am_firing(fault.errc); }, seen_within));
        CHECK(eventually([&] { return watch.am_notified("firing", am_before); }, seen_within));
        auto banner = watch.banner(fault.errc);
        REQUIRE(banner);
        CHECK_MESSAGE((*banner)["ok"] == true, banner->dump());
        json diagnosis;
        CHECK(eventually(
            [&] {
                diagnosis = watch.diagnosis();
                const json& d = diagnosis["diagnosis"];
                return d.is_object() && d["error"] == fault.errc &&
                       parse_timestamp(d["ran_at"].get<std::string>()).value_or(Timestamp{}) >=
                           floor<seconds>(fault_at) &&
                       !d["failed"].empty();
            },
            seen_within + 5s));
        if (config.network)
            check_discreet(serve, anonymous, s);
        MESSAGE(config.name << ": " << fault_name << ": source_down after "
                            << (event ? event->count() : -1) << " ms; banner after "
                            << (*banner)["ms"] << " ms (of the browser's wait); diagnosis: "
                            << diagnosis["diagnosis"]["failed"].dump());

        // A write made meanwhile is acknowledged (kept in the outbox) and lands after the fix.
        const double marker = 0.5 + n / 100.0;
        if (config.outbox) {
            auto put_args = anonymous;
            for (std::string a :
                 {"-X", "PUT", "-H", "Authorization: Bearer incident-Token-5521", "--data-binary"})
                put_args.push_back(a);
            put_args.push_back(status_body("gpt-5", marker));
            put_args.push_back(serve.base() + "/v1/statuses");
            auto put = curl(put_args);
            CHECK_MESSAGE(put.status == 202, put.body);
        }

        const auto fixed = steady_clock::now();
        fault.fix(s);
        auto recovered = watch.event("source_recovered", "", fixed, resolved_within);
        if (!recovered) {
            // What serve and PgBouncer saw, for a run that fails where no one watches.
            const auto& err = serve.process().err();
            MESSAGE("no source_recovered; /v1/status: "
                    << watch.get("/v1/status").body << "\nserve's stderr (tail):\n"
                    << err.substr(err.size() > 4000 ? err.size() - 4000 : 0)
                    << (bouncer ? "\npgbouncer's log (tail):\n" + bouncer->log_tail() : ""));
        }
        CHECK_MESSAGE(recovered, "no source_recovered in /v1/events");
        CHECK(eventually(
            [&] {
                auto since = watch.hooks_since(hooks_before);
                return !since.empty() && since.back()["event"] == "resolved";
            },
            resolved_within));
        CHECK(eventually([&] { return watch.am_clear(); }, resolved_within));
        CHECK(
            eventually([&] { return watch.am_notified("resolved", am_before); }, resolved_within));
        auto clear = watch.banner("All sources are up");
        REQUIRE(clear);
        CHECK_MESSAGE((*clear)["ok"] == true, clear->dump());
        MESSAGE(config.name << ": " << fault_name << ": recovered after "
                            << (recovered ? recovered->count() : -1) << " ms");
        // One alert and one resolved for the outage, whichever parts saw it.
        auto told = watch.hooks_since(hooks_before);
        CAPTURE(json(told).dump(1));
        CHECK(told.size() == 2);
        if (told.size() == 2) {
            CHECK(told[0]["event"] != "resolved");
            CHECK(told[0]["errc"] == fault.errc);
            CHECK_FALSE(told[0]["meanwhile"].get<std::string>().empty());
            CHECK(told[1]["event"] == "resolved");
        }
        if (config.outbox)
            CHECK(eventually(
                [&] {
                    auto v = s.try_psql("SELECT count(*) FROM model_status WHERE model_slug = "
                                        "'gpt-5' AND region = 'incident' AND availability = " +
                                            std::to_string(marker),
                                        db);
                    return v && *v == "1";
                },
                resolved_within));
    }
    if (page) {
        std::ofstream(page_dir.path() / "done") << "\n";
        auto done = page->read_line_until(
            [](const std::string& l) { return l.find("\"done\"") != std::string::npos; }, 30s);
        REQUIRE(done);
        CHECK_MESSAGE(json::parse(*done)["errors"].empty(), *done);
    }
    // Nothing told anyone the password.
    for (const auto& body : hooks.bodies())
        CHECK(body.find(password) == std::string::npos);
    for (const auto& body : am_hooks.bodies())
        CHECK(body.find(password) == std::string::npos);
    CHECK(serve.process().err().find(password) == std::string::npos);
    CHECK(watch.get("/v1/status").body.find(password) == std::string::npos);
    CHECK(serve.process().err().find(reader) == std::string::npos);
}

} // namespace

TEST_CASE("incident: the plain chain") {
    replay({"plain", "", false, false});
}

TEST_CASE("incident: cache_dir") {
    replay({"cache_dir", "cache_dir=DIR", false, false});
}

TEST_CASE("incident: cache=live") {
    replay({"cache=live", "cache=live", false, false});
}

TEST_CASE("incident: cache=live with an outbox (the README's configuration), on the network "
          "with HTTPS and tokens") {
    replay({"cache=live+outbox", "cache=live&outbox=DIR/outbox.db", false, true, true});
}

TEST_CASE("incident: through PgBouncer with the feed on direct_url") {
    replay({"pgbouncer", "cache=live&outbox=DIR/outbox.db", true, true});
}
