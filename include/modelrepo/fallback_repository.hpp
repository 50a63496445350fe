// SPDX-License-Identifier: MIT
/// @file
/// `FallbackRepository`: one `ModelRepository` over an ordered list of sources, each
/// behind its own `CircuitBreaker`; answers from the first source that can.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <modelrepo/circuit_breaker.hpp>
#include <modelrepo/model_repository.hpp>
#include <modelrepo/source_health.hpp>

namespace modelrepo {

struct FallbackConfig {
    BreakerConfig breaker; ///< for every source
    /// While a source's breaker is open, its `check_health()` is called this often, so
    /// it returns to service when it recovers even without traffic.
    std::chrono::milliseconds probe_interval{1'000};
    /// Events waiting for the subscriber beyond this are dropped (and counted).
    std::size_t event_queue_limit = 1'024;
    /// The latency histogram times one call in this many on each thread (1: every
    /// call); the sample is uniform, so its quantiles and mean stand for all calls,
    /// and its count is the number of timed calls. Reading a precise clock twice costs
    /// more than the rest of the chain (~35 ns on the reference machine). The breaker
    /// still sees the duration of every call: calls outside the sample are timed with
    /// the coarse monotonic clock (one kernel tick, a few ns to read; Linux), or
    /// precisely when `breaker.slow_call_duration` is under 50 ticks of it.
    std::uint32_t latency_sample_every = 8;
};

/// Counters of one source.
struct SourceMetrics {
    /// Upper bounds (seconds) of the latency histogram buckets; the last is +inf.
    static constexpr std::array<double, 10> latency_bounds_s{0.0005, 0.001, 0.005, 0.01, 0.025,
                                                             0.1,    0.5,   1,     5,    1e300};
    std::string source;
    std::uint64_t calls = 0; ///< calls made (rejections not included)
    std::uint64_t successes = 0;
    std::uint64_t answers = 0;                     ///< reads this source answered for the chain
    std::uint64_t rejections = 0;                  ///< calls the breaker refused
    std::map<std::string, std::uint64_t> failures; ///< by Errc name
    std::array<std::uint64_t, latency_bounds_s.size()> latency_buckets{};
    double latency_sum_s = 0;
    BreakerState breaker = BreakerState::closed;
    /// The Errc name of this source's last failure ("other" for a failure without one);
    /// empty when it never failed. It stays after the source recovers: compare
    /// `last_error_at` with the breaker state.
    std::string last_error;
    /// The same failure's `Errc`; nullopt when it never failed or had another category.
    std::optional<Errc> last_errc;
    std::optional<Timestamp> last_error_at;
    /// The source's `data_as_of()`.
    std::optional<Timestamp> data_as_of;
    /// The source's own metrics (`ModelRepository::backend_metrics()`: a pool, a copy).
    std::vector<MetricFamily> backend;
    /// What the source's own layers see of its origin (`HealthControl`); `unknown` for a
    /// source that offers none (an in-memory catalogue never goes down).
    SourceHealth health;
};

struct FallbackMetrics {
    std::vector<SourceMetrics> sources; ///< in chain order
    std::uint64_t all_failed = 0;       ///< reads no source could answer
    std::uint64_t events_dropped = 0;
    std::size_t serving = 0; ///< index of the source that answered the last read (any thread)
};

/// Which source of a chain answered one call (`FallbackRepository`'s overloads that take
/// one).
struct Provenance {
    std::size_t index = 0;   ///< in chain order: 0 is the first source
    std::string_view source; ///< its name; valid as long as the chain
    /// Answered by a source other than the first.
    bool backup() const noexcept { return index > 0; }
};

/// Reads go down the list until a source answers; the answer's provenance is in
/// `SystemStats::source`, in the `Provenance` the overloads fill in, in the metrics and
/// in events. Writes (`write_statuses`) go to the first source only, never silently to a
/// backup: while it is down the caller gets its error (or `circuit_open`), unless the
/// source itself keeps the write for later (its outbox). When every source fails,
/// `Errc::all_sources_failed` lists each source and its cause. A non-failure error
/// (`invalid_argument`, `not_found`) is an answer: it is returned, not retried.
///
/// Thread safety: all methods may be called concurrently. Events are delivered on one
/// internal thread in order; a slow or throwing subscriber delays or loses only events,
/// never calls. A second internal thread probes open sources. Both stop in the
/// destructor.
class FallbackRepository final : public ModelRepository {
public:
    /// Errors: `Errc::invalid_argument` for an empty list or a null source.
    static Result<std::shared_ptr<FallbackRepository>>
    create(std::vector<std::shared_ptr<ModelRepository>> sources, FallbackConfig config = {},
           CircuitBreaker::ClockFn clock = {});

    ~FallbackRepository() override;
    FallbackRepository(const FallbackRepository&) = delete;
    FallbackRepository& operator=(const FallbackRepository&) = delete;

    /// "fallback(a → b → c)"
    std::string_view name() const noexcept override;
    Result<std::int64_t> count_models() override;
    Result<std::int64_t> count_providers() override;
    Result<std::vector<ModelStatus>> list_statuses() override;
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override;
    Result<std::optional<Model>> find_model(std::string_view slug) override;
    Result<SystemStats> system_stats() override;
    /// Healthy when any source is.
    Result<void> check_health() override;
    /// To the primary only. While its breaker is open the primary is asked to keep the write
    /// for later without trying (`WriteOptions::source_down`); one without an outbox
    /// answers `Errc::circuit_open`. A write the primary queued counts as its failure for
    /// the breaker.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override;
    Result<std::vector<Model>> list_models() override;
    /// As list_models(): the same breakers and metrics (op `list_models`).
    Result<SharedModels> share_models() override;
    Result<Snapshot> export_snapshot() override;
    /// The serving source's changes (the one that answered last); when another source
    /// starts serving, `resync`. Sources that cannot watch are skipped; when none can:
    /// `Errc::not_supported`.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override;
    /// Every source's own metrics, with a `source` label (what prometheus() appends).
    std::vector<MetricFamily> backend_metrics() const override;
    /// The serving source's (the one that answered the last read, on any thread).
    std::optional<Timestamp> data_as_of() const override;
    /// That of the first source whose breaker lets calls through (an open breaker rejects
    /// at once, so reads go on to the next).
    bool reads_from_memory() const noexcept override;

    /// The reads again, each also saying which source answered (`answered_by`, set when
    /// the call succeeds).
    Result<std::int64_t> count_models(Provenance& answered_by);
    Result<std::int64_t> count_providers(Provenance& answered_by);
    Result<std::vector<ModelStatus>> list_statuses(Provenance& answered_by);
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs,
                                           Provenance& answered_by);
    Result<std::optional<Model>> find_model(std::string_view slug, Provenance& answered_by);
    Result<SystemStats> system_stats(Provenance& answered_by);
    Result<std::vector<Model>> list_models(Provenance& answered_by);
    Result<SharedModels> share_models(Provenance& answered_by);
    Result<Snapshot> export_snapshot(Provenance& answered_by);

    /// The first source's capabilities (its outbox, its copy, its migrations): the chain
    /// has none of its own.
    void* find_capability(const std::type_info& type) noexcept override;
    /// Replaces the event subscriber (called on the event thread).
    void subscribe(std::function<void(const FallbackEvent&)> subscriber);
    /// With `with_backend` false, `SourceMetrics::backend` stays empty: no source is
    /// asked for its own metrics (a pool's census, an outbox's contents read from its
    /// file), for callers that want the chain's counters and states only, often.
    FallbackMetrics metrics(bool with_backend = true) const;
    /// The metrics, each source's own included (its `backend_metrics()`: a PostgreSQL
    /// pool, a copy's age), in the Prometheus text exposition format, `modelrepo_*`
    /// names with `source` labels.
    std::string prometheus() const;
    /// The sources, in order.
    const std::vector<std::shared_ptr<ModelRepository>>& sources() const noexcept;
    /// The breaker of source `index`.
    CircuitBreaker& breaker(std::size_t index);

private:
    struct Chain; ///< the sources, their breakers and counters, the watches and events
    explicit FallbackRepository(std::unique_ptr<Chain> chain);
    std::unique_ptr<Chain> chain_;
};

} // namespace modelrepo
