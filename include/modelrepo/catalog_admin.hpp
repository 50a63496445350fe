// SPDX-License-Identifier: MIT
/// @file
/// `CatalogAdmin`: the schema and bulk loads of a source that owns its tables (PostgreSQL),
/// asked for as `repo->capability<CatalogAdmin>()`.
#pragma once

#include <modelrepo/error.hpp>
#include <modelrepo/progress.hpp>
#include <modelrepo/snapshot.hpp>

namespace modelrepo {

/// Thread-safe.
class CatalogAdmin {
public:
    /// Creates or upgrades the tables; idempotent, and safe from several processes at once.
    /// Returns the schema version.
    virtual Result<int> migrate() = 0;
    /// The schema version, 0 when the tables are missing.
    virtual Result<int> schema_version() = 0;
    /// Replaces the whole catalogue with `snapshot` in one transaction. `progress`, when
    /// given, is told after each step with its rows ("providers merged", "models merged",
    /// "statuses written", ...), on the calling thread.
    /// Errors: `Errc::bad_data` (invalid snapshot), the source's errors.
    virtual Result<void> import_snapshot(const Snapshot& snapshot,
                                         const ProgressFn& progress = {}) = 0;

protected:
    ~CatalogAdmin() = default;
};

} // namespace modelrepo
