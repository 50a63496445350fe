// SPDX-License-Identifier: MIT
#include <atomic>
#include <mutex>
#include <random>
#include <vector>

#include <modelrepo/circuit_breaker.hpp>

namespace modelrepo {

namespace {

using namespace std::chrono;

std::string describe(const Error& error) {
    return error.to_string().substr(0, 200);
}

} // namespace

std::string_view to_string(BreakerState s) noexcept {
    switch (s) {
    case BreakerState::closed:
        return "closed";
    case BreakerState::open:
        return "open";
    case BreakerState::half_open:
        break;
    }
    return "half_open";
}

bool counts_as_failure(const Error& error) noexcept {
    return classify(error).trips_breaker;
}

struct CircuitBreaker::Machine {
    BreakerConfig config;
    ClockFn clock;

    std::atomic<BreakerState> state{BreakerState::closed};
    std::atomic<std::uint32_t> opens{0};

    std::mutex mutex; ///< guards everything below
    struct Outcome {
        bool failed;
        bool slow;
    };
    std::vector<Outcome> window; ///< ring buffer of the last calls (closed state)
    std::size_t next = 0;
    std::size_t filled = 0;
    std::size_t failures = 0;
    std::size_t slow = 0;
    std::size_t consecutive = 0;
    std::string last_cause;
    TimePoint open_until{};
    /// open_until in nanoseconds, readable without the mutex.
    std::atomic<std::int64_t> open_until_ns{0};
    /// The window is full and holds only fast successes: recording another changes
    /// nothing, so it needs no lock.
    std::atomic<bool> clean{false};
    std::size_t trials_in_flight = 0;
    std::size_t trial_successes = 0;
    std::mt19937_64 random;
    std::function<void(const BreakerTransition&)> callback;

    void reset_window() {
        window.assign(config.window_size, Outcome{false, false});
        next = filled = failures = slow = consecutive = 0;
    }

    /// Changes state under the mutex; returns the transition to report after unlock.
    BreakerTransition transition(BreakerState to, TimePoint at, std::string cause) {
        BreakerState from = state.load(std::memory_order_relaxed);
        if (to == BreakerState::open) {
            std::uint32_t n = opens.fetch_add(1, std::memory_order_relaxed) + 1;
            double factor = 1.0;
            for (std::uint32_t i = 1; i < n; ++i)
                factor *= config.open_backoff_multiplier;
            double ms = std::min<double>(static_cast<double>(config.open_duration.count()) * factor,
                                         static_cast<double>(config.max_open_duration.count()));
            std::uniform_real_distribution<double> spread(1.0 - config.jitter, 1.0);
            open_until =
                at + duration_cast<nanoseconds>(duration<double, std::milli>(ms * spread(random)));
            // permit() reads this without the mutex while open: rejections take no lock.
            open_until_ns.store(duration_cast<nanoseconds>(open_until.time_since_epoch()).count(),
                                std::memory_order_relaxed);
            trials_in_flight = trial_successes = 0;
        } else if (to == BreakerState::closed) {
            opens.store(0, std::memory_order_relaxed); // a clean close resets the backoff
            reset_window();
        } else {
            trials_in_flight = trial_successes = 0;
        }
        state.store(to, std::memory_order_release);
        return {from, to, at, std::move(cause)};
    }

    void report(const std::optional<BreakerTransition>& t) {
        if (!t)
            return;
        std::function<void(const BreakerTransition&)> cb;
        {
            std::lock_guard lock(mutex);
            cb = callback;
        }
        if (cb)
            cb(*t);
    }
};

CircuitBreaker::CircuitBreaker(BreakerConfig config, ClockFn clock, std::uint64_t seed)
    : machine_(std::make_unique<Machine>()) {
    if (config.window_size == 0)
        config.window_size = 1;
    if (config.half_open_trials == 0)
        config.half_open_trials = 1;
    machine_->config = config;
    machine_->clock = clock ? std::move(clock) : ClockFn([] { return steady_clock::now(); });
    machine_->random.seed(seed ? seed : std::random_device{}());
    machine_->reset_window();
}

CircuitBreaker::~CircuitBreaker() = default;

CircuitBreaker::TimePoint CircuitBreaker::now() const {
    return machine_->clock();
}

BreakerState CircuitBreaker::state() const noexcept {
    return machine_->state.load(std::memory_order_acquire);
}

std::uint32_t CircuitBreaker::consecutive_opens() const noexcept {
    return machine_->opens.load(std::memory_order_relaxed);
}

void CircuitBreaker::on_transition(std::function<void(const BreakerTransition&)> callback) {
    std::lock_guard lock(machine_->mutex);
    machine_->callback = std::move(callback);
}

bool CircuitBreaker::permit() {
    BreakerState s = machine_->state.load(std::memory_order_acquire);
    if (s == BreakerState::closed)
        return true;
    // While open and before the open time ends: rejected without the mutex. The state is
    // stored (release) after open_until_ns, so an acquire load of `open` sees its time.
    if (s == BreakerState::open && duration_cast<nanoseconds>(now().time_since_epoch()).count() <
                                       machine_->open_until_ns.load(std::memory_order_relaxed))
        return false;

    std::optional<BreakerTransition> changed;
    bool allowed = false;
    {
        std::lock_guard lock(machine_->mutex);
        TimePoint at = now();
        s = machine_->state.load(std::memory_order_relaxed);
        if (s == BreakerState::open && at >= machine_->open_until) {
            changed = machine_->transition(BreakerState::half_open, at, "open time elapsed");
            s = BreakerState::half_open;
        }
        if (s == BreakerState::closed) {
            allowed = true;
        } else if (s == BreakerState::half_open &&
                   machine_->trials_in_flight < machine_->config.half_open_trials) {
            ++machine_->trials_in_flight;
            allowed = true;
        }
    }
    machine_->report(changed);
    return allowed;
}

Error CircuitBreaker::rejection(std::string_view name) const {
    std::lock_guard lock(machine_->mutex);
    BreakerState s = machine_->state.load(std::memory_order_relaxed);
    TimePoint at = now();
    auto wait = s == BreakerState::open && machine_->open_until > at ? machine_->open_until - at
                                                                     : nanoseconds(0);
    Error error =
        make_error(Errc::circuit_open,
                   std::string(name) + ": circuit breaker " + std::string(to_string(s)) +
                       (s == BreakerState::open
                            ? "; next trial in " +
                                  std::to_string(duration_cast<milliseconds>(wait).count()) + " ms"
                            : "; trial calls in progress") +
                       " (last failure: " + machine_->last_cause + ")");
    error.source = std::string(name);
    error.retry_after = system_clock::now() + duration_cast<system_clock::duration>(wait);
    return error;
}

Result<void> CircuitBreaker::allow(std::string_view name) {
    if (permit())
        return success();
    return rejection(name);
}

void CircuitBreaker::record(const Error* error, std::chrono::nanoseconds elapsed) {
    bool failed = error && counts_as_failure(*error);
    bool slow = !failed && elapsed >= machine_->config.slow_call_duration;
    if (!failed && !slow && machine_->clean.load(std::memory_order_acquire))
        return; // a fast success into a window of fast successes changes nothing
    std::optional<BreakerTransition> changed;
    {
        std::lock_guard lock(machine_->mutex);
        auto& s = *machine_;
        TimePoint at = now();
        if (failed)
            s.last_cause = describe(*error);
        else if (slow)
            s.last_cause = "slow call (" +
                           std::to_string(duration_cast<milliseconds>(elapsed).count()) + " ms)";
        BreakerState state = s.state.load(std::memory_order_relaxed);
        if (state == BreakerState::half_open) {
            if (s.trials_in_flight > 0)
                --s.trials_in_flight;
            if (failed || slow) {
                changed =
                    s.transition(BreakerState::open, at, "trial call failed: " + s.last_cause);
            } else if (++s.trial_successes >= s.config.half_open_trials) {
                changed = s.transition(BreakerState::closed, at, "trial calls succeeded");
            }
        } else if (state == BreakerState::closed) {
            Machine::Outcome& slot = s.window[s.next];
            if (s.filled == s.window.size()) {
                s.failures -= slot.failed;
                s.slow -= slot.slow;
            } else {
                ++s.filled;
            }
            slot = {failed, slow};
            s.failures += failed;
            s.slow += slow;
            s.next = (s.next + 1) % s.window.size();
            s.consecutive = failed ? s.consecutive + 1 : 0;
            s.clean.store(s.filled == s.window.size() && s.failures == 0 && s.slow == 0,
                          std::memory_order_release);

            std::string cause;
            if (s.config.consecutive_failures && s.consecutive >= s.config.consecutive_failures)
                cause = std::to_string(s.consecutive) + " consecutive failures";
            else if (s.filled >= s.config.minimum_calls &&
                     static_cast<double>(s.failures) >=
                         s.config.failure_rate_threshold * static_cast<double>(s.filled))
                cause = std::to_string(s.failures) + " of the last " + std::to_string(s.filled) +
                        " calls failed";
            else if (s.filled >= s.config.minimum_calls &&
                     static_cast<double>(s.slow) >=
                         s.config.slow_call_rate_threshold * static_cast<double>(s.filled))
                cause = std::to_string(s.slow) + " of the last " + std::to_string(s.filled) +
                        " calls were slow";
            if (!cause.empty())
                changed = s.transition(BreakerState::open, at, cause + "; last: " + s.last_cause);
        }
        // Open: an outcome of a call let through before the trip; nothing to do.
    }
    machine_->report(changed);
}

void CircuitBreaker::probe_succeeded() {
    std::optional<BreakerTransition> changed;
    {
        std::lock_guard lock(machine_->mutex);
        if (machine_->state.load(std::memory_order_relaxed) != BreakerState::closed)
            changed = machine_->transition(BreakerState::closed, now(), "health probe succeeded");
    }
    machine_->report(changed);
}

} // namespace modelrepo
