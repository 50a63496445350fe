// SPDX-License-Identifier: MIT
#include "health_tracker.hpp"

#include "delivery.hpp"

namespace modelrepo {

std::string_view to_string(FallbackEvent::Kind k) noexcept {
    using Kind = FallbackEvent::Kind;
    switch (k) {
    case Kind::breaker_opened:
        return "breaker_opened";
    case Kind::breaker_half_open:
        return "breaker_half_open";
    case Kind::breaker_closed:
        return "breaker_closed";
    case Kind::served_by_backup:
        return "served_by_backup";
    case Kind::primary_recovered:
        return "primary_recovered";
    case Kind::source_down:
        return "source_down";
    case Kind::source_recovered:
        return "source_recovered";
    case Kind::copy_stale:
        return "copy_stale";
    case Kind::outbox_dead_letter:
        break;
    }
    return "outbox_dead_letter";
}

std::string_view to_string(SourceHealth::State s) noexcept {
    switch (s) {
    case SourceHealth::State::up:
        return "up";
    case SourceHealth::State::down:
        return "down";
    case SourceHealth::State::unknown:
        break;
    }
    return "unknown";
}

} // namespace modelrepo

namespace modelrepo::detail {

HealthTracker::HealthTracker(std::string source)
    : source_(std::move(source))
    // Events past the limit are dropped: a listener that never returns loses events, the
    // reporting layers never wait.
    , delivery_(std::make_shared<Delivery<FallbackEvent>>(
          1'024, [](const FallbackEvent&) { return std::optional<FallbackEvent>(); })) {}

HealthTracker::~HealthTracker() {
    delivery_->stop();
}

void HealthTracker::emit(FallbackEvent::Kind kind, std::string cause, std::optional<Errc> errc) {
    delivery_->publish(FallbackEvent{kind, Clock::now(), source_, std::move(cause), errc});
}

void HealthTracker::reached(std::string_view layer) {
    std::unique_lock lock(mutex_);
    if (health_.state == SourceHealth::State::up)
        return;
    const bool was_down = health_.state == SourceHealth::State::down;
    health_.state = SourceHealth::State::up;
    health_.errc.reset();
    health_.cause.clear();
    health_.since = Clock::now();
    health_.seen_by = std::string(layer);
    down_.store(false, std::memory_order_relaxed);
    lock.unlock();
    if (was_down)
        emit(FallbackEvent::Kind::source_recovered,
             "the " + std::string(layer) + " reached the origin again", std::nullopt);
}

void HealthTracker::failed(std::string_view layer, const Error& error) {
    if (!classify(error).source_down)
        return;
    auto errc = error.errc();
    std::unique_lock lock(mutex_);
    const bool same = health_.state == SourceHealth::State::down && health_.errc == errc;
    health_.cause = error.message; // the latest words for the same cause
    health_.seen_by = std::string(layer);
    if (same)
        return;
    if (health_.state != SourceHealth::State::down)
        health_.since = Clock::now();
    health_.state = SourceHealth::State::down;
    health_.errc = errc;
    down_.store(true, std::memory_order_relaxed);
    std::string cause = error.message;
    lock.unlock();
    emit(FallbackEvent::Kind::source_down, std::move(cause), errc);
}

void HealthTracker::copy_stale(bool stale, std::string_view cause) {
    std::unique_lock lock(mutex_);
    if (health_.copy_stale == stale)
        return;
    health_.copy_stale = stale;
    const bool source_down = health_.state == SourceHealth::State::down;
    lock.unlock();
    if (stale)
        emit(FallbackEvent::Kind::copy_stale, std::string(cause), std::nullopt);
    else if (!source_down)
        emit(FallbackEvent::Kind::source_recovered, std::string(cause), std::nullopt);
}

void HealthTracker::dead_letter(std::string_view cause, std::optional<Errc> errc) {
    {
        std::lock_guard lock(mutex_);
        ++health_.dead_letters;
    }
    emit(FallbackEvent::Kind::outbox_dead_letter, std::string(cause), errc);
}

SourceHealth HealthTracker::source_health() const {
    std::lock_guard lock(mutex_);
    return health_;
}

Subscription HealthTracker::on_health_event(std::function<void(const FallbackEvent&)> on_event) {
    return delivery_->subscribe(std::move(on_event));
}

std::unique_ptr<HealthTracker> health_unless_kept(ModelRepository& source) {
    if (source.capability<HealthObserver>())
        return nullptr;
    return std::make_unique<HealthTracker>(std::string(source.name()));
}

} // namespace modelrepo::detail
