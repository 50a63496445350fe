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

namespace {

/// How much a cause tells a person, when several layers fail at once: a login's refusal or
/// a missing database names the fault; a timeout or a cut connection may be its echo.
int telling(const std::optional<Errc>& errc) {
    if (!errc)
        return 0;
    switch (*errc) {
    case Errc::auth_failed:
    case Errc::tls_failed:
    case Errc::database_missing:
    case Errc::schema_missing:
        return 5;
    case Errc::too_many_connections:
        return 4;
    case Errc::http_status:
        return 3;
    case Errc::timeout:
        return 2;
    case Errc::unreachable:
        return 1;
    default:
        return 0;
    }
}

} // namespace

std::optional<FallbackEvent> HealthTracker::settle(const std::string& layer) {
    const Layer* worst = nullptr;
    for (const auto& [name, l] : layers_)
        if (l.failing && (!worst || telling(l.errc) > telling(worst->errc) ||
                          (telling(l.errc) == telling(worst->errc) && l.at > worst->at)))
            worst = &l;
    const auto now = Clock::now();
    if (!worst) {
        const bool was_down = health_.state == SourceHealth::State::down;
        if (health_.state != SourceHealth::State::up) {
            health_.state = SourceHealth::State::up;
            health_.errc.reset();
            health_.cause.clear();
            health_.since = now;
            health_.seen_by = layer;
        }
        down_.store(false, std::memory_order_relaxed);
        if (!was_down)
            return std::nullopt;
        return FallbackEvent{FallbackEvent::Kind::source_recovered, now, source_,
                             "the " + layer + " reached the origin again", std::nullopt};
    }
    const bool same = health_.state == SourceHealth::State::down && health_.errc == worst->errc;
    health_.cause = worst->cause; // the latest words for the same cause
    for (const auto& [name, l] : layers_)
        if (&l == worst)
            health_.seen_by = name;
    if (same)
        return std::nullopt;
    if (health_.state != SourceHealth::State::down)
        health_.since = now;
    health_.state = SourceHealth::State::down;
    health_.errc = worst->errc;
    down_.store(true, std::memory_order_relaxed);
    return FallbackEvent{FallbackEvent::Kind::source_down, now, source_, worst->cause, worst->errc};
}

void HealthTracker::reached(std::string_view layer) {
    std::lock_guard lock(mutex_);
    auto it = layers_.find(layer);
    if (it == layers_.end())
        it = layers_.emplace(std::string(layer), Layer{}).first;
    else if (!it->second.failing && health_.state == SourceHealth::State::up)
        return; // nothing new: the common case of a connect while all is well
    it->second.failing = false;
    // Published under the lock, so that events leave in the order the states changed
    // (the delivery never calls back into the tracker).
    if (auto event = settle(it->first))
        delivery_->publish(std::move(*event));
}

void HealthTracker::failed(std::string_view layer, const Error& error) {
    if (!classify(error).source_down)
        return;
    std::lock_guard lock(mutex_);
    auto it = layers_.find(layer);
    if (it == layers_.end())
        it = layers_.emplace(std::string(layer), Layer{}).first;
    it->second = Layer{true, error.errc(), error.message, Clock::now()};
    // Published under the lock, so that events leave in the order the states changed
    // (the delivery never calls back into the tracker).
    if (auto event = settle(it->first))
        delivery_->publish(std::move(*event));
}

void HealthTracker::copy_stale(bool stale, std::string_view cause) {
    std::lock_guard lock(mutex_);
    if (health_.copy_stale == stale)
        return;
    health_.copy_stale = stale;
    const bool source_down = health_.state == SourceHealth::State::down;
    if (stale)
        emit(FallbackEvent::Kind::copy_stale, std::string(cause), std::nullopt);
    else if (!source_down)
        emit(FallbackEvent::Kind::source_recovered, std::string(cause), std::nullopt);
}

void HealthTracker::dead_letter(std::string_view cause, std::optional<Errc> errc) {
    std::lock_guard lock(mutex_);
    ++health_.dead_letters;
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

void* offer_own_health(const std::type_info& type, HealthTracker* own) noexcept {
    if (!own)
        return nullptr;
    if (type == typeid(HealthControl))
        return static_cast<HealthControl*>(own);
    if (type == typeid(HealthObserver))
        return static_cast<HealthObserver*>(own);
    return nullptr;
}

} // namespace modelrepo::detail
