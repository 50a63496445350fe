// SPDX-License-Identifier: MIT
// Logical decoding against a real PostgreSQL 15 (wal_level = logical): the replication
// session (src/postgres/logical/wal_stream), a temporary slot and its exported snapshot,
// and the pgoutput decoder on what the server sends: changes of concurrent transactions in
// commit order, each transaction's changes named by its commit LSN and their position,
// the slot's confirmed position moved by a status update; and the typed errors of a role
// without REPLICATION. With MODELREPO_CAPTURE_PGOUTPUT=FILE it writes the messages it
// received, hex, one a line: tests/unit/pgoutput/captured.hex came from such a run.
#include <cstdlib>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include "pg_catalogue.hpp"
#include "postgres/logical/wal_stream.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace modelrepo::detail::logical;
using namespace std::chrono;

namespace {

const std::string db = "logical";

/// A session of its own (libpq), for what must happen in one transaction.
struct Session {
    PGconn* conn;
    explicit Session(const std::string& url)
        : conn(PQconnectdb(url.c_str())) {
        REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
    }
    ~Session() { PQfinish(conn); }
    std::string run(const std::string& sql) {
        PGresult* r = PQexec(conn, sql.c_str());
        auto status = PQresultStatus(r);
        INFO(sql << ": " << PQresultErrorMessage(r));
        CHECK((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        std::string out = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return out;
    }
};

std::string hex(std::span<const char> bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (char c : bytes) {
        out += digits[(static_cast<unsigned char>(c) >> 4) & 15];
        out += digits[static_cast<unsigned char>(c) & 15];
    }
    return out;
}

/// What the stream said, decoded: each transaction's commit LSN and its changes.
struct Received {
    struct Txn {
        Lsn commit = 0;
        Lsn end = 0;
        std::vector<std::string> changes; ///< "I items 2 two", "U items 1 uno", "D items 3"
    };
    std::vector<Txn> txns;
    std::vector<std::string> captured; ///< every XLogData payload, hex
};

/// Reads the stream until `count` transactions have committed (30 s at most), confirming
/// each as a feed would once it has applied it.
Received read_transactions(WalStream& stream, std::size_t count) {
    PgoutputDecoder decoder;
    Received got;
    Received::Txn open;
    auto until = steady_clock::now() + 30s;
    while (got.txns.size() < count && steady_clock::now() < until) {
        auto next = stream.next(200ms);
        REQUIRE_MESSAGE(next, next.error().message);
        if (!next.value())
            continue;
        if (auto* k = std::get_if<Keepalive>(&*next.value())) {
            if (k->reply_requested)
                REQUIRE(stream.confirm(stream.confirmed()));
            continue;
        }
        const auto& data = std::get<XLogData>(*next.value());
        got.captured.push_back(hex(data.payload));
        auto message = decoder.decode(data.payload);
        REQUIRE_MESSAGE(message, message.error().message);
        if (auto* b = std::get_if<Begin>(&message.value())) {
            open = {};
            open.commit = b->final_lsn;
        } else if (auto* c = std::get_if<Commit>(&message.value())) {
            CHECK(c->commit_lsn == open.commit);
            open.end = c->end_lsn;
            got.txns.push_back(open);
            REQUIRE(stream.confirm(c->end_lsn));
        } else if (auto* change = std::get_if<Change>(&message.value())) {
            const char kind = change->kind == Change::Kind::insert   ? 'I'
                              : change->kind == Change::Kind::update ? 'U'
                                                                     : 'D';
            const Tuple& row = change->new_row ? *change->new_row : *change->old_row;
            std::string line = std::string(1, kind) + " " + change->relation->name;
            for (std::size_t i = 0; i < row.values.size(); ++i)
                if (row.unchanged[i])
                    line += " <unchanged>";
                else if (row.values[i])
                    line += " " + (row.values[i]->size() > 100
                                       ? "<" + std::to_string(row.values[i]->size()) + " chars>"
                                       : *row.values[i]);
            open.changes.push_back(line);
        }
    }
    return got;
}

} // namespace

TEST_CASE("logical decoding: a temporary slot's snapshot and then its changes, in commit order, "
          "confirmed") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    fresh_database(db);
    const std::string url = s.url("app", password, db);
    Session writer(url);
    writer.run("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note text)");
    writer.run("INSERT INTO items VALUES (1, 'one', NULL), (3, 'three', 'x')");
    writer.run("CREATE PUBLICATION modelrepo_test FOR TABLE items");

    auto stream = WalStream::connect(url, 5s);
    REQUIRE_MESSAGE(stream, stream.error().message);
    auto slot = stream.value()->create_slot("modelrepo_test_slot", true);
    REQUIRE_MESSAGE(slot, slot.error().message);

    // Made after the slot: a change, not part of the snapshot.
    writer.run("INSERT INTO items VALUES (2, 'two', NULL)");
    // The data as of the slot's consistent point, read in its exported snapshot (before
    // the next command on the replication session).
    Session reader(url);
    reader.run("BEGIN ISOLATION LEVEL REPEATABLE READ");
    reader.run("SET TRANSACTION SNAPSHOT '" + slot.value().snapshot + "'");
    CHECK(reader.run("SELECT string_agg(id::text, ',' ORDER BY id) FROM items") == "1,3");
    reader.run("COMMIT");

    REQUIRE(stream.value()->start("modelrepo_test_slot", slot.value().consistent_point,
                                  "modelrepo_test"));
    // Two transactions at once: the one that began first commits last.
    Session other(url);
    writer.run("BEGIN");
    writer.run("UPDATE items SET name = 'uno' WHERE id = 1");
    other.run("BEGIN");
    other.run("DELETE FROM items WHERE id = 3");
    // A value stored out of line (TOAST): an update that leaves it is sent without it.
    other.run("INSERT INTO items SELECT 4, 'four', string_agg(md5(g::text), '') FROM "
              "generate_series(1, 200) g");
    other.run("COMMIT");
    writer.run("UPDATE items SET name = 'vier' WHERE id = 4");
    writer.run("COMMIT");

    auto got = read_transactions(*stream.value(), 3);
    REQUIRE(got.txns.size() == 3);
    CHECK(got.txns[0].changes == std::vector<std::string>{"I items 2 two"});
    CHECK(got.txns[1].changes ==
          std::vector<std::string>{"D items 3", "I items 4 four <6400 chars>"});
    CHECK(got.txns[2].changes ==
          std::vector<std::string>{"U items 1 uno", "U items 4 vier <unchanged>"});
    // Commit order is LSN order; a change is named by (commit LSN, position).
    CHECK(got.txns[0].commit < got.txns[1].commit);
    CHECK(got.txns[1].commit < got.txns[2].commit);

    // The status update moves the slot's confirmed position (polled: the server applies it
    // when it reads it).
    const std::string wanted = format_lsn(got.txns[2].end);
    std::string confirmed;
    for (auto until = steady_clock::now() + 20s; steady_clock::now() < until;) {
        REQUIRE(stream.value()->confirm(got.txns[2].end, true));
        (void)stream.value()->next(100ms);
        confirmed = s.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name "
                           "= 'modelrepo_test_slot'");
        if (parse_lsn(confirmed) >= parse_lsn(wanted))
            break;
    }
    CHECK(parse_lsn(confirmed) >= parse_lsn(wanted));

    if (const char* file = std::getenv("MODELREPO_CAPTURE_PGOUTPUT")) {
        std::ofstream out(file);
        for (const auto& line : got.captured)
            out << line << "\n";
    }
    // A temporary slot goes with its session.
    stream.value().reset();
    bool gone = false;
    for (auto until = steady_clock::now() + 20s; !gone && steady_clock::now() < until;) {
        gone = s.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                      "'modelrepo_test_slot'") == "0";
        if (!gone)
            std::this_thread::sleep_for(50ms);
    }
    CHECK(gone);
}

TEST_CASE("logical decoding: a role without REPLICATION is told the fix") {
    auto& s = server();
    s.create_role("reader_norepl", password, db);
    auto stream = WalStream::connect(s.url("reader_norepl", password, db), 5s);
    REQUIRE_FALSE(stream);
    CHECK(stream.error().is(Errc::auth_failed));
    CHECK(stream.error().message.find("REPLICATION") != std::string::npos);
    CHECK(stream.error().message.find(password) == std::string::npos);
}
