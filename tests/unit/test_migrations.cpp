// SPDX-License-Identifier: MIT
// Migrations are history: databases already ran them, and `schema_migrations` records only
// their numbers. Each one's text must stay byte for byte what shipped (kept in
// tests/unit/migrations/NNN.sql), even now that migrations 2 and 3 are made of the change
// feed's shared objects (src/postgres/feed/feed_sql.hpp), which the feed on a mapping's
// tables uses too.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "postgres/catalog/mapping.hpp"
#include "postgres/catalog/schema.hpp"
#include "postgres/feed/feed_sql.hpp"

using namespace modelrepo::detail;
namespace fs = std::filesystem;

namespace {

std::string shipped(int version) {
    char name[16];
    std::snprintf(name, sizeof name, "%03d.sql", version);
    std::ifstream in(fs::path(MODELREPO_MIGRATIONS_DIR) / name, std::ios::binary);
    REQUIRE_MESSAGE(in, "no shipped text for migration "
                            << version << ": add " << MODELREPO_MIGRATIONS_DIR << "/" << name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Where two texts first differ, for the message.
std::string first_difference(const std::string& a, std::string_view b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i])
        ++i;
    return "at byte " + std::to_string(i) + ": shipped \"" + a.substr(i, 40) + "\", now \"" +
           std::string(b.substr(i, 40)) + "\"";
}

} // namespace

TEST_CASE("each migration's text is byte for byte what shipped") {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(MODELREPO_MIGRATIONS_DIR))
        files += entry.path().extension() == ".sql";
    REQUIRE(files == migrations().size());
    int expected = 1;
    for (const Migration& m : migrations()) {
        CAPTURE(m.version);
        CHECK(m.version == expected++);
        const std::string text = shipped(m.version);
        CHECK_MESSAGE(m.sql == text, first_difference(text, m.sql));
        CHECK(m.sql.size() == text.size());
    }
}

TEST_CASE("the feed on a mapping's tables has the same functions as migrations 2 and 3") {
    Mapping m = Mapping::builtin_tables();
    const std::string feed = mapped_feed_sql(m, "");
    const std::string m2(migrations()[1].sql), m3(migrations()[2].sql);
    for (std::string_view shared : {feed_sql::listener_tables, feed_sql::feed_mark,
                                    feed_sql::prune_changes, feed_sql::note_change}) {
        CHECK(feed.find(shared) != std::string::npos);
        CHECK(m3.find(shared) != std::string::npos);
    }
    for (std::string_view shared : {feed_sql::catalog_resync, feed_sql::truncated}) {
        CHECK(feed.find(shared) != std::string::npos);
        CHECK(m2.find(shared) != std::string::npos);
    }
    // Each shared object once in the mapped feed: no second copy of it.
    for (std::string_view shared : {feed_sql::feed_mark, feed_sql::prune_changes})
        CHECK(feed.find(shared, feed.find(shared) + 1) == std::string::npos);
}
