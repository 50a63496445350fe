// SPDX-License-Identifier: MIT
/// @file
/// `MetricFamily`: a repository's own metrics (a pool's connections, a cache's age, a
/// feed's state) in the shape of Prometheus' data model, and their text exposition.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace modelrepo {

/// One metric family: a name, a type, a help text and its samples.
struct MetricFamily {
    enum class Type { counter, gauge, histogram };
    struct Sample {
        /// Appended to the family's name: "" for counters and gauges; "_bucket", "_sum" or
        /// "_count" for a histogram's series.
        std::string suffix;
        /// Label names and values, in order (a histogram bucket has "le").
        std::vector<std::pair<std::string, std::string>> labels;
        double value = 0;
    };

    std::string name; ///< "modelrepo_pool_connections"; counters end in "_total"
    Type type = Type::gauge;
    std::string help;
    std::vector<Sample> samples;

    /// Adds a sample; returns *this.
    MetricFamily& add(std::vector<std::pair<std::string, std::string>> labels, double value,
                      std::string suffix = "");
    /// Adds a histogram's series (`_bucket` per bound with its `le`, `_sum` when given,
    /// `_count`) from per-bucket counts; `upper_bounds` (the last is +Inf) are multiplied
    /// by `bound_scale` (e.g. 0.001 for milliseconds to seconds). Returns *this.
    MetricFamily& add_histogram(std::vector<std::pair<std::string, std::string>> labels,
                                std::span<const double> upper_bounds,
                                std::span<const std::uint64_t> counts,
                                std::optional<double> sum = std::nullopt, double bound_scale = 1.0);
};

/// "counter", "gauge", "histogram".
std::string_view to_string(MetricFamily::Type t) noexcept;

/// The Prometheus text exposition (format 0.0.4) of `families`: one HELP and TYPE line
/// per name, families of the same name merged. `labels` are put first on every sample
/// (e.g. {"source", "postgresql://…"}).
std::string to_prometheus(std::span<const MetricFamily> families,
                          const std::vector<std::pair<std::string, std::string>>& labels = {});

/// Appends `family` to `out`, merging it with a family of the same name already there.
void merge_into(std::vector<MetricFamily>& out, MetricFamily family,
                const std::vector<std::pair<std::string, std::string>>& labels = {});

} // namespace modelrepo
