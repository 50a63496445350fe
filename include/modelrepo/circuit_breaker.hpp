// SPDX-License-Identifier: MIT
/// @file
/// `CircuitBreaker`: stops calling a source that keeps failing, and tries it again
/// carefully. Usable on its own, and used by `FallbackRepository` for each source.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <modelrepo/error.hpp>

namespace modelrepo {

/// The knobs of a `CircuitBreaker`.
struct BreakerConfig {
    /// Count-based sliding window: the outcomes of the last `window_size` calls.
    std::size_t window_size = 20;
    /// No rate-based trip before this many calls are in the window.
    std::size_t minimum_calls = 5;
    /// Open when failures / calls in the window reach this (0..1].
    double failure_rate_threshold = 0.5;
    /// A successful call slower than this counts as slow...
    std::chrono::milliseconds slow_call_duration{2'000};
    /// ...and the breaker opens when slow / calls in the window reach this (0..1].
    double slow_call_rate_threshold = 0.8;
    /// Open after this many failures in a row, whatever the window says (0: off).
    std::size_t consecutive_failures = 5;
    /// How long the breaker stays open the first time...
    std::chrono::milliseconds open_duration{1'000};
    /// ...multiplied by this for each re-open without a clean close in between...
    double open_backoff_multiplier = 2.0;
    /// ...up to this.
    std::chrono::milliseconds max_open_duration{60'000};
    /// Each open time is shortened by a random share up to this (0..1), so that many
    /// processes do not retry in step.
    double jitter = 0.2;
    /// Trial calls let through at once in half-open; the rest are rejected. The breaker
    /// closes when this many trials succeeded, and opens again on a trial failure.
    std::size_t half_open_trials = 1;
};

enum class BreakerState { closed, open, half_open };
/// "closed", "open", "half_open".
std::string_view to_string(BreakerState s) noexcept;

/// A state change, as reported to `CircuitBreaker::on_transition`.
struct BreakerTransition {
    BreakerState from;
    BreakerState to;
    std::chrono::steady_clock::time_point at;
    std::string cause; ///< what tripped it ("5 consecutive failures; last: timeout: …")
};

/// Whether an error says the source is unwell (and so counts against its breaker):
/// unreachable, timeout, auth_failed, tls_failed, pool_exhausted, query_failed,
/// too_many_connections, database_missing, schema_missing, bad_data, rate_limited and
/// HTTP 5xx count; invalid_argument, read_only, not_found, not_supported, HTTP 4xx and
/// errors of other categories do not. `classify(error).trips_breaker`: the one table.
bool counts_as_failure(const Error& error) noexcept;

/// Closed (calls flow, outcomes recorded) → open (calls rejected with
/// `Errc::circuit_open` and `Error::retry_after`) → half-open (a few trial calls) →
/// closed or open again. See `BreakerConfig` for what trips it.
///
/// Thread safety: all methods may be called concurrently. `allow()` in the closed
/// state is one atomic load; recording an outcome takes a short mutex. Transition
/// callbacks run on the thread that caused the change, after the mutex is released;
/// keep them short (FallbackRepository hands them to its event thread).
///
/// Time comes from `clock` (default `std::chrono::steady_clock::now`), so tests can
/// drive it without sleeping.
class CircuitBreaker {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using ClockFn = std::function<TimePoint()>;

    explicit CircuitBreaker(BreakerConfig config = {}, ClockFn clock = {}, std::uint64_t seed = 0);
    ~CircuitBreaker();
    CircuitBreaker(const CircuitBreaker&) = delete;
    CircuitBreaker& operator=(const CircuitBreaker&) = delete;

    /// Permission for one call. On success the caller must report the outcome with
    /// `record()` (a trial slot is held until then). On rejection: `Errc::circuit_open`
    /// with `retry_after` set to the next trial time. `name` goes into the message.
    Result<void> allow(std::string_view name = "source");
    /// `allow()` without building the rejection: true when the call may proceed (the
    /// caller must then `record()` it). Lock-free while closed and while open.
    bool permit();
    /// The `Errc::circuit_open` error `allow()` would give now.
    Error rejection(std::string_view name) const;
    /// The outcome of a call `allow()` let through: `error` null on success.
    void record(const Error* error, std::chrono::nanoseconds elapsed);
    /// Runs `call` through the breaker: allow, time, record.
    template <class Fn>
    auto run(std::string_view name, Fn&& call) -> decltype(call()) {
        if (auto permit = allow(name); !permit)
            return permit.error();
        auto start = now();
        auto result = call();
        record(result ? nullptr : &result.error(), now() - start);
        return result;
    }

    /// Closes the breaker after an out-of-band success (a health probe).
    void probe_succeeded();

    BreakerState state() const noexcept;
    /// How many times it opened since the last clean close.
    std::uint32_t consecutive_opens() const noexcept;
    /// Replaces the transition callback.
    void on_transition(std::function<void(const BreakerTransition&)> callback);

private:
    TimePoint now() const;
    struct Machine; ///< the state, the window of outcomes, the trial calls
    std::unique_ptr<Machine> machine_;
};

} // namespace modelrepo
