// SPDX-License-Identifier: MIT
// The conformance suite: what every backend must do, whatever it is, run over each of
// them (backends.hpp). The reads answer the bundled catalogue in the documented order;
// writes are applied or refused with read_only; watch reports changes or answers
// not_supported; the copy and the outbox behave as the durable layer says where a backend
// takes them; errors are typed.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;

// Every backend of this build: adding one here runs the whole suite on it.
#if MODELREPO_HAS_POSTGRES && MODELREPO_HAS_GITHUB
#define MODELREPO_BACKENDS                                                                         \
    MemoryBackend, FileBackend, HttpBackend, PostgresBackend, PostgresCopyBackend,                 \
        PostgresOutboxBackend, PostgresLogicalBackend, PostgresLogicalCopyBackend
#elif MODELREPO_HAS_POSTGRES
#define MODELREPO_BACKENDS                                                                         \
    MemoryBackend, FileBackend, PostgresBackend, PostgresCopyBackend, PostgresOutboxBackend,       \
        PostgresLogicalBackend, PostgresLogicalCopyBackend
#elif MODELREPO_HAS_GITHUB
#define MODELREPO_BACKENDS MemoryBackend, FileBackend, HttpBackend
#else
#define MODELREPO_BACKENDS MemoryBackend, FileBackend
#endif

namespace {

const Snapshot& bundled() {
    static const Snapshot s = builtin_snapshot();
    return s;
}

/// A status newer than any the bundle holds, for `slug`.
ModelStatus fresh_status(const std::string& slug, Health health, double availability) {
    return {slug, health, availability, 42.0, 0.125, "conformance", Clock::now()};
}

/// Waits until a copy, when there is one, is in sync (so reads come from it).
void settle(const Backend& b) {
    if (!b.copy)
        return;
    auto* copy = b.repo->capability<CopyControl>();
    REQUIRE(copy);
    REQUIRE(eventually([&] { return copy->copy_state().in_sync; }, 10s));
}

} // namespace

TEST_CASE_TEMPLATE("counts, statuses and stats are the catalogue's", B, MODELREPO_BACKENDS) {
    CAPTURE(std::string(B::name));
    Backend b = B::make();
    settle(b);
    ModelRepository& repo = *b.repo;
    CHECK_FALSE(repo.name().empty());
    CHECK(repo.check_health());
    CHECK(repo.count_models().value() == static_cast<std::int64_t>(bundled().models.size()));
    CHECK(repo.count_providers().value() == static_cast<std::int64_t>(bundled().providers.size()));

    auto statuses = repo.list_statuses().value();
    CHECK(statuses.size() == bundled().statuses.size());
    CHECK(std::is_sorted(statuses.begin(), statuses.end(),
                         [](const auto& a, const auto& z) { return a.model_slug < z.model_slug; }));

    auto stats = repo.system_stats().value();
    CHECK(stats.models == static_cast<std::int64_t>(bundled().models.size()));
    CHECK(stats.providers == static_cast<std::int64_t>(bundled().providers.size()));
    // Every model counts in one health; one without a status is `unknown`.
    CHECK(stats.health.operational + stats.health.degraded + stats.health.outage +
              stats.health.unknown ==
          static_cast<std::int64_t>(bundled().models.size()));
    CHECK(stats.source == repo.name());
}

TEST_CASE_TEMPLATE("find_models answers in the order asked; unknown slugs are skipped", B,
                   MODELREPO_BACKENDS) {
    CAPTURE(std::string(B::name));
    Backend b = B::make();
    settle(b);
    ModelRepository& repo = *b.repo;
    std::vector<std::string> asked{"gpt-4o", "no-such-model", "claude-sonnet-4-5", "gpt-4o"};
    auto models = repo.find_models(asked).value();
    REQUIRE(models.size() == 3);
    CHECK(models[0].slug == "gpt-4o");
    CHECK(models[1].slug == "claude-sonnet-4-5");
    CHECK(models[2].slug == "gpt-4o"); // asked twice, answered twice
    for (const Model& m : models) {
        REQUIRE(m.provider);
        CHECK(m.provider->slug == m.provider_slug);
    }
    CHECK(repo.find_models(std::vector<std::string>{}).value().empty());

    auto one = repo.find_model("gpt-4o").value();
    REQUIRE(one);
    CHECK(one->slug == "gpt-4o");
    CHECK(one->provider.has_value());
    CHECK_FALSE(repo.find_model("no-such-model").value());

    auto all = repo.list_models().value();
    CHECK(all.size() == bundled().models.size());
    CHECK(std::is_sorted(all.begin(), all.end(),
                         [](const Model& a, const Model& z) { return a.slug < z.slug; }));
    auto snapshot = repo.export_snapshot().value();
    CHECK(snapshot.models.size() == bundled().models.size());
    CHECK(validate(snapshot));
}

TEST_CASE_TEMPLATE("writes are applied and read back, or refused as read_only", B,
                   MODELREPO_BACKENDS) {
    CAPTURE(std::string(B::name));
    Backend b = B::make();
    settle(b);
    ModelRepository& repo = *b.repo;
    std::vector<ModelStatus> write{fresh_status("gpt-4o", Health::degraded, 0.375)};
    auto receipt = repo.write_statuses(write);
    if (!b.writes) {
        REQUIRE_FALSE(receipt);
        CHECK(receipt.error().is(Errc::read_only));
        CHECK(classify(receipt.error()).caller_fault);
        return;
    }
    REQUIRE(receipt);
    CHECK(receipt.value().applied == 1);
    CHECK_FALSE(receipt.value().deferred());
    auto read = repo.find_model("gpt-4o").value();
    REQUIRE(read);
    REQUIRE(read->status);
    CHECK(read->status->availability == 0.375);
    CHECK(read->status->health == Health::degraded);

    // Older than what is stored: ignored (a replayed batch is harmless).
    std::vector<ModelStatus> stale{write[0]};
    stale[0].checked_at -= hours(48);
    stale[0].availability = 0.5;
    CHECK(repo.upsert_statuses(stale).value() == 0);
    CHECK(repo.find_model("gpt-4o").value()->status->availability == 0.375);

    // Wrong writes: refused at once, typed, nothing applied.
    std::vector<ModelStatus> unknown{fresh_status("no-such-model", Health::outage, 0)};
    auto refused = repo.write_statuses(unknown);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(Errc::invalid_argument));
    std::vector<ModelStatus> out_of_range{fresh_status("gpt-4o", Health::outage, 1.5)};
    auto range = repo.write_statuses(out_of_range);
    REQUIRE_FALSE(range);
    CHECK(range.error().is(Errc::invalid_argument));
    CHECK(classify(range.error()).caller_fault);
    // Text the database would refuse (a NUL, invalid UTF-8): refused at the door, typed.
    for (std::string region :
         {std::string("eu\0west", 7), std::string("eu\xff"), std::string(2000, 'r')}) {
        std::vector<ModelStatus> bad_text{fresh_status("gpt-4o", Health::outage, 0.5)};
        bad_text[0].region = region;
        auto refused_text = repo.write_statuses(bad_text);
        REQUIRE_FALSE(refused_text);
        CHECK(refused_text.error().is(Errc::invalid_argument));
        CHECK(refused_text.error().message.find("region") != std::string::npos);
    }
    CHECK(repo.find_model("gpt-4o").value()->status->availability == 0.375);
}

TEST_CASE_TEMPLATE("watch reports a change made by another client, or is not_supported", B,
                   MODELREPO_BACKENDS) {
    CAPTURE(std::string(B::name));
    Backend b = B::make();
    settle(b);
    ModelRepository& repo = *b.repo;
    std::mutex mutex;
    std::set<std::string> changed;
    bool resynced = false;
    auto subscription = repo.watch([&](const CatalogChange& c) {
        std::lock_guard lock(mutex);
        if (c.kind == CatalogChange::Kind::status)
            changed.insert(c.slug);
        // A source that cannot say what changed (an HTTP copy) says resync: re-read all.
        resynced = resynced || (c.kind == CatalogChange::Kind::resync && b.changes_as_resync);
    });
    if (!b.watches) {
        REQUIRE_FALSE(subscription);
        CHECK(subscription.error().is(Errc::not_supported));
        return;
    }
    REQUIRE(subscription);
    CHECK(subscription.value().active());
    auto seen = [&] {
        std::lock_guard lock(mutex);
        return changed.count("claude-sonnet-4-5") > 0 || resynced;
    };
    // A database's feed may need a moment to listen: change it until the change is heard.
    REQUIRE(eventually(
        [&] {
            if (b.other_client)
                b.other_client("claude-sonnet-4-5", "outage");
            else
                (void)repo.write_statuses(std::vector<ModelStatus>{
                    fresh_status("claude-sonnet-4-5", Health::outage, 0.25)});
            return eventually(seen, 500ms);
        },
        15s));
    // The change is in what the repository answers once it has been heard.
    CHECK(eventually(
        [&] {
            auto m = repo.find_model("claude-sonnet-4-5").value();
            return m && m->status && m->status->health == Health::outage;
        },
        5s));
    CHECK_FALSE(repo.watch({}));
}

TEST_CASE_TEMPLATE("the durable layer is there exactly where the URI asked for it", B,
                   MODELREPO_BACKENDS) {
    CAPTURE(std::string(B::name));
    Backend b = B::make();
    settle(b);
    ModelRepository& repo = *b.repo;
    CHECK((repo.capability<CopyControl>() != nullptr) == b.copy);
    CHECK((repo.capability<OutboxControl>() != nullptr) == b.outbox);
    if (b.copy) {
        CopyState copy = repo.capability<CopyControl>()->copy_state();
        CHECK(copy.has_data);
        CHECK(copy.in_sync);
        CHECK(repo.data_as_of().has_value());
        // With cache=live the copy answers what the source answers.
        CHECK(repo.count_models().value() == static_cast<std::int64_t>(bundled().models.size()));
    }

    // A caller that knows the source is down (a chain's open breaker) asks to keep a write:
    // an outbox keeps it, and it lands once drained; anything else answers the cause.
    Error cause = make_error(Errc::circuit_open, "conformance: the breaker is open");
    std::vector<ModelStatus> write{fresh_status("gemini-2.5-pro", Health::degraded, 0.625)};
    auto receipt = repo.write_statuses(write, WriteOptions{cause});
    if (!b.outbox) {
        REQUIRE_FALSE(receipt);
        CHECK((receipt.error().is(Errc::circuit_open) || receipt.error().is(Errc::read_only)));
        return;
    }
    REQUIRE(receipt);
    CHECK(receipt.value().queued == 1);
    REQUIRE(receipt.value().deferred());
    CHECK(receipt.value().deferred_because->is(Errc::circuit_open));
    // Read your writes: the copy shows it before the source has it.
    CHECK(repo.find_model("gemini-2.5-pro").value()->status->availability == 0.625);
    auto& outbox = *repo.capability<OutboxControl>();
    REQUIRE(eventually(
        [&] {
            (void)outbox.drain_outbox();
            return outbox.outbox_state().value().statuses == 0;
        },
        10s));
    // Nor is a batch with a status the database would refuse queued: not one of it.
    std::vector<ModelStatus> with_nul{fresh_status("gpt-4o", Health::outage, 0.5),
                                      fresh_status("gpt-5", Health::outage, 0.5)};
    with_nul[1].region = std::string("eu\0", 3);
    auto nul = repo.write_statuses(with_nul, WriteOptions{cause});
    REQUIRE_FALSE(nul);
    CHECK(nul.error().is(Errc::invalid_argument));
    CHECK(outbox.outbox_state().value().statuses == 0);
    // A slug the copy does not know is refused, not queued.
    std::vector<ModelStatus> unknown{fresh_status("no-such-model", Health::outage, 0)};
    auto refused = repo.write_statuses(unknown, WriteOptions{cause});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(Errc::invalid_argument));
    CHECK(outbox.outbox_state().value().statuses == 0);
}

TEST_CASE("the conformance suite ran every backend this build has") {
    std::vector<std::string> names;
    auto add = [&]<class... Bs>() { (names.push_back(Bs::name), ...); };
    add.template operator()<MODELREPO_BACKENDS>();
    CHECK(names.size() >= 2);
#if MODELREPO_HAS_POSTGRES && MODELREPO_HAS_GITHUB
    CHECK(names.size() == 8); // PostgreSQL: triggers, copy, outbox, logical, logical with copy
#endif
}
