// SPDX-License-Identifier: MIT
// Shared by the benchmarks that run against a PostgreSQL server: calls per second of a
// function from N threads, and pgbench on the same SQL, as peers in the same run.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "pg_server.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

namespace bench {

/// Calls per second of `call(thread)` from `clients` threads, counted for `seconds`
/// after a 1 s warm-up; failed calls are reported under `who` and not counted. Each
/// thread counts on its own and adds once at the end, as pgbench's threads do (one
/// shared counter bounced between the cores on every call).
inline double threads_tps(const char* who, int clients, int seconds,
                          const std::function<bool(int)>& call) {
    std::atomic<bool> measuring{false}, stop{false};
    std::atomic<long> count{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&, t] {
            long done = 0, failed = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (!call(t))
                    ++failed;
                else if (measuring.load(std::memory_order_relaxed))
                    ++done;
            }
            count += done;
            failures += failed;
        });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    measuring = true;
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    measuring = false;
    stop = true;
    for (auto& t : threads)
        t.join();
    if (failures)
        std::fprintf(stderr, "%s: %ld failed calls\n", who, failures.load());
    return static_cast<double>(count) / seconds;
}

/// node-postgres (`pg`) in `node_dir`/node_modules, installed with npm when missing
/// (bench/node/package.json pins it). False, with the reason on stderr, when it cannot be.
inline bool ensure_node_pg(const std::string& node_dir) {
    if (std::filesystem::exists(node_dir + "/node_modules/pg"))
        return true;
    std::fprintf(stderr, "installing node-postgres into bench/node (npm install)...\n");
    auto r = modelrepo::test::run_process(
        {"npm", "install", "--prefix", node_dir, "--no-audit", "--no-fund", "--silent"}, {},
        std::chrono::seconds(300));
    if (r.exit_code != 0)
        std::fprintf(stderr, "npm install failed: %s\n", r.err.c_str());
    return r.exit_code == 0;
}

/// The `p` quantile (0..1) of `values`; 0 when empty.
inline double percentile(std::vector<double> values, double p) {
    if (values.empty())
        return 0;
    std::sort(values.begin(), values.end());
    return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

/// Nanoseconds per call of `call`, one thread, median of 5 runs of `n` calls.
template <class Call>
inline double ns_per_call(long n, Call&& call) {
    std::vector<double> runs;
    for (int r = 0; r < 5; ++r) {
        auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < n; ++i)
            call();
        runs.push_back(
            std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                .count() /
            static_cast<double>(n));
    }
    return percentile(runs, 0.5);
}

/// `sql` with its `$1` replaced by `with`.
inline std::string replace_param(std::string sql, const std::string& with) {
    auto at = sql.find("$1");
    if (at != std::string::npos)
        sql.replace(at, 2, with);
    return sql;
}

/// `pgbench -M prepared -c CLIENTS -j JOBS -T SECONDS -n -f FILE` against database `db` as
/// `user`, with `extra` arguments (-D …): transactions per second, 0 on failure.
inline double pgbench_file_tps(const modelrepo::test::PgServer& server,
                               const std::filesystem::path& file, const std::string& db,
                               const std::string& user, const std::string& password, int clients,
                               int jobs, int seconds, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"/usr/lib/postgresql/15/bin/pgbench",
                                  "-M",
                                  "prepared",
                                  "-c",
                                  std::to_string(clients),
                                  "-j",
                                  std::to_string(jobs),
                                  "-T",
                                  std::to_string(seconds),
                                  "-n",
                                  "-f",
                                  file.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("host=127.0.0.1 port=" + std::to_string(server.port()) + " user=" + user +
                   " dbname=" + db);
    auto r = modelrepo::test::run_process(args, {{"PGPASSWORD", password}},
                                          std::chrono::seconds(seconds + 60));
    std::smatch m;
    std::regex tps(R"(tps = ([0-9.]+) \(without initial connection time\))");
    if (r.exit_code != 0 || !std::regex_search(r.out, m, tps)) {
        std::fprintf(stderr, "pgbench failed (%d): %s %s\n", r.exit_code, r.out.c_str(),
                     r.err.c_str());
        return 0;
    }
    return std::stod(m[1]);
}

/// `pgbench -M prepared -c CLIENTS -j JOBS` running `sql` (its $1 bound to `param` with
/// -D) for `seconds` as user `user` on database modelrepo: transactions per second, 0 on
/// failure.
inline double pgbench_tps(const modelrepo::test::PgServer& server,
                          const modelrepo::test::TempDir& dir, const std::string& name,
                          const std::string& sql, const std::string& param, const std::string& user,
                          const std::string& password, int clients, int jobs, int seconds) {
    auto file = dir.write(name + ".sql", replace_param(sql, ":p") + ";\n");
    std::vector<std::string> extra;
    if (!param.empty())
        extra = {"-D", "p=" + param};
    return pgbench_file_tps(server, file, "modelrepo", user, password, clients, jobs, seconds + 1,
                            extra);
}

} // namespace bench
