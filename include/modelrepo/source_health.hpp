// SPDX-License-Identifier: MIT
/// @file
/// A source's health, apart from who answers its reads: what its own layers (a pool's
/// connects and logins, a change feed's session, an HTTP backup's fetches, a last-known
/// copy, an outbox) see of its origin. A live copy answers through an outage; this is how
/// the outage is still seen and told. `FallbackEvent` is the one event type of a chain and
/// of every source: `repo->capability<HealthControl>()` offers a source's own.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/error.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo {

/// Something a service may want to alert on: a chain's breakers and the source serving it,
/// and what each source's layers see of its origin.
struct FallbackEvent {
    enum class Kind {
        breaker_opened,    ///< a source stopped being called
        breaker_half_open, ///< a source gets trial calls
        breaker_closed,    ///< a source is back in service
        served_by_backup,  ///< an answer came from a source other than the first (on change)
        primary_recovered, ///< the first source answers again after a backup did
        /// A layer of the source (its pool, its change feed, an HTTP fetch) could not reach
        /// its origin or was refused by it: `errc` says why (auth_failed, unreachable,
        /// tls_failed, timeout, schema_missing, …). Raised again when the cause changes.
        source_down,
        /// The origin answers again: a new connection or login to it succeeded (or the
        /// last-known copy is back in sync after it was stale).
        source_recovered,
        /// The source's last-known copy has been out of sync for longer than `max_stale`:
        /// reads no longer fall back to it.
        copy_stale,
        /// The origin refused a write the outbox had kept, for good: it is set aside with why.
        outbox_dead_letter,
    };
    Kind kind;
    Timestamp at;
    std::string source; ///< the source's name() (never with a password)
    std::string cause;  ///< what happened, for a person (redacted)
    /// The cause's code, when it has one (source_down always does).
    std::optional<Errc> errc;
};
/// "breaker_opened", …, "source_down", "source_recovered", "copy_stale",
/// "outbox_dead_letter".
std::string_view to_string(FallbackEvent::Kind k) noexcept;

/// What a source's layers last saw of its origin.
struct SourceHealth {
    enum class State {
        unknown, ///< nothing tried yet (no connection made, no fetch)
        up,      ///< the last connection, login or fetch succeeded
        down,    ///< the last one failed for `errc`
    };
    State state = State::unknown;
    std::optional<Errc> errc; ///< why it is down
    std::string cause;        ///< the failure's message (redacted), when down
    Timestamp since{};        ///< when it entered this state
    std::string seen_by;      ///< the layer that saw it: "pool", "feed", "http", "copy"
    /// The last-known copy is out of sync past max_stale (see FallbackEvent::copy_stale).
    bool copy_stale = false;
    /// Writes the origin refused for good that the outbox set aside, since start.
    std::uint64_t dead_letters = 0;

    bool down() const noexcept { return state == State::down; }
};
/// "unknown", "up", "down".
std::string_view to_string(SourceHealth::State s) noexcept;

/// A source's health: `repo->capability<HealthControl>()`. PostgreSQL and the GitHub/HTTP
/// backup offer it, and the durable layer of any source (its copy, its outbox); a chain
/// answers with its first source's. Thread-safe.
class HealthControl {
public:
    virtual SourceHealth source_health() const = 0;
    /// Calls `on_event` for each of this source's `source_down`, `source_recovered`,
    /// `copy_stale` and `outbox_dead_letter` events, in order, on a delivery thread of the
    /// source's own (a slow callback delays only later events; never a read or a write).
    /// A chain's `FallbackRepository::subscribe` hears them too, among its own.
    virtual Subscription on_health_event(std::function<void(const FallbackEvent&)> on_event) = 0;

protected:
    ~HealthControl() = default;
};

} // namespace modelrepo
