// SPDX-License-Identifier: MIT
#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/memory_repository.hpp>
#include <modelrepo/open.hpp>

using namespace modelrepo;
using namespace std::chrono;

namespace {

Snapshot small_snapshot() {
    Snapshot s;
    s.generated_at = sys_days{2026y / November / 1};
    s.providers = {{"openai", "OpenAI", "https://openai.com"},
                   {"anthropic", "Anthropic", "https://anthropic.com"}};
    s.models = {{"gpt-4o", "GPT-4o", "openai", "", 128000, true, {}, {}},
                {"claude-sonnet-4-5", "Claude Sonnet 4.5", "anthropic", "", 200000, true, {}, {}},
                {"gpt-4-turbo", "GPT-4 Turbo", "openai", "", std::nullopt, false, {}, {}}};
    s.statuses = {{"gpt-4o", Health::degraded, 0.98, 1400.0, 0.02, "us-east", s.generated_at - 1h},
                  {"claude-sonnet-4-5", Health::operational, 0.999, std::nullopt, 0.001, "us-west",
                   s.generated_at - 1h}};
    return s;
}

std::shared_ptr<MemoryRepository> small_repo() {
    return MemoryRepository::create(small_snapshot(), "test").value();
}

ModelStatus status(std::string slug, Health h, Timestamp at) {
    return {std::move(slug), h, 0.5, 100.0, 0.5, "eu", at};
}

} // namespace

TEST_CASE("counts and stats come from the snapshot") {
    auto repo = small_repo();
    CHECK(repo->name() == "test");
    CHECK(repo->count_models().value() == 3);
    CHECK(repo->count_providers().value() == 2);
    SystemStats stats = repo->system_stats().value();
    CHECK(stats.models == 3);
    CHECK(stats.active_models == 2);
    CHECK(stats.providers == 2);
    CHECK(stats.health == HealthCounts{1, 1, 0, 1}); // gpt-4-turbo has no status: unknown
    CHECK(stats.source == "test");
    CHECK(stats.as_of == small_snapshot().generated_at);
    CHECK(repo->check_health());
}

TEST_CASE("find_model joins provider and status; unknown slug is nullopt") {
    auto repo = small_repo();
    auto found = repo->find_model("gpt-4o").value();
    REQUIRE(found);
    CHECK(found->name == "GPT-4o");
    REQUIRE(found->provider);
    CHECK(found->provider->name == "OpenAI");
    REQUIRE(found->status);
    CHECK(found->status->health == Health::degraded);

    auto turbo = repo->find_model("gpt-4-turbo").value();
    REQUIRE(turbo);
    CHECK_FALSE(turbo->status.has_value());
    CHECK_FALSE(turbo->active);

    CHECK_FALSE(repo->find_model("gpt-5").value().has_value());
    CHECK_FALSE(repo->find_model("").value().has_value());
}

TEST_CASE("find_models keeps the order asked for and skips unknown slugs") {
    auto repo = small_repo();
    std::vector<std::string> slugs{"claude-sonnet-4-5", "nope", "gpt-4o", "claude-sonnet-4-5"};
    auto models = repo->find_models(slugs).value();
    REQUIRE(models.size() == 3);
    CHECK(models[0].slug == "claude-sonnet-4-5");
    CHECK(models[1].slug == "gpt-4o");
    CHECK(models[2].slug == "claude-sonnet-4-5");
    CHECK(models[0].provider->slug == "anthropic");
    CHECK(repo->find_models({}).value().empty());
}

TEST_CASE("list_statuses and list_models are ordered by slug; export returns the snapshot") {
    auto repo = small_repo();
    auto statuses = repo->list_statuses().value();
    REQUIRE(statuses.size() == 2);
    CHECK(statuses[0].model_slug == "claude-sonnet-4-5");
    CHECK(statuses[1].model_slug == "gpt-4o");
    auto models = repo->list_models().value();
    REQUIRE(models.size() == 3);
    CHECK(models[0].slug == "claude-sonnet-4-5");
    CHECK(models[2].slug == "gpt-4o");
    // Exported in slug order, as every backend exports.
    CHECK(repo->export_snapshot().value() == sorted_by_slug(small_snapshot()));
}

TEST_CASE("share_models: list_models without a copy; the version held stays as it was") {
    auto repo = small_repo();
    auto listed = repo->list_models();
    REQUIRE(listed);
    auto shared = repo->share_models();
    REQUIRE(shared);
    REQUIRE(shared.value().models.size() == listed.value().size());
    for (std::size_t i = 0; i < listed.value().size(); ++i)
        CHECK(*shared.value().models[i] == listed.value()[i]);
    // Nothing copied: a second share points at the same models.
    CHECK(repo->share_models().value().models == shared.value().models);

    auto now = system_clock::now();
    REQUIRE(repo->upsert_statuses(std::vector{status("gpt-4o", Health::outage, now)}));
    const Model& held = *shared.value().models[2];
    REQUIRE(held.status);
    CHECK(held.status->health == Health::degraded); // the version held, unchanged
    auto after = repo->share_models().value();
    CHECK(after.models[2]->status->health == Health::outage);
    CHECK(after.models[0] == shared.value().models[0]); // an unchanged model is shared

    // Through a chain, with provenance.
    auto chain = FallbackRepository::create({repo}).value();
    Provenance from;
    auto through = chain->share_models(from);
    REQUIRE(through);
    CHECK(from.source == "test");
    CHECK(through.value().models.size() == 3);
    CHECK(through.value().models == after.models);
}

TEST_CASE("create rejects an invalid snapshot") {
    Snapshot s = small_snapshot();
    s.models[1].provider_slug = "nobody";
    auto repo = MemoryRepository::create(s);
    REQUIRE_FALSE(repo);
    CHECK(repo.error().is(Errc::bad_data));
    CHECK(repo.error().message.starts_with("$.models[1].provider:"));
}

TEST_CASE("upsert_statuses inserts, replaces and never moves back in time") {
    auto repo = small_repo();
    Timestamp now = sys_days{2026y / November / 2};
    std::vector<ModelStatus> batch{status("gpt-4-turbo", Health::outage, now),
                                   status("gpt-4o", Health::operational, now)};
    CHECK(repo->upsert_statuses(batch).value() == 2);
    CHECK(repo->find_model("gpt-4-turbo").value()->status->health == Health::outage);
    CHECK(repo->find_model("gpt-4o").value()->status->health == Health::operational);
    CHECK(repo->system_stats().value().health == HealthCounts{2, 0, 1, 0});

    // Older than stored: ignored, so a replayed batch is harmless.
    std::vector<ModelStatus> stale{status("gpt-4o", Health::outage, now - 1min)};
    CHECK(repo->upsert_statuses(stale).value() == 0);
    CHECK(repo->find_model("gpt-4o").value()->status->health == Health::operational);
    CHECK(repo->upsert_statuses(batch).value() == 2); // same time: applied again, same values
    CHECK(repo->list_statuses().value().size() == 3);
}

TEST_CASE("upsert_statuses is all or nothing") {
    auto repo = small_repo();
    Timestamp now = sys_days{2026y / November / 2};
    auto before = repo->export_snapshot().value();

    std::vector<ModelStatus> unknown{status("gpt-4o", Health::outage, now),
                                     status("gpt-99", Health::outage, now)};
    auto r = repo->upsert_statuses(unknown);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::invalid_argument));
    CHECK(r.error().message.find("gpt-99") != std::string::npos);
    CHECK(r.error().message.find("statuses[1]") != std::string::npos);
    CHECK(repo->export_snapshot().value() == before);

    std::vector<ModelStatus> out_of_range{status("gpt-4o", Health::outage, now)};
    out_of_range[0].availability = 1.5;
    r = repo->upsert_statuses(out_of_range);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::invalid_argument));
    CHECK(repo->export_snapshot().value() == before);
}

TEST_CASE("a status dated past the allowed skew is refused (5 min, or max_clock_skew); a "
          "snapshot holding one is still read; the receipt names what was ignored") {
    auto repo = small_repo();
    const auto now = system_clock::now();
    std::vector<ModelStatus> future{status("gpt-4o", Health::outage, sys_days{2206y / 1 / 1})};
    auto r = repo->write_statuses(future);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::invalid_argument));
    CHECK(r.error().message.find("checked_at 2206-01-01T00:00:00Z is") != std::string::npos);
    CHECK(r.error().message.find("allowed skew of 5 min") != std::string::npos);
    // A few seconds of drift is taken; a smaller skew refuses it.
    std::vector<ModelStatus> drifted{status("gpt-4o", Health::outage, now + 30s)};
    CHECK(repo->write_statuses(drifted).value().applied == 1);
    repo->set_max_clock_skew(10s);
    std::vector<ModelStatus> drifted_more{status("gpt-4o", Health::degraded, now + 60s)};
    CHECK(repo->write_statuses(drifted_more).error().message.find("allowed skew of 10 s") !=
          std::string::npos);
    // Older than stored: ignored, and said.
    std::vector<ModelStatus> older{status("gpt-4o", Health::degraded, now - 1h),
                                   status("claude-sonnet-4-5", Health::outage, now)};
    auto receipt = repo->write_statuses(older).value();
    CHECK(receipt.applied == 1);
    CHECK(receipt.ignored == 1);
    CHECK(receipt.ignored_models == std::vector<std::string>{"gpt-4o"});
    // Reading a snapshot is no write: a backup that holds a future date is read as it is.
    Snapshot backup = small_snapshot();
    backup.statuses[0].checked_at = sys_days{2100y / 1 / 1};
    CHECK(MemoryRepository::create(backup, "backup"));
}

TEST_CASE("builtin: and file: take max_clock_skew and refuse any other parameter by name") {
    auto strict = open("builtin:?max_clock_skew=1s");
    REQUIRE(strict);
    std::vector<ModelStatus> drifted{status("gpt-4o", Health::outage, system_clock::now() + 30s)};
    CHECK(strict.value()->write_statuses(drifted).error().is(Errc::invalid_argument));
    for (const char* uri : {"builtin:?anything=at_all", "builtin:?outbox=/tmp/o.db",
                            "builtin:?cache=live", "builtin:?max_clock_skew=soon"}) {
        CAPTURE(uri);
        auto refused = open(uri);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().is(Errc::invalid_argument));
    }
    auto named = open("builtin:?anything=at_all");
    CHECK(named.error().message.find("'anything'") != std::string::npos);
}

TEST_CASE("replace swaps the catalogue; an invalid one is refused") {
    auto repo = small_repo();
    REQUIRE(repo->replace(builtin_snapshot()));
    CHECK(repo->count_models().value() == 32);
    Snapshot broken = builtin_snapshot();
    broken.statuses.push_back(broken.statuses.front());
    auto r = repo->replace(broken);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::bad_data));
    CHECK(repo->count_models().value() == 32);
}

TEST_CASE("builtin repository") {
    auto repo = MemoryRepository::builtin();
    CHECK(repo->name() == "builtin");
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->system_stats().value().source == "builtin");
}

TEST_CASE("readers see one consistent catalogue while a writer upserts") {
    auto repo = small_repo();
    constexpr int writes = 2000;
    std::atomic<bool> done{false};
    std::atomic<int> inconsistent{0};
    std::atomic<long> reads{0};
    Timestamp start = sys_days{2026y / December / 1};
    std::vector<ModelStatus> seed{status("gpt-4o", Health::degraded, start - 1s),
                                  status("claude-sonnet-4-5", Health::degraded, start - 1s)};
    REQUIRE(repo->upsert_statuses(seed).value() == 2);

    // The writer sets both statuses to the same health in one batch; a reader must
    // never see the two disagree, and stats must always add up.
    std::thread writer([&] {
        while (reads.load() == 0) // overlap with the readers, however they are scheduled
            std::this_thread::yield();
        Timestamp t = start;
        for (int i = 0; i < writes; ++i) {
            Health h = i % 2 ? Health::outage : Health::operational;
            std::vector<ModelStatus> batch{status("gpt-4o", h, t + seconds(i)),
                                           status("claude-sonnet-4-5", h, t + seconds(i))};
            if (repo->upsert_statuses(batch).value() != 2)
                inconsistent.fetch_add(1);
        }
        done = true;
    });
    std::vector<std::thread> readers;
    for (int r = 0; r < 4; ++r)
        readers.emplace_back([&] {
            std::vector<std::string> slugs{"gpt-4o", "claude-sonnet-4-5"};
            while (!done) {
                auto models = repo->find_models(slugs).value();
                if (models.size() != 2 || models[0].status->health != models[1].status->health)
                    inconsistent.fetch_add(1);
                auto stats = repo->system_stats().value();
                if (stats.health.operational + stats.health.degraded + stats.health.outage +
                        stats.health.unknown !=
                    3)
                    inconsistent.fetch_add(1);
                reads.fetch_add(1);
            }
        });
    writer.join();
    for (auto& t : readers)
        t.join();
    CHECK(inconsistent.load() == 0);
    CHECK(reads.load() > 0);
    auto last = repo->find_model("gpt-4o").value();
    CHECK(last->status->health == Health::outage); // the last write (odd index) wins
}
