// SPDX-License-Identifier: MIT
/// @file
/// `PostgresConfig`: how to reach a PostgreSQL database and how the pool behaves, read
/// from a DATABASE_URL as people have it (Prisma's parameters included).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <modelrepo/error.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo {

/// How watch() and a live copy learn of the catalogue's changes (`feed=`).
enum class FeedKind {
    automatic, ///< `auto` (the default): what `migrate` installed, asked at start; the
               ///< trigger feed on a mapping. Where no feed is installed, or the logical
               ///< one cannot run here (wal_level, the role's REPLICATION), it polls
               ///< (`polling`) and switches to a feed once migrate installs one
    triggers,  ///< row triggers writing a change log (migrations 2 and 3)
    logical,   ///< the WAL, by logical decoding: a publication (`migrate` makes it), a
               ///< temporary slot per session; the role needs REPLICATION, the server
               ///< wal_level = logical. Nothing runs on the writers' path
    polling,   ///< a fingerprint of the three tables every `poll_interval`, and a resync
               ///< when it moved: no per-change events, nothing on the writers' path, a
               ///< whole read of the tables on the server per poll
};
/// "auto", "triggers", "logical", "polling".
std::string_view to_string(FeedKind k) noexcept;

/// Which sessions serve reads (`read_target=`). Writes and the change feed always use a
/// read-write session.
enum class ReadTarget {
    any,            ///< whatever the URL's hosts give (libpq's target_session_attrs)
    primary,        ///< the read-write server only
    prefer_standby, ///< a standby within max_replication_lag when there is one, else the primary
    standby,        ///< standbys only
};
/// "any", "primary", "prefer-standby", "standby".
std::string_view to_string(ReadTarget t) noexcept;

/// How to reach the database and how the pool behaves. `from_url()` fills it from a
/// DATABASE_URL, Prisma's parameters included.
struct PostgresConfig {
    /// What libpq gets: a `postgresql://` URI or a `key=value` conninfo string, with
    /// modelrepo's and Prisma's own parameters already taken out.
    std::string conninfo;
    /// The source's display name (`name=`): what `name()`, answers, metric labels, events
    /// and messages call it instead of `postgresql://user@host/db`, so that they carry no
    /// host, role or database name. Empty: the address. 1 to 64 characters, no control
    /// character, not a URL.
    std::string name;
    /// The schema the tables live in (becomes the connection's search_path); empty
    /// for the server's default (`public`). From Prisma's `schema=`.
    std::string schema;
    /// The path of a mapping file (`mapping=`, percent-encoded): JSON in the format
    /// `modelrepo.mapping/1` naming the tables and columns that hold the catalogue, for a
    /// database whose tables another program owns (Prisma's, say). Empty: modelrepo's own
    /// tables (`providers`, `models`, `model_status`). Read when the repository is opened;
    /// checked against the database at its first call.
    std::string mapping;
    /// Largest number of open connections. 0 means 2 x hardware threads + 1.
    /// From `connection_limit=`.
    int pool_size = 0;
    /// Longest wait for a free pooled connection before `Errc::pool_exhausted`.
    /// From `pool_timeout=` (seconds).
    std::chrono::milliseconds acquire_timeout{10'000};
    /// Longest time a statement may take, network included, before `Errc::timeout`;
    /// also the server's statement_timeout. From `socket_timeout=` (seconds).
    std::chrono::milliseconds query_timeout{5'000};
    /// libpq's connect_timeout (whole seconds, at least 2). From `connect_timeout=`.
    std::chrono::seconds connect_timeout{5};
    /// An idle connection unused this long is checked with a round trip before reuse.
    std::chrono::milliseconds validate_after_idle{30'000};
    /// Connections are replaced after about this long (minus up to 10 % jitter).
    std::chrono::milliseconds max_lifetime{30 * 60'000};
    /// Backoff between reconnect attempts while the server is down: doubles from the
    /// first value up to the second, with jitter. Callers fail fast in between.
    std::chrono::milliseconds reconnect_backoff_initial{100};
    std::chrono::milliseconds reconnect_backoff_max{5'000};
    /// Server-side prepared statements. False with `pgbouncer=true` (PgBouncer's
    /// transaction mode cannot keep them).
    bool prepared_statements = true;
    /// The URL goes through PgBouncer in transaction mode (`pgbouncer=true`): no
    /// server-side prepared statements, nothing set on a session (statement_timeout and
    /// search_path would leak to other clients of the pooled server connection); the
    /// change feed needs `direct_url`.
    bool pgbouncer = false;

    /// The change feed's session makes a round trip after this long without traffic, so
    /// a server that stopped answering is noticed (`feed_keepalive=`).
    std::chrono::milliseconds feed_keepalive{5'000};
    /// How often the polling feed (feed=polling, or auto's fallback) reads the
    /// catalogue's fingerprint (`poll_interval=`).
    std::chrono::milliseconds poll_interval{5'000};

    /// A status whose `checked_at` is further ahead of this process's clock is refused
    /// (`max_clock_skew=`): by writes, the outbox's replay and imports.
    std::chrono::milliseconds max_clock_skew = default_max_clock_skew;

    /// Which sessions serve reads (`read_target=`); with several hosts in the URL
    /// (primary and streaming standbys).
    ReadTarget read_target = ReadTarget::any;
    /// Where changes come from (`feed=`); `migrate` with `feed=logical` drops the row
    /// triggers and makes the publication, with `feed=triggers` the other way round.
    FeedKind feed = FeedKind::automatic;
    /// A standby further behind than this serves no reads (`max_replication_lag=`),
    /// checked when a session is opened and every second while it is used, not per
    /// call. Zero: no bound.
    std::chrono::milliseconds max_replication_lag{0};
    /// A direct session (`direct_url=`, percent-encoded; Prisma's `directUrl`) for the
    /// change feed and migrations when the main URL goes through PgBouncer's transaction
    /// mode, which cannot keep a LISTEN. Empty: the main URL.
    std::string direct_url;

    /// Parses a DATABASE_URL (`postgresql://…` or `postgres://…`) or a conninfo
    /// string. Takes out `schema`, `mapping`, `connection_limit`, `pool_timeout`,
    /// `socket_timeout`, `pgbouncer` (Prisma's; libpq rejects them) and modelrepo's
    /// `acquire_timeout_ms`, `query_timeout_ms`, `max_lifetime_s`, `feed_keepalive`,
    /// `max_clock_skew`, `read_target`, `max_replication_lag`, `direct_url`; passes libpq's own
    /// (`sslmode`, `connect_timeout`, `target_session_attrs`, `application_name`,
    /// several hosts, …) through, adding `connect_timeout=5` and
    /// `application_name=modelrepo` when absent.
    /// The durable layer's parameters (`cache_dir`, `cache`, `max_stale`, `outbox`,
    /// `outbox_max`) are `open()`'s, not the backend's: here they are
    /// `Errc::invalid_argument`, saying so.
    /// Errors: `Errc::invalid_argument` naming the parameter (never the password).
    static Result<PostgresConfig> from_url(std::string_view url);
};

} // namespace modelrepo
