// SPDX-License-Identifier: MIT
// What the operator view's inspector finds by asking a source (it may wait on it): the
// doctor's diagnosis of the first source, and statuses dated in the future. Free
// functions: the view decides when to look and keeps what they return.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::serve {

/// Runs the doctor on `url` (a PostgreSQL URI; `admin_url` for the superuser's checks,
/// may be empty) and returns /v1/diagnosis's object: `{"source", "ran_at", "error",
/// "admin", "checks": [...], "failed": [...]}`. `error`: what the source last failed with.
/// Connects: takes a few seconds at most. Without PostgreSQL support: "checks" is empty
/// and "failed" says so.
nlohmann::ordered_json doctor_json(const std::string& source, Errc error, const std::string& url,
                                   const std::string& admin_url);

/// The first failed check's detail and fix as one sentence; empty when none failed.
std::string first_finding(const nlohmann::ordered_json& diagnosis);

/// Statuses `chain` serves dated past the allowed clock skew: `{"count", "latest",
/// "models" (at most 5), "fix"}`, or null when there are none. From memory a pointer
/// walk; else one list_statuses call.
nlohmann::ordered_json future_statuses_in(FallbackRepository& chain);

} // namespace modelrepo::serve
