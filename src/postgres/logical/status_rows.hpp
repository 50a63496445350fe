// SPDX-License-Identifier: MIT
// The statuses a decoded change carries: a row of modelrepo's own `model_status` table,
// read from pgoutput's text values as the catalogue's reads would read it from the table
// (catalog/rows.hpp), so that a live copy can apply a transaction of status writes as
// committed instead of reading the rows again (LogicalFeed's row path).
//
// Only what the server prints under its default settings is read: timestamps in
// DateStyle ISO with a numeric UTC offset, numbers as float8out prints them. Anything
// else (a role's DateStyle of SQL, a TOASTed value the update left unchanged, a column
// renamed or missing) is no row: the feed then re-reads, as before.
//
// Thread safety: free functions on their arguments.
#pragma once

#include <optional>
#include <string_view>

#include <modelrepo/types.hpp>

#include "pgoutput.hpp"

namespace modelrepo::detail::logical {

/// The status `row` of `relation` (modelrepo's `model_status`, columns found by name)
/// holds; nullopt when a column is missing, unchanged-TOAST, NULL where the table
/// forbids it, or in a form this does not read.
std::optional<ModelStatus> status_of_row(const Relation& relation, const Tuple& row);

/// A `timestamptz` as PostgreSQL prints it with DateStyle ISO:
/// "2026-12-07 19:09:18.285539+00", "… +05:30", "… -03:30:15", the fraction optional
/// (1 to 6 digits). Years timestamp_first_year + 1 to timestamp_last_year only (what a
/// Timestamp holds, with room for the offset); nullopt for anything
/// else (BC, "infinity").
std::optional<Timestamp> parse_timestamptz(std::string_view text);

} // namespace modelrepo::detail::logical
