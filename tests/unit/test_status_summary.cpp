// SPDX-License-Identifier: MIT
// What the status page's first screen says (serve::headline_of), its incidents
// (serve::IncidentBook) and Statuspage's summary.json (serve::statuspage_summary), from
// chain metrics and events made by hand: each state of the chain a person may meet.
// tests/integration/test_status_page.cpp reads the same words in chromium during the real
// incident.
#include <chrono>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "serve/operator/headline.hpp"
#include "serve/operator/incidents.hpp"
#include "serve/operator/statuspage.hpp"

using namespace modelrepo;
using namespace modelrepo::serve;
using namespace std::chrono;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

const std::string primary = "postgresql://app@db.example:5432/catalogue";
const std::string auth_cause =
    "cannot connect to postgresql://app@db.example:5432/catalogue as user \"app\": the server "
    "rejected the password: it is wrong, or the role's stored verifier cannot serve the method "
    "pg_hba.conf asks for";

SourceMetrics source(const std::string& name) {
    SourceMetrics s;
    s.source = name;
    s.health.state = SourceHealth::State::up;
    s.health.since = Clock::now() - minutes(30);
    return s;
}

/// The README's chain: the database with a live copy, the bundled catalogue last.
FallbackMetrics chain() {
    FallbackMetrics m;
    m.sources = {source(primary), source("builtin")};
    m.sources[0].data_as_of = Clock::now();
    m.sources[1].data_as_of = Clock::now() - hours(24 * 13);
    return m;
}

/// The incident: the role's password changed; the copy answers for the database.
FallbackMetrics password_changed(Timestamp since) {
    FallbackMetrics m = chain();
    SourceHealth& h = m.sources[0].health;
    h.state = SourceHealth::State::down;
    h.errc = Errc::auth_failed;
    h.cause = auth_cause;
    h.since = since;
    h.seen_by = "feed";
    return m;
}

FallbackEvent event(FallbackEvent::Kind kind, const std::string& source, Timestamp at,
                    std::optional<Errc> errc = std::nullopt, std::string cause = "") {
    return {kind, at, source, std::move(cause), errc};
}

json summary_of(const FallbackMetrics& m, bool answering, std::vector<Incident> incidents = {}) {
    StatuspageInput in;
    in.host = "web-1";
    in.page_url = "http://web-1:8080/";
    in.started = Clock::now() - hours(1);
    in.metrics = &m;
    in.answering = answering;
    in.incidents = std::move(incidents);
    return json::parse(statuspage_summary(in));
}

} // namespace

TEST_CASE("the first screen, all well: says so, and since when") {
    FallbackMetrics m = chain();
    const Timestamp started = Clock::now() - minutes(5);
    Headline h = headline_of(m, nullptr, nullptr, true, started);
    CHECK(h.level == "ok");
    CHECK(h.headline == "All sources are up");
    REQUIRE(h.since);
    // Serve's start, when the primary has been up since before it.
    CHECK(*h.since == started);
    CHECK(h.fix.empty());
    CHECK(h.meanwhile.empty());
    ojson j = to_json(h);
    CHECK(j["fix"].is_null());
    CHECK(j["since"].get<std::string>().ends_with("Z"));
}

TEST_CASE("the first screen, the password changed under a live copy: the cause, since when, "
          "the fix, what serves meanwhile") {
    const Timestamp since = Clock::now() - seconds(3);
    FallbackMetrics m = password_changed(since);
    Headline h = headline_of(m, nullptr, nullptr, true, Clock::now() - hours(1));
    CHECK(h.level == "major");
    CAPTURE(h.headline);
    CHECK(h.headline.starts_with(
        "The primary's login fails: the server rejects role app's password (auth_failed, since "));
    CHECK(h.headline.ends_with(" UTC)"));
    CHECK(h.errc == Errc::auth_failed);
    CHECK(h.since == since);
    CHECK(h.source == primary);
    // No doctor's finding yet: the fix for the cause, with the role's name.
    CHECK(h.fix.find("ALTER ROLE \"app\" PASSWORD") != std::string::npos);
    CHECK(h.meanwhile.starts_with("its last-known copy answers reads (data as of "));

    SUBCASE("the doctor's finding, made after the outage began, gives the fix") {
        ojson diagnosis{{"ran_at", format_timestamp(Clock::now())},
                        {"failed",
                         {{{"name", "verifier"}, {"fix", ""}},
                          {{"name", "auth"},
                           {"fix", "ALTER ROLE app PASSWORD '…' with password_encryption = "
                                   "'scram-sha-256'"}}}}};
        Headline d = headline_of(m, diagnosis, nullptr, true, Clock::now());
        CHECK(d.fix.starts_with("ALTER ROLE app PASSWORD '…' with password_encryption"));
    }
    SUBCASE("a finding from before the outage is not its fix") {
        ojson old{{"ran_at", format_timestamp(since - minutes(10))},
                  {"failed", {{{"name", "auth"}, {"fix", "an old fix"}}}}};
        Headline d = headline_of(m, old, nullptr, true, Clock::now());
        CHECK(d.fix.find("an old fix") == std::string::npos);
        CHECK(d.fix.find("ALTER ROLE") != std::string::npos);
    }
    SUBCASE("a pg_hba.conf line missing is told apart from a wrong password") {
        m.sources[0].health.cause = "cannot connect: no pg_hba.conf line matches this client";
        Headline d = headline_of(m, nullptr, nullptr, true, Clock::now());
        CHECK(d.headline.starts_with(
            "The primary's login is refused: no pg_hba.conf line lets role app in"));
        CHECK(d.fix.find("pg_reload_conf()") != std::string::npos);
    }
}

TEST_CASE("the first screen: a backup serving, nothing answering, a backup down, statuses from "
          "the future") {
    SUBCASE("the server stopped: a backup answers") {
        FallbackMetrics m = chain();
        m.sources[0].health.state = SourceHealth::State::down;
        m.sources[0].health.errc = Errc::unreachable;
        m.sources[0].health.cause = "connection refused";
        m.sources[0].health.since = Clock::now();
        m.sources[0].breaker = BreakerState::open;
        m.serving = 1;
        Headline h = headline_of(m, nullptr, nullptr, true, Clock::now());
        CHECK(h.level == "major");
        CHECK(h.headline.starts_with(
            "The primary's server does not answer at db.example:5432 (unreachable"));
        CHECK(h.meanwhile.starts_with("builtin, a backup, answers reads (data as of 20"));
        CHECK(h.fix == "Start the server, or check the host, the port and listen_addresses.");
    }
    SUBCASE("nothing answers") {
        FallbackMetrics m = password_changed(Clock::now());
        Headline h = headline_of(m, nullptr, nullptr, false, Clock::now());
        CHECK(h.level == "critical");
        CHECK(h.headline.starts_with("No source can answer reads. The primary's login fails"));
        CHECK(h.meanwhile == "nothing answers reads");
    }
    SUBCASE("a backup is down; the primary serves") {
        FallbackMetrics m = chain();
        m.sources[1].source = "https://raw.githubusercontent.com/acme/catalogue/main/models.json";
        m.sources[1].health.state = SourceHealth::State::down;
        m.sources[1].health.errc = Errc::http_status;
        m.sources[1].health.cause = "HTTP 503";
        Headline h = headline_of(m, nullptr, nullptr, true, Clock::now());
        CHECK(h.level == "minor");
        CHECK(h.source == m.sources[1].source);
        CHECK(h.headline.ends_with("; the primary serves"));
    }
    SUBCASE("statuses stored with a future date are pointed out") {
        FallbackMetrics m = chain();
        ojson future{{"count", 2},
                     {"latest", "2027-01-01T00:00:00Z"},
                     {"fix", "modelrepo doctor names them"}};
        Headline h = headline_of(m, nullptr, future, true, Clock::now());
        CHECK(h.level == "minor");
        CHECK(h.headline.starts_with("2 stored statuses are dated in the future"));
        CHECK(h.detail == "the latest: 2027-01-01T00:00:00Z");
        CHECK(h.fix == "modelrepo doctor names them");
    }
}

TEST_CASE("incidents: an outage opens one, the doctor identifies it, recovery resolves it; the "
          "next outage is another") {
    IncidentBook book(primary);
    const Timestamp t0 = Clock::now() - seconds(30);
    CHECK(book.list().empty());
    book.apply(event(FallbackEvent::Kind::source_down, primary, t0, Errc::auth_failed, auth_cause));
    auto open = book.open_of(primary);
    REQUIRE(open);
    CHECK(open->errc == Errc::auth_failed);
    CHECK_FALSE(open->identified);
    CHECK(open->started == t0);
    // A second layer seeing the same outage is an update, not a second incident.
    book.apply(event(FallbackEvent::Kind::source_down, primary, t0 + seconds(1), Errc::auth_failed,
                     auth_cause));
    CHECK(book.list().size() == 1);
    book.diagnosed(primary, "the role's password is not the URL's", t0 + seconds(2));
    REQUIRE(book.open_of(primary));
    CHECK(book.open_of(primary)->identified);
    // A backup's events do not open the primary's incident.
    CHECK_FALSE(book.open_of("builtin"));

    book.apply(event(FallbackEvent::Kind::source_recovered, primary, t0 + seconds(10)));
    CHECK_FALSE(book.open_of(primary));
    auto listed = book.list();
    REQUIRE(listed.size() == 1);
    REQUIRE(listed[0].resolved);
    CHECK(*listed[0].resolved == t0 + seconds(10));
    CHECK(listed[0].updates.back().event == "resolved");
    ojson j = IncidentBook::to_json(listed[0]);
    CHECK(j["errc"] == "auth_failed");
    CHECK(j["identified"] == true);
    CHECK(j["updates"].size() == listed[0].updates.size());

    book.apply(event(FallbackEvent::Kind::source_down, primary, t0 + seconds(20), Errc::unreachable,
                     "connection refused"));
    listed = book.list();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].id != listed[1].id);
    CHECK_FALSE(listed[0].resolved); // newest first
    CHECK(listed[0].errc == Errc::unreachable);
    // Resolved over the window ago: only the open one is listed.
    CHECK(book.list(seconds(0)).size() == 1);
}

TEST_CASE("summary.json: Statuspage's indicator and component states for each state of the "
          "chain, the open incidents") {
    SUBCASE("all well") {
        json s = summary_of(chain(), true);
        CHECK(s["page"]["name"] == "modelrepo on web-1");
        CHECK(s["page"]["id"].get<std::string>().size() == 12);
        CHECK(s["status"]["indicator"] == "none");
        CHECK(s["status"]["description"] == "All Systems Operational");
        REQUIRE(s["components"].size() == 2);
        for (const auto& c : s["components"])
            CHECK(c["status"] == "operational");
        CHECK(s["components"][0]["position"] == 1);
        CHECK(s["incidents"].empty());
        CHECK(s["scheduled_maintenances"].empty());
    }
    SUBCASE("the password changed; its copy answers: major, partial_outage, the incident") {
        FallbackMetrics m = password_changed(Clock::now());
        IncidentBook book(primary);
        book.apply(event(FallbackEvent::Kind::source_down, primary, Clock::now(), Errc::auth_failed,
                         auth_cause));
        json s = summary_of(m, true, book.list());
        CHECK(s["status"]["indicator"] == "major");
        CHECK(s["status"]["description"] == "Partial System Outage");
        CHECK(s["components"][0]["status"] == "partial_outage");
        CHECK(s["components"][1]["status"] == "operational");
        REQUIRE(s["incidents"].size() == 1);
        const json& i = s["incidents"][0];
        CHECK(i["name"] == primary + " is down (auth_failed)");
        CHECK(i["status"] == "investigating");
        CHECK(i["impact"] == "major");
        CHECK(i["shortlink"].get<std::string>().starts_with("http://web-1:8080/#incident-"));
        REQUIRE_FALSE(i["incident_updates"].empty());
        CHECK(i["incident_updates"][0]["affected_components"][0]["code"] ==
              s["components"][0]["id"]);
    }
    SUBCASE("the server stopped; a backup answers: the primary's major_outage") {
        FallbackMetrics m = chain();
        m.sources[0].breaker = BreakerState::open;
        m.serving = 1;
        json s = summary_of(m, true);
        CHECK(s["status"]["indicator"] == "major");
        CHECK(s["components"][0]["status"] == "major_outage");
    }
    SUBCASE("nothing answers: critical") {
        FallbackMetrics m = password_changed(Clock::now());
        m.sources[1].breaker = BreakerState::open;
        json s = summary_of(m, false);
        CHECK(s["status"]["indicator"] == "critical");
        CHECK(s["status"]["description"] == "Major Service Outage");
        CHECK(s["components"][1]["status"] == "major_outage");
    }
    SUBCASE("a backup down, or the primary on trial: minor") {
        FallbackMetrics m = chain();
        m.sources[0].breaker = BreakerState::half_open;
        CHECK(component_status(m, 0) == "degraded_performance");
        m.sources[0].breaker = BreakerState::closed;
        m.sources[0].health.copy_stale = true;
        CHECK(component_status(m, 0) == "degraded_performance");
        m.sources[0].health.copy_stale = false;
        m.sources[1].health.state = SourceHealth::State::down;
        json s = summary_of(m, true);
        CHECK(s["status"]["indicator"] == "minor");
        CHECK(s["components"][1]["status"] == "major_outage");
    }
    SUBCASE("resolved incidents are left out") {
        IncidentBook book(primary);
        book.apply(event(FallbackEvent::Kind::source_down, primary, Clock::now(), Errc::auth_failed,
                         auth_cause));
        book.apply(event(FallbackEvent::Kind::source_recovered, primary, Clock::now()));
        REQUIRE(book.list().size() == 1);
        CHECK(summary_of(chain(), true, book.list())["incidents"].empty());
    }
}
