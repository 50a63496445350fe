// SPDX-License-Identifier: MIT
/// @file
/// The catalogue's data: providers, models, their current status and system stats.
/// Plain values: copyable, comparable, no behaviour beyond conversions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace modelrepo {

/// Clock of every timestamp in the catalogue; values are UTC.
using Clock = std::chrono::system_clock;
using Timestamp = Clock::time_point;

/// How far ahead of the writer's clock a status's `checked_at` may be (clocks drift):
/// further, and the write is refused with `Errc::invalid_argument`, because a status from
/// the future would keep every real status after it out (an older `checked_at` is
/// ignored). A source's `max_clock_skew=` sets its own.
inline constexpr std::chrono::milliseconds default_max_clock_skew{5 * 60'000};

/// The live health of a model.
enum class Health { operational, degraded, outage, unknown };

/// "operational", "degraded", "outage" or "unknown".
std::string_view to_string(Health h) noexcept;
/// Parses the names `to_string(Health)` gives; nullopt for anything else.
std::optional<Health> parse_health(std::string_view text) noexcept;

/// A company or project that serves models ("openai").
struct Provider {
    std::string slug;    ///< stable identifier, e.g. "anthropic"
    std::string name;    ///< display name, e.g. "Anthropic"
    std::string website; ///< home page URL; may be empty

    bool operator==(const Provider&) const = default;
};

/// The current status of one model, as last checked.
struct ModelStatus {
    std::string model_slug;
    Health health = Health::unknown;
    double availability = 0.0;        ///< 0..1, share of successful checks
    std::optional<double> latency_ms; ///< typical latency; absent when not measured
    double error_rate = 0.0;          ///< 0..1
    std::string region;               ///< where it was checked from, e.g. "us-east"; may be empty
    Timestamp checked_at{};           ///< when it was checked (UTC)

    bool operator==(const ModelStatus&) const = default;
};

/// One model of the catalogue. `provider` and `status` are filled in by the
/// repository calls that return models (`find_model`, `find_models`, `list_models`);
/// inside a `Snapshot` they are empty and the snapshot's lists hold them.
struct Model {
    std::string slug;          ///< stable identifier, e.g. "gpt-4o"
    std::string name;          ///< display name, e.g. "GPT-4o"
    std::string provider_slug; ///< the `Provider::slug` it belongs to
    std::string description;
    std::optional<std::int64_t> context_window; ///< tokens; absent when unknown
    bool active = true;                         ///< false for retired models
    std::optional<Provider> provider;
    std::optional<ModelStatus> status; ///< absent when the model was never checked

    bool operator==(const Model&) const = default;
};

/// How many models are in each health state. A model without a status counts as
/// `unknown`.
struct HealthCounts {
    std::int64_t operational = 0;
    std::int64_t degraded = 0;
    std::int64_t outage = 0;
    std::int64_t unknown = 0;

    /// The count for one state.
    [[nodiscard]] std::int64_t of(Health h) const noexcept;
    bool operator==(const HealthCounts&) const = default;
};

/// The numbers the realtime and REST services show.
struct SystemStats {
    std::int64_t models = 0;        ///< all models
    std::int64_t active_models = 0; ///< models with `active == true`
    std::int64_t providers = 0;
    HealthCounts health; ///< per health, over all models
    Timestamp as_of{};   ///< how fresh the data is (a snapshot's generated_at)
    std::string source;  ///< name() of the repository that answered

    bool operator==(const SystemStats&) const = default;
};

/// Formats as RFC 3339 UTC: "2026-11-24T09:30:00Z", with ".mmm" when the time has
/// milliseconds.
std::string format_timestamp(Timestamp t);
/// RFC 3339 UTC with microseconds, always: "2026-11-24T09:30:00.000000Z".
std::string format_timestamp_precise(Timestamp t);
/// The years a `Timestamp` holds whole (nanoseconds on a signed 64-bit count reach from
/// 1677-09-21 to 2262-04-11): what parse_timestamp() reads, and where a PostgreSQL read
/// holds a stored time outside them ('infinity', a year 1) to the nearest end.
inline constexpr int timestamp_first_year = 1678;
inline constexpr int timestamp_last_year = 2261;

/// Parses RFC 3339 in UTC ("…Z" or "…+00:00"), with optional fractional seconds;
/// nullopt for anything else, other offsets, impossible dates and years outside
/// timestamp_first_year..timestamp_last_year included.
std::optional<Timestamp> parse_timestamp(std::string_view text) noexcept;

} // namespace modelrepo
