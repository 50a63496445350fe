// SPDX-License-Identifier: MIT
// LiveCopy over a scripted reader: how the last-known copy follows its source's feed, and
// that a failed reload is tried again within about a second whether or not it holds data.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <modelrepo/modelrepo.hpp>

#include "durable/copy/live_copy.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

/// Answers the bundled catalogue, or fails the next `fail_next` loads as an outage would.
class ScriptedReader final : public detail::CatalogReader {
public:
    std::atomic<int> fail_next{0};
    std::atomic<int> loads{0};
    std::atomic<std::int64_t> version{1};

    std::string copy_key() const override { return "scripted"; }
    Result<std::pair<Snapshot, std::int64_t>> load() override {
        ++loads;
        if (fail_next.load() > 0) {
            --fail_next;
            return make_error(Errc::unreachable, "scripted: the source just restarted");
        }
        return std::pair{builtin_snapshot(), version.load()};
    }
    /// Whether a re-read finds the models (else they are absent).
    std::atomic<bool> answer_models{false};
    /// While set, a re-read waits until it is cleared (the copy's thread stays busy).
    std::atomic<bool> hold_reads{false};
    std::atomic<int> reads{0};
    Result<std::vector<Model>> models(std::span<const std::string> slugs) override {
        ++reads;
        while (hold_reads.load())
            std::this_thread::sleep_for(1ms);
        std::vector<Model> out;
        if (answer_models.load())
            for (const auto& m : builtin_snapshot().models)
                if (std::find(slugs.begin(), slugs.end(), m.slug) != slugs.end())
                    out.push_back(m);
        return out;
    }
    Result<std::vector<Provider>> providers(std::span<const std::string>) override {
        return std::vector<Provider>{};
    }
};

CatalogChange resync(std::int64_t version) {
    return {CatalogChange::Kind::resync, "", version, Clock::now()};
}

} // namespace

TEST_CASE("a reload that fails after a resync is tried again within about a second, "
          "though the copy holds data") {
    ScriptedReader reader;
    ChangeHub hub;
    detail::LiveCopy copy({}, reader, hub);
    copy.start();
    copy.on_feed(true);
    copy.on_changes({resync(1)});
    REQUIRE(test::eventually([&] { return copy.in_sync(); }, 5s));
    REQUIRE(copy.has_data());

    // The source restarts: the feed goes and comes back, and its resync's reload fails once.
    copy.on_feed(false);
    CHECK_FALSE(copy.in_sync());
    reader.fail_next = 1;
    reader.version = 2;
    int loads_before = reader.loads.load();
    copy.on_feed(true);
    copy.on_changes({resync(2)});
    // Back in sync by the retry, not by a later change (before: a minute later).
    auto started = steady_clock::now();
    REQUIRE(test::eventually([&] { return copy.in_sync(); }, 5s));
    CHECK(steady_clock::now() - started < 4s); // generous: the retry is due after 100 ms
    CHECK(reader.loads.load() >= loads_before + 2);
    CHECK(copy.stats().reload_failures >= 1);
    CHECK(copy.stats().version == 2);
}

TEST_CASE("without a connected feed the copy does not reload, and is not in sync") {
    ScriptedReader reader;
    ChangeHub hub;
    detail::LiveCopy copy({}, reader, hub);
    copy.start();
    std::this_thread::sleep_for(300ms);
    CHECK(reader.loads.load() == 0);
    CHECK_FALSE(copy.has_data());
    CHECK_FALSE(copy.in_sync());
    copy.on_feed(true);
    copy.on_changes({resync(1)});
    CHECK(test::eventually([&] { return copy.in_sync(); }, 5s));
}

namespace {

/// A copy kept in `dir` (files "scripted.json" and "scripted.meta.json").
detail::LiveCopy::Options in_dir(const std::filesystem::path& dir) {
    detail::LiveCopy::Options options;
    options.dir = dir;
    options.key = "scripted";
    options.save_interval = 10ms;
    return options;
}

} // namespace

TEST_CASE("the copy's files: a FIFO, a link, a corrupt file or an as_of in the future is "
          "refused at once and said, never waited on or trusted") {
    test::TempDir dir;
    ScriptedReader reader;
    ChangeHub hub;
    auto snapshot = dir.path() / "scripted.json";
    auto meta = dir.path() / "scripted.meta.json";
    auto starts_without_data = [&](std::string_view why) {
        CAPTURE(why);
        auto started = steady_clock::now();
        detail::LiveCopy copy(in_dir(dir.path()), reader, hub);
        copy.start(); // a FIFO opened for reading would block here until a writer came
        CHECK(steady_clock::now() - started < 5s);
        CHECK_FALSE(copy.has_data());
        CHECK(copy.stats().load_failures == 1);
        CHECK(copy.stats().disk_error.find(why) != std::string::npos);
    };

    REQUIRE(::mkfifo(snapshot.c_str(), 0600) == 0);
    starts_without_data("a FIFO");
    std::filesystem::remove(snapshot);

    auto elsewhere = dir.write("elsewhere.json", write_snapshot(builtin_snapshot()));
    std::filesystem::create_symlink(elsewhere, snapshot);
    dir.write("scripted.meta.json", R"({"format":"modelrepo.live-copy/1","version":3,)"
                                    R"("as_of":"2026-12-01T00:00:00Z"})");
    starts_without_data("symbolic link");
    std::filesystem::remove(snapshot);

    dir.write("scripted.json", "{\"format\": \"modelrepo.snapshot/1\", \"models\": [");
    starts_without_data("not a valid snapshot");

    dir.write("scripted.json", write_snapshot(builtin_snapshot()));
    dir.write("scripted.meta.json", R"({"format":"modelrepo.live-copy/1","version":3,)"
                                    R"("as_of":"2099-01-01T00:00:00Z"})");
    starts_without_data("in the future");

    // A good pair of files loads.
    dir.write("scripted.meta.json", R"({"format":"modelrepo.live-copy/1","version":3,)"
                                    R"("as_of":"2026-12-01T00:00:00Z"})");
    detail::LiveCopy copy(in_dir(dir.path()), reader, hub);
    copy.start();
    CHECK(copy.has_data());
    CHECK(copy.stats().loaded_from_disk == 1);
    CHECK(copy.stats().version == 3);
    CHECK(std::filesystem::is_regular_file(meta));
}

TEST_CASE("a copy that cannot be written says so in its stats") {
    test::TempDir dir;
    auto not_a_dir = dir.write("cache", "a file where the directory should be");
    ScriptedReader reader;
    ChangeHub hub;
    detail::LiveCopy copy(in_dir(not_a_dir), reader, hub);
    copy.start();
    copy.on_feed(true);
    copy.on_changes({resync(1)});
    REQUIRE(test::eventually([&] { return copy.in_sync(); }, 5s));
    CHECK(test::eventually([&] { return copy.stats().save_failures >= 1; }, 5s));
    CHECK(copy.stats().disk_error.find("cannot be written") != std::string::npos);
}

TEST_CASE("status rows the feed decoded: applied as written, in order, or declined") {
    ScriptedReader reader;
    ChangeHub hub;
    std::mutex seen_mutex;
    std::vector<CatalogChange> seen;
    auto sub = hub.subscribe([&](const CatalogChange& c) {
        std::lock_guard lock(seen_mutex);
        seen.push_back(c);
    });
    detail::LiveCopy copy({}, reader, hub);
    copy.start();
    const std::string slug = builtin_snapshot().models.front().slug;
    auto change = [&](std::int64_t version) {
        return CatalogChange{CatalogChange::Kind::status, slug, version, Clock::now()};
    };
    auto status = [&](double availability, Timestamp checked_at) {
        ModelStatus s;
        s.model_slug = slug;
        s.health = Health::degraded;
        s.availability = availability;
        s.error_rate = 0.25;
        s.region = "eu";
        s.checked_at = checked_at;
        return s;
    };
    auto seen_count = [&] {
        std::lock_guard lock(seen_mutex);
        return seen.size();
    };

    // Not in sync (no feed, no load): declined, and nothing is moved from.
    std::vector<CatalogChange> changes{change(5)};
    std::vector<ModelStatus> rows{status(0.5, Clock::now())};
    CHECK_FALSE(copy.on_rows(changes, rows));
    CHECK(changes.front().slug == slug);
    CHECK(rows.front().availability == 0.5);

    copy.on_feed(true);
    copy.on_changes({resync(1)});
    REQUIRE(test::eventually([&] { return copy.in_sync(); }, 5s));
    REQUIRE(test::eventually([&] { return seen_count() == 1; }, 5s)); // the resync

    // A status older than the one held (a correction back in time, or a row overtaken by
    // this process's own write): declined, the re-read gives the database's current one.
    const Timestamp past = Clock::now() - hours(24 * 365 * 10);
    changes = {change(9)};
    rows = {status(0.5, past)};
    CHECK_FALSE(copy.on_rows(changes, rows));

    // In sync: taken, applied as written, the version advanced, the watcher told once the
    // copy holds it.
    const Timestamp later = Clock::now() + hours(1);
    changes = {change(10)};
    rows = {status(0.125, later)};
    REQUIRE(copy.on_rows(changes, rows));
    REQUIRE(test::eventually([&] { return seen_count() == 2; }, 5s));
    {
        const Model* m = copy.catalog().find(slug);
        REQUIRE(m);
        REQUIRE(m->status);
        CHECK(m->status->availability == 0.125);
        CHECK(m->status->health == Health::degraded);
        CHECK(m->status->region == "eu");
        CHECK(m->status->checked_at == later);
        CHECK(copy.catalog().version == 10);
    }
    CHECK(copy.stats().rows_applied == 1);
    CHECK(reader.loads.load() == 1); // no re-read, no reload

    // A model the copy lacks: declined (the feed re-reads then).
    changes = {CatalogChange{CatalogChange::Kind::status, "no-such-model", 11, Clock::now()}};
    rows = {status(0.5, Clock::now())};
    rows.front().model_slug = "no-such-model";
    CHECK_FALSE(copy.on_rows(changes, rows));

    // Behind a queued change, rows wait their turn: the watcher hears them in order.
    reader.answer_models = true;
    copy.on_changes({change(20)}); // a re-read
    changes = {change(21)};
    rows = {status(0.75, later + hours(1))};
    CHECK(copy.on_rows(changes, rows));
    REQUIRE(test::eventually([&] { return seen_count() == 4; }, 5s));
    std::lock_guard lock(seen_mutex);
    CHECK(seen[2].version == 20);
    CHECK(seen[3].version == 21);
}

TEST_CASE("a batch of re-reads and decoded rows: a row before its model's re-read gives way to "
          "it, one after it goes on top") {
    ScriptedReader reader;
    reader.answer_models = true;
    ChangeHub hub;
    test::ChangeCollector seen;
    auto sub = hub.subscribe(std::ref(seen));
    detail::LiveCopy copy({}, reader, hub);
    copy.start();
    copy.on_feed(true);
    copy.on_changes({resync(1)});
    REQUIRE(test::eventually([&] { return copy.in_sync(); }, 5s));
    // A re-read answers the bundled model, which carries no status of its own.
    const std::string slug = builtin_snapshot().models.front().slug;
    auto change = [&](std::int64_t version) {
        return CatalogChange{CatalogChange::Kind::status, slug, version, Clock::now()};
    };
    auto row = [&](double availability) {
        ModelStatus s;
        s.model_slug = slug;
        s.health = Health::operational;
        s.availability = availability;
        s.checked_at = Clock::now() + hours(1);
        return s;
    };
    // Keeps the copy's thread in a re-read while the next changes queue up behind it,
    // then lets it take them as one batch.
    auto seen_count = [&] {
        std::lock_guard lock(seen.mutex);
        return seen.changes.size();
    };
    auto batch_of = [&](std::int64_t held_version, const std::function<void()>& queue) {
        const auto seen_before = seen_count();
        const int reads_before = reader.reads.load();
        reader.hold_reads = true;
        copy.on_changes({change(held_version)});
        REQUIRE(test::eventually([&] { return reader.reads.load() > reads_before; }, 5s));
        queue();
        reader.hold_reads = false;
        REQUIRE(seen.wait_count(seen_before + 3));
    };
    auto availability = [&] {
        const Model* m = copy.catalog().find(slug);
        return m && m->status ? m->status->availability : -1.0;
    };

    // A row, then a re-read of its model: the read is as new, the row gives way.
    batch_of(150, [&] {
        std::vector<CatalogChange> changes{change(200)};
        std::vector<ModelStatus> rows{row(0.125)};
        REQUIRE(copy.on_rows(changes, rows));
        copy.on_changes({change(201)});
    });
    CHECK(availability() == -1.0); // the read's: no status

    // A re-read, then a row: the row goes on top (the read may not have seen it).
    batch_of(250, [&] {
        copy.on_changes({change(300)});
        std::vector<CatalogChange> changes{change(301)};
        std::vector<ModelStatus> rows{row(0.375)};
        REQUIRE(copy.on_rows(changes, rows));
    });
    CHECK(availability() == 0.375);
    std::lock_guard lock(seen.mutex);
    for (std::size_t i = 1; i < seen.changes.size(); ++i)
        CHECK(seen.changes[i].version > seen.changes[i - 1].version);
}
