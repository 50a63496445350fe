// SPDX-License-Identifier: MIT
#include "wal_stream.hpp"

#include <cerrno>
#include <cstring>

#include <libpq-fe.h>
#include <poll.h>

#include "../feed/installed_feed.hpp"

namespace modelrepo::detail::logical {

using namespace std::chrono;

namespace {

std::uint64_t read_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((v >> shift) & 0xff));
}

/// libpq's last words, trimmed.
std::string words(PGconn* conn) {
    std::string text = conn ? PQerrorMessage(conn) : "out of memory";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

/// A failed command of the replication session, with the fix where one is known.
Error command_error(const std::string& command, PGresult* result, PGconn* conn) {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = state ? state : "";
    std::string message = result ? PQresultErrorMessage(result) : words(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    if (message.find("wal_level") != std::string::npos) {
        Error e = make_error(Errc::not_supported,
                             command +
                                 ": the server's wal_level is below logical: set "
                                 "wal_level = logical in postgresql.conf and restart the "
                                 "server (a reload is not enough). Server: " +
                                 message);
        e.sqlstate = sqlstate;
        return e;
    }
    if (message.find("publication") != std::string::npos &&
        message.find("does not exist") != std::string::npos) {
        Error e = make_error(Errc::schema_missing,
                             command +
                                 ": the catalogue's publication is missing: run modelrepo "
                                 "migrate with feed=logical in the URL. Server: " +
                                 message);
        e.sqlstate = sqlstate;
        return e;
    }
    Error e = make_error(sqlstate.empty() ? Errc::unreachable : Errc::query_failed,
                         command + ": " + message);
    e.sqlstate = sqlstate;
    return e;
}

/// A slot's or a publication's name as modelrepo makes them: lower-case letters, digits and
/// '_', 1 to 63 of them (put in commands as they are).
bool plain_name(const std::string& name) {
    if (name.empty() || name.size() > 63)
        return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    return true;
}

Error not_plain(const std::string& what, const std::string& name) {
    return make_error(Errc::invalid_argument,
                      what + " '" + name + "' is not 1 to 63 of a-z, 0-9 and '_'");
}

} // namespace

Result<CopyMessage> parse_copy_data(std::span<const char> bytes) {
    if (bytes.empty())
        return make_error(Errc::bad_data, "an empty replication message");
    if (bytes[0] == 'w') {
        if (bytes.size() < 25)
            return make_error(Errc::bad_data,
                              "an XLogData message of " + std::to_string(bytes.size()) + " bytes");
        XLogData d;
        d.start = read_u64(bytes.data() + 1);
        d.wal_end = read_u64(bytes.data() + 9);
        d.sent_us = static_cast<std::int64_t>(read_u64(bytes.data() + 17));
        d.payload = bytes.subspan(25);
        return CopyMessage(d);
    }
    if (bytes[0] == 'k') {
        if (bytes.size() != 18)
            return make_error(Errc::bad_data,
                              "a keepalive message of " + std::to_string(bytes.size()) + " bytes");
        Keepalive k;
        k.wal_end = read_u64(bytes.data() + 1);
        k.sent_us = static_cast<std::int64_t>(read_u64(bytes.data() + 9));
        k.reply_requested = bytes[17] != 0;
        return CopyMessage(k);
    }
    return make_error(Errc::bad_data, "a replication message of unknown kind " +
                                          std::to_string(static_cast<unsigned char>(bytes[0])));
}

std::string standby_status_update(Lsn written, Lsn flushed, Lsn applied, std::int64_t now_us,
                                  bool reply_requested) {
    std::string out = "r";
    put_u64(out, written);
    put_u64(out, flushed);
    put_u64(out, applied);
    put_u64(out, static_cast<std::uint64_t>(now_us));
    out.push_back(reply_requested ? 1 : 0);
    return out;
}

std::int64_t postgres_now_us() {
    // 2000-01-01 UTC is 946,684,800 s after the Unix epoch.
    auto us = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    return us - 946'684'800'000'000LL;
}

struct WalStream::Session {
    PGconn* conn = nullptr;
    char* buffer = nullptr; ///< the last copy message (PQfreemem)
    ~Session() {
        if (buffer)
            PQfreemem(buffer);
        if (conn)
            PQfinish(conn);
    }
    /// A command that answers rows or nothing.
    Result<PGresult*> run(const std::string& command, ExecStatusType wanted) {
        PGresult* result = PQexec(conn, command.c_str());
        if (!result || PQresultStatus(result) != wanted) {
            Error e = command_error(command.substr(0, command.find(' ', 7)), result, conn);
            if (result)
                PQclear(result);
            return e;
        }
        return result;
    }
};

WalStream::WalStream(std::unique_ptr<Session> session)
    : session_(std::move(session)) {}

WalStream::~WalStream() = default;

Result<std::unique_ptr<WalStream>> WalStream::connect(const std::string& conninfo,
                                                      milliseconds timeout) {
    auto session = std::make_unique<Session>();
    std::string seconds = std::to_string(
        std::max<long long>(2, duration_cast<std::chrono::seconds>(timeout).count()));
    const char* keys[] = {"dbname", "replication", "connect_timeout", nullptr};
    const char* values[] = {conninfo.c_str(), "database", seconds.c_str(), nullptr};
    session->conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!session->conn || PQstatus(session->conn) != CONNECTION_OK) {
        std::string message = words(session->conn);
        if (message.find("replication") != std::string::npos &&
            message.find("role") != std::string::npos)
            return make_error(Errc::auth_failed,
                              "the role may not stream changes: it needs the REPLICATION "
                              "attribute (ALTER ROLE … REPLICATION;), or use the trigger feed "
                              "(feed=triggers). Server: " +
                                  message);
        bool refused = message.find("password") != std::string::npos ||
                       message.find("pg_hba.conf") != std::string::npos;
        return make_error(refused ? Errc::auth_failed : Errc::unreachable,
                          "a replication session could not log in: " + message);
    }
    auto identified = session->run("IDENTIFY_SYSTEM", PGRES_TUPLES_OK);
    if (!identified)
        return identified.error();
    PQclear(identified.value());
    return std::unique_ptr<WalStream>(new WalStream(std::move(session)));
}

bool WalStream::on_standby() const {
    const char* standby = PQparameterStatus(session_->conn, "in_hot_standby");
    return standby && std::string_view(standby) == "on";
}

Result<bool> WalStream::has_publication(const std::string& name) {
    if (!plain_name(name))
        return not_plain("a publication name", name);
    auto result = session_->run("SELECT " + installed_feed::publication_sql(name), PGRES_TUPLES_OK);
    if (!result)
        return result.error();
    bool found =
        PQntuples(result.value()) == 1 && std::string(PQgetvalue(result.value(), 0, 0)) == "t";
    PQclear(result.value());
    return found;
}

Result<CreatedSlot> WalStream::create_slot(const std::string& name, bool temporary) {
    if (!plain_name(name))
        return not_plain("a slot name", name);
    std::string command = "CREATE_REPLICATION_SLOT " + name + (temporary ? " TEMPORARY" : "") +
                          " LOGICAL pgoutput (SNAPSHOT 'export')";
    auto result = session_->run(command, PGRES_TUPLES_OK);
    if (!result)
        return result.error();
    PGresult* r = result.value();
    CreatedSlot slot;
    if (PQntuples(r) == 1 && PQnfields(r) >= 3) {
        slot.name = PQgetvalue(r, 0, 0);
        auto point = parse_lsn(PQgetvalue(r, 0, 1));
        slot.consistent_point = point.value_or(0);
        slot.snapshot = PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2);
    }
    PQclear(r);
    if (slot.consistent_point == 0 || slot.snapshot.empty())
        return make_error(Errc::bad_data, "CREATE_REPLICATION_SLOT answered no consistent point "
                                          "or snapshot");
    return slot;
}

Result<void> WalStream::start(const std::string& slot, Lsn from, const std::string& publication) {
    if (!plain_name(slot))
        return not_plain("a slot name", slot);
    if (!plain_name(publication))
        return not_plain("a publication name", publication);
    std::string command = "START_REPLICATION SLOT " + slot + " LOGICAL " + format_lsn(from) +
                          " (proto_version '1', publication_names '\"" + publication + "\"')";
    auto result = session_->run(command, PGRES_COPY_BOTH);
    if (!result)
        return result.error();
    PQclear(result.value());
    confirmed_ = from;
    return success();
}

Result<std::optional<CopyMessage>> WalStream::next(milliseconds wait) {
    PGconn* conn = session_->conn;
    if (session_->buffer) {
        PQfreemem(session_->buffer);
        session_->buffer = nullptr;
    }
    auto deadline = steady_clock::now() + wait;
    while (true) {
        int size = PQgetCopyData(conn, &session_->buffer, /*async=*/1);
        if (size > 0) {
            auto parsed = parse_copy_data(std::span<const char>(session_->buffer, size));
            if (!parsed)
                return parsed.error();
            return std::optional<CopyMessage>(std::move(parsed).value());
        }
        if (size == -1) {
            PGresult* end = PQgetResult(conn);
            Error e = command_error("the replication stream", end, conn);
            if (end)
                PQclear(end);
            if (!e.sqlstate.empty())
                return e; // the server's own error (a missing publication, say)
            return make_error(Errc::unreachable, "the replication stream ended: " + e.message);
        }
        if (size == -2)
            return make_error(Errc::unreachable, "the replication stream broke: " + words(conn));
        auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        if (left.count() <= 0)
            return std::optional<CopyMessage>();
        pollfd fd{PQsocket(conn), POLLIN, 0};
        int ready = ::poll(&fd, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR)
            return make_error(Errc::unreachable, std::string("poll: ") + std::strerror(errno));
        if (ready > 0 && PQconsumeInput(conn) == 0)
            return make_error(Errc::unreachable, "the replication stream broke: " + words(conn));
    }
}

Result<void> WalStream::confirm(Lsn applied, bool reply_requested) {
    std::string update =
        standby_status_update(applied, applied, applied, postgres_now_us(), reply_requested);
    PGconn* conn = session_->conn;
    if (PQputCopyData(conn, update.data(), static_cast<int>(update.size())) != 1 ||
        PQflush(conn) != 0)
        return make_error(Errc::unreachable, "a status update could not be sent: " + words(conn));
    confirmed_ = applied;
    return success();
}

} // namespace modelrepo::detail::logical
