// SPDX-License-Identifier: MIT
// Catalog and its edits (what MemoryRepository serves and the live copy keeps): an edit
// leaves the version it started from as it was, and its kept-up stats equal a recount.
#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "index/catalog.hpp"

using namespace modelrepo;
using namespace std::chrono;
using detail::build_catalog;
using detail::Catalog;

namespace {

/// `n` models m0000 … under two providers, every third one degraded.
Snapshot catalogue(int n) {
    Snapshot s;
    s.providers = {{"p0", "P0", ""}, {"p1", "P1", ""}};
    auto at = system_clock::now() - 1h;
    for (int i = 0; i < n; ++i) {
        char slug[16];
        std::snprintf(slug, sizeof slug, "m%05d", i);
        Model m;
        m.slug = slug;
        m.name = slug;
        m.provider_slug = i % 2 ? "p1" : "p0";
        m.active = i % 5 != 0;
        s.models.push_back(m);
        s.statuses.push_back(
            {slug, i % 3 ? Health::operational : Health::degraded, 0.9, 10, 0.01, "", at});
    }
    return s;
}

/// The stats of `c` counted again from its models.
SystemStats recount(const Catalog& c) {
    return build_catalog(c.snapshot())->stats;
}

void check_stats(const Catalog& c) {
    SystemStats fresh = recount(c);
    CHECK(c.stats.models == fresh.models);
    CHECK(c.stats.active_models == fresh.active_models);
    CHECK(c.stats.providers == fresh.providers);
    CHECK(c.stats.health.operational == fresh.health.operational);
    CHECK(c.stats.health.degraded == fresh.health.degraded);
    CHECK(c.stats.health.outage == fresh.health.outage);
    CHECK(c.stats.health.unknown == fresh.health.unknown);
}

} // namespace

TEST_CASE("a status edit at 1,000 models: the new version has it, the old one does not, "
          "the stats are a recount's") {
    auto base = build_catalog(catalogue(1000));
    REQUIRE(base->models.size() == 1000);
    ModelStatus outage{"m00517", Health::outage, 0.1, 900, 0.5, "eu", system_clock::now()};
    ModelStatus older{"m00003", Health::outage, 0.1, 900, 0.5, "eu", system_clock::now() - 2h};
    ModelStatus unknown_model{"nope", Health::outage, 0.1, 900, 0.5, "eu", system_clock::now()};
    auto edit = detail::with_statuses(*base, std::vector{outage, older, unknown_model});
    REQUIRE(edit.next);
    CHECK(edit.changed == std::vector<std::string>{"m00517"});
    CHECK(edit.next->find("m00517")->status->health == Health::outage);
    CHECK(base->find("m00517")->status->health == Health::operational);   // untouched
    CHECK(edit.next->find("m00003")->status->health == Health::degraded); // older: skipped
    CHECK(edit.next->index == base->index);                               // the same slugs
    // Models of untouched chunks are the same objects; the edited chunk's others too.
    CHECK(edit.next->find("m00001") == base->find("m00001"));
    CHECK(edit.next->find("m00516") == base->find("m00516"));
    check_stats(*edit.next);
    check_stats(*base);
}

TEST_CASE("model edits: in place, added and removed, across chunk boundaries") {
    auto base = build_catalog(catalogue(600));
    // In place: two models of one chunk, one of another, a status changed by a model row.
    std::vector<Model> changed;
    for (const char* slug : {"m00000", "m00255", "m00256"}) {
        Model m = *base->find(slug);
        m.provider.reset();
        m.description = "changed";
        m.active = !m.active;
        if (m.status)
            m.status->health = Health::outage, m.status->checked_at = system_clock::now();
        changed.push_back(m);
    }
    auto edit = detail::with_models(*base, changed, {});
    REQUIRE(edit.next);
    CHECK(edit.changed.size() == 3);
    CHECK(edit.next->index == base->index);
    for (const char* slug : {"m00000", "m00255", "m00256"}) {
        CHECK(edit.next->find(slug)->description == "changed");
        CHECK(base->find(slug)->description != "changed");
    }
    check_stats(*edit.next);
    // The same rows again: nothing changed, no new version.
    CHECK_FALSE(detail::with_models(*edit.next, changed, {}).next);

    // Added and removed: a new index, in slug order.
    Model added = *base->find("m00010");
    added.slug = "m00010a";
    added.provider.reset();
    added.status->model_slug = "m00010a";
    auto structural = detail::with_models(*edit.next, std::vector{added},
                                          std::vector<std::string>{"m00300", "absent"});
    REQUIRE(structural.next);
    const Catalog& c = *structural.next;
    CHECK(c.models.size() == 600);
    CHECK(c.find("m00010a"));
    CHECK_FALSE(c.find("m00300"));
    CHECK(c.find("m00256")->description == "changed");
    std::string previous;
    for (const auto& m : c.models) {
        CHECK(m->slug > previous);
        previous = m->slug;
    }
    check_stats(c);
    // A model whose provider the catalogue lacks is skipped.
    Model orphan = added;
    orphan.slug = "orphan";
    orphan.provider_slug = "missing";
    CHECK_FALSE(detail::with_models(c, std::vector{orphan}, {}).next);
}
