// SPDX-License-Identifier: MIT
// doctor: every check of a PostgreSQL URL, with the fix for each failure.
#include <cstdlib>
#include <iostream>

#include "command.hpp"

#if MODELREPO_HAS_POSTGRES

namespace modelrepo::cli {

namespace {

int run_doctor(const std::string& url, const std::string& admin_url, bool json) {
    auto report = diagnose_postgres(url, admin_url);
    if (!report)
        return fail(report.error());
    if (json) {
        nlohmann::ordered_json out;
        out["healthy"] = report.value().healthy();
        out["checks"] = nlohmann::ordered_json::array();
        for (const auto& c : report.value().checks)
            out["checks"].push_back({{"scope", c.scope},
                                     {"check", c.name},
                                     {"status", std::string(to_string(c.status))},
                                     {"detail", c.detail},
                                     {"fix", c.fix}});
        print_json(out);
    } else {
        for (const auto& c : report.value().checks) {
            std::cout << "[" << to_string(c.status) << "] " << c.scope << " " << c.name << ": "
                      << c.detail << '\n';
            if (!c.fix.empty())
                std::cout << "       fix: " << c.fix << '\n';
        }
        std::cout << (report.value().healthy() ? "no problems found" : "problems found") << '\n';
    }
    return report.value().healthy() ? exit_ok : exit_error;
}

} // namespace

Command define_doctor(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand(
        "doctor", "Diagnose a PostgreSQL URL: every address the host resolves to (TCP, TLS, the "
                  "auth method asked, login, database, schema); with --admin-url also the role's "
                  "verifier, the matching pg_hba.conf lines and an unreloaded pg_hba.conf. "
                  "Exit 0 when nothing failed, 1 otherwise");
    auto url = std::make_shared<std::string>();
    auto admin_url = std::make_shared<std::string>();
    sub->add_option("url", *url,
                    "The URL to diagnose (default: the first --source, then $DATABASE_URL)");
    sub->add_option("--admin-url", *admin_url, "A superuser URL for the server-side checks");
    return {sub, [&globals, url, admin_url] {
                std::string target = *url;
                if (target.empty() && !globals.sources.empty())
                    target = globals.sources.front();
                if (const char* env = std::getenv("DATABASE_URL"); target.empty() && env)
                    target = env;
                if (target.empty()) {
                    std::cerr << "modelrepo: doctor needs a URL (argument, --source or "
                                 "$DATABASE_URL)\n";
                    return exit_usage;
                }
                return run_doctor(target, *admin_url, globals.json);
            }};
}

} // namespace modelrepo::cli

#endif // MODELREPO_HAS_POSTGRES
