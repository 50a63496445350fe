// SPDX-License-Identifier: MIT
// The chain's machinery behind FallbackRepository (for src/fallback only): each source's
// breaker and counters (Source), the clock its calls are timed by, and the chain itself
// (FallbackRepository::Chain): reads tried in order, watches, events, the prober.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <thread>

#include <time.h>

#include <modelrepo/fallback_repository.hpp>

#include "../core/capabilities.hpp"
#include "event_queue.hpp"

namespace modelrepo {

namespace detail::fallback {

using namespace std::chrono;

inline constexpr int errc_slots = static_cast<int>(last_errc) + 2; // + "other"

/// The hot counters of a source, one set per shard: threads add to their own shard's
/// cache line, so readers on several cores do not bounce one line between them.
struct alignas(64) CounterShard {
    std::atomic<std::uint64_t> answers{0};
    std::array<std::atomic<std::uint64_t>, SourceMetrics::latency_bounds_s.size()> latency{};
    std::atomic<std::uint64_t> latency_ns{0};
};
inline constexpr std::size_t counter_shards = 16;

/// This thread's shard: handed out round-robin on first use. (Thread-locals here are
/// initial-exec: a direct %fs-relative access instead of a __tls_get_addr call, which
/// matters at these call costs; they are a few bytes of the static TLS surplus.)
inline std::size_t my_shard() {
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
inline const Error* failure_of(const Result<WriteReceipt>& result) {
    if (!result)
        return &result.error();
    return result.value().deferred_because ? &*result.value().deferred_because : nullptr;
}
template <class T>
const Error* failure_of(const Result<T>& result) {
    return result ? nullptr : &result.error();
}

} // namespace detail::fallback

using detail::fallback::CallClock;
using detail::fallback::errc_slots;
using detail::fallback::failure_of;
using detail::fallback::Source;

struct FallbackRepository::Chain {
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
                auto relay = [this, i](const CatalogChange& change) {
                    // Only the source that serves speaks for the chain.
                    if (last_served.load(std::memory_order_relaxed) == static_cast<int>(i))
                        hub.publish(change);
                };
                // From the thread that publishes, where the source offers it (a copy): one
                // thread less between the source and the chain's watchers.
                auto* relays = sources[i]->repo->capability<detail::ChangeRelay>();
                auto sub = relays ? relays->relay(relay) : sources[i]->repo->watch(relay);
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

    explicit Chain(const FallbackConfig& c)
        : config(c)
        , events(c.event_queue_limit)
        , call_clock(c.latency_sample_every, c.breaker.slow_call_duration) {}

    void emit(FallbackEvent::Kind kind, const std::string& source, std::string cause) {
        events.push(
            {kind, std::chrono::system_clock::now(), source, std::move(cause), std::nullopt});
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
    /// next to the value, so each move would cost two dozen std::chrono::nanoseconds.
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

} // namespace modelrepo
