// SPDX-License-Identifier: MIT
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <thread>

#include <time.h>

#include <modelrepo/fallback_repository.hpp>

#include "event_queue.hpp"

namespace modelrepo {

namespace {

using namespace std::chrono;

constexpr int errc_slots = static_cast<int>(last_errc) + 2; // + "other"

/// The hot counters of a source, one set per shard: threads add to their own shard's
/// cache line, so readers on several cores do not bounce one line between them.
struct alignas(64) CounterShard {
    std::atomic<std::uint64_t> answers{0};
    std::array<std::atomic<std::uint64_t>, SourceMetrics::latency_bounds_s.size()> latency{};
    std::atomic<std::uint64_t> latency_ns{0};
};
constexpr std::size_t counter_shards = 16;

/// This thread's shard: handed out round-robin on first use. (Thread-locals here are
/// initial-exec: a direct %fs-relative access instead of a __tls_get_addr call, which
/// matters at these call costs; they are a few bytes of the static TLS surplus.)
std::size_t my_shard() {
    static std::atomic<std::size_t> next{0};
    [[gnu::tls_model("initial-exec")]] thread_local std::size_t shard = SIZE_MAX;
    if (shard == SIZE_MAX)
        shard = next.fetch_add(1, std::memory_order_relaxed) % counter_shards;
    return shard;
}

/// One source of the chain: the repository, its breaker and its counters (atomics, so
/// the call path takes no lock for them).
struct Source {
    std::shared_ptr<ModelRepository> repo;
    std::string name;
    std::unique_ptr<CircuitBreaker> breaker;
    HealthControl* health = nullptr; ///< what its own layers see, when it offers that
    std::atomic<std::uint64_t> write_successes{0}, rejections{0};
    std::array<std::atomic<std::uint64_t>, errc_slots> failures{};
    std::array<CounterShard, counter_shards> shards;

    void count_answer() { shards[my_shard()].answers.fetch_add(1, std::memory_order_relaxed); }

    void observe(nanoseconds elapsed) {
        CounterShard& shard = shards[my_shard()];
        double s = duration<double>(elapsed).count();
        for (std::size_t i = 0; i < shard.latency.size(); ++i)
            if (s <= SourceMetrics::latency_bounds_s[i]) {
                shard.latency[i].fetch_add(1, std::memory_order_relaxed);
                break;
            }
        shard.latency_ns.fetch_add(static_cast<std::uint64_t>(elapsed.count()),
                                   std::memory_order_relaxed);
    }

    /// Adds this source's shards into `m`.
    void sum_into(SourceMetrics& m) const {
        std::uint64_t latency_ns = 0;
        for (const auto& shard : shards) {
            m.answers += shard.answers.load(std::memory_order_relaxed);
            for (std::size_t i = 0; i < m.latency_buckets.size(); ++i)
                m.latency_buckets[i] += shard.latency[i].load(std::memory_order_relaxed);
            latency_ns += shard.latency_ns.load(std::memory_order_relaxed);
        }
        m.latency_sum_s = static_cast<double>(latency_ns) / 1e9;
    }

    /// The last failure's slot (-1: none yet) and when (system clock, ns since the epoch):
    /// for health reports. Written on the failure path only.
    std::atomic<int> last_failure_slot{-1};
    std::atomic<std::int64_t> last_failure_ns{0};

    void count_failure(const Error& error) {
        auto code = error.errc();
        int slot = code ? static_cast<int>(*code) : errc_slots - 1;
        failures[static_cast<std::size_t>(slot)].fetch_add(1, std::memory_order_relaxed);
        last_failure_ns.store(
            duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count(),
            std::memory_order_relaxed);
        last_failure_slot.store(slot, std::memory_order_relaxed);
    }
};

/// The clocks a call is timed with: the precise one (steady_clock, ~17 ns to read on
/// the reference machine) for the latency histogram's sample, the coarse one (~4 ns,
/// one kernel tick of resolution) for the breaker's slow-call check on the others.
class CallClock {
public:
    CallClock(std::uint32_t sample_every, nanoseconds slow_call_duration)
        : sample_every_(std::max<std::uint32_t>(sample_every, 1))
        , coarse_enough_(slow_call_duration >= 50 * coarse_resolution()) {}

    /// A stopwatch for one call: `sampled` when its duration goes into the histogram.
    struct Watch {
        bool sampled;
        bool precise;
        std::int64_t start;
    };

    Watch start() const {
        [[gnu::tls_model("initial-exec")]] thread_local std::uint32_t since_sample = 0;
        bool sampled = ++since_sample >= sample_every_;
        if (sampled)
            since_sample = 0;
        bool precise = sampled || !coarse_enough_;
        return {sampled, precise, read(precise)};
    }

    static nanoseconds elapsed(const Watch& w) { return nanoseconds(read(w.precise) - w.start); }

private:
    static std::int64_t read(bool precise) {
#ifdef CLOCK_MONOTONIC_COARSE
        if (!precise) {
            timespec ts;
            clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
            return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
        }
#endif
        (void)precise;
        return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
    }

    static nanoseconds coarse_resolution() {
#ifdef CLOCK_MONOTONIC_COARSE
        timespec res;
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
            return seconds(res.tv_sec) + nanoseconds(res.tv_nsec);
#endif
        return hours(1); // no coarse clock: always precise
    }

    std::uint32_t sample_every_;
    bool coarse_enough_;
};

/// A write the source kept for later is its failure to take it now, for the breaker.
const Error* failure_of(const Result<WriteReceipt>& result) {
    if (!result)
        return &result.error();
    return result.value().deferred_because ? &*result.value().deferred_because : nullptr;
}
template <class T>
const Error* failure_of(const Result<T>& result) {
    return result ? nullptr : &result.error();
}

} // namespace

struct FallbackRepository::Impl {
    FallbackConfig config;
    std::vector<std::shared_ptr<ModelRepository>> repos;
    std::vector<std::unique_ptr<Source>> sources;
    std::string name;
    std::atomic<std::uint64_t> all_failed{0};
    std::atomic<int> last_served{0}; ///< index of the source that answered last
    detail::EventQueue<FallbackEvent> events;
    CallClock call_clock;

    /// watch(): the sources' subscriptions, made on the first watch() (under watch_mutex);
    /// what the serving source reports goes on to the chain's watchers.
    ChangeHub hub;
    std::mutex watch_mutex;
    std::vector<Subscription> source_watches;
    bool watching = false;
    std::atomic<bool> watching_now{false};

    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) {
        std::lock_guard lock(watch_mutex);
        if (!watching) {
            std::string causes;
            for (std::size_t i = 0; i < sources.size(); ++i) {
                auto sub = sources[i]->repo->watch([this, i](const CatalogChange& change) {
                    // Only the source that serves speaks for the chain.
                    if (last_served.load(std::memory_order_relaxed) == static_cast<int>(i))
                        hub.publish(change);
                });
                if (sub)
                    source_watches.push_back(std::move(sub).value());
                else
                    causes += "\n  " + sources[i]->name + ": " + sub.error().to_string();
            }
            if (source_watches.empty()) {
                Error error = make_error(Errc::not_supported,
                                         "no source of " + name + " reports changes:" + causes);
                error.source = name;
                return error;
            }
            watching = true;
            watching_now.store(true, std::memory_order_release);
        }
        return hub.subscribe(std::move(on_change));
    }

    /// The sources' own health events, forwarded into the chain's events.
    std::vector<Subscription> health_watches;

    // The probe thread.
    std::mutex probe_mutex;
    std::condition_variable probe_wake;
    bool stopping = false;
    std::thread prober;

    explicit Impl(const FallbackConfig& c)
        : config(c)
        , events(c.event_queue_limit)
        , call_clock(c.latency_sample_every, c.breaker.slow_call_duration) {}

    void emit(FallbackEvent::Kind kind, const std::string& source, std::string cause) {
        events.push({kind, system_clock::now(), source, std::move(cause), std::nullopt});
    }

    void served_by(std::size_t index, const std::string& causes) {
        if (last_served.load(std::memory_order_relaxed) == static_cast<int>(index))
            return;
        int previous = last_served.exchange(static_cast<int>(index), std::memory_order_relaxed);
        if (previous == static_cast<int>(index))
            return;
        // Watchers held what the previous source said: they must re-read.
        if (watching_now.load(std::memory_order_acquire))
            hub.publish({CatalogChange::Kind::resync, "", 0, Clock::now()});
        if (index > 0)
            emit(FallbackEvent::Kind::served_by_backup, sources[index]->name,
                 causes.empty() ? "earlier sources rejected by their breakers"
                                : "earlier sources failed:" + causes);
        else
            emit(FallbackEvent::Kind::primary_recovered, sources[0]->name,
                 "answered again after " + sources[static_cast<std::size_t>(previous)]->name);
    }

    /// Goes down the chain until a source answers `call`.
    ///
    /// Written so that the answer is never moved: it is built in place by the source
    /// (guaranteed elision into `result`) and returned by NRVO, since every return
    /// statement names `result`. A Result<T> of Boost 1.74's Outcome holds an Error
    /// next to the value, so each move would cost two dozen nanoseconds.
    template <class T, class Fn>
    Result<T> read(const char* operation, Fn&& call, Provenance* answered_by = nullptr) {
        std::string causes; // of failed calls; rejections are described only if all fail
        std::uint64_t rejected = 0;
        std::size_t i = permitted_from(0, rejected);
        Result<T> result = i < sources.size()
                               ? attempt<T>(*sources[i], call)
                               : Result<T>(all_sources_failed(operation, causes, rejected));
        while (i < sources.size() && !result) {
            Source& s = *sources[i];
            s.count_failure(result.error());
            if (classify(result.error()).answer)
                return result;
            causes += "\n  " + s.name + ": " + result.error().to_string();
            i = permitted_from(i + 1, rejected);
            result = i < sources.size()
                         ? attempt<T>(*sources[i], call)
                         : Result<T>(all_sources_failed(operation, causes, rejected));
        }
        if (result) {
            // successes = answers + successful writes; calls = successes + failures:
            // one counter per call on the hot path.
            sources[i]->count_answer();
            served_by(i, causes);
            if (answered_by)
                *answered_by = {i, sources[i]->name};
        }
        return result;
    }

    /// The first source from `i` on whose breaker lets a call through; the ones
    /// skipped are marked in `rejected`.
    std::size_t permitted_from(std::size_t i, std::uint64_t& rejected) {
        for (; i < sources.size(); ++i) {
            Source& s = *sources[i];
            if (s.breaker->permit())
                return i;
            s.rejections.fetch_add(1, std::memory_order_relaxed);
            rejected |= std::uint64_t{1} << std::min<std::size_t>(i, 63);
        }
        return i;
    }

    /// One call to a source the breaker let through: timed and recorded.
    template <class T, class Fn>
    Result<T> attempt(Source& s, Fn&& call) {
        auto watch = call_clock.start();
        Result<T> result = call(*s.repo);
        auto elapsed = CallClock::elapsed(watch);
        s.breaker->record(failure_of(result), elapsed);
        if (watch.sampled)
            s.observe(elapsed);
        return result;
    }

    Error all_sources_failed(const char* operation, std::string& causes, std::uint64_t rejected) {
        all_failed.fetch_add(1, std::memory_order_relaxed);
        for (std::size_t i = 0; i < sources.size(); ++i)
            if (rejected & (std::uint64_t{1} << std::min<std::size_t>(i, 63)))
                causes += "\n  " + sources[i]->name + ": " +
                          sources[i]->breaker->rejection(sources[i]->name).to_string();
        Error error = make_error(Errc::all_sources_failed,
                                 std::string("no source could answer ") + operation + ":" + causes);
        error.source = name;
        return error;
    }

    void probe_loop() {
        std::unique_lock lock(probe_mutex);
        while (!stopping) {
            probe_wake.wait_for(lock, config.probe_interval, [&] { return stopping; });
            if (stopping)
                break;
            lock.unlock();
            for (auto& s : sources) {
                if (s->breaker->state() != BreakerState::open)
                    continue;
                if (s->repo->check_health())
                    s->breaker->probe_succeeded();
            }
            lock.lock();
        }
    }
};

FallbackRepository::FallbackRepository(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

FallbackRepository::~FallbackRepository() {
    // The sources stop calling into the hub and the event queue before they go.
    {
        std::lock_guard lock(impl_->watch_mutex);
        impl_->source_watches.clear();
    }
    impl_->health_watches.clear();
    {
        std::lock_guard lock(impl_->probe_mutex);
        impl_->stopping = true;
    }
    impl_->probe_wake.notify_all();
    if (impl_->prober.joinable())
        impl_->prober.join();
    impl_->events.stop();
}

Result<std::shared_ptr<FallbackRepository>>
FallbackRepository::create(std::vector<std::shared_ptr<ModelRepository>> sources,
                           FallbackConfig config, CircuitBreaker::ClockFn clock) {
    if (sources.empty())
        return make_error(Errc::invalid_argument, "FallbackRepository needs at least one source");
    for (const auto& s : sources)
        if (!s)
            return make_error(Errc::invalid_argument, "FallbackRepository: a source is null");
    auto impl = std::make_unique<Impl>(config);
    impl->repos = sources;
    impl->name = "fallback(";
    for (std::size_t i = 0; i < sources.size(); ++i) {
        auto source = std::make_unique<Source>();
        source->repo = sources[i];
        source->name = std::string(sources[i]->name());
        source->breaker = std::make_unique<CircuitBreaker>(config.breaker, clock);
        impl->name += (i ? " -> " : "") + source->name;
        impl->sources.push_back(std::move(source));
    }
    impl->name += ")";
    Impl* raw = impl.get();
    for (auto& s : impl->sources) {
        std::string name = s->name;
        s->breaker->on_transition([raw, name](const BreakerTransition& t) {
            auto kind = t.to == BreakerState::open        ? FallbackEvent::Kind::breaker_opened
                        : t.to == BreakerState::half_open ? FallbackEvent::Kind::breaker_half_open
                                                          : FallbackEvent::Kind::breaker_closed;
            raw->emit(kind, name, t.cause);
        });
        // What the source's own layers see (its pool, its feed, its copy): the same stream.
        if ((s->health = s->repo->capability<HealthControl>()))
            impl->health_watches.push_back(
                s->health->on_health_event([raw](const FallbackEvent& e) { raw->events.push(e); }));
    }
    impl->prober = std::thread([raw] { raw->probe_loop(); });
    return std::shared_ptr<FallbackRepository>(new FallbackRepository(std::move(impl)));
}

std::string_view FallbackRepository::name() const noexcept {
    return impl_->name;
}

Result<std::int64_t> FallbackRepository::count_models() {
    return impl_->read<std::int64_t>("count_models",
                                     [](ModelRepository& r) { return r.count_models(); });
}
Result<std::int64_t> FallbackRepository::count_models(Provenance& answered_by) {
    return impl_->read<std::int64_t>(
        "count_models", [](ModelRepository& r) { return r.count_models(); }, &answered_by);
}

Result<std::int64_t> FallbackRepository::count_providers() {
    return impl_->read<std::int64_t>("count_providers",
                                     [](ModelRepository& r) { return r.count_providers(); });
}
Result<std::int64_t> FallbackRepository::count_providers(Provenance& answered_by) {
    return impl_->read<std::int64_t>(
        "count_providers", [](ModelRepository& r) { return r.count_providers(); }, &answered_by);
}

Result<std::vector<ModelStatus>> FallbackRepository::list_statuses() {
    return impl_->read<std::vector<ModelStatus>>(
        "list_statuses", [](ModelRepository& r) { return r.list_statuses(); });
}
Result<std::vector<ModelStatus>> FallbackRepository::list_statuses(Provenance& answered_by) {
    return impl_->read<std::vector<ModelStatus>>(
        "list_statuses", [](ModelRepository& r) { return r.list_statuses(); }, &answered_by);
}

Result<std::vector<Model>> FallbackRepository::find_models(std::span<const std::string> slugs) {
    return impl_->read<std::vector<Model>>(
        "find_models", [&](ModelRepository& r) { return r.find_models(slugs); });
}
Result<std::vector<Model>> FallbackRepository::find_models(std::span<const std::string> slugs,
                                                           Provenance& answered_by) {
    return impl_->read<std::vector<Model>>(
        "find_models", [&](ModelRepository& r) { return r.find_models(slugs); }, &answered_by);
}

Result<std::optional<Model>> FallbackRepository::find_model(std::string_view slug) {
    return impl_->read<std::optional<Model>>(
        "find_model", [&](ModelRepository& r) { return r.find_model(slug); });
}
Result<std::optional<Model>> FallbackRepository::find_model(std::string_view slug,
                                                            Provenance& answered_by) {
    return impl_->read<std::optional<Model>>(
        "find_model", [&](ModelRepository& r) { return r.find_model(slug); }, &answered_by);
}

Result<SystemStats> FallbackRepository::system_stats() {
    return impl_->read<SystemStats>("system_stats",
                                    [](ModelRepository& r) { return r.system_stats(); });
}
Result<SystemStats> FallbackRepository::system_stats(Provenance& answered_by) {
    return impl_->read<SystemStats>(
        "system_stats", [](ModelRepository& r) { return r.system_stats(); }, &answered_by);
}

Result<std::vector<Model>> FallbackRepository::list_models() {
    return impl_->read<std::vector<Model>>("list_models",
                                           [](ModelRepository& r) { return r.list_models(); });
}
Result<SharedModels> FallbackRepository::share_models() {
    return impl_->read<SharedModels>("list_models",
                                     [](ModelRepository& r) { return r.share_models(); });
}
Result<SharedModels> FallbackRepository::share_models(Provenance& answered_by) {
    return impl_->read<SharedModels>(
        "list_models", [](ModelRepository& r) { return r.share_models(); }, &answered_by);
}
Result<std::vector<Model>> FallbackRepository::list_models(Provenance& answered_by) {
    return impl_->read<std::vector<Model>>(
        "list_models", [](ModelRepository& r) { return r.list_models(); }, &answered_by);
}

Result<Snapshot> FallbackRepository::export_snapshot() {
    return impl_->read<Snapshot>("export_snapshot",
                                 [](ModelRepository& r) { return r.export_snapshot(); });
}
Result<Snapshot> FallbackRepository::export_snapshot(Provenance& answered_by) {
    return impl_->read<Snapshot>(
        "export_snapshot", [](ModelRepository& r) { return r.export_snapshot(); }, &answered_by);
}

Result<void> FallbackRepository::check_health() {
    std::string causes;
    for (auto& s : impl_->sources) {
        auto r = s->repo->check_health();
        if (r)
            return success();
        causes += "\n  " + s->name + ": " + r.error().to_string();
    }
    return make_error(Errc::all_sources_failed, "no source is healthy:" + causes);
}

Result<WriteReceipt> FallbackRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                        const WriteOptions& options) {
    // Writes go to the primary only: a backup answering a write would lose it.
    Source& primary = *impl_->sources.front();
    if (auto permit = primary.breaker->allow(primary.name); !permit) {
        primary.rejections.fetch_add(1, std::memory_order_relaxed);
        // The primary is known to be down: it may still keep the write for later.
        Error cause = permit.error();
        cause.message =
            "status writes go to the primary only, and it is not taking calls: " + cause.message;
        return primary.repo->write_statuses(statuses, WriteOptions{std::move(cause)});
    }
    auto result = impl_->attempt<WriteReceipt>(
        primary, [&](ModelRepository& r) { return r.write_statuses(statuses, options); });
    if (const Error* failure = failure_of(result))
        primary.count_failure(*failure);
    else
        primary.write_successes.fetch_add(1, std::memory_order_relaxed);
    return result;
}

void* FallbackRepository::find_capability(const std::type_info& type) noexcept {
    return impl_->sources.front()->repo->find_capability(type);
}

Result<Subscription>
FallbackRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    return impl_->watch(std::move(on_change));
}

std::vector<MetricFamily> FallbackRepository::backend_metrics() const {
    std::vector<MetricFamily> out;
    for (const auto& s : impl_->sources)
        for (auto& family : s->repo->backend_metrics())
            merge_into(out, std::move(family), {{"source", s->name}});
    return out;
}

std::optional<Timestamp> FallbackRepository::data_as_of() const {
    auto index = static_cast<std::size_t>(impl_->last_served.load(std::memory_order_relaxed));
    return impl_->sources[index]->repo->data_as_of();
}

bool FallbackRepository::reads_from_memory() const noexcept {
    for (const auto& s : impl_->sources)
        if (s->breaker->state() != BreakerState::open)
            return s->repo->reads_from_memory();
    return false;
}

void FallbackRepository::subscribe(std::function<void(const FallbackEvent&)> subscriber) {
    impl_->events.subscribe(std::move(subscriber));
}

const std::vector<std::shared_ptr<ModelRepository>>& FallbackRepository::sources() const noexcept {
    return impl_->repos;
}

CircuitBreaker& FallbackRepository::breaker(std::size_t index) {
    return *impl_->sources.at(index)->breaker;
}

FallbackMetrics FallbackRepository::metrics(bool with_backend) const {
    FallbackMetrics out;
    out.all_failed = impl_->all_failed.load(std::memory_order_relaxed);
    out.events_dropped = impl_->events.dropped();
    out.serving = static_cast<std::size_t>(impl_->last_served.load(std::memory_order_relaxed));
    for (const auto& s : impl_->sources) {
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
