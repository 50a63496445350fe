// SPDX-License-Identifier: MIT
#include "outages.hpp"

namespace modelrepo::serve {

std::string OutageFold::source_of(const FallbackEvent& e) const {
    using Kind = FallbackEvent::Kind;
    return e.kind == Kind::served_by_backup || e.kind == Kind::primary_recovered ? primary_
                                                                                 : e.source;
}

OutageFold::Outage& OutageFold::outage(const std::string& key, const std::string& source,
                                       const char* alertname) {
    auto [it, fresh] = outages_.try_emplace(key);
    if (fresh) {
        it->second.source = source;
        it->second.alertname = alertname;
    }
    return it->second;
}

std::vector<OutageFold::Change> OutageFold::apply(const FallbackEvent& e) {
    using Kind = FallbackEvent::Kind;
    if (e.kind == Kind::outbox_dead_letter || e.kind == Kind::breaker_half_open)
        return {};
    const std::string source = source_of(e);
    const std::string down_key = "down:" + source, stale_key = "stale:" + source;
    Outage& down = outage(down_key, source, "ModelrepoSourceDown");
    Outage& stale = outage(stale_key, source, "ModelrepoCopyStale");
    const bool was_down = down.down(), was_stale = stale.down();
    switch (e.kind) {
    case Kind::source_down:
        down.health_down = true;
        break;
    case Kind::source_recovered:
        down.health_down = false;
        stale.stale = false; // the copy is back in sync with it
        break;
    case Kind::breaker_opened:
        down.breaker_open = true;
        break;
    case Kind::breaker_closed:
        down.breaker_open = false;
        break;
    case Kind::served_by_backup:
        down.backup_serving = true;
        break;
    case Kind::primary_recovered:
        down.backup_serving = false;
        break;
    case Kind::copy_stale:
        stale.stale = true;
        break;
    case Kind::breaker_half_open:
    case Kind::outbox_dead_letter:
        break;
    }
    std::vector<Change> changes;
    const bool stale_event = e.kind == Kind::copy_stale || e.kind == Kind::source_recovered;
    if (e.kind != Kind::copy_stale)
        changes.push_back({down_key, !was_down && down.down(), was_down && !down.down(), &down});
    if (stale_event)
        changes.push_back(
            {stale_key, !was_stale && stale.down(), was_stale && !stale.down(), &stale});
    return changes;
}

} // namespace modelrepo::serve
