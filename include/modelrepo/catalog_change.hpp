// SPDX-License-Identifier: MIT
/// @file
/// The change feed's public side: `CatalogChange`, `Subscription` (what `watch()`
/// returns) and `ChangeHub`, the fan-out every backend's `watch()` is built on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <modelrepo/types.hpp>

namespace modelrepo {

/// One change to the catalogue, as a source reports it.
struct CatalogChange {
    enum class Kind {
        status,   ///< a model's status was written
        model,    ///< a model was added, changed or removed
        provider, ///< a provider was added, changed or removed
        resync,   ///< changes may have been missed (a reconnect, a bulk import, an
                  ///< overflow): re-read what you hold
    };
    Kind kind = Kind::resync;
    /// The model's (status, model) or provider's slug; "" for resync.
    std::string slug;
    /// The change's version at the source; 0 when unknown. Unique per change and
    /// increasing in the order changes were made, not always in the order they are
    /// delivered: PostgreSQL delivers in commit order, and a transaction can commit after
    /// one that took a later version. Use it as an identity (a resume point), not to
    /// compare for "newer".
    std::int64_t version = 0;
    /// When the source committed it (for PostgreSQL: the writing transaction's clock).
    Timestamp at{};

    bool operator==(const CatalogChange&) const = default;
};

/// "status", "model", "provider", "resync".
std::string_view to_string(CatalogChange::Kind k) noexcept;

/// `{"kind":"status","slug":"gpt-4o","version":42,"at":"2026-12-01T10:00:00.123456Z"}`:
/// the line `modelrepo watch --json` prints and `modelrepo serve` sends on /v1/changes.
std::string to_json(const CatalogChange& change);

namespace detail {
struct HubCore;

/// What a `Subscription` stops: one subscriber of a delivery (a ChangeHub's, a source's
/// health events). For implementers of `watch()` on something other than a ChangeHub.
class SubscriptionHandle {
public:
    virtual ~SubscriptionHandle() = default;
    /// Stops delivery and frees the subscriber's callback, as `Subscription::cancel()` says.
    virtual void cancel() noexcept = 0;
    virtual bool active() const noexcept = 0;
};
} // namespace detail

/// A running `watch()` (or another subscription to events). Move-only.
///
/// Destroying it, or `cancel()`, stops delivery and frees the callback, and with it what
/// the callback captured, before it returns: it waits for a callback of this subscription
/// that is running on the delivery thread to return first. Called from inside that
/// callback, it returns at once, no further call comes, and the callback is freed as soon
/// as it returns. So a repository captured in its own callback (a keep-alive) is released
/// by cancelling; memory and threads stay flat however many subscriptions come and go.
///
/// Thread safety: `cancel()` and `active()` may be called from any thread, and at the same
/// time as the destructor of another Subscription.
class Subscription {
public:
    Subscription() noexcept = default;
    /// A subscription that `handle` stops.
    explicit Subscription(std::shared_ptr<detail::SubscriptionHandle> handle) noexcept
        : handle_(std::move(handle)) {}
    Subscription(Subscription&& other) noexcept = default;
    /// Cancels the subscription held before.
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();

    void cancel() noexcept;
    /// True until cancelled, or until the source that made it stopped delivering.
    bool active() const noexcept;

private:
    std::shared_ptr<detail::SubscriptionHandle> handle_;
};

/// Hands changes to subscribers, in order, on one delivery thread of its own (started
/// with the first subscriber): a slow subscriber delays only later deliveries, never
/// the code that publishes. What a backend's `watch()` is built on.
///
/// Thread safety: every method may be called from any thread. Callbacks run on the
/// delivery thread, one at a time; an exception thrown by one is caught and counted.
class ChangeHub {
public:
    /// Changes waiting beyond `queue_limit` collapse into one `resync` (counted): a
    /// subscriber that cannot keep up is told to re-read instead of being handed a
    /// backlog, and memory stays bounded.
    explicit ChangeHub(std::size_t queue_limit = 10'000);
    /// Stops delivery: waits for a running callback, drops what is queued; existing
    /// subscriptions become inactive and their callbacks are freed.
    ~ChangeHub();
    ChangeHub(const ChangeHub&) = delete;
    ChangeHub& operator=(const ChangeHub&) = delete;

    Subscription subscribe(std::function<void(const CatalogChange&)> on_change);
    /// A subscriber called on the publishing thread, inside publish(), in publish order
    /// (publishers take turns), instead of on the hub's delivery thread: for a callback
    /// that only hands the change on at once (to another hub's publish(), a queue), one
    /// thread less on the way. It must not block, and must not publish to, subscribe to,
    /// cancel on or destroy this hub. Cancelling it waits for a call in progress.
    Subscription relay(std::function<void(const CatalogChange&)> on_change);
    /// Hands `change` to every relay, then queues it for every active subscriber; never
    /// blocks on the subscribers.
    void publish(CatalogChange change);

    struct Stats {
        std::uint64_t published = 0;        ///< changes handed to publish()
        std::uint64_t delivered = 0;        ///< callback calls made
        std::uint64_t overflows = 0;        ///< times the queue collapsed into a resync
        std::uint64_t slow_callbacks = 0;   ///< callbacks that took longer than 100 ms
        std::uint64_t failed_callbacks = 0; ///< callbacks that threw
        std::size_t queued = 0;
        std::size_t subscribers = 0; ///< active ones (a cancelled one is gone at once)
    };
    Stats stats() const;

private:
    std::shared_ptr<detail::HubCore> core_;
};

} // namespace modelrepo
