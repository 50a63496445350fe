// SPDX-License-Identifier: MIT
// ChangeHub and Subscription: one delivery thread per hub, callbacks in order.
#include <nlohmann/json.hpp>

#include <modelrepo/catalog_change.hpp>

#include "backend_metrics.hpp"
#include "delivery.hpp"

namespace modelrepo {

namespace detail {

/// A hub's deliveries: a backlog past the limit collapses into one resync.
struct HubCore : Delivery<CatalogChange> {
    explicit HubCore(std::size_t limit)
        : Delivery<CatalogChange>(limit, [](const CatalogChange& c) {
            return std::optional<CatalogChange>(
                CatalogChange{CatalogChange::Kind::resync, "", c.version, c.at});
        }) {}
};

} // namespace detail

std::string_view to_string(CatalogChange::Kind k) noexcept {
    switch (k) {
    case CatalogChange::Kind::status:
        return "status";
    case CatalogChange::Kind::model:
        return "model";
    case CatalogChange::Kind::provider:
        return "provider";
    case CatalogChange::Kind::resync:
        break;
    }
    return "resync";
}

std::string to_json(const CatalogChange& change) {
    nlohmann::ordered_json out;
    out["kind"] = std::string(to_string(change.kind));
    out["slug"] = change.slug;
    out["version"] = change.version;
    out["at"] = format_timestamp_precise(change.at);
    return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
    if (this != &other) {
        cancel();
        handle_ = std::move(other.handle_);
    }
    return *this;
}

Subscription::~Subscription() {
    cancel();
}

void Subscription::cancel() noexcept {
    // Dropping the handle frees what is left of the subscriber here too.
    if (auto handle = std::move(handle_))
        handle->cancel();
}

bool Subscription::active() const noexcept {
    return handle_ && handle_->active();
}

ChangeHub::ChangeHub(std::size_t queue_limit)
    : core_(std::make_shared<detail::HubCore>(queue_limit)) {}

ChangeHub::~ChangeHub() {
    core_->stop();
}

Subscription ChangeHub::subscribe(std::function<void(const CatalogChange&)> on_change) {
    return core_->subscribe(std::move(on_change));
}

Subscription ChangeHub::relay(std::function<void(const CatalogChange&)> on_change) {
    return core_->relay(std::move(on_change));
}

void ChangeHub::publish(CatalogChange change) {
    core_->publish(std::move(change));
}

ChangeHub::Stats ChangeHub::stats() const {
    auto d = core_->stats();
    Stats s;
    s.published = d.published;
    s.delivered = d.delivered;
    s.overflows = d.overflows;
    s.slow_callbacks = d.slow_callbacks;
    s.failed_callbacks = d.failed_callbacks;
    s.queued = d.queued;
    s.subscribers = d.subscribers;
    return s;
}

} // namespace modelrepo

namespace modelrepo::detail {

void append_metric(std::vector<MetricFamily>& out, const char* name, MetricFamily::Type type,
                   const char* help, double value) {
    out.push_back({name, type, help, {}});
    out.back().add({}, value);
}

void append_hub_metrics(std::vector<MetricFamily>& out, const ChangeHub::Stats& h) {
    using Type = MetricFamily::Type;
    append_metric(out, "modelrepo_watchers", Type::gauge, "Active watch() subscriptions.",
                  static_cast<double>(h.subscribers));
    append_metric(out, "modelrepo_watch_slow_callbacks_total", Type::counter,
                  "Watch callbacks that took over 100 ms.", static_cast<double>(h.slow_callbacks));
    append_metric(out, "modelrepo_watch_overflows_total", Type::counter,
                  "Times a backlog of undelivered changes collapsed into one resync.",
                  static_cast<double>(h.overflows));
}

} // namespace modelrepo::detail
