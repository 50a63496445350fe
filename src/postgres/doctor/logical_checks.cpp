// SPDX-License-Identifier: MIT
// The server's readiness for logical decoding (wal_level, the role's REPLICATION, free
// slots and senders), and every logical replication slot of the database: whether it is
// read, how much WAL it keeps, whether it was invalidated. A slot nobody reads keeps WAL
// until the disk is full (unless max_slot_wal_keep_size bounds it): the doctor names it
// with the statement that drops it.
#include <pqxx/pqxx>

#include "../catalog/mapping.hpp"
#include "../feed/installed_feed.hpp"
#include "../logical/logical_feed.hpp"
#include "checks.hpp"

namespace modelrepo::detail::doctor {

using Status = DoctorCheck::Status;

namespace {

std::string quote(const std::string& text) {
    std::string out = "'";
    for (char c : text)
        out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

/// Which change feed `migrate` installed (what feed=auto reads), and whether it can run.
/// `mapped`: the tables are a mapping's, whose statuses' table (quoted) is `status_table`.
void check_installed_feed(pqxx::nontransaction& tx, const std::string& schema,
                          const std::string& status_table, bool mapped, const std::string& label,
                          const std::vector<std::string>& not_ready, Checks& checks) {
    const std::string publication = logical::publication_name(schema);
    auto row = tx.exec("SELECT " + installed_feed::publication_sql(publication) + ", " +
                       installed_feed::triggers_sql(status_table))[0];
    const bool published = row[0].as<bool>(), triggered = row[1].as<bool>();
    if (published && !not_ready.empty()) {
        std::string fix;
        for (const auto& f : not_ready)
            fix += (fix.empty() ? "" : "; ") + f;
        checks.push_back({label, "feed", Status::fail,
                          "the database was migrated for the logical feed (publication " +
                              publication + ", no row triggers), which cannot run here: " +
                              (!mapped ? "feed=auto polls the tables instead (a resync per "
                                         "poll_interval that saw a change, no events)"
                                       : "a mapping's feed=auto runs the trigger feed, which "
                                         "fails with schema_missing (no triggers are installed)") +
                              ", feed=logical hears nothing",
                          fix + " (or run migrate with feed=triggers)"});
    } else if (published) {
        checks.push_back({label, "feed", triggered ? Status::warn : Status::ok,
                          "the logical feed: publication " + publication +
                              (triggered ? ", and the row triggers too (writers pay for both)"
                                         : ", no row triggers") +
                              "; feed=auto reads it",
                          triggered ? "modelrepo --source 'URL?feed=logical' migrate (drops the "
                                      "triggers)"
                                    : ""});
    } else if (triggered) {
        checks.push_back(
            {label, "feed", Status::ok, "the trigger feed (row triggers); feed=auto reads it", ""});
    } else {
        checks.push_back({label, "feed", Status::warn,
                          "no change feed is installed (neither the row triggers nor publication " +
                              publication + "): " +
                              (!mapped ? "feed=auto polls the tables (a resync per poll_interval "
                                         "that saw a change, no events)"
                                       : "a mapping's feed=auto runs the trigger feed, which fails "
                                         "with schema_missing until migrate installs one"),
                          "modelrepo --source URL migrate"});
    }
}

} // namespace

void check_logical(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                   Checks& checks) {
    auto row = tx.exec(
        std::string("SELECT current_setting('wal_level'), (") + installed_feed::can_replicate_sql +
        "), current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
        "pg_replication_slots), current_setting('max_slot_wal_keep_size'), current_user")[0];
    const std::string wal_level = row[0].c_str();
    const bool may_stream = !row[1].is_null() && row[1].as<bool>();
    const long free_slots = row[2].as<long>();
    const std::string keep = row[3].c_str();
    std::string bound = keep == "-1" ? "max_slot_wal_keep_size is unlimited: a slot nobody reads "
                                       "keeps WAL until the disk is full"
                                     : "max_slot_wal_keep_size = " + keep;
    std::vector<std::string> fixes;
    if (wal_level != "logical")
        fixes.push_back("set wal_level = logical in postgresql.conf and restart the server");
    if (!may_stream)
        fixes.push_back("ALTER ROLE " + tx.quote_name(row[4].c_str()) + " REPLICATION;");
    if (free_slots <= 0)
        fixes.push_back("raise max_replication_slots (and restart), or drop a slot nobody reads");
    std::string fix;
    for (const auto& f : fixes)
        fix += (fix.empty() ? "" : "; ") + f;
    checks.push_back(
        {label, "logical", fixes.empty() ? Status::ok : Status::skipped,
         (fixes.empty() ? std::string("ready for logical decoding")
                        : std::string("not ready for logical decoding (nothing uses it yet)")) +
             ": wal_level " + wal_level + ", the role " + (may_stream ? "may" : "may not") +
             " stream changes, " + std::to_string(free_slots) + " free replication slot(s); " +
             bound,
         fix});

    std::string status_table = "model_status";
    if (!config.mapping.empty()) {
        auto loaded = load_mapping(config.mapping); // check_mapping tells what is wrong in it
        status_table = loaded ? quote_identifier(loaded.value().statuses.table) : "";
    }
    if (!status_table.empty())
        check_installed_feed(tx, config.schema, status_table, !config.mapping.empty(), label, fixes,
                             checks);

    auto slots =
        tx.exec("SELECT slot_name, plugin, active, coalesce(wal_status, ''), "
                "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, "
                "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint, "
                "temporary FROM pg_replication_slots WHERE slot_type = 'logical' AND database = "
                "current_database() ORDER BY slot_name");
    for (const auto& s : slots) {
        const std::string name = s[0].c_str();
        const bool active = s[2].as<bool>();
        const std::string wal_status = s[3].c_str();
        const long long retained = s[4].as<long long>();
        const long long lag = s[5].as<long long>();
        std::string detail = "slot " + name + " (" + s[1].c_str() +
                             (s[6].as<bool>() ? ", temporary" : "") +
                             "): " + (active ? "read now" : "nobody reads it") + "; it keeps " +
                             std::to_string(retained / 1024) + " kB of WAL, " +
                             std::to_string(lag / 1024) + " kB not yet confirmed";
        std::string drop = "SELECT pg_drop_replication_slot(" + quote(name) + ");";
        if (wal_status == "lost")
            checks.push_back({label, "slot", Status::fail,
                              detail + "; invalidated (max_slot_wal_keep_size): its reader "
                                       "must start again from a new slot",
                              drop});
        else if (!active)
            checks.push_back({label, "slot", Status::warn, detail + "; " + bound,
                              "drop it if nothing will read it again: " + drop});
        else
            checks.push_back({label, "slot", Status::ok, detail, ""});
    }
}

} // namespace modelrepo::detail::doctor
