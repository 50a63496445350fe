// SPDX-License-Identifier: MIT
// Helpers for a repository's backend_metrics(): one-sample families, and the metrics of
// a ChangeHub for the repository whose watchers it serves.
#pragma once

#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/metrics.hpp>

namespace modelrepo::detail {

/// Appends a family of one unlabelled sample.
void append_metric(std::vector<MetricFamily>& out, const char* name, MetricFamily::Type type,
                   const char* help, double value);

/// Appends `modelrepo_watchers`, `modelrepo_watch_slow_callbacks_total` and
/// `modelrepo_watch_overflows_total`.
void append_hub_metrics(std::vector<MetricFamily>& out, const ChangeHub::Stats& stats);

} // namespace modelrepo::detail
