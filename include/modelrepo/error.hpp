// SPDX-License-Identifier: MIT
/// @file
/// Errors: the `Errc` taxonomy, the `Error` value every fallible call returns, and
/// `Result<T>`, a Boost.Outcome result of `T` or `Error`.
///
/// No exception crosses modelrepo's public API. The one exception is misuse of a
/// `Result`: calling `.value()` on a result that holds an error throws
/// `BadResultAccess`, which carries the `Error` (like `std::expected::value()`).
/// Check `has_value()` / `operator bool` first, or use `.error()`.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/base.hpp>
#include <boost/outcome/success_failure.hpp>

namespace modelrepo {

/// The cause of a failure, named for what a user does about it.
/// Registered as a `std::error_code` category named "modelrepo".
enum class Errc {
    // 0 is reserved for success, as std::error_code expects.
    auth_failed = 1,      ///< the server refused the credentials (28P01, 28000, HTTP 401)
    unreachable,          ///< name resolution failed, connection refused or host unreachable
    timeout,              ///< a connect, query or transfer passed its deadline
    tls_failed,           ///< TLS handshake or certificate verification failed
    database_missing,     ///< the database named in the URL does not exist (3D000)
    schema_missing,       ///< the database lacks modelrepo's tables: run `modelrepo migrate`
    pool_exhausted,       ///< no pooled connection became free within the acquire timeout
    circuit_open,         ///< the source's circuit breaker rejected the call
    all_sources_failed,   ///< every source of a chain failed; the message lists each cause
    bad_data,             ///< malformed or invalid data (JSON, snapshot, server answer)
    http_status,          ///< an HTTP answer with an unexpected status (see Error::http_status)
    rate_limited,         ///< the server asked us to back off (see Error::retry_after)
    read_only,            ///< the source does not accept writes
    query_failed,         ///< the database rejected a statement (see Error::sqlstate)
    invalid_argument,     ///< the caller passed something unusable (bad URI, unknown slug)
    not_found,            ///< the thing asked for does not exist
    too_many_connections, ///< the server has no free connection slots (53300)
    io_error,             ///< reading or writing a local file failed
    not_supported,        ///< the operation or URI scheme is not available in this build
    outbox_full,          ///< a write the outbox cannot hold (outbox_max): refused, not queued
    disk_full,            ///< a local file could not be written for want of space (ENOSPC)
};

/// The last enumerator of `Errc` (for tables indexed by it).
inline constexpr Errc last_errc = Errc::disk_full;

/// The error category of `Errc`; its name() is "modelrepo".
const std::error_category& error_category() noexcept;

/// Lets `std::error_code ec = Errc::timeout;` work.
std::error_code make_error_code(Errc e) noexcept;

/// The enumerator's name, e.g. "auth_failed"; "unknown" for values outside the enum.
std::string_view to_string(Errc e) noexcept;

/// Replaces secrets in `text` with "***": the password in URL userinfo
/// (`postgresql://user:secret@host`), `password=`/`token=` style key-value pairs, HTTP
/// `Authorization` values and GitHub token shapes (`ghp_…`, `github_pat_…`).
/// Every message modelrepo produces goes through this function.
std::string redact(std::string_view text);

/// A failure: a code to branch on, a message to show a person, and the details a
/// program may want without parsing the message. The message never holds a password
/// or a token.
struct Error {
    std::error_code code; ///< usually an `Errc`; compare with `error.is(Errc::timeout)`
    std::string message;  ///< what was tried, what failed and what to do
    std::string source;   ///< the repository that failed ("builtin", "postgresql://…")
    std::string target;   ///< host, address and port, URL or file tried, redacted
    std::string sqlstate; ///< PostgreSQL SQLSTATE when the server sent one ("28P01")
    int http_status = 0;  ///< HTTP status when a server answered one
    /// When the caller may try again (rate limits, open circuit breakers).
    std::optional<std::chrono::system_clock::time_point> retry_after;

    /// The `Errc` of `code`, or nullopt when the code belongs to another category.
    [[nodiscard]] std::optional<Errc> errc() const noexcept;
    /// True when `code` is the modelrepo error `e`.
    [[nodiscard]] bool is(Errc e) const noexcept { return code == make_error_code(e); }
    /// "<errc name>: <message>", the form the CLI prints.
    [[nodiscard]] std::string to_string() const;

    bool operator==(const Error&) const = default;
};

/// How modelrepo treats an error. One table (beside the `Errc` names in
/// src/core/error.cpp) decides it for every part: a backend's last-known copy and outbox
/// stand in on an `outage`, a circuit breaker counts `trips_breaker`, a chain returns an
/// `answer` instead of asking the next source, `modelrepo serve` answers `http_status`.
struct ErrorClass {
    /// The source cannot answer now for a cause outside the call (its server, the
    /// network, credentials, capacity): a last-known copy may answer instead, an outbox
    /// may keep a write.
    bool outage = false;
    /// What the caller passed is wrong (a bad argument, invalid data): retrying the same
    /// call cannot help.
    bool caller_fault = false;
    /// Counts as the source's failure for its circuit breaker.
    bool trips_breaker = false;
    /// An answer, not a failure of the source (`invalid_argument`, `not_found`): a chain
    /// returns it instead of asking the next source.
    bool answer = false;
    /// The same call may succeed if made again later.
    bool retryable = false;
    /// The HTTP status `modelrepo serve` answers with.
    int http_status = 500;
    /// The source's origin itself is down or refuses this client (its server, the network,
    /// credentials, TLS, a missing database or schema, an HTTP 5xx): a health report says
    /// so (`FallbackEvent::source_down`). Not a local limit (`pool_exhausted`), not a
    /// query's failure.
    bool source_down = false;

    bool operator==(const ErrorClass&) const = default;
};

/// The class of `error`: by its `Errc`, refined by its details (HTTP 5xx trips a breaker
/// and 4xx does not; SQLSTATE 22xxx/23xxx is the caller's data, 40001/40P01 retryable).
/// An error of another category is a failure of unknown kind: nothing set, HTTP 500.
[[nodiscard]] ErrorClass classify(const Error& error) noexcept;

/// Builds an `Error`; `message` is passed through `redact()`.
Error make_error(Errc code, std::string_view message);

/// Thrown only by `Result<T>::value()` (and `error()`) when it does not hold what was
/// asked for. `what()` is `error().to_string()`.
class BadResultAccess : public std::logic_error {
public:
    explicit BadResultAccess(Error error);
    explicit BadResultAccess(const char* what);
    /// The error the result held (empty when it held a value).
    const Error& error() const noexcept { return error_; }

private:
    Error error_;
};

namespace detail {

/// Outcome's no-value policy for `Result`: wide observers throw `BadResultAccess`.
struct ResultPolicy : boost::outcome_v2::policy::base {
    template <class Impl>
    static constexpr void wide_value_check(Impl&& self) {
        if (!base::_has_value(self)) {
            if (base::_has_error(self))
                throw BadResultAccess(base::_error(self));
            throw BadResultAccess("modelrepo::Result holds no value");
        }
    }
    template <class Impl>
    static constexpr void wide_error_check(Impl&& self) {
        if (!base::_has_error(self))
            throw BadResultAccess("modelrepo::Result holds no error");
    }
    template <class Impl>
    static constexpr void wide_exception_check(Impl&& self) {
        if (!base::_has_exception(self))
            throw BadResultAccess("modelrepo::Result holds no exception");
    }
};

} // namespace detail

namespace detail {

/// What `Result<std::optional<U>>::value()` returns on a temporary: the optional itself,
/// whose `*` and `value()` on a temporary return the `U` by value too, so that
/// `const Model& m = *repo->find_model(slug).value();` binds to a value that lives as long
/// as `m` (a `U&&` into the temporary would dangle at the end of the statement).
template <class U>
class OwnedOptional : public std::optional<U> {
public:
    using std::optional<U>::optional;
    using std::optional<U>::operator*;
    using std::optional<U>::value;
    OwnedOptional(std::optional<U>&& other) noexcept(
        std::is_nothrow_move_constructible_v<U>) // NOLINT: a value, implicitly
        : std::optional<U>(std::move(other)) {}
    U operator*() && { return std::move(**static_cast<std::optional<U>*>(this)); }
    U value() && { return std::move(static_cast<std::optional<U>&>(*this).value()); }

    friend bool operator==(const OwnedOptional& a, const OwnedOptional& b) {
        return static_cast<const std::optional<U>&>(a) == static_cast<const std::optional<U>&>(b);
    }
    friend bool operator==(const OwnedOptional& a, const std::optional<U>& b) {
        return static_cast<const std::optional<U>&>(a) == b;
    }
    friend bool operator==(const OwnedOptional& a, std::nullopt_t) { return !a.has_value(); }
};

template <class T>
struct Owned {
    using type = T;
};
template <class U>
struct Owned<std::optional<U>> {
    using type = OwnedOptional<U>;
};

} // namespace detail

/// The outcome of a fallible call: a `T` or an `Error` (a Boost.Outcome `basic_result`).
/// `if (auto r = repo->count_models()) use(r.value()); else log(r.error().message);`
///
/// On a named result `value()` returns a reference into it, valid while the result lives.
/// On a temporary it returns the value itself, moved out, so that the forms people write
/// do not dangle: `const auto& stats = repo->system_stats().value();`,
/// `for (const Model& m : repo->list_models().value())` and
/// `const Model& m = *repo->find_model(slug).value();` each keep what they refer to alive
/// (C++ extends a temporary bound to a reference; it would not extend the Result behind a
/// reference into it).
template <class T>
class Result : public boost::outcome_v2::basic_result<T, Error, detail::ResultPolicy> {
    using Base = boost::outcome_v2::basic_result<T, Error, detail::ResultPolicy>;

public:
    using Base::Base;
    Result(const Base& other)
        : Base(other) {}
    Result(Base&& other) noexcept(std::is_nothrow_move_constructible_v<Base>)
        : Base(std::move(other)) {}

    using Base::value;
    /// On a temporary: the value, moved out (see above); throws `BadResultAccess` when it
    /// holds an error.
    decltype(auto) value() && {
        if constexpr (std::is_void_v<T>) {
            static_cast<Base&>(*this).value();
        } else {
            using Owned = typename detail::Owned<T>::type;
            return Owned(std::move(static_cast<Base&>(*this).value()));
        }
    }
};

/// `return modelrepo::success();` from a function returning `Result<void>`.
using boost::outcome_v2::success;

} // namespace modelrepo

template <>
struct std::is_error_code_enum<modelrepo::Errc> : std::true_type {};
