// SPDX-License-Identifier: MIT
#include <cstdio>

#include <modelrepo/metrics.hpp>

namespace modelrepo {

namespace {

std::string escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\' || c == '"')
            out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

std::string format_value(double value) {
    if (value == 1e300 || value > 1e299)
        return "+Inf";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    return buf;
}

} // namespace

MetricFamily& MetricFamily::add(std::vector<std::pair<std::string, std::string>> labels,
                                double value, std::string suffix) {
    samples.push_back({std::move(suffix), std::move(labels), value});
    return *this;
}

MetricFamily& MetricFamily::add_histogram(std::vector<std::pair<std::string, std::string>> labels,
                                          std::span<const double> upper_bounds,
                                          std::span<const std::uint64_t> counts,
                                          std::optional<double> sum, double bound_scale) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts.size() && i < upper_bounds.size(); ++i) {
        cumulative += counts[i];
        char le[32];
        if (i + 1 == upper_bounds.size())
            std::snprintf(le, sizeof le, "+Inf");
        else
            std::snprintf(le, sizeof le, "%g", upper_bounds[i] * bound_scale);
        auto bucket = labels;
        bucket.emplace_back("le", le);
        add(std::move(bucket), static_cast<double>(cumulative), "_bucket");
    }
    if (sum)
        add(labels, *sum, "_sum");
    return add(std::move(labels), static_cast<double>(cumulative), "_count");
}

std::string_view to_string(MetricFamily::Type t) noexcept {
    switch (t) {
    case MetricFamily::Type::counter:
        return "counter";
    case MetricFamily::Type::gauge:
        return "gauge";
    case MetricFamily::Type::histogram:
        break;
    }
    return "histogram";
}

void merge_into(std::vector<MetricFamily>& out, MetricFamily family,
                const std::vector<std::pair<std::string, std::string>>& labels) {
    if (!labels.empty())
        for (auto& sample : family.samples)
            sample.labels.insert(sample.labels.begin(), labels.begin(), labels.end());
    for (auto& existing : out)
        if (existing.name == family.name) {
            for (auto& sample : family.samples)
                existing.samples.push_back(std::move(sample));
            return;
        }
    out.push_back(std::move(family));
}

std::string to_prometheus(std::span<const MetricFamily> families,
                          const std::vector<std::pair<std::string, std::string>>& labels) {
    std::vector<MetricFamily> merged;
    for (const auto& family : families)
        merge_into(merged, family, labels);
    std::string out;
    for (const auto& family : merged) {
        out += "# HELP " + family.name + " " + family.help + "\n";
        out += "# TYPE " + family.name + " " + std::string(to_string(family.type)) + "\n";
        for (const auto& sample : family.samples) {
            out += family.name + sample.suffix;
            if (!sample.labels.empty()) {
                out.push_back('{');
                for (std::size_t i = 0; i < sample.labels.size(); ++i) {
                    if (i)
                        out.push_back(',');
                    out += sample.labels[i].first + "=\"" + escape_label(sample.labels[i].second) +
                           "\"";
                }
                out.push_back('}');
            }
            out += " " + format_value(sample.value) + "\n";
        }
    }
    return out;
}

} // namespace modelrepo
