// SPDX-License-Identifier: MIT
// The outbox against a real server and real SQLite files: writes acknowledged through an
// outage are applied when the database returns, through kill -9 of the writer; wrong
// writes are refused at once; dead letters; a full, unwritable, corrupt or shared file.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "durable/outbox/outbox_store.hpp"
#include "pg_catalogue.hpp"
#include "process.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

namespace {

ModelStatus status(const std::string& slug, Timestamp at, double availability = 0.25) {
    return {slug, Health::outage, availability, 42.0, 0.75, "outbox-test", at};
}

/// checked_at of each model's status in database `db`, in microseconds.
std::map<std::string, long long> stored(const std::string& db) {
    std::string rows = server().psql("SELECT string_agg(model_slug || '=' || (extract(epoch FROM "
                                     "checked_at) * 1000000)::bigint, "
                                     "',') FROM model_status WHERE region = 'crash-test'",
                                     db);
    std::map<std::string, long long> out;
    for (std::size_t at = 0; at < rows.size();) {
        auto comma = rows.find(',', at);
        std::string item = rows.substr(at, comma - at);
        auto eq = item.find('=');
        if (eq != std::string::npos)
            out[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
        at = comma == std::string::npos ? rows.size() : comma + 1;
    }
    return out;
}

} // namespace

TEST_CASE("through an outage: writes are queued, acknowledged, read back, and applied "
          "when the database returns") {
    auto& s = server();
    fresh_catalogue("outbox_basic");
    TempDir dir;
    const std::string url =
        s.url("app", password, "outbox_basic", "127.0.0.1",
              "connect_timeout=2&outbox=" + (dir.path() / "outbox.db").string() +
                  "&cache_dir=" + dir.path().string());
    auto repo = open_layered(url);
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    std::vector<OutboxEvent> events;
    std::mutex events_mutex;
    repo.outbox().on_outbox_event([&](const OutboxEvent& e) {
        std::lock_guard lock(events_mutex);
        events.push_back(e);
    });
    Timestamp t = floor<microseconds>(system_clock::now());
    std::vector<ModelStatus> up{status("gpt-5", t)};
    auto applied = repo->write_statuses(up).value();
    CHECK(applied.applied == 1);
    CHECK(applied.queued == 0);

    s.kill9();
    RestartOnExit restart{s};
    std::vector<ModelStatus> batch{status("gpt-4o", t + 1s), status("gpt-5", t + 1s, 0.125)};
    auto queued = repo->write_statuses(batch);
    if (!queued)
        FAIL(queued.error().to_string());
    CHECK(queued.value().applied == 0);
    CHECK(queued.value().queued == 2);
    CHECK(queued.value().unchecked == 0); // checked against the copy
    CHECK(queued.value().outbox == (dir.path() / "outbox.db").string());
    REQUIRE(queued.value().deferred_because);
    CHECK(queued.value().deferred_because->is(Errc::unreachable));
    // Read your writes: the copy that stands in for the database holds them.
    auto gpt5 = repo->find_model("gpt-5").value();
    CHECK(gpt5->status->availability == 0.125);
    auto state = repo.outbox().outbox_state().value();
    CHECK(state.statuses == 2);
    CHECK(state.batches == 1);
    CHECK(state.oldest.has_value());
    // upsert_statuses counts a queued write as accepted.
    std::vector<ModelStatus> more{status("claude-sonnet-4-5", t + 2s)};
    CHECK(repo->upsert_statuses(more).value() == 1);
    CHECK(repo.outbox().outbox_state().value().statuses == 3);
    std::string text = to_prometheus(repo->backend_metrics());
    CHECK(text.find("modelrepo_outbox_pending{unit=\"statuses\"} 3") != std::string::npos);

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    // The replay thread applies them by itself, oldest first, with no call needed.
    REQUIRE(eventually([&] { return repo.outbox().outbox_state().value().statuses == 0; }, 20s));
    CHECK(s.psql("SELECT availability FROM model_status WHERE model_slug = 'gpt-5'",
                 "outbox_basic") == "0.125");
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE region = 'outbox-test'",
                 "outbox_basic") == "3");
    std::lock_guard lock(events_mutex);
    CHECK(events.size() == 2);
    CHECK(events[0].kind == OutboxEvent::Kind::replayed);
}

TEST_CASE("a wrong write is refused at once and never queued") {
    auto& s = server();
    fresh_catalogue("outbox_refuse");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_refuse", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string() +
                                      "&cache_dir=" + dir.path().string());
    auto repo = open_layered(url);
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    Timestamp t = system_clock::now();
    std::vector<ModelStatus> unknown{status("gpt-99", t)};
    auto e = expect_error(repo->write_statuses(unknown), Errc::invalid_argument);
    CHECK(e.sqlstate == "23503"); // the server said so
    std::vector<ModelStatus> range{status("gpt-5", t, 1.5)};
    expect_error(repo->write_statuses(range), Errc::invalid_argument);
    s.kill9();
    RestartOnExit restart{s};
    // Down: checked against the last-known copy.
    auto down = expect_error(repo->write_statuses(unknown), Errc::invalid_argument);
    CHECK(down.message.find("gpt-99") != std::string::npos);
    expect_error(repo->write_statuses(range), Errc::invalid_argument);
    CHECK(repo.outbox().outbox_state().value().statuses == 0);
}

TEST_CASE("dead letter: a queued status for a model deleted before the replay") {
    auto& s = server();
    fresh_catalogue("outbox_dead");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_dead", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string());
    Timestamp t = system_clock::now();
    s.kill9();
    {
        RestartOnExit restart{s};
        auto writer = open_layered(url); // no copy: no check of the slugs while down
        std::vector<ModelStatus> doomed{status("gpt-4o", t)};
        std::vector<ModelStatus> fine{status("gpt-5", t)};
        REQUIRE(writer->write_statuses(doomed).value().queued == 1);
        REQUIRE(writer->write_statuses(fine).value().queued == 1);
    } // the writer goes before the database returns
    REQUIRE(s.available());
    s.psql("DELETE FROM models WHERE slug = 'gpt-4o'", "outbox_dead");
    auto replayer = open_layered(url);
    std::atomic<int> dead{0};
    replayer.outbox().on_outbox_event([&](const OutboxEvent& e) {
        if (e.kind == OutboxEvent::Kind::dead_letter)
            ++dead;
    });
    auto drained = replayer.outbox().drain_outbox();
    if (!drained)
        FAIL(drained.error().to_string());
    auto state = replayer.outbox().outbox_state().value();
    CHECK(state.statuses == 0);
    CHECK(state.dead_letters == 1);
    REQUIRE(state.recent_dead_letters.size() == 1);
    CHECK(state.recent_dead_letters[0].error.find("23503") != std::string::npos);
    // The batch behind it was not blocked.
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE region = 'outbox-test'", "outbox_dead") ==
          "1");
    CHECK(eventually([&] { return dead.load() == 1 || drained.value().dead_letters == 1; }, 5s));
}

TEST_CASE("a batch the database refuses is dead-lettered status by status: the valid ones land") {
    auto& s = server();
    fresh_catalogue("outbox_split");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_split", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string());
    Timestamp t = system_clock::now();
    s.kill9();
    {
        RestartOnExit restart{s};
        auto writer = open_layered(url);
        std::vector<ModelStatus> mixed{status("gpt-5", t), status("gpt-4o", t),
                                       status("claude-opus-4-1", t)};
        auto receipt = writer->write_statuses(mixed).value();
        REQUIRE(receipt.queued == 3);
        CHECK(receipt.unchecked == 3); // no copy: the slugs could not be checked
    }
    REQUIRE(s.available());
    s.psql("DELETE FROM models WHERE slug = 'gpt-4o'", "outbox_split");
    auto replayer = open_layered(url);
    auto drained = replayer.outbox().drain_outbox();
    if (!drained)
        FAIL(drained.error().to_string());
    auto state = replayer.outbox().outbox_state().value();
    CHECK(state.statuses == 0);
    CHECK(state.dead_letters == 1);
    REQUIRE(state.recent_dead_letters.size() == 1);
    CHECK(state.recent_dead_letters[0].statuses == 1); // gpt-4o alone
    CHECK(state.recent_dead_letters[0].error.find("gpt-4o") != std::string::npos);
    CHECK(state.recent_dead_letters[0].error.find("23503") != std::string::npos);
    // Before: the whole batch went to the dead letters, the two valid statuses with it.
    CHECK(s.psql("SELECT string_agg(model_slug, ',' ORDER BY model_slug) FROM model_status "
                 "WHERE region = 'outbox-test'",
                 "outbox_split") == "claude-opus-4-1,gpt-5");
}

TEST_CASE("a stored batch edited to an impossible value is dead-lettered with why; the rest "
          "are applied") {
    auto& s = server();
    fresh_catalogue("outbox_edited");
    TempDir dir;
    auto file = dir.path() / "o.db";
    const std::string url = s.url("app", password, "outbox_edited", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + file.string());
    Timestamp t = system_clock::now();
    s.kill9();
    {
        RestartOnExit restart{s};
        auto writer = open_layered(url);
        REQUIRE(writer->write_statuses(std::vector{status("gpt-4o", t)}).value().queued == 1);
        REQUIRE(writer->write_statuses(std::vector{status("gpt-5", t)}).value().queued == 1);
        writer = {};
        // The first batch's availability becomes 9.5 in the file.
        REQUIRE(std::system(("python3 -c \"import sqlite3; c = sqlite3.connect('" + file.string() +
                             "'); c.execute(\\\"UPDATE batches SET statuses = replace(statuses, "
                             "'0.25', '9.5') WHERE id = (SELECT min(id) FROM batches)\\\"); "
                             "c.commit()\"")
                                .c_str()) == 0);
    }
    REQUIRE(s.available());
    auto replayer = open_layered(url);
    auto drained = replayer.outbox().drain_outbox();
    REQUIRE_MESSAGE(drained, (drained ? "" : drained.error().to_string())); // before: wedged
    auto state = replayer.outbox().outbox_state().value();
    CHECK(state.statuses == 0);
    CHECK(state.dead_letters == 1);
    REQUIRE(state.recent_dead_letters.size() == 1);
    CHECK(state.recent_dead_letters[0].statuses == 1);
    CHECK(state.recent_dead_letters[0].error.find("does not read back") != std::string::npos);
    CHECK(state.recent_dead_letters[0].error.find("availability") != std::string::npos);
    CHECK(s.psql("SELECT string_agg(model_slug, ',') FROM model_status WHERE region = "
                 "'outbox-test'",
                 "outbox_edited") == "gpt-5");
}

TEST_CASE("a full disk: the write is refused as disk_full, and what was queued is applied once") {
    auto& s = server();
    fresh_catalogue("outbox_disk");
    TempDir dir;
    auto disk = dir.path() / "disk";
    std::filesystem::create_directories(disk);
    auto mounted = run_process({"mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", disk.string()});
    if (mounted.exit_code != 0) {
        if (std::getenv("CI"))
            FAIL("mounting a tmpfs failed (the test runs as root): " << mounted.err);
        MESSAGE("skipped: cannot mount a tmpfs: " << mounted.err);
        return;
    }
    struct Unmount {
        std::filesystem::path at;
        ~Unmount() { run_process({"umount", "-l", at.string()}); }
    } unmount{disk};
    // Every application of a status, counted by the database.
    s.psql("CREATE TABLE applied (n int NOT NULL); INSERT INTO applied VALUES (0); "
           "CREATE FUNCTION count_applied() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
           "AS $$ BEGIN UPDATE applied SET n = n + 1; RETURN NEW; END $$; "
           "CREATE TRIGGER count_applied AFTER INSERT OR UPDATE ON model_status "
           "FOR EACH ROW WHEN (NEW.region = 'outbox-test') EXECUTE FUNCTION count_applied()",
           "outbox_disk");
    const std::string url = s.url("app", password, "outbox_disk", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (disk / "o.db").string());
    Timestamp t = system_clock::now();
    s.kill9();
    RestartOnExit restart{s};
    auto repo = open_layered(url);
    const std::vector<std::string> slugs{"gpt-5", "gpt-4o", "claude-opus-4-1"};
    for (int i = 0; i < 10; ++i) {
        std::vector<ModelStatus> batch;
        for (const auto& slug : slugs)
            batch.push_back(status(slug, t + microseconds(i)));
        REQUIRE(repo->write_statuses(batch).value().queued == 3);
    }
    {
        std::ofstream filler(disk / "filler", std::ios::binary);
        std::string block(4096, 'x');
        while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) &&
               filler.flush()) {
        }
    }
    Error refused;
    for (int i = 0; i < 50; ++i) { // until SQLite needs a page it does not have
        auto r = repo->write_statuses(std::vector{status("gpt-5", t, 0.5)});
        if (!r) {
            refused = r.error();
            break;
        }
    }
    CHECK(refused.is(Errc::disk_full)); // before: unreachable, "cannot rollback"
    CHECK(refused.message.find("full") != std::string::npos);
    CHECK(refused.message.find("rollback") == std::string::npos);
    CHECK(refused.message.find("refused, not queued") != std::string::npos);
    auto pending = repo.outbox().outbox_state().value().statuses;
    CHECK(pending >= 30);

    s.start(); // the replay applies it; removing what it applied may fail for want of space
    CHECK(eventually(
        [&] {
            auto n = s.try_psql("SELECT n FROM applied", "outbox_disk");
            return n && std::stoll(*n) >= pending;
        },
        30s));
    std::this_thread::sleep_for(2s); // further replays, were they to apply it again
    auto applications = std::stoll(s.psql("SELECT n FROM applied", "outbox_disk"));
    auto still = repo.outbox().outbox_state().value().statuses;
    MESSAGE("statuses queued: " << pending << ", applied: " << applications
                                << ", still pending while the disk is full: " << still);
    CHECK(still == pending);        // applied, but not removed: the disk is full
    CHECK(applications == pending); // before: 30 statuses applied 80 times
    std::filesystem::remove(disk / "filler");
    CHECK(eventually([&] { return repo.outbox().outbox_state().value().statuses == 0; }, 30s));
    CHECK(std::stoll(s.psql("SELECT n FROM applied", "outbox_disk")) == pending);
}

TEST_CASE("the outbox full: refused with outbox_full, not queued") {
    auto& s = server();
    fresh_catalogue("outbox_full");
    TempDir dir;
    auto repo = open_layered(
        s.url("app", password, "outbox_full", "127.0.0.1",
              "connect_timeout=2&outbox_max=3&outbox=" + (dir.path() / "o.db").string()));
    s.kill9();
    RestartOnExit restart{s};
    Timestamp t = system_clock::now();
    std::vector<ModelStatus> two{status("gpt-5", t), status("gpt-4o", t)};
    REQUIRE(repo->write_statuses(two).value().queued == 2);
    auto e = expect_error(repo->write_statuses(two), Errc::outbox_full);
    CHECK(e.message.find("outbox_max=3") != std::string::npos);
    CHECK(repo.outbox().outbox_state().value().statuses == 2);
}

TEST_CASE("an outbox file that cannot be one is an error naming it, at open()") {
    auto& s = server();
    TempDir dir;
    auto base = s.url("app", password, "modelrepo");
    auto missing = modelrepo::open(base + "?outbox=" + (dir.path() / "no/such/dir/o.db").string());
    auto e = expect_error(missing, Errc::io_error);
    CHECK(e.message.find("no/such/dir/o.db") != std::string::npos);

    auto garbage = dir.write("corrupt.db", std::string(8192, '\x5a'));
    auto corrupt = modelrepo::open(base + "?outbox=" + garbage.string());
    auto c = expect_error(corrupt, Errc::io_error);
    CHECK(c.message.find("corrupt.db") != std::string::npos);

    auto not_outbox = dir.path() / "other.db";
    {
        auto first = modelrepo::open(base + "?outbox=" + not_outbox.string());
        REQUIRE(first);
    }
    CHECK(modelrepo::open(base + "?outbox=" + not_outbox.string())); // reopening is fine

    // Another program's SQLite file is refused, and left as it was (no tables added, its
    // journal mode not switched to WAL).
    auto foreign = dir.path() / "app.db";
    REQUIRE(std::system(("python3 -c \"import sqlite3; c = sqlite3.connect('" + foreign.string() +
                         "'); c.execute('CREATE TABLE users (id INTEGER)'); c.commit()\"")
                            .c_str()) == 0);
    auto size_before = std::filesystem::file_size(foreign);
    auto taken =
        expect_error(modelrepo::open(base + "?outbox=" + foreign.string()), Errc::io_error);
    CHECK(taken.message.find("not a modelrepo outbox") != std::string::npos);
    CHECK(taken.message.find("users") != std::string::npos);
    CHECK(std::filesystem::file_size(foreign) == size_before);
    CHECK_FALSE(std::filesystem::exists(foreign.string() + "-wal"));
}

TEST_CASE("two processes writing to one outbox while the database is down: nothing lost") {
    auto& s = server();
    fresh_catalogue("outbox_shared");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_shared", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string());
    std::string cli = require_env("MODELREPO_CLI");
    s.kill9();
    RestartOnExit restart{s};
    auto statuses = [&](const std::string& slug, int i) {
        Timestamp t = Timestamp(seconds(1'796'000'000) + seconds(i));
        std::vector<ModelStatus> one{status(slug, t)};
        return dir.write(slug + std::to_string(i) + ".json", statuses_json(one));
    };
    std::atomic<int> queued{0};
    auto writer = [&](const std::string& slug) {
        for (int i = 0; i < 10; ++i) {
            auto r = run_process({cli, "--source", url, "upsert", statuses(slug, i).string()},
                                 {{"MODELREPO_SOURCES", ""}});
            if (r.exit_code == 0 && r.out.find("queued 1 in the outbox") != std::string::npos)
                ++queued;
            else
                MESSAGE("upsert " << slug << " " << i << ": exit " << r.exit_code << ": " << r.out
                                  << r.err);
        }
    };
    std::thread a(writer, "gpt-5"), b(writer, "gpt-4o");
    a.join();
    b.join();
    CHECK(queued.load() == 20);
    auto down = run_process({cli, "--source", url, "outbox", "drain"}, {{"MODELREPO_SOURCES", ""}});
    CHECK(down.exit_code == 1);
    auto shown =
        run_process({cli, "--source", url, "--json", "outbox"}, {{"MODELREPO_SOURCES", ""}});
    REQUIRE(shown.exit_code == 0);
    auto doc = nlohmann::json::parse(shown.out);
    CHECK(doc["pending_statuses"] == 20);
    s.start();
    REQUIRE(s.available());
    // At a terminal, the drain shows its progress: a count of the pending, and a rate.
    auto drained =
        run_on_terminal({cli, "--source", url, "outbox", "drain"}, {{"MODELREPO_SOURCES", ""}});
    CAPTURE(drained.out);
    CHECK(drained.exit_code == 0);
    CHECK(drained.out.find("outbox drain: 20/20 statuses applied (") != std::string::npos);
    CHECK(drained.out.find("/s)") != std::string::npos);
    CHECK(drained.out.find(password) == std::string::npos);
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE region = 'outbox-test' AND "
                 "checked_at = to_timestamp(1796000009)",
                 "outbox_shared") == "2");
}

TEST_CASE("a writer killed -9 at random moments, 20 times, against a database that is down: "
          "every acknowledged status is applied once it returns, none moved back in time") {
    auto& s = server();
    fresh_catalogue("outbox_crash");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_crash", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string());
    std::string writer = require_env("OUTBOX_WRITER");
    std::string cli = require_env("MODELREPO_CLI");
    s.kill9();
    RestartOnExit restart{s};
    std::map<std::string, long long> acked; // the newest acknowledged checked_at per model
    std::mt19937 random(11);
    long long next_us = 1'796'000'000'000'000;
    int acks = 0;
    for (int round = 0; round < 20; ++round) {
        // Each writer's timestamps lie after all of the one before: a write of a killed
        // writer that was durable but not yet acknowledged is never newer than the next
        // writer's.
        next_us = 1'796'000'000'000'000 + (round + 1) * 1'000'000'000LL;
        ChildProcess child({writer, url, std::to_string(next_us)});
        auto note = [&](const std::string& line) {
            char slug[128];
            long long us = 0;
            if (std::sscanf(line.c_str(), "ack %127s %lld", slug, &us) == 2) {
                acked[slug] = std::max(acked[slug], us);
                next_us = std::max(next_us, us + 1);
                ++acks;
            }
        };
        auto until = steady_clock::now() + milliseconds(50 + random() % 250);
        while (steady_clock::now() < until)
            if (auto line = child.read_line(milliseconds(5)))
                note(*line);
        child.signal(SIGKILL);
        child.wait(5s);
        // Lines printed just before the kill are acknowledged writes too.
        while (auto line = child.read_line(milliseconds(1)))
            note(*line);
    }
    MESSAGE(acks << " writes acknowledged over 20 killed writers");
    CHECK(acks > 20);
    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    auto drained =
        run_process({cli, "--source", url, "outbox", "drain"}, {{"MODELREPO_SOURCES", ""}});
    CAPTURE(drained.out);
    CAPTURE(drained.err);
    REQUIRE(drained.exit_code == 0);
    auto in_db = stored("outbox_crash");
    for (const auto& [slug, us] : acked) {
        CAPTURE(slug);
        REQUIRE(in_db.count(slug));
        // The newest acknowledged, or a newer write that was durable when the kill came
        // before its acknowledgement: never an older one, and one a writer made.
        CHECK(in_db[slug] >= us);
        CHECK(in_db[slug] < 1'796'000'000'000'000 + 21 * 1'000'000'000LL);
    }
}

TEST_CASE(
    "modelrepo upsert says applied or queued; priority_sync keeps writing through an outage") {
    auto& s = server();
    fresh_catalogue("outbox_cli");
    TempDir dir;
    const std::string url = s.url("app", password, "outbox_cli", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + (dir.path() / "o.db").string());
    std::string cli = require_env("MODELREPO_CLI");
    Timestamp t = floor<seconds>(system_clock::now());
    std::vector<ModelStatus> one{status("gpt-5", t)};
    auto file = dir.write("s.json", statuses_json(one));
    auto up =
        run_process({cli, "--source", url, "upsert", file.string()}, {{"MODELREPO_SOURCES", ""}});
    CHECK(up.exit_code == 0);
    CHECK(up.out == "applied 1\n");
    s.kill9();
    RestartOnExit restart{s};
    one[0].checked_at = t + 1s;
    file = dir.write("s2.json", statuses_json(one));
    auto down = run_process({cli, "--source", url, "--source", "builtin:", "upsert", file.string()},
                            {{"MODELREPO_SOURCES", ""}});
    CAPTURE(down.err);
    CHECK(down.exit_code == 0);
    CHECK(down.out.find("queued 1 in the outbox (" + (dir.path() / "o.db").string() + ")") !=
          std::string::npos);
    auto bad = run_process({cli, "--source", url, "upsert", "-"}, {{"MODELREPO_SOURCES", ""}});
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("bad_data") != std::string::npos); // stdin was empty

    if (const char* sync = std::getenv("EXAMPLE_PRIORITY_SYNC")) {
        auto r = run_process({sync, "-s", url, "-s", "builtin:", "-n", "2", "-i", "0.05"},
                             {{"MODELREPO_SOURCES", ""}});
        CAPTURE(r.out);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("queued 5 statuses in the outbox") != std::string::npos);
    }
    CHECK(down.err.find(password) == std::string::npos);
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(5);
}

TEST_CASE("a status dated past the allowed skew is refused at every writer (the backend, the "
          "outbox, its replay, upsert, import), and a real status after it lands") {
    auto& s = server();
    fresh_catalogue("outbox_future");
    TempDir dir;
    const auto outbox_file = dir.path() / "future.db";
    const Timestamp far = sys_days{2100y / January / 1};
    const Timestamp now = floor<microseconds>(system_clock::now());
    std::vector<ModelStatus> future{status("gpt-5", far)};
    auto named_skew = [](const Error& e) {
        CAPTURE(e.message);
        CHECK(e.message.find("ahead of this clock") != std::string::npos);
        CHECK(e.message.find("allowed skew of 5 min") != std::string::npos);
    };

    // The backend.
    auto pg = open_repo(s.url("app", password, "outbox_future"));
    named_skew(expect_error(pg->write_statuses(future), Errc::invalid_argument));
    // Within the skew (a minute ahead: clocks drift) it is taken.
    std::vector<ModelStatus> drifted{status("gpt-4o", now + 1min)};
    CHECK(pg->write_statuses(drifted).value().applied == 1);
    // Its own skew, from the URL.
    auto strict =
        open_repo(s.url("app", password, "outbox_future", "127.0.0.1", "max_clock_skew=10s"));
    auto refused = expect_error(strict->write_statuses(drifted), Errc::invalid_argument);
    CHECK(refused.message.find("allowed skew of 10 s") != std::string::npos);

    // The outbox, while the database is down: refused, not queued.
    const std::string url = s.url("app", password, "outbox_future", "127.0.0.1",
                                  "connect_timeout=2&outbox=" + outbox_file.string());
    {
        auto layered = open_layered(url);
        s.kill9();
        RestartOnExit restart{s};
        named_skew(expect_error(layered->write_statuses(future), Errc::invalid_argument));
        CHECK(layered.outbox().outbox_state().value().statuses == 0);
        s.start();
        REQUIRE(s.available());
    }
    // The replay: a batch already in the file (written by an older modelrepo, or edited)
    // that the database now refuses goes to the dead letters with why, never applied.
    {
        auto store = detail::OutboxStore::open(outbox_file, 100);
        REQUIRE(store);
        REQUIRE(store.value()->enqueue(future));
        std::vector<ModelStatus> real{status("claude-sonnet-4-5", now)};
        REQUIRE(store.value()->enqueue(real));
    }
    {
        auto layered = open_layered(url);
        // The outbox's own thread drains it at once (or this call does).
        REQUIRE(layered.outbox().drain_outbox());
        REQUIRE(eventually(
            [&] { return layered.outbox().outbox_state().value().dead_letters == 1; }, 10s));
        auto state = layered.outbox().outbox_state().value();
        REQUIRE(state.recent_dead_letters.size() == 1);
        CHECK(state.recent_dead_letters[0].error.find("ahead of this clock") != std::string::npos);
        CHECK(state.statuses == 0);
        auto* health = layered->capability<HealthControl>();
        REQUIRE(health);
        CHECK(health->source_health().dead_letters == 1);
    }
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE model_slug = 'claude-sonnet-4-5' AND "
                 "region = 'outbox-test'",
                 "outbox_future") == "1");

    // upsert, the CLI.
    std::string cli = require_env("MODELREPO_CLI");
    auto file = dir.write("future.json", statuses_json(future));
    auto upsert = run_process(
        {cli, "--source", s.url("app", password, "outbox_future"), "upsert", file.string()},
        {{"MODELREPO_SOURCES", ""}});
    CHECK(upsert.exit_code == 1);
    CHECK(upsert.err.find("invalid_argument") != std::string::npos);
    CHECK(upsert.err.find("ahead of this clock") != std::string::npos);

    // import: a snapshot with such a status is refused whole.
    Snapshot snapshot = builtin_snapshot();
    snapshot.statuses[0].checked_at = far;
    named_skew(expect_error(pg->import_snapshot(snapshot), Errc::invalid_argument));

    // Nothing of the future was stored, and a real status lands.
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE checked_at > now() + interval '5 "
                 "minutes'",
                 "outbox_future") == "0");
    std::vector<ModelStatus> real{status("gpt-5", now)};
    // (The first call after the restart may meet the pooled session the restart cut.)
    CHECK(eventually(
        [&] {
            auto written = pg->write_statuses(real);
            return written && written.value().applied == 1;
        },
        10s));
    CHECK(s.psql("SELECT health FROM model_status WHERE model_slug = 'gpt-5'", "outbox_future") ==
          "outage");
}

TEST_CASE("an outbox file belongs to one source: another database's repository is refused it, "
          "and nothing lands in the wrong database; two of the same database share it") {
    auto& s = server();
    fresh_catalogue("outbox_owner_a");
    fresh_catalogue("outbox_owner_b");
    TempDir dir;
    const std::string file = (dir.path() / "shared.db").string();
    const std::string a_url =
        s.url("app", password, "outbox_owner_a", "127.0.0.1", "connect_timeout=2&outbox=" + file);
    const std::string b_url =
        s.url("app", password, "outbox_owner_b", "127.0.0.1", "connect_timeout=2&outbox=" + file);
    auto a = open(a_url);
    REQUIRE_MESSAGE(a, a.error().to_string());
    auto b = open(b_url);
    REQUIRE_FALSE(b);
    CHECK(b.error().is(Errc::invalid_argument));
    CHECK(b.error().message.find("outbox_owner_a") != std::string::npos);
    CHECK(b.error().message.find("outbox_owner_b") != std::string::npos);
    CHECK(b.error().message.find(password) == std::string::npos);
    // A second repository of the same database shares it, as before.
    auto a2 = open(a_url);
    REQUIRE_MESSAGE(a2, a2.error().to_string());
    // A write queued for A (its server down) lands in A, never in B.
    s.kill9();
    RestartOnExit restart{s};
    std::vector<ModelStatus> queued{status("gpt-5", floor<microseconds>(system_clock::now()))};
    auto receipt = a.value()->write_statuses(queued);
    REQUIRE(receipt);
    CHECK(receipt.value().queued == 1);
    s.start();
    REQUIRE(s.available());
    CHECK(eventually(
        [&] {
            auto v = s.try_psql("SELECT count(*) FROM model_status WHERE region = 'outbox-test'",
                                "outbox_owner_a");
            return v && *v == "1";
        },
        15s));
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE region = 'outbox-test'",
                 "outbox_owner_b") == "0");
}
