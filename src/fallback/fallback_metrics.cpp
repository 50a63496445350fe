// SPDX-License-Identifier: MIT
// FallbackRepository's numbers: each source's calls, answers, failures by cause, latency,
// breaker and health (metrics()), and the same in Prometheus' text format (prometheus()).
#include <modelrepo/fallback_repository.hpp>

#include "chain.hpp"

namespace modelrepo {

using namespace std::chrono;

FallbackMetrics FallbackRepository::metrics(bool with_backend) const {
    FallbackMetrics out;
    out.all_failed = chain_->all_failed.load(std::memory_order_relaxed);
    out.events_dropped = chain_->events.dropped();
    out.serving = static_cast<std::size_t>(chain_->last_served.load(std::memory_order_relaxed));
    for (const auto& s : chain_->sources) {
        SourceMetrics m;
        m.source = s->name;
        s->sum_into(m);
        m.successes = m.answers + s->write_successes.load(std::memory_order_relaxed);
        m.rejections = s->rejections.load(std::memory_order_relaxed);
        for (int i = 0; i < errc_slots; ++i)
            if (auto n = s->failures[static_cast<std::size_t>(i)].load(std::memory_order_relaxed))
                m.failures[i == errc_slots - 1 ? "other"
                                               : std::string(to_string(static_cast<Errc>(i)))] = n;
        m.calls = m.successes;
        for (const auto& [errc, n] : m.failures)
            m.calls += n;
        m.breaker = s->breaker->state();
        if (int slot = s->last_failure_slot.load(std::memory_order_relaxed); slot >= 0) {
            m.last_error =
                slot == errc_slots - 1 ? "other" : std::string(to_string(static_cast<Errc>(slot)));
            if (slot != errc_slots - 1)
                m.last_errc = static_cast<Errc>(slot);
            m.last_error_at = Timestamp(duration_cast<Timestamp::duration>(
                nanoseconds(s->last_failure_ns.load(std::memory_order_relaxed))));
        }
        m.data_as_of = s->repo->data_as_of();
        if (s->health)
            m.health = s->health->source_health();
        if (with_backend)
            m.backend = s->repo->backend_metrics();
        out.sources.push_back(std::move(m));
    }
    return out;
}

std::string FallbackRepository::prometheus() const {
    using Type = MetricFamily::Type;
    FallbackMetrics m = metrics();
    std::vector<MetricFamily> families;
    auto per_source = [&](const char* name, Type type, const char* help, auto value) {
        MetricFamily f{name, type, help, {}};
        for (const auto& s : m.sources)
            f.add({{"source", s.source}}, static_cast<double>(value(s)));
        families.push_back(std::move(f));
    };
    per_source("modelrepo_source_calls_total", Type::counter,
               "Calls made to a source (rejections excluded).",
               [](const SourceMetrics& s) { return s.calls; });
    per_source("modelrepo_source_successes_total", Type::counter,
               "Calls a source completed without error.",
               [](const SourceMetrics& s) { return s.successes; });
    per_source("modelrepo_source_answers_total", Type::counter,
               "Reads of the chain this source answered.",
               [](const SourceMetrics& s) { return s.answers; });
    MetricFamily failures{
        "modelrepo_source_failures_total", Type::counter, "Failed calls by error code.", {}};
    for (const auto& s : m.sources)
        for (const auto& [errc, n] : s.failures)
            failures.add({{"source", s.source}, {"errc", errc}}, static_cast<double>(n));
    families.push_back(std::move(failures));
    per_source("modelrepo_source_rejections_total", Type::counter,
               "Calls the circuit breaker refused.",
               [](const SourceMetrics& s) { return s.rejections; });
    {
        // Where each source is in the chain, and which answered the last read: an alert on
        // "served by a backup" needs no list of source names.
        MetricFamily position{"modelrepo_source_position",
                              Type::gauge,
                              "The source's place in the chain: 0 the primary, 1.. backups.",
                              {}};
        for (std::size_t i = 0; i < m.sources.size(); ++i)
            position.add({{"source", m.sources[i].source}}, static_cast<double>(i));
        families.push_back(std::move(position));
        families.push_back({"modelrepo_serving_position",
                            Type::gauge,
                            "The place in the chain of the source that answered the last read "
                            "(0: the primary; more: a backup is serving).",
                            {}});
        families.back().add({}, static_cast<double>(m.serving));
        std::uint64_t backup_answers = 0;
        for (std::size_t i = 1; i < m.sources.size(); ++i)
            backup_answers += m.sources[i].answers;
        families.push_back({"modelrepo_backup_answers_total",
                            Type::counter,
                            "Reads of the chain a backup (not the primary) answered.",
                            {}});
        families.back().add({}, static_cast<double>(backup_answers));
    }
    per_source("modelrepo_source_up", Type::gauge,
               "1 while the source's origin answers its layers (its pool, feed, fetches), 0 "
               "while it is down, whoever answers the reads.",
               [](const SourceMetrics& s) { return s.health.down() ? 0 : 1; });
    per_source("modelrepo_source_copy_stale", Type::gauge,
               "1 while the source's last-known copy is out of sync past max_stale (reads no "
               "longer fall back to it).",
               [](const SourceMetrics& s) { return s.health.copy_stale ? 1 : 0; });
    {
        MetricFamily cause{"modelrepo_source_down_cause",
                           Type::gauge,
                           "1 for the cause a source is down for (errc), while it is down.",
                           {}};
        for (const auto& s : m.sources)
            if (s.health.down())
                cause.add({{"source", s.source},
                           {"errc", s.health.errc ? std::string(to_string(*s.health.errc))
                                                  : std::string("other")}},
                          1);
        families.push_back(std::move(cause));
    }
    per_source("modelrepo_breaker_state", Type::gauge,
               "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
               [](const SourceMetrics& s) { return static_cast<int>(s.breaker); });
    MetricFamily latency{"modelrepo_source_latency_seconds",
                         Type::histogram,
                         "Latency of calls to a source (a uniform sample: one call in "
                         "latency_sample_every per thread).",
                         {}};
    for (const auto& s : m.sources)
        latency.add_histogram({{"source", s.source}}, SourceMetrics::latency_bounds_s,
                              s.latency_buckets, s.latency_sum_s);
    families.push_back(std::move(latency));
    families.push_back(
        {"modelrepo_all_sources_failed_total", Type::counter, "Reads no source could answer.", {}});
    families.back().add({}, static_cast<double>(m.all_failed));
    families.push_back({"modelrepo_events_dropped_total",
                        Type::counter,
                        "Events dropped for a slow subscriber, or left at shutdown.",
                        {}});
    families.back().add({}, static_cast<double>(m.events_dropped));
    // What each source says of itself (a pool, a copy, a feed), labelled with its name.
    for (const auto& s : m.sources)
        for (const auto& family : s.backend)
            merge_into(families, family, {{"source", s.source}});
    return to_prometheus(families);
}

} // namespace modelrepo
