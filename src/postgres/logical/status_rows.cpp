// SPDX-License-Identifier: MIT
#include "status_rows.hpp"

#include <charconv>
#include <chrono>

namespace modelrepo::detail::logical {

using namespace std::chrono;

namespace {

/// Reads exactly `width` decimal digits at `at`, advancing it.
bool digits(std::string_view text, std::size_t& at, std::size_t width, int& out) {
    if (at + width > text.size())
        return false;
    int value = 0;
    for (std::size_t i = 0; i < width; ++i) {
        char c = text[at + i];
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + (c - '0');
    }
    at += width;
    out = value;
    return true;
}

bool expect(std::string_view text, std::size_t& at, char c) {
    if (at >= text.size() || text[at] != c)
        return false;
    ++at;
    return true;
}

/// A float8 as float8out prints it (shortest exact form, "Infinity", "NaN").
std::optional<double> float8(std::string_view text) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

} // namespace

std::optional<Timestamp> parse_timestamptz(std::string_view text) {
    std::size_t at = 0;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(text, at, 4, year) || !expect(text, at, '-') || !digits(text, at, 2, month) ||
        !expect(text, at, '-') || !digits(text, at, 2, day) || !expect(text, at, ' ') ||
        !digits(text, at, 2, hour) || !expect(text, at, ':') || !digits(text, at, 2, minute) ||
        !expect(text, at, ':') || !digits(text, at, 2, second))
        return std::nullopt;
    year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                        std::chrono::day(static_cast<unsigned>(day))};
    // What a Timestamp holds, less a year's margin at the start for the offset.
    if (year < timestamp_first_year + 1 || year > timestamp_last_year || !date.ok() || hour > 23 ||
        minute > 59 || second > 59)
        return std::nullopt;
    long long micros = 0;
    if (at < text.size() && text[at] == '.') {
        ++at;
        int scale = 100'000, count = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
            if (++count > 6)
                return std::nullopt;
            micros += (text[at++] - '0') * scale;
            scale /= 10;
        }
        if (count == 0)
            return std::nullopt;
    }
    // The offset from UTC: ±HH, ±HH:MM or ±HH:MM:SS.
    if (at >= text.size() || (text[at] != '+' && text[at] != '-'))
        return std::nullopt;
    const int sign = text[at++] == '-' ? -1 : 1;
    int off_h = 0, off_m = 0, off_s = 0;
    if (!digits(text, at, 2, off_h))
        return std::nullopt;
    if (at < text.size() && (!expect(text, at, ':') || !digits(text, at, 2, off_m)))
        return std::nullopt;
    if (at < text.size() && (!expect(text, at, ':') || !digits(text, at, 2, off_s)))
        return std::nullopt;
    if (at != text.size() || off_m > 59 || off_s > 59)
        return std::nullopt;
    auto local =
        sys_days(date) + hours(hour) + minutes(minute) + seconds(second) + microseconds(micros);
    auto utc = local - sign * (hours(off_h) + minutes(off_m) + seconds(off_s));
    return Timestamp(duration_cast<Clock::duration>(utc.time_since_epoch()));
}

std::optional<ModelStatus> status_of_row(const Relation& relation, const Tuple& row) {
    // The value of `column`, sent and changed: null for a NULL, nothing when it is not
    // readable here.
    bool readable = true;
    auto value = [&](std::string_view column) -> const std::optional<std::string>* {
        for (std::size_t i = 0; i < relation.columns.size(); ++i)
            if (relation.columns[i].name == column) {
                if (i >= row.values.size() || (i < row.unchanged.size() && row.unchanged[i]))
                    break;
                return &row.values[i];
            }
        readable = false;
        return nullptr;
    };
    const auto* slug = value("model_slug");
    const auto* health = value("health");
    const auto* availability = value("availability");
    const auto* latency = value("latency_ms");
    const auto* error_rate = value("error_rate");
    const auto* region = value("region");
    const auto* checked_at = value("checked_at");
    if (!readable || !*slug || !*health || !*availability || !*error_rate || !*region ||
        !*checked_at)
        return std::nullopt;
    ModelStatus s;
    s.model_slug = **slug;
    // As the catalogue's reads have it: a health this modelrepo does not know is unknown.
    s.health = parse_health(**health).value_or(Health::unknown);
    auto a = float8(**availability);
    auto e = float8(**error_rate);
    auto t = parse_timestamptz(**checked_at);
    if (!a || !e || !t)
        return std::nullopt;
    s.availability = *a;
    s.error_rate = *e;
    s.checked_at = *t;
    if (*latency) {
        auto l = float8(**latency);
        if (!l)
            return std::nullopt;
        s.latency_ms = *l;
    }
    s.region = **region;
    return s;
}

} // namespace modelrepo::detail::logical
