// SPDX-License-Identifier: MIT
// PgServer: a throwaway PostgreSQL 15 for integration tests, started on loopback.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace modelrepo::test {

/// False in programs that are not doctest runs (the benchmarks): harness failures are
/// printed and end the program instead of failing a test.
extern bool report_with_doctest;

/// A TCP port on 127.0.0.1 that nothing listens on (now).
int free_loopback_port();

/// initdb into a temporary directory, scram-sha-256 for TCP from 127.0.0.1 and ::1,
/// a free port, `pg_ctl start -w`; everything is removed on destruction.
///
/// When the test runs as root, the server runs as the `postgres` user (initdb refuses
/// root). Admin work uses the unix socket in the data directory (trust for the
/// superuser only). Tests create their own roles and passwords.
///
/// When no server can run here, `available()` is false and `why()` says why; a test
/// then skips (exit 77) outside CI and fails in CI (`CI=true`).
class PgServer {
public:
    PgServer();
    /// A streaming standby of `primary`: pg_basebackup -R from it, its own port.
    struct Standby {};
    PgServer(const PgServer& primary, Standby);
    ~PgServer();
    PgServer(const PgServer&) = delete;
    PgServer& operator=(const PgServer&) = delete;

    bool available() const { return running_; }
    const std::string& why() const { return why_; }

    int port() const { return port_; }
    const std::filesystem::path& data_dir() const { return data_dir_; }

    /// A URL for `user`/`password` on 127.0.0.1 (or `host`), database `db`.
    std::string url(const std::string& user, const std::string& password,
                    const std::string& db = "modelrepo", const std::string& host = "127.0.0.1",
                    const std::string& query = "") const;

    /// A libpq conninfo for the superuser over the unix socket (no password), on database
    /// `db`, with `application_name` when one is given (what pg_stat_activity shows).
    std::string admin_conninfo(const std::string& db = "postgres",
                               const std::string& application = "") const;

    /// Runs SQL as the superuser over the unix socket; returns psql's stdout, or fails
    /// the test.
    std::string psql(const std::string& sql, const std::string& db = "postgres") const;
    /// Same, but returns nullopt instead of failing when psql fails.
    std::optional<std::string> try_psql(const std::string& sql,
                                        const std::string& db = "postgres") const;

    /// Creates a login role with a SCRAM verifier and a database it owns (if missing).
    void create_role(const std::string& user, const std::string& password,
                     const std::string& db = "modelrepo") const;

    /// Appends a line to pg_hba.conf (before the catch-all rules) without reloading.
    void prepend_hba(const std::string& line) const;
    /// Replaces pg_hba.conf (keeping the superuser's local trust line) without reloading;
    /// returns the old content for restore_hba().
    std::string replace_hba(const std::string& lines) const;
    void restore_hba(const std::string& content) const;
    void reload() const;

    /// Turns TLS on (ssl = on, then a reload): a throwaway CA and a server certificate
    /// for 127.0.0.1 and localhost, made with openssl in the server's directory. Returns
    /// the CA's certificate (for sslrootcert=); fails the test when openssl cannot.
    std::filesystem::path enable_tls() const;

    /// The postmaster's pid (from postmaster.pid).
    int postmaster_pid() const;
    /// SIGKILL the postmaster and every backend.
    void kill9();
    /// SIGSTOP / SIGCONT the postmaster and all its children.
    void stop_processes() const;
    void continue_processes() const;
    /// Start again after kill9() (same data directory and port).
    void start();

    /// A standby: promote it to a primary (pg_ctl promote, waits).
    void promote() const;
    /// A standby: pause / resume the replay of WAL (pg_wal_replay_pause()).
    void pause_replay() const;
    void resume_replay() const;

    /// Runs `command` in a shell as the server's user; its exit status.
    int shell_as_server_user(const std::string& command, std::string* output = nullptr) const;

private:
    std::string as_server_user(const std::string& command) const;
    int run_shell(const std::string& command, std::string* output = nullptr) const;
    void signal_all(int signal) const;

    std::filesystem::path root_;
    std::filesystem::path data_dir_;
    std::filesystem::path bin_dir_ = "/usr/lib/postgresql/15/bin";
    int port_ = 0;
    bool running_ = false;
    bool as_root_ = false;
    std::string why_;
    mutable std::string last_psql_error_;
};

/// A process-wide server for a test binary, started on first use.
PgServer& shared_pg_server();

/// Skips the current test binary (exit 77) when no PostgreSQL can run, or fails it
/// under CI=true. Call at the top of each integration test case.
void require_pg(const PgServer& server);

} // namespace modelrepo::test
