// SPDX-License-Identifier: MIT
// What a source's layers tell of its origin, and the one place that turns it into the
// source's health and its events. A layer below (a pool, a feed, a copy, an outbox) holds
// a HealthObserver and reports to it; it never knows who listens (DESIGN §6b: nothing
// below calls a layer above by name). The backend makes the tracker; the durable layer
// finds it with capability<HealthObserver>() (or makes one for a source that has none);
// a chain subscribes to each source's events through HealthControl.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <typeinfo>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/source_health.hpp>

namespace modelrepo::detail {

template <class Event>
class Delivery;

/// What the layers of one source report. Thread-safe, cheap, never blocks on listeners.
class HealthObserver {
public:
    virtual ~HealthObserver() = default;
    /// A new connection, login or fetch to the origin succeeded: it is up.
    virtual void reached(std::string_view layer) = 0;
    /// A connection, login or fetch failed for `error`. Only causes that say the origin is
    /// down (`classify(error).source_down`) count; others (a query's own failure) are
    /// ignored here.
    virtual void failed(std::string_view layer, const Error& error) = 0;
    /// The last-known copy became stale (out of sync past max_stale), or fresh again.
    virtual void copy_stale(bool stale, std::string_view cause) = 0;
    /// The outbox set a write aside that the origin refused for good.
    virtual void dead_letter(std::string_view cause, std::optional<Errc> errc) = 0;
};

/// A source's health, from its layers' reports: down while any layer's latest report is a
/// failure, with the most telling cause among them (a login's auth_failed says more than
/// the unreachable of a connection cut meanwhile); up once every layer that failed has
/// reached the origin again. An event on every change of state or of cause.
class HealthTracker final : public HealthObserver, public HealthControl {
public:
    /// `source`: the name events carry (the repository's name()).
    explicit HealthTracker(std::string source);
    ~HealthTracker() override;
    HealthTracker(const HealthTracker&) = delete;
    HealthTracker& operator=(const HealthTracker&) = delete;

    // HealthObserver
    void reached(std::string_view layer) override;
    void failed(std::string_view layer, const Error& error) override;
    void copy_stale(bool stale, std::string_view cause) override;
    void dead_letter(std::string_view cause, std::optional<Errc> errc) override;

    // HealthControl
    SourceHealth source_health() const override;
    Subscription on_health_event(std::function<void(const FallbackEvent&)> on_event) override;

    /// True while down: one relaxed load, for a hot path that reports only on a change.
    bool down() const noexcept { return down_.load(std::memory_order_relaxed); }

private:
    void emit(FallbackEvent::Kind kind, std::string cause, std::optional<Errc> errc);
    /// Recomputes health_ from layers_ (under mutex_): the event to emit, if any.
    std::optional<FallbackEvent> settle(const std::string& layer);

    /// One layer's latest report.
    struct Layer {
        bool failing = false;
        std::optional<Errc> errc;
        std::string cause;
        Timestamp at{};
    };

    const std::string source_;
    std::shared_ptr<Delivery<FallbackEvent>> delivery_;
    std::atomic<bool> down_{false};
    mutable std::mutex mutex_; ///< guards health_ and layers_
    SourceHealth health_;
    std::map<std::string, Layer, std::less<>> layers_;
};

/// A tracker for a layer over `source` to report into when the source keeps none of its
/// own (then the layer offers it as the source's HealthControl); null when it does.
std::unique_ptr<HealthTracker> health_unless_kept(ModelRepository& source);

/// `own` (from health_unless_kept) as the HealthControl or HealthObserver `type` asks for;
/// null when `own` is null or `type` is neither. For a layer's find_capability.
void* offer_own_health(const std::type_info& type, HealthTracker* own) noexcept;

} // namespace modelrepo::detail
