// SPDX-License-Identifier: MIT
#include <charconv>
#include <cstdio>

#include <modelrepo/types.hpp>
#include <modelrepo/version.hpp>

namespace modelrepo {

const char* version() noexcept {
    return MODELREPO_VERSION;
}

std::string_view to_string(Health h) noexcept {
    switch (h) {
    case Health::operational:
        return "operational";
    case Health::degraded:
        return "degraded";
    case Health::outage:
        return "outage";
    case Health::unknown:
        break;
    }
    return "unknown";
}

std::optional<Health> parse_health(std::string_view text) noexcept {
    for (Health h : {Health::operational, Health::degraded, Health::outage, Health::unknown})
        if (to_string(h) == text)
            return h;
    return std::nullopt;
}

std::int64_t HealthCounts::of(Health h) const noexcept {
    switch (h) {
    case Health::operational:
        return operational;
    case Health::degraded:
        return degraded;
    case Health::outage:
        return outage;
    case Health::unknown:
        break;
    }
    return unknown;
}

std::string format_timestamp_precise(Timestamp t) {
    using namespace std::chrono;
    std::string out = format_timestamp(floor<seconds>(t));
    out.pop_back(); // 'Z'
    auto us = duration_cast<microseconds>(t - floor<seconds>(t)).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, ".%06lldZ", static_cast<long long>(us));
    return out + buf;
}

namespace {

/// Writes `value` as `width` decimal digits (zero-padded) at `to`; returns the end.
char* put_digits(char* to, long long value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        to[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
    return to + width;
}

} // namespace

std::string format_timestamp(Timestamp t) {
    using namespace std::chrono;
    auto day = floor<days>(t);
    year_month_day ymd{day};
    hh_mm_ss hms{floor<nanoseconds>(t - day)};
    int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) { // outside what four digits hold: as printf writes it
        char wide[64];
        int n = std::snprintf(wide, sizeof wide, "%04d-%02u-%02uT%02ld:%02ld:%02lldZ", year,
                              static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              static_cast<long>(hms.hours().count()),
                              static_cast<long>(hms.minutes().count()),
                              static_cast<long long>(hms.seconds().count()));
        return std::string(wide, static_cast<std::size_t>(n));
    }
    // YYYY-MM-DDTHH:MM:SS[.fraction]Z without printf: it is in every status of every list.
    char buf[40];
    char* p = put_digits(buf, year, 4);
    *p++ = '-';
    p = put_digits(p, static_cast<unsigned>(ymd.month()), 2);
    *p++ = '-';
    p = put_digits(p, static_cast<unsigned>(ymd.day()), 2);
    *p++ = 'T';
    p = put_digits(p, hms.hours().count(), 2);
    *p++ = ':';
    p = put_digits(p, hms.minutes().count(), 2);
    *p++ = ':';
    p = put_digits(p, hms.seconds().count(), 2);
    auto ns = hms.subseconds().count();
    if (ns != 0) {
        // The shortest of milli-, micro- or nanoseconds that is exact.
        *p++ = '.';
        if (ns % 1'000'000 == 0)
            p = put_digits(p, ns / 1'000'000, 3);
        else if (ns % 1'000 == 0)
            p = put_digits(p, ns / 1'000, 6);
        else
            p = put_digits(p, ns, 9);
    }
    *p++ = 'Z';
    return std::string(buf, p);
}

namespace {

bool read_digits(std::string_view text, std::size_t at, std::size_t count, int& value) noexcept {
    if (text.size() < at + count)
        return false;
    value = 0;
    for (std::size_t i = at; i < at + count; ++i) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        value = value * 10 + (text[i] - '0');
    }
    return true;
}

} // namespace

std::optional<Timestamp> parse_timestamp(std::string_view text) noexcept {
    using namespace std::chrono;
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00|-00:00)
    int y, mo, d, h, mi, s;
    if (!read_digits(text, 0, 4, y) || text.size() < 20 || text[4] != '-' ||
        !read_digits(text, 5, 2, mo) || text[7] != '-' || !read_digits(text, 8, 2, d) ||
        (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, h) || text[13] != ':' ||
        !read_digits(text, 14, 2, mi) || text[16] != ':' || !read_digits(text, 17, 2, s))
        return std::nullopt;
    if (h > 23 || mi > 59 || s > 59)
        return std::nullopt;
    // system_clock counts nanoseconds in 64 bits (found by fuzzing).
    if (y < timestamp_first_year || y > timestamp_last_year)
        return std::nullopt;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok())
        return std::nullopt;

    std::size_t pos = 19;
    nanoseconds fraction{0};
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        long long ns = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (text[pos] - '0');
                ++digits;
            }
            ++pos;
        }
        if (digits == 0)
            return std::nullopt;
        for (std::size_t i = digits; i < 9; ++i)
            ns *= 10;
        fraction = nanoseconds{ns};
    }
    std::string_view zone = text.substr(pos);
    if (zone != "Z" && zone != "z" && zone != "+00:00" && zone != "-00:00")
        return std::nullopt;
    auto t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + fraction;
    return time_point_cast<Clock::duration>(t);
}

} // namespace modelrepo
