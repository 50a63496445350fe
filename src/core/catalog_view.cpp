// SPDX-License-Identifier: MIT
#include "catalog_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_map>
#include <utility>

namespace modelrepo::detail {

std::vector<Model> assemble_models(const Snapshot& snapshot) {
    std::unordered_map<std::string_view, const Provider*> providers;
    for (const Provider& p : snapshot.providers)
        providers.emplace(p.slug, &p);
    std::unordered_map<std::string_view, const ModelStatus*> statuses;
    for (const ModelStatus& s : snapshot.statuses)
        statuses.emplace(s.model_slug, &s);

    std::vector<Model> models;
    models.reserve(snapshot.models.size());
    for (const Model& m : snapshot.models) {
        Model full = m;
        if (auto p = providers.find(m.provider_slug); p != providers.end())
            full.provider = *p->second;
        if (auto s = statuses.find(m.slug); s != statuses.end())
            full.status = *s->second;
        models.push_back(std::move(full));
    }
    std::sort(models.begin(), models.end(),
              [](const Model& a, const Model& b) { return a.slug < b.slug; });
    return models;
}

namespace {

/// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        auto c = static_cast<unsigned char>(text[i]);
        std::size_t n = c < 0x80           ? 1
                        : (c >> 5) == 0x6  ? 2
                        : (c >> 4) == 0xE  ? 3
                        : (c >> 3) == 0x1E ? 4
                                           : 0;
        if (n == 0 || i + n > text.size())
            return false;
        std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
        for (std::size_t k = 1; k < n; ++k) {
            auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        bool overlong = (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

} // namespace

std::optional<StatusProblem> check_status(const ModelStatus& s) {
    auto unit = [](double v) { return std::isfinite(v) && v >= 0.0 && v <= 1.0; };
    if (s.model_slug.empty())
        return StatusProblem{"model", "must not be empty"};
    // What a database would refuse in text (PostgreSQL: 22P05, 22021), refused here, before
    // anything is written or queued.
    for (auto [member, text] :
         {std::pair<std::string_view, std::string_view>{"model", s.model_slug},
          {"region", s.region}}) {
        if (text.find('\0') != std::string_view::npos)
            return StatusProblem{member, "must not hold a NUL character (\\u0000)"};
        if (!valid_utf8(text))
            return StatusProblem{member, "must be valid UTF-8"};
        if (text.size() > max_status_text_bytes)
            return StatusProblem{member, "is longer than 1024 bytes"};
    }
    if (!unit(s.availability))
        return StatusProblem{"availability", "must be within 0..1"};
    if (!unit(s.error_rate))
        return StatusProblem{"error_rate", "must be within 0..1"};
    if (s.latency_ms && !(std::isfinite(*s.latency_ms) && *s.latency_ms >= 0))
        return StatusProblem{"latency_ms", "must be a non-negative number"};
    return std::nullopt;
}

std::optional<std::string> status_problem(const ModelStatus& s) {
    auto problem = check_status(s);
    if (!problem)
        return std::nullopt;
    return std::string(problem->member) + " " + std::string(problem->what);
}

namespace {

/// "5 min", "73 years", "90 s": a span for a person.
std::string span_words(std::chrono::milliseconds d) {
    using namespace std::chrono;
    auto s = duration_cast<seconds>(d).count();
    if (s < 120)
        return std::to_string(std::max<long long>(s, 0)) + " s";
    if (s < 7'200)
        return std::to_string(s / 60) + " min";
    if (s < 172'800)
        return std::to_string(s / 3'600) + " h";
    if (s < 2 * 31'557'600)
        return std::to_string(s / 86'400) + " days";
    return std::to_string(s / 31'557'600) + " years";
}

} // namespace

std::optional<std::string> future_problem(const ModelStatus& s, Timestamp now,
                                          std::chrono::milliseconds max_skew) {
    if (s.checked_at <= now + max_skew)
        return std::nullopt;
    auto ahead = std::chrono::duration_cast<std::chrono::milliseconds>(s.checked_at - now);
    return "checked_at " + format_timestamp(s.checked_at) + " is " + span_words(ahead) +
           " ahead of this clock (" + format_timestamp(now) + "), more than the allowed skew of " +
           span_words(max_skew) +
           " (max_clock_skew): a status from the future would keep every real status after it "
           "out; fix the writer's clock or the date";
}

std::optional<std::string> write_problem(const ModelStatus& s, Timestamp now,
                                         std::chrono::milliseconds max_skew) {
    if (auto problem = status_problem(s))
        return problem;
    return future_problem(s, now, max_skew);
}

SystemStats compute_stats(const Snapshot& snapshot) {
    SystemStats stats;
    stats.models = static_cast<std::int64_t>(snapshot.models.size());
    stats.providers = static_cast<std::int64_t>(snapshot.providers.size());
    stats.as_of = snapshot.generated_at;
    std::unordered_map<std::string_view, Health> health;
    for (const ModelStatus& s : snapshot.statuses)
        health.emplace(s.model_slug, s.health);
    for (const Model& m : snapshot.models) {
        if (m.active)
            ++stats.active_models;
        auto it = health.find(m.slug);
        switch (it == health.end() ? Health::unknown : it->second) {
        case Health::operational:
            ++stats.health.operational;
            break;
        case Health::degraded:
            ++stats.health.degraded;
            break;
        case Health::outage:
            ++stats.health.outage;
            break;
        case Health::unknown:
            ++stats.health.unknown;
            break;
        }
    }
    return stats;
}

} // namespace modelrepo::detail
