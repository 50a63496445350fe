// SPDX-License-Identifier: MIT
// The streaming replication protocol a logical feed speaks, over libpq (libpqxx has no
// replication API): a `replication=database` session, a logical slot for `pgoutput`, and
// START_REPLICATION's copy stream of XLogData and keepalives, answered with standby status
// updates that confirm what the reader has applied
// (https://www.postgresql.org/docs/15/protocol-replication.html).
//
// The message framing (parse_copy_data, standby_status_update) needs no server and is
// tested on bytes; WalStream is the session.
//
// Thread safety: a WalStream is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include <modelrepo/error.hpp>

#include "pgoutput.hpp"

namespace modelrepo::detail::logical {

/// A piece of WAL: `payload` is one pgoutput message (it points into the copy buffer it
/// was parsed from).
struct XLogData {
    Lsn start = 0;            ///< where this piece of WAL starts
    Lsn wal_end = 0;          ///< the end of WAL on the server when it was sent
    std::int64_t sent_us = 0; ///< the server's clock then (microseconds since 2000)
    std::span<const char> payload;
};

/// The server's keepalive: where its WAL ends, and whether it wants a status update now
/// (it ends a session that does not answer within wal_sender_timeout).
struct Keepalive {
    Lsn wal_end = 0;
    std::int64_t sent_us = 0;
    bool reply_requested = false;
};

using CopyMessage = std::variant<XLogData, Keepalive>;

/// One CopyData message of the stream; Errc::bad_data for bytes that are neither.
Result<CopyMessage> parse_copy_data(std::span<const char> bytes);

/// A standby status update ('r'): WAL written, flushed and applied up to these positions;
/// the server may recycle WAL before `flushed` and a slot's confirmed_flush_lsn moves to
/// it.
std::string standby_status_update(Lsn written, Lsn flushed, Lsn applied, std::int64_t now_us,
                                  bool reply_requested = false);

/// Now, on PostgreSQL's clock: microseconds since 2000-01-01 UTC.
std::int64_t postgres_now_us();

/// A slot just created: where its changes start, and the snapshot (valid until the next
/// command on the session that made it) in which the data before them is read.
struct CreatedSlot {
    std::string name;
    Lsn consistent_point = 0;
    std::string snapshot;
};

/// A `replication=database` session.
class WalStream {
public:
    /// Connects to `conninfo` (a URI or key=value string) as a replication session and
    /// checks it with IDENTIFY_SYSTEM. Errors: the login's (auth_failed, unreachable…);
    /// Errc::permission_denied when the role lacks REPLICATION, Errc::not_supported when
    /// wal_level is below logical, each naming the fix.
    static Result<std::unique_ptr<WalStream>> connect(const std::string& conninfo,
                                                      std::chrono::milliseconds timeout);
    ~WalStream();
    WalStream(const WalStream&) = delete;
    WalStream& operator=(const WalStream&) = delete;

    /// Whether the server is a standby (its `in_hot_standby`, reported at login by
    /// PostgreSQL 14 and later). PostgreSQL 15 decodes on a primary only.
    bool on_standby() const;

    /// Whether the database has publication `name` (a replication=database session takes
    /// SQL too).
    Result<bool> has_publication(const std::string& name);
    /// CREATE_REPLICATION_SLOT `name` [TEMPORARY] LOGICAL pgoutput, exporting its snapshot.
    Result<CreatedSlot> create_slot(const std::string& name, bool temporary);
    /// START_REPLICATION SLOT `slot` LOGICAL `from` for `publication` (pgoutput protocol 1).
    Result<void> start(const std::string& slot, Lsn from, const std::string& publication);
    /// The next message, waiting up to `wait`; nullopt when none came. The XLogData's
    /// payload is valid until the next call. Errc::unreachable when the stream ended.
    Result<std::optional<CopyMessage>> next(std::chrono::milliseconds wait);
    /// Tells the server everything up to `applied` is applied (and may be recycled).
    Result<void> confirm(Lsn applied, bool reply_requested = false);

    /// The position confirmed last.
    Lsn confirmed() const noexcept { return confirmed_; }

private:
    struct Session;
    explicit WalStream(std::unique_ptr<Session> session);
    std::unique_ptr<Session> session_;
    Lsn confirmed_ = 0;
};

} // namespace modelrepo::detail::logical
