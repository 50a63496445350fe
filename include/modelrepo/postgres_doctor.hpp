// SPDX-License-Identifier: MIT
/// @file
/// `diagnose_postgres()`: the incident's test plan, automated. Says, for every address
/// a database host resolves to, whether TCP, TLS, authentication, the database and
/// modelrepo's schema work, and with an administrator connection why authentication
/// fails (verifier type, the pg_hba.conf lines that match, an edit never reloaded).
#pragma once

#include <string>
#include <vector>

#include <modelrepo/error.hpp>

namespace modelrepo {

/// One finding.
struct DoctorCheck {
    enum class Status { ok, warn, fail, skipped };
    std::string scope; ///< "url", "127.0.0.1:5432", "[::1]:5432", "server"
    std::string
        name; ///< "tcp", "tls", "auth", "database", "schema", "verifier", "pg_hba", "reload", …
    Status status = Status::ok;
    std::string detail; ///< what was found
    std::string fix;    ///< what to do; empty when nothing
};

/// "ok", "warn", "fail", "skipped".
std::string_view to_string(DoctorCheck::Status s) noexcept;

struct DoctorReport {
    std::vector<DoctorCheck> checks;
    /// True when no check failed.
    [[nodiscard]] bool healthy() const noexcept;
};

/// Runs every check; never throws, never prints, never puts a password in a finding.
/// `admin_url` (optional) is a superuser connection used for what the role itself may
/// not read (pg_authid, pg_hba_file_rules, the hba file's time); without it those
/// checks run when the role may read them and are skipped otherwise.
/// Errors: `Errc::invalid_argument` for a URL that cannot be parsed at all.
Result<DoctorReport> diagnose_postgres(const std::string& url, const std::string& admin_url = "");

} // namespace modelrepo
