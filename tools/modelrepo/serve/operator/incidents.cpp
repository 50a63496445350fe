// SPDX-License-Identifier: MIT
#include "incidents.hpp"

namespace modelrepo::serve {

Incident* IncidentBook::open_incident(const std::string& source) {
    for (auto it = incidents_.rbegin(); it != incidents_.rend(); ++it)
        if (it->source == source && !it->resolved)
            return &*it;
    return nullptr;
}

void IncidentBook::apply(const FallbackEvent& e) {
    std::lock_guard lock(mutex_);
    const std::string body = e.errc ? std::string(to_string(*e.errc)) + ": " + e.cause : e.cause;
    for (const OutageFold::Change& c : fold_.apply(e)) {
        if (!c.key.starts_with("down:"))
            continue; // the copy's staleness is an update of the source's incident, below
        const std::string& source = c.outage->source;
        if (c.began) {
            Incident incident;
            incident.id = next_id_++;
            incident.source = source;
            incident.started = incident.updated = e.at;
            incidents_.push_back(std::move(incident));
            while (incidents_.size() > keep)
                incidents_.pop_front();
        }
        Incident* open = open_incident(source);
        if (!open)
            continue;
        if (e.kind == FallbackEvent::Kind::source_down) {
            open->errc = e.errc;
            open->cause = e.cause;
        } else if (open->cause.empty()) {
            open->cause = e.cause;
        }
        open->updates.push_back({e.at, std::string(to_string(e.kind)), body});
        open->updated = e.at;
        if (c.ended) {
            open->resolved = e.at;
            open->updates.push_back({e.at, "resolved", source + " answers again"});
        }
    }
    if (e.kind == FallbackEvent::Kind::copy_stale)
        if (Incident* open = open_incident(e.source)) {
            open->updates.push_back({e.at, "copy_stale", e.cause});
            open->updated = e.at;
        }
}

void IncidentBook::diagnosed(const std::string& source, const std::string& finding, Timestamp at) {
    std::lock_guard lock(mutex_);
    if (Incident* open = open_incident(source)) {
        open->identified = true;
        open->updates.push_back({at, "diagnosis", finding});
        open->updated = at;
    }
}

std::vector<Incident> IncidentBook::list(std::chrono::seconds recent) const {
    std::lock_guard lock(mutex_);
    const Timestamp since = Clock::now() - recent;
    std::vector<Incident> out;
    for (auto it = incidents_.rbegin(); it != incidents_.rend(); ++it)
        if (!it->resolved || *it->resolved >= since)
            out.push_back(*it);
    return out;
}

std::optional<Incident> IncidentBook::open_of(const std::string& source) const {
    std::lock_guard lock(mutex_);
    for (auto it = incidents_.rbegin(); it != incidents_.rend(); ++it)
        if (it->source == source && !it->resolved)
            return *it;
    return std::nullopt;
}

nlohmann::ordered_json IncidentBook::to_json(const Incident& i) {
    using ojson = nlohmann::ordered_json;
    ojson updates = ojson::array();
    for (const auto& u : i.updates)
        updates.push_back({{"at", format_timestamp(u.at)}, {"event", u.event}, {"body", u.body}});
    return {{"id", i.id},
            {"source", i.source},
            {"started", format_timestamp(i.started)},
            {"resolved", i.resolved ? ojson(format_timestamp(*i.resolved)) : ojson(nullptr)},
            {"errc", i.errc ? ojson(std::string(to_string(*i.errc))) : ojson(nullptr)},
            {"cause", i.cause},
            {"identified", i.identified},
            {"updates", std::move(updates)}};
}

} // namespace modelrepo::serve
