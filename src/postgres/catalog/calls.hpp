// SPDX-License-Identifier: MIT
// How SqlCatalog's calls run (for the files of catalog/ only): one deadline per call over
// the pool's lease, rows the decoding cannot read turned into bad_data at the call's
// boundary, and a prepared statement of the plan with its decoding.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include "rows.hpp"
#include "sql_catalog.hpp"

namespace modelrepo::detail {

/// The Result of a call whose work returns Result<T>, or T.
template <class T>
struct AsResult {
    using type = Result<T>;
};
template <class T>
struct AsResult<Result<T>> {
    using type = Result<T>;
};

template <class Work>
auto SqlCatalog::with_connection(ConnectionPool& pool, Work&& work) {
    return with_connection(pool, std::chrono::milliseconds(0), std::forward<Work>(work));
}

template <class Work>
auto SqlCatalog::with_connection(ConnectionPool& pool, std::chrono::milliseconds extra,
                                 Work&& work) {
    using Answer = typename AsResult<std::invoke_result_t<Work, Connection&, Deadline>>::type;
    // One deadline per call, whatever it does: waiting for the pool, connecting, the
    // statements.
    auto now = SteadyClock::now();
    Deadline until = now + config_.query_timeout + extra;
    auto lease = pool.acquire(until, now);
    if (!lease)
        return Answer(std::move(lease).error());
    auto run = [&]() -> Answer {
        try {
            return Answer(work(*lease.value(), until));
        } catch (const BadAnswer& bad) {
            // A row the decoding cannot read: bad_data here, at the call's boundary.
            Error error = make_error(Errc::bad_data,
                                     "PostgreSQL " + session_->target.display() + ": " + bad.what);
            error.source = name();
            return Answer(std::move(error));
        }
    };
    if (!pool.reports_calls())
        return run();
    // Through PgBouncer the statement is what reaches the server: its outcome is the
    // origin's health.
    Answer answer = run();
    pool.after_call(answer ? nullptr : &answer.error());
    return answer;
}

template <class Decode, std::size_t N>
auto SqlCatalog::query(ConnectionPool& pool, StatementId id, std::array<const char*, N> values,
                       Decode&& decode) {
    return with_connection(
        pool,
        [&](Connection& c, Deadline until) -> Result<std::invoke_result_t<Decode, const Rows&>> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            if (id == StatementId::upsert_statuses && !planned.value()->write_problems.empty())
                return mapping_error(planned.value()->write_problems, "cannot be written through");
            auto rows = c.execute(planned.value()->statements[id], values, until);
            if (!rows)
                return std::move(rows).error();
            return decode(rows.value());
        });
}

} // namespace modelrepo::detail
