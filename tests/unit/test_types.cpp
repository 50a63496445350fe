// SPDX-License-Identifier: MIT
#include <random>

#include <doctest/doctest.h>

#include <modelrepo/types.hpp>

using namespace modelrepo;
using namespace std::chrono;

TEST_CASE("health names round-trip") {
    for (Health h : {Health::operational, Health::degraded, Health::outage, Health::unknown})
        CHECK(parse_health(to_string(h)) == h);
    CHECK_FALSE(parse_health("Operational").has_value());
    CHECK_FALSE(parse_health("").has_value());
}

TEST_CASE("timestamps format as RFC 3339 UTC and parse back") {
    Timestamp t = sys_days{2026y / November / 24} + 9h + 30min + 5s;
    CHECK(format_timestamp(t) == "2026-11-24T09:30:05Z");
    CHECK(parse_timestamp("2026-11-24T09:30:05Z") == t);
    CHECK(parse_timestamp("2026-11-24t09:30:05z") == t);
    CHECK(parse_timestamp("2026-11-24T09:30:05+00:00") == t);

    Timestamp ms = t + 250ms;
    CHECK(format_timestamp(ms) == "2026-11-24T09:30:05.250Z");
    CHECK(parse_timestamp("2026-11-24T09:30:05.25Z") == ms);
    Timestamp us = t + 123456us;
    CHECK(format_timestamp(us) == "2026-11-24T09:30:05.123456Z");
    CHECK(parse_timestamp(format_timestamp(us)) == us);
    CHECK(format_timestamp(Timestamp{}) == "1970-01-01T00:00:00Z");
}

TEST_CASE("timestamps that are not RFC 3339 UTC are rejected") {
    for (const char* bad :
         {"", "2026-11-24", "2026-11-24 09:30:05Z", "2026-11-24T09:30:05",
          "2026-11-24T09:30:05+09:00", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z",
          "2026-11-24T24:00:00Z", "2026-11-24T09:60:00Z", "2026-11-24T09:30:05.Z",
          "2026-11-24T09:30:05Zjunk", "yesterday", "2026-1-24T09:30:05Z", "6220-01-01T00:00:00Z",
          "1600-01-01T00:00:00Z"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_timestamp(bad).has_value());
    }
}

TEST_CASE("HealthCounts::of") {
    HealthCounts counts{1, 2, 3, 4};
    CHECK(counts.of(Health::operational) == 1);
    CHECK(counts.of(Health::degraded) == 2);
    CHECK(counts.of(Health::outage) == 3);
    CHECK(counts.of(Health::unknown) == 4);
}

TEST_CASE("format_timestamp: the printf form, at any second and fraction a Timestamp holds") {
    std::mt19937_64 random(11);
    // What a Timestamp holds (system_clock's nanoseconds: 1678 to 2262).
    std::uniform_int_distribution<long long> seconds_since(-9'000'000'000LL, 9'000'000'000LL);
    for (int round = 0; round < 20'000; ++round) {
        long long s = seconds_since(random);
        long long ns = round % 4 == 0   ? 0
                       : round % 4 == 1 ? static_cast<long long>(random() % 1000) * 1'000'000
                       : round % 4 == 2 ? static_cast<long long>(random() % 1'000'000) * 1000
                                        : static_cast<long long>(random() % 1'000'000'000);
        Timestamp t{std::chrono::duration_cast<Timestamp::duration>(std::chrono::seconds(s) +
                                                                    std::chrono::nanoseconds(ns))};
        auto day = std::chrono::floor<std::chrono::days>(t);
        std::chrono::year_month_day ymd{day};
        std::chrono::hh_mm_ss hms{std::chrono::floor<std::chrono::nanoseconds>(t - day)};
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02lld",
                      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                      static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                      static_cast<long>(hms.minutes().count()),
                      static_cast<long long>(hms.seconds().count()));
        std::string expected = buf;
        long long sub = hms.subseconds().count();
        if (sub % 1'000'000 == 0 && sub != 0)
            std::snprintf(buf, sizeof buf, ".%03lld", sub / 1'000'000), expected += buf;
        else if (sub % 1000 == 0 && sub != 0)
            std::snprintf(buf, sizeof buf, ".%06lld", sub / 1000), expected += buf;
        else if (sub != 0)
            std::snprintf(buf, sizeof buf, ".%09lld", sub), expected += buf;
        expected += "Z";
        CAPTURE(s);
        CAPTURE(ns);
        REQUIRE(format_timestamp(t) == expected);
    }
}
