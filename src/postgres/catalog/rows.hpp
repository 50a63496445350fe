// SPDX-License-Identifier: MIT
// The rows of the catalogue's statements, both ways: the array parameters a statement
// takes (text[] and float8[] literals, so nothing is spliced into SQL) and the decoding of
// its answers into models, statuses and numbers. For the calls in catalog/ only.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <modelrepo/types.hpp>

#include "../driver/connection.hpp"

namespace modelrepo::detail {

/// `{"a","b\"c"}`: a text[] literal (parameters carry it; nothing is spliced into SQL).
template <class Strings>
std::string text_array(const Strings& items) {
    std::size_t size = 2;
    for (const auto& item : items)
        size += std::size(item) + 3; // quotes and comma; escapes may grow it further
    std::string out;
    out.reserve(size);
    out.push_back('{');
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i)
            out.push_back(',');
        out.push_back('"');
        for (char c : items[i]) {
            if (c == '"' || c == '\\')
                out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out.push_back('}');
    return out;
}

inline std::string number_array(std::span<const std::optional<double>> items) {
    std::string out = "{";
    char buf[40];
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i)
            out.push_back(',');
        if (items[i]) {
            std::snprintf(buf, sizeof buf, "%.17g", *items[i]);
            out += buf;
        } else {
            out += "NULL";
        }
    }
    return out + "}";
}

/// The C strings of `strings`, for a statement's parameters.
template <class... Strings>
std::array<const char*, sizeof...(Strings)> params(const Strings&... strings) {
    return {strings.c_str()...};
}

inline Timestamp from_micros(long long micros) {
    return Timestamp(
        std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(micros)));
}

/// The server answered something the decoding cannot read: bad_data at the boundary.
struct BadAnswer {
    std::string what;
};

/// A field's number, parsed with std::from_chars.
template <class T>
T number(std::string_view text, bool null) {
    T value{};
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, value);
    if (null || ec != std::errc() || stop != end)
        throw BadAnswer{"unexpected value \"" + std::string(text) +
                        "\" where a number was expected"};
    return value;
}

template <class T>
T number(const Rows& rows, int row, int column) {
    return number<T>(rows.text(row, column), rows.is_null(row, column));
}

/// Reads one result row's fields left to right.
class Columns {
public:
    Columns(const Rows& rows, int row)
        : rows_(rows)
        , row_(row) {}

    std::string text() { return std::string(rows_.text(row_, column_++)); }
    std::string_view view() { return rows_.text(row_, column_++); }
    bool boolean() { return view() == "t"; }
    template <class T>
    T number() {
        int c = column_++;
        return detail::number<T>(rows_, row_, c);
    }
    /// The next field as a number, or nothing when it is NULL.
    template <class T>
    std::optional<T> optional_number() {
        int c = column_++;
        return rows_.is_null(row_, c) ? std::nullopt
                                      : std::optional<T>(detail::number<T>(rows_, row_, c));
    }
    bool is_null(int column) const { return rows_.is_null(row_, column); }

private:
    const Rows& rows_;
    int row_;
    int column_ = 0;
};

/// The last six columns of model_from_row, and all but the first of status_from_row.
inline ModelStatus status_columns(Columns& col, std::string slug) {
    ModelStatus s;
    s.model_slug = std::move(slug);
    s.health = parse_health(col.view()).value_or(Health::unknown);
    s.availability = col.number<double>();
    s.latency_ms = col.optional_number<double>();
    s.error_rate = col.number<double>();
    s.region = col.text();
    s.checked_at = from_micros(col.number<long long>());
    return s;
}

/// slug, name, provider_slug, description, context_window, active, provider name,
/// provider website, then the status columns (NULL health: no status).
inline Model model_from_row(const Rows& rows, int row) {
    Columns col(rows, row);
    Model m;
    m.slug = col.text();
    m.name = col.text();
    m.provider_slug = col.text();
    m.description = col.text();
    m.context_window = col.optional_number<std::int64_t>();
    m.active = col.boolean();
    std::string provider_name = col.text();
    m.provider = Provider{m.provider_slug, std::move(provider_name), col.text()};
    if (!col.is_null(8))
        m.status = status_columns(col, m.slug);
    return m;
}

/// slug, then the status columns.
inline ModelStatus status_from_row(const Rows& rows, int row) {
    Columns col(rows, row);
    std::string slug = col.text();
    return status_columns(col, std::move(slug));
}

/// The seven array parameters of the upsert statement, one row per model (the newest
/// status of each wins: one statement cannot touch a row twice), sorted by slug so
/// that concurrent batches lock their rows in the same order and cannot deadlock.
inline std::array<std::string, 7> status_arrays(std::span<const ModelStatus> statuses) {
    std::unordered_map<std::string_view, const ModelStatus*> newest;
    std::vector<std::string_view> order;
    for (const ModelStatus& s : statuses) {
        auto [it, inserted] = newest.emplace(s.model_slug, &s);
        if (inserted)
            order.push_back(s.model_slug);
        else if (it->second->checked_at <= s.checked_at)
            it->second = &s;
    }
    std::sort(order.begin(), order.end());
    std::vector<std::string_view> health, regions;
    std::vector<std::string> times;
    std::vector<std::optional<double>> availability, latency, error_rate;
    for (std::string_view slug : order) {
        const ModelStatus& s = *newest[slug];
        health.push_back(to_string(s.health));
        regions.push_back(s.region);
        times.push_back(format_timestamp(s.checked_at));
        availability.push_back(s.availability);
        latency.push_back(s.latency_ms);
        error_rate.push_back(s.error_rate);
    }
    std::vector<std::string_view> time_views(times.begin(), times.end());
    return {text_array(order),     text_array(health),       number_array(availability),
            number_array(latency), number_array(error_rate), text_array(regions),
            text_array(time_views)};
}

} // namespace modelrepo::detail
