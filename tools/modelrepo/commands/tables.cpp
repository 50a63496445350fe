// SPDX-License-Identifier: MIT
#include "tables.hpp"

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace modelrepo::cli {

namespace {

std::string percent(double share) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%", share * 100.0);
    return buf;
}

std::string milliseconds(const std::optional<double>& ms) {
    if (!ms)
        return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f ms", *ms);
    return buf;
}

std::string tokens(const std::optional<std::int64_t>& n) {
    if (!n)
        return "-";
    // 1048576 -> "1,048,576"
    std::string digits = std::to_string(*n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0)
            out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

// A table with left-aligned columns as wide as their widest cell.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (width.size() <= i)
                width.push_back(0);
            width[i] = std::max(width[i], row[i].size());
        }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line.append(width[i] - row[i].size() + 2, ' ');
        }
        out << line << '\n';
    }
}

} // namespace

void print_stats(std::ostream& out, const SystemStats& s) {
    print_table(out, {
                         {"source:", s.source},
                         {"as of:", format_timestamp(s.as_of)},
                         {"models:", std::to_string(s.models) + " (" +
                                         std::to_string(s.active_models) + " active)"},
                         {"providers:", std::to_string(s.providers)},
                         {"operational:", std::to_string(s.health.operational)},
                         {"degraded:", std::to_string(s.health.degraded)},
                         {"outage:", std::to_string(s.health.outage)},
                         {"unknown:", std::to_string(s.health.unknown)},
                     });
}

void print_models(std::ostream& out, std::span<const Model> models, std::string_view source) {
    std::vector<std::vector<std::string>> rows{
        {"SLUG", "NAME", "PROVIDER", "HEALTH", "AVAILABILITY", "LATENCY", "CONTEXT", "ACTIVE"}};
    for (const Model& m : models) {
        rows.push_back({m.slug, m.name, m.provider ? m.provider->name : m.provider_slug,
                        m.status ? std::string(to_string(m.status->health)) : "unknown",
                        m.status ? percent(m.status->availability) : "-",
                        m.status ? milliseconds(m.status->latency_ms) : "-",
                        tokens(m.context_window), m.active ? "yes" : "no"});
    }
    print_table(out, rows);
    out << models.size() << (models.size() == 1 ? " model" : " models") << " from " << source
        << '\n';
}

void print_model(std::ostream& out, const Model& m, std::string_view source) {
    std::vector<std::vector<std::string>> rows{
        {"slug:", m.slug},
        {"name:", m.name},
        {"provider:",
         m.provider ? m.provider->name + " (" + m.provider_slug + ")" : m.provider_slug},
        {"description:", m.description},
        {"context window:", m.context_window ? std::to_string(*m.context_window) + " tokens" : "-"},
        {"active:", m.active ? "yes" : "no"},
    };
    if (m.status) {
        rows.push_back({"health:", std::string(to_string(m.status->health))});
        rows.push_back({"availability:", percent(m.status->availability)});
        rows.push_back({"latency:", milliseconds(m.status->latency_ms)});
        rows.push_back({"error rate:", percent(m.status->error_rate)});
        rows.push_back({"region:", m.status->region});
        rows.push_back({"checked at:", format_timestamp(m.status->checked_at)});
    } else {
        rows.push_back({"health:", "unknown (never checked)"});
    }
    rows.push_back({"source:", std::string(source)});
    print_table(out, rows);
}

void print_statuses(std::ostream& out, std::span<const ModelStatus> statuses,
                    std::string_view source) {
    std::vector<std::vector<std::string>> rows{
        {"MODEL", "HEALTH", "AVAILABILITY", "LATENCY", "ERRORS", "REGION", "CHECKED AT"}};
    for (const ModelStatus& s : statuses)
        rows.push_back({s.model_slug, std::string(to_string(s.health)), percent(s.availability),
                        milliseconds(s.latency_ms), percent(s.error_rate), s.region,
                        format_timestamp(s.checked_at)});
    print_table(out, rows);
    out << statuses.size() << (statuses.size() == 1 ? " status" : " statuses") << " from " << source
        << '\n';
}

} // namespace modelrepo::cli
