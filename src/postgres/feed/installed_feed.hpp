// SPDX-License-Identifier: MIT
// Which change feed `migrate` installed, asked in SQL: written once here for everything
// that asks (feed=auto's chooser, the trigger feed's and the logical feed's idle checks,
// the polling feed's poll, the doctor). Each is one boolean SQL expression.
#pragma once

#include <string>

#include "../driver/session_config.hpp"

namespace modelrepo::detail::installed_feed {

/// True when the catalogue's publication `publication` exists (the logical feed).
inline std::string publication_sql(const std::string& publication) {
    return "EXISTS (SELECT 1 FROM pg_publication WHERE pubname = " + quote_literal(publication) +
           ")";
}

/// True when the trigger feed's row trigger is on `status_table` (quoted, with its schema
/// prefix or on the search path). Migration 3 (or a mapping's) names it so; the other five
/// triggers come and go with it.
inline std::string triggers_sql(const std::string& status_table) {
    return "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'modelrepo_status_logged' AND "
           "tgrelid = to_regclass(" +
           quote_literal(status_table) + "))";
}

/// True when the session's role may open a replication session: REPLICATION, a superuser,
/// or a member of Amazon RDS's rds_replication (whose members have no REPLICATION
/// attribute of their own).
inline constexpr const char* can_replicate_sql =
    "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) OR "
    "EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND "
    "pg_has_role(r.oid, 'MEMBER'))";

} // namespace modelrepo::detail::installed_feed
