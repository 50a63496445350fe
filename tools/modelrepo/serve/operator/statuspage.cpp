// SPDX-License-Identifier: MIT
#include "statuspage.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace modelrepo::serve {

namespace {

using ojson = nlohmann::ordered_json;

/// A stable opaque id for a name (Statuspage's ids are 12 lower-case characters).
std::string id_of(const std::string& name) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : name)
        h = (h ^ c) * 1099511628211ULL;
    char text[13];
    std::snprintf(text, sizeof text, "%012llx",
                  static_cast<unsigned long long>(h & 0xffffffffffffULL));
    return text;
}

int severity_of(const std::string& status) {
    return status == "major_outage"           ? 3
           : status == "partial_outage"       ? 2
           : status == "degraded_performance" ? 1
                                              : 0;
}

ojson component(const FallbackMetrics& m, std::size_t i, const std::string& page_id,
                Timestamp created) {
    const SourceMetrics& s = m.sources[i];
    Timestamp updated = created;
    if (s.health.state != SourceHealth::State::unknown)
        updated = std::max(updated, s.health.since);
    return {{"id", id_of(s.source)},
            {"name", s.source},
            {"status", component_status(m, i)},
            {"created_at", format_timestamp(created)},
            {"updated_at", format_timestamp(updated)},
            {"position", i + 1},
            {"description", i == 0 ? "the primary source" : "a backup source"},
            {"showcase", true},
            {"start_date", nullptr},
            {"group_id", nullptr},
            {"page_id", page_id},
            {"group", false},
            {"only_show_if_degraded", false}};
}

ojson incident(const Incident& inc, const ojson& affected, const std::string& page_id,
               const std::string& page_url, bool critical) {
    const std::string id = id_of("incident " + std::to_string(inc.id) + " " + inc.source);
    const std::string status = inc.identified ? "identified" : "investigating";
    ojson updates = ojson::array();
    for (auto it = inc.updates.rbegin(); it != inc.updates.rend(); ++it) {
        const std::string at = format_timestamp(it->at);
        updates.push_back(
            {{"id", id_of(id + at + it->event + it->body)},
             {"status", status},
             {"body", it->event + ": " + it->body},
             {"incident_id", id},
             {"created_at", at},
             {"updated_at", at},
             {"display_at", at},
             {"affected_components", ojson::array({{{"code", affected["id"]},
                                                    {"name", affected["name"]},
                                                    {"old_status", "operational"},
                                                    {"new_status", affected["status"]}}})},
             {"deliver_notifications", false},
             {"custom_tweet", nullptr},
             {"tweet_id", nullptr}});
    }
    std::string name = inc.source + " is down";
    if (inc.errc)
        name += " (" + std::string(to_string(*inc.errc)) + ")";
    return {{"id", id},
            {"name", name},
            {"status", status},
            {"created_at", format_timestamp(inc.started)},
            {"updated_at", format_timestamp(inc.updated)},
            {"monitoring_at", nullptr},
            {"resolved_at", nullptr},
            {"impact", critical ? "critical" : "major"},
            {"shortlink", page_url + "#incident-" + std::to_string(inc.id)},
            {"started_at", format_timestamp(inc.started)},
            {"page_id", page_id},
            {"incident_updates", std::move(updates)},
            {"components", ojson::array({affected})}};
}

} // namespace

std::string component_status(const FallbackMetrics& m, std::size_t i) {
    const SourceMetrics& s = m.sources[i];
    const bool down =
        s.health.down() || s.breaker == BreakerState::open || (i == 0 && m.serving > 0);
    if (down) {
        // Its own last-known copy answers for it: a partial outage.
        const bool copy_answers = m.serving == i && s.data_as_of.has_value();
        return copy_answers ? "partial_outage" : "major_outage";
    }
    if (s.breaker == BreakerState::half_open || s.health.copy_stale)
        return "degraded_performance";
    return "operational";
}

std::string statuspage_summary(const StatuspageInput& in) {
    const FallbackMetrics& m = *in.metrics;
    const std::string page_id = id_of("modelrepo on " + in.host);
    ojson components = ojson::array();
    bool primary_out = false, something_wrong = false;
    for (std::size_t i = 0; i < m.sources.size(); ++i) {
        components.push_back(component(m, i, page_id, in.started));
        int severity = severity_of(components.back()["status"]);
        primary_out = primary_out || (i == 0 && severity >= 2);
        something_wrong = something_wrong || severity >= 1;
    }
    // The roll-up: nothing answering is critical, the primary's outage major, the rest minor.
    std::string indicator = !in.answering     ? "critical"
                            : primary_out     ? "major"
                            : something_wrong ? "minor"
                                              : "none";
    const char* description = indicator == "critical" ? "Major Service Outage"
                              : indicator == "major"  ? "Partial System Outage"
                              : indicator == "minor"  ? "Minor Service Outage"
                                                      : "All Systems Operational";
    ojson incidents = ojson::array();
    for (const Incident& inc : in.incidents) {
        if (inc.resolved)
            continue;
        for (const auto& c : components)
            if (c["name"] == inc.source)
                incidents.push_back(incident(inc, c, page_id, in.page_url, !in.answering));
    }
    ojson summary{{"page",
                   {{"id", page_id},
                    {"name", "modelrepo on " + in.host},
                    {"url", in.page_url},
                    {"time_zone", "Etc/UTC"},
                    {"updated_at", format_timestamp(Clock::now())}}},
                  {"status", {{"indicator", indicator}, {"description", description}}},
                  {"components", std::move(components)},
                  {"incidents", std::move(incidents)},
                  {"scheduled_maintenances", ojson::array()}};
    return summary.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

} // namespace modelrepo::serve
