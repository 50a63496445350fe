// SPDX-License-Identifier: MIT
// The pgoutput decoder and the replication stream's framing (src/postgres/logical), on
// bytes: messages built here from the protocol's documentation, and messages a real
// PostgreSQL 15 sent (pgoutput/captured.hex, written by test_postgres_logical with
// MODELREPO_CAPTURE_PGOUTPUT): every one decodes, and every prefix of one is refused. And
// RowNames, which names the slugs of decoded changes (a mapping's ids included).
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "postgres/logical/pgoutput.hpp"
#include "postgres/logical/row_names.hpp"
#include "postgres/logical/status_rows.hpp"
#include "postgres/logical/wal_stream.hpp"

using namespace modelrepo;
using namespace modelrepo::detail::logical;

namespace {

/// A message, written the protocol's way (big-endian integers, NUL-terminated strings).
struct Bytes {
    std::string out;
    Bytes& c(char v) {
        out.push_back(v);
        return *this;
    }
    Bytes& n(std::uint64_t v, int size) {
        for (int shift = (size - 1) * 8; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((v >> shift) & 0xff));
        return *this;
    }
    Bytes& s(const std::string& v) {
        out += v;
        out.push_back('\0');
        return *this;
    }
    Bytes& t(const std::string& v) { // a text column
        c('t').n(v.size(), 4);
        out += v;
        return *this;
    }
    std::span<const char> span() const { return {out.data(), out.size()}; }
};

Bytes relation_items() {
    Bytes r;
    r.c('R').n(16385, 4).s("public").s("items").c('d').n(3, 2);
    r.c(1).s("id").n(23, 4).n(0xffffffff, 4);
    r.c(0).s("name").n(25, 4).n(0xffffffff, 4);
    r.c(0).s("note").n(25, 4).n(0xffffffff, 4);
    return r;
}

std::vector<std::string> captured() {
    std::ifstream in(MODELREPO_PGOUTPUT_DIR "/captured.hex");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
        std::string bytes;
        for (std::size_t i = 0; i + 1 < line.size(); i += 2)
            bytes.push_back(static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16)));
        out.push_back(bytes);
    }
    return out;
}

} // namespace

TEST_CASE("LSNs as PostgreSQL writes them") {
    CHECK(format_lsn(0x16B374D848ULL) == "16/B374D848");
    CHECK(parse_lsn("16/B374D848") == 0x16B374D848ULL);
    CHECK(parse_lsn("0/0") == 0u);
    for (std::string bad : {"", "/", "16/", "/1", "G/1", "1/2/3", "123456789/0", "1 /2"})
        CHECK_MESSAGE(!parse_lsn(bad), bad);
}

TEST_CASE("a transaction: begin, relation, insert, update with its key, delete, truncate, "
          "commit") {
    PgoutputDecoder d;
    auto begin = d.decode(Bytes().c('B').n(0x1000, 8).n(777, 8).n(42, 4).span());
    REQUIRE(begin);
    CHECK(std::get<Begin>(begin.value()).final_lsn == 0x1000);
    CHECK(std::get<Begin>(begin.value()).xid == 42);
    CHECK(d.in_transaction());

    auto rel = d.decode(relation_items().span());
    REQUIRE(rel);
    const Relation* items = std::get<const Relation*>(rel.value());
    CHECK(items->name == "items");
    CHECK(items->columns.size() == 3);
    CHECK(items->columns[0].key);
    CHECK_FALSE(items->columns[1].key);

    auto insert = d.decode(Bytes().c('I').n(16385, 4).c('N').n(3, 2).t("1").t("one").c('n').span());
    REQUIRE(insert);
    const Change& i = std::get<Change>(insert.value());
    CHECK(i.kind == Change::Kind::insert);
    CHECK(i.relation == items);
    CHECK(i.new_row->values == std::vector<std::optional<std::string>>{"1", "one", std::nullopt});

    auto update = d.decode(Bytes()
                               .c('U')
                               .n(16385, 4)
                               .c('K')
                               .n(3, 2)
                               .t("1")
                               .c('n')
                               .c('n')
                               .c('N')
                               .n(3, 2)
                               .t("2")
                               .t("two")
                               .c('u')
                               .span());
    REQUIRE(update);
    const Change& u = std::get<Change>(update.value());
    CHECK(u.old_row->values[0] == "1");
    CHECK(u.new_row->values[0] == "2");
    CHECK(u.new_row->unchanged == std::vector<bool>{false, false, true});

    auto del = d.decode(Bytes().c('D').n(16385, 4).c('K').n(3, 2).t("2").c('n').c('n').span());
    REQUIRE(del);
    CHECK(std::get<Change>(del.value()).kind == Change::Kind::delete_);
    CHECK_FALSE(std::get<Change>(del.value()).new_row);

    auto truncate = d.decode(Bytes().c('T').n(1, 4).c(1).n(16385, 4).span());
    REQUIRE(truncate);
    CHECK(std::get<Truncate>(truncate.value()).cascade);
    CHECK(std::get<Truncate>(truncate.value()).relations.front() == items);

    auto commit = d.decode(Bytes().c('C').c(0).n(0xff0, 8).n(0x1000, 8).n(777, 8).span());
    REQUIRE(commit);
    CHECK(std::get<Commit>(commit.value()).end_lsn == 0x1000);
    CHECK_FALSE(d.in_transaction());
}

TEST_CASE("what is not a whole, known message is bad_data naming it") {
    struct Case {
        std::string bytes, why;
    };
    PgoutputDecoder d;
    REQUIRE(d.decode(relation_items().span()));
    const std::string insert = Bytes().c('I').n(16385, 4).c('N').n(3, 2).t("1").t("a").c('n').out;
    std::vector<Case> cases{
        {"", "empty"},
        {"Z", "not a message of protocol version 1"},
        {insert, "outside a transaction"},
        {Bytes().c('C').c(0).n(1, 8).n(2, 8).n(3, 8).out, "outside a transaction"},
    };
    for (const auto& c : cases) {
        auto r = d.decode(std::span<const char>(c.bytes.data(), c.bytes.size()));
        REQUIRE_FALSE(r);
        CHECK(r.error().is(Errc::bad_data));
        CHECK_MESSAGE(r.error().message.find(c.why) != std::string::npos, r.error().message);
    }
    REQUIRE(d.decode(Bytes().c('B').n(1, 8).n(1, 8).n(1, 4).span()));
    std::vector<Case> inside{
        {Bytes().c('I').n(99, 4).c('N').n(0, 2).out, "never described"},
        {Bytes().c('I').n(16385, 4).c('N').n(2, 2).t("1").t("a").out, "not one of the relation's"},
        {insert + "x", "bytes after its end"},
        {Bytes().c('D').n(16385, 4).c('N').out, "without its old row"},
        {Bytes().c('B').n(1, 8).n(1, 8).n(1, 4).out, "inside a transaction"},
    };
    for (const auto& c : inside) {
        auto r = d.decode(std::span<const char>(c.bytes.data(), c.bytes.size()));
        REQUIRE_FALSE(r);
        CHECK_MESSAGE(r.error().message.find(c.why) != std::string::npos, r.error().message);
    }
}

TEST_CASE("the stream's framing: XLogData, keepalive, the status update") {
    Bytes w;
    w.c('w').n(0x10, 8).n(0x20, 8).n(5, 8).c('B');
    auto data = parse_copy_data(w.span());
    REQUIRE(data);
    const auto& x = std::get<XLogData>(data.value());
    CHECK(x.start == 0x10);
    CHECK(x.wal_end == 0x20);
    CHECK(x.payload.size() == 1);
    auto keepalive = parse_copy_data(Bytes().c('k').n(0x30, 8).n(6, 8).c(1).span());
    REQUIRE(keepalive);
    CHECK(std::get<Keepalive>(keepalive.value()).reply_requested);
    CHECK_FALSE(parse_copy_data(Bytes().c('k').n(0x30, 8).span()));
    CHECK_FALSE(parse_copy_data(Bytes().c('w').n(1, 8).span()));
    CHECK_FALSE(parse_copy_data(Bytes().c('x').span()));
    std::string update = standby_status_update(0x40, 0x40, 0x40, 7, true);
    CHECK(update.size() == 34);
    CHECK(update[0] == 'r');
    CHECK(update.substr(1, 8) == Bytes().n(0x40, 8).out);
    CHECK(update.back() == 1);
}

TEST_CASE("messages a real PostgreSQL 15 sent decode, and no prefix of one does") {
    auto messages = captured();
    REQUIRE(messages.size() >= 8);
    PgoutputDecoder d;
    int changes = 0, commits = 0;
    for (const auto& m : messages) {
        CAPTURE(m.size());
        auto r = d.decode(std::span<const char>(m.data(), m.size()));
        REQUIRE_MESSAGE(r, r.error().message);
        changes += std::holds_alternative<Change>(r.value());
        commits += std::holds_alternative<Commit>(r.value());
        // Each shorter prefix is refused by a decoder that knows the same relations.
        for (std::size_t cut = 1; cut < m.size(); cut += std::max<std::size_t>(1, m.size() / 16)) {
            PgoutputDecoder copy = d;
            if (m[0] == 'C' || m[0] == 'B') // a copy whose transaction state fits the prefix
                continue;
            auto prefix = copy.decode(std::span<const char>(m.data(), cut));
            CHECK_FALSE(prefix);
        }
    }
    CHECK(changes >= 5);
    CHECK(commits == 3);
    CHECK_FALSE(d.in_transaction());
}

namespace {

/// A relation of `columns` (the first one the key) in schema public.
Relation relation(const std::string& name, std::vector<std::string> columns) {
    Relation r;
    r.schema = "public";
    r.name = name;
    for (std::size_t i = 0; i < columns.size(); ++i)
        r.columns.push_back({columns[i], 25, i == 0});
    return r;
}

Tuple row(std::vector<std::optional<std::string>> values) {
    Tuple t;
    t.unchanged.assign(values.size(), false);
    t.values = std::move(values);
    return t;
}

Change change(Change::Kind kind, const Relation& r, std::optional<Tuple> new_row,
              std::optional<Tuple> old_row = std::nullopt) {
    Change c;
    c.kind = kind;
    c.relation = &r;
    c.new_row = std::move(new_row);
    c.old_row = std::move(old_row);
    return c;
}

using Kind = modelrepo::CatalogChange::Kind;
using Named = RowNames::Named;

} // namespace

TEST_CASE("RowNames on modelrepo's tables: the slug in the row; other tables name nothing") {
    RowNames names(CatalogueTables{}, "public");
    CHECK(names.load_sql("").empty()); // no maps to read
    auto status = relation("model_status", {"model_slug", "health"});
    auto other = relation("orders", {"id"});
    auto elsewhere = relation("model_status", {"model_slug"});
    elsewhere.schema = "archive";
    Named out;
    CHECK(names.name(change(Change::Kind::update, status, row({"gpt-4o", "degraded"})), out));
    CHECK(out == Named{{Kind::status, "gpt-4o"}});
    out.clear();
    CHECK(names.name(change(Change::Kind::insert, other, row({"1"})), out));
    CHECK(names.name(change(Change::Kind::insert, elsewhere, row({"x"})), out));
    CHECK(out.empty());
}

TEST_CASE("RowNames on a mapping keyed by ids: statuses by their model's id, a renamed slug, a "
          "DELETE of the key only and its cascade, an id never seen") {
    CatalogueTables tables;
    tables.providers = {"Provider", "slug", "id", ""};
    tables.models = {"Model", "slug", "id", ""};
    tables.statuses = {"ModelStatus", "", "id", "modelId"};
    RowNames names(tables, "public");
    const std::string sql = names.load_sql("\"public\".");
    CHECK(sql.find("FROM \"public\".\"Model\"") != std::string::npos);
    CHECK(sql.find("\"modelId\"::text") != std::string::npos);
    names.load(0, "p1", "openai");
    names.load(1, "m1", "gpt-4o");
    names.load(2, "s1", "m1");
    auto model = relation("Model", {"id", "slug", "name"});
    auto status = relation("ModelStatus", {"id", "modelId", "availability"});
    Named out;

    // A status names its model by id.
    CHECK(names.name(change(Change::Kind::update, status, row({"s1", "m1", "0.5"})), out));
    CHECK(out == Named{{Kind::status, "gpt-4o"}});
    // A slug renamed, the key kept (no old row): the new slug and the old.
    out.clear();
    CHECK(names.name(change(Change::Kind::update, model, row({"m1", "gpt-4o-new", "GPT"})), out));
    CHECK(out == Named{{Kind::model, "gpt-4o-new"}, {Kind::model, "gpt-4o"}});
    // An unchanged TOASTed slug is not sent: the id names it.
    out.clear();
    auto toasted = row({"m1", std::nullopt, "GPT-4o"});
    toasted.unchanged[1] = true;
    CHECK(names.name(change(Change::Kind::update, model, toasted), out));
    CHECK(out == Named{{Kind::model, "gpt-4o-new"}});
    // DELETE: the key only; the cascade's status DELETE, later in the transaction, still
    // finds the model.
    out.clear();
    CHECK(names.name(
        change(Change::Kind::delete_, model, std::nullopt, row({"m1", std::nullopt, std::nullopt})),
        out));
    CHECK(names.name(change(Change::Kind::delete_, status, std::nullopt,
                            row({"s1", std::nullopt, std::nullopt})),
                     out));
    CHECK(out == Named{{Kind::model, "gpt-4o-new"}, {Kind::status, "gpt-4o-new"}});
    names.committed();
    // After the commit the ids are forgotten: a row naming one cannot be named.
    out.clear();
    CHECK_FALSE(names.name(change(Change::Kind::update, status, row({"s9", "m1", "1"})), out));
    CHECK_FALSE(names.name(
        change(Change::Kind::delete_, model, std::nullopt, row({"m1", std::nullopt, std::nullopt})),
        out));
    // Deleted and made again in one transaction: known after the commit.
    CHECK(names.name(change(Change::Kind::insert, model, row({"m2", "claude", "Claude"})), out));
    CHECK(names.name(
        change(Change::Kind::delete_, model, std::nullopt, row({"m2", std::nullopt, std::nullopt})),
        out));
    CHECK(names.name(change(Change::Kind::insert, model, row({"m2", "claude", "Claude"})), out));
    names.committed();
    out.clear();
    CHECK(names.name(change(Change::Kind::insert, status, row({"s2", "m2", "1"})), out));
    CHECK(out == Named{{Kind::status, "claude"}});
    // TRUNCATE empties the table's map.
    names.truncated(model);
    out.clear();
    CHECK_FALSE(names.name(change(Change::Kind::update, status, row({"s2", "m2", "1"})), out));
}

TEST_CASE("timestamptz as PostgreSQL prints it in DateStyle ISO") {
    using namespace std::chrono;
    auto at = [](std::string_view text) { return parse_timestamptz(text); };
    const Timestamp base = sys_days(2026y / December / 7) + hours(19) + minutes(9) + seconds(18);
    CHECK(at("2026-12-07 19:09:18+00") == base);
    CHECK(at("2026-12-07 19:09:18.285539+00") == base + microseconds(285'539));
    CHECK(at("2026-12-07 19:09:18.5+00") == base + milliseconds(500));
    CHECK(at("2026-12-08 00:39:18.5+05:30") == base + milliseconds(500));
    CHECK(at("2026-12-07 15:38:48-03:30:30") == base);
    CHECK(at("1970-01-01 00:00:00+00") == Timestamp{});
    CHECK(at("1679-01-01 00:00:00+00") == Timestamp(sys_days(1679y / January / 1)));
    CHECK(at("2261-12-31 23:59:59.999999-14") ==
          Timestamp(sys_days(2262y / January / 1) + hours(14) - microseconds(1)));
    // Not read here: the row goes the re-read's way.
    for (const char* text :
         {"", "infinity", "-infinity", "2026-12-07 19:09:18", "2026-12-07T19:09:18+00",
          "07/12/2026 19:09:18.285539 UTC", "Mon 07 Dec 19:09:18.285539 2026 UTC",
          "2026-12-07 19:09:18.1234567+00", "2026-12-07 19:09:18.+00", "2026-02-30 00:00:00+00",
          "2026-12-07 24:00:00+00", "0000-12-07 19:09:18+00", "2026-12-07 19:09:18+00 BC",
          "0001-01-01 00:00:00+00", "1678-01-01 00:00:00+00", "2262-01-01 00:00:00+00",
          "9999-12-31 23:59:59+00", "2026-12-07 19:09:18+0", "2026-12-07 19:09:18+00:6"})
        CHECK_MESSAGE(!at(text), text);
}

TEST_CASE("a model_status row decoded into the status the catalogue's reads would give") {
    Relation r;
    r.oid = 16400;
    r.schema = "public";
    r.name = "model_status";
    // Another column order than the table's, and a column added later: found by name.
    for (const char* name : {"region", "model_slug", "added_later", "health", "availability",
                             "latency_ms", "error_rate", "checked_at"})
        r.columns.push_back({name, 25, std::string_view(name) == "model_slug"});
    auto row = [](std::vector<std::optional<std::string>> values) {
        Tuple t;
        t.unchanged.assign(values.size(), false);
        t.values = std::move(values);
        return t;
    };
    auto s = status_of_row(r, row({"eu-west", "gpt-x", "whatever", "degraded", "0.25", "120.5",
                                   "1e-05", "2026-12-07 19:09:18.285539+00"}));
    REQUIRE(s);
    CHECK(s->model_slug == "gpt-x");
    CHECK(s->health == Health::degraded);
    CHECK(s->availability == 0.25);
    CHECK(s->latency_ms == 120.5);
    CHECK(s->error_rate == 1e-05);
    CHECK(s->region == "eu-west");
    CHECK(s->checked_at == parse_timestamptz("2026-12-07 19:09:18.285539+00"));

    // NULL latency: none. A health this modelrepo does not know: unknown, as a read has it.
    s = status_of_row(r, row({"", "gpt-x", std::nullopt, "sideways", "1", std::nullopt, "0",
                              "2026-12-07 19:09:18+00"}));
    REQUIRE(s);
    CHECK_FALSE(s->latency_ms);
    CHECK(s->health == Health::unknown);

    // Unreadable here: NULL where the table forbids it, a value in another form, an
    // unchanged TOASTed value, a column missing.
    CHECK_FALSE(status_of_row(r, row({std::nullopt, "gpt-x", "", "degraded", "0.25", "1", "0",
                                      "2026-12-07 19:09:18+00"})));
    CHECK_FALSE(status_of_row(
        r, row({"", "gpt-x", "", "degraded", "0,25", "1", "0", "2026-12-07 19:09:18+00"})));
    CHECK_FALSE(status_of_row(
        r, row({"", "gpt-x", "", "degraded", "0.25", "1", "0", "07/12/2026 19:09:18 UTC"})));
    auto toasted = row({"", "gpt-x", "", "degraded", "0.25", "1", "0", "2026-12-07 19:09:18+00"});
    toasted.unchanged[0] = true;
    toasted.values[0] = std::nullopt;
    CHECK_FALSE(status_of_row(r, toasted));
    Relation missing = r;
    missing.columns[6].name = "errors";
    CHECK_FALSE(status_of_row(
        missing, row({"", "gpt-x", "", "degraded", "0.25", "1", "0", "2026-12-07 19:09:18+00"})));
}
