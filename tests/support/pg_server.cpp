// SPDX-License-Identifier: MIT
#include "pg_server.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process.hpp"

namespace modelrepo::test {

bool report_with_doctest = true;

int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

namespace {} // namespace

PgServer::PgServer() {
    if (!std::filesystem::exists(bin_dir_ / "initdb")) {
        why_ = "PostgreSQL 15 is not installed (" + (bin_dir_ / "initdb").string() +
               " missing; scripts/setup test installs postgresql-15)";
        return;
    }
    as_root_ = ::geteuid() == 0;
    // The postmaster outlives pg_ctl; as a subreaper this process inherits it and can
    // reap it after kill9(). Otherwise a zombie postmaster (where PID 1 does not reap)
    // still looks alive to the next start's lock-file check.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char pattern[] = "/tmp/modelrepo-pg-XXXXXX";
    if (!::mkdtemp(pattern)) {
        why_ = "mkdtemp failed";
        return;
    }
    root_ = pattern;
    data_dir_ = root_ / "data";
    if (as_root_ && run_shell("chown postgres:postgres " + shell_quote(root_.string())) != 0) {
        why_ = "cannot hand the data directory to the postgres user";
        return;
    }
    std::string out;
    if (run_shell(as_server_user(shell_quote((bin_dir_ / "initdb").string()) + " -D " +
                                 shell_quote(data_dir_.string()) +
                                 " -U postgres --auth-local=trust --auth-host=scram-sha-256 "
                                 "--encoding=UTF8 --locale=C.UTF-8 --no-sync"),
                  &out) != 0) {
        why_ = "initdb failed: " + out;
        return;
    }
    port_ = free_loopback_port();
    std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
    conf << "\nlisten_addresses = '127.0.0.1,::1'\n"
         << "port = " << port_ << "\n"
         << "unix_socket_directories = '" << root_.string() << "'\n"
         << "password_encryption = 'scram-sha-256'\n"
         << "max_connections = 60\n"
         // Logical decoding (the logical feed's tests); a temporary slot per session.
         << "wal_level = logical\nmax_replication_slots = 20\nmax_wal_senders = 20\n"
         // fsync off is safe when only processes die (the kernel keeps the pages);
         // commits stay synchronous so kill -9 loses nothing committed.
         << "fsync = off\nfull_page_writes = off\n"
         << "logging_collector = off\n";
    conf.close();
    if (as_root_)
        run_shell("chown postgres:postgres " +
                  shell_quote((data_dir_ / "postgresql.conf").string()));
    start();
}

PgServer::PgServer(const PgServer& primary, Standby) {
    if (!primary.available()) {
        why_ = "no primary to stand by for: " + primary.why();
        return;
    }
    as_root_ = primary.as_root_;
    char pattern[] = "/tmp/modelrepo-standby-XXXXXX";
    if (!::mkdtemp(pattern)) {
        why_ = "mkdtemp failed";
        return;
    }
    root_ = pattern;
    data_dir_ = root_ / "data";
    if (as_root_ && run_shell("chown postgres:postgres " + shell_quote(root_.string())) != 0) {
        why_ = "cannot hand the data directory to the postgres user";
        return;
    }
    std::string out;
    // -R writes standby.signal and primary_conninfo (over the primary's unix socket,
    // where pg_hba.conf trusts the superuser for replication).
    if (run_shell(as_server_user(shell_quote((bin_dir_ / "pg_basebackup").string()) + " -D " +
                                 shell_quote(data_dir_.string()) + " -R -X stream -c fast -h " +
                                 shell_quote(primary.root_.string()) + " -p " +
                                 std::to_string(primary.port_) + " -U postgres"),
                  &out) != 0) {
        why_ = "pg_basebackup failed: " + out;
        return;
    }
    port_ = free_loopback_port();
    std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
    conf << "\nport = " << port_ << "\n"
         << "unix_socket_directories = '" << root_.string() << "'\n"
         << "hot_standby = on\n";
    conf.close();
    if (as_root_)
        run_shell("chown postgres:postgres " +
                  shell_quote((data_dir_ / "postgresql.conf").string()));
    start();
}

void PgServer::promote() const {
    run_shell(as_server_user(shell_quote((bin_dir_ / "pg_ctl").string()) + " -D " +
                             shell_quote(data_dir_.string()) + " -w promote"));
}

void PgServer::pause_replay() const {
    psql("SELECT pg_wal_replay_pause()");
}

void PgServer::resume_replay() const {
    psql("SELECT pg_wal_replay_resume()");
}

int PgServer::shell_as_server_user(const std::string& command, std::string* output) const {
    return run_shell(as_server_user(command), output);
}

void PgServer::start() {
    std::string out;
    std::string log = (root_ / "server.log").string();
    if (run_shell(as_server_user(shell_quote((bin_dir_ / "pg_ctl").string()) + " -D " +
                                 shell_quote(data_dir_.string()) + " -l " + shell_quote(log) +
                                 " -w -t 60 start"),
                  &out) != 0) {
        std::ifstream in(log);
        std::stringstream content;
        content << in.rdbuf();
        why_ = "pg_ctl start failed: " + out + content.str();
        running_ = false;
        return;
    }
    running_ = true;
}

PgServer::~PgServer() {
    if (running_) {
        continue_processes();
        run_shell(as_server_user(shell_quote((bin_dir_ / "pg_ctl").string()) + " -D " +
                                 shell_quote(data_dir_.string()) + " -m immediate -w stop"));
    }
    if (!root_.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(root_, ignored);
    }
}

std::string PgServer::as_server_user(const std::string& command) const {
    if (!as_root_)
        return command;
    return "runuser -u postgres -- sh -c " + shell_quote(command);
}

int PgServer::run_shell(const std::string& command, std::string* output) const {
    std::string full = command + " 2>&1";
    FILE* pipe = ::popen(full.c_str(), "r");
    if (!pipe)
        return -1;
    char buf[4096];
    std::string collected;
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe))
        collected.append(buf, n);
    int status = ::pclose(pipe);
    if (output)
        *output = collected;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string PgServer::url(const std::string& user, const std::string& password,
                          const std::string& db, const std::string& host,
                          const std::string& query) const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    std::string u = "postgresql://" + user + (password.empty() ? "" : ":" + password) + "@" + h +
                    ":" + std::to_string(port_) + "/" + db;
    return query.empty() ? u : u + "?" + query;
}

std::string PgServer::admin_conninfo(const std::string& db, const std::string& application) const {
    std::string out =
        "host=" + root_.string() + " port=" + std::to_string(port_) + " user=postgres dbname=" + db;
    if (!application.empty())
        out += " application_name=" + application;
    return out;
}

std::optional<std::string> PgServer::try_psql(const std::string& sql, const std::string& db) const {
    std::string command = "PGCONNECT_TIMEOUT=10 " + shell_quote((bin_dir_ / "psql").string()) +
                          " -X -q -A -t -v ON_ERROR_STOP=1 -h " + shell_quote(root_.string()) +
                          " -p " + std::to_string(port_) + " -U postgres -d " + shell_quote(db) +
                          " -c " + shell_quote(sql);
    std::string out;
    if (run_shell(command, &out) != 0) {
        last_psql_error_ = out;
        return std::nullopt;
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    return out;
}

std::string PgServer::psql(const std::string& sql, const std::string& db) const {
    auto out = try_psql(sql, db);
    if (!out) {
        if (!report_with_doctest) {
            // Outside a doctest run (the benchmarks): report and stop.
            std::fprintf(stderr, "psql failed: %s\n%s\n", sql.c_str(), last_psql_error_.c_str());
            std::exit(1);
        }
        FAIL("psql failed: " << sql << "\n" << last_psql_error_);
    }
    return *out;
}

void PgServer::create_role(const std::string& user, const std::string& password,
                           const std::string& db) const {
    psql("SET password_encryption = 'scram-sha-256'; DROP ROLE IF EXISTS \"" + user +
         "\"; CREATE ROLE \"" + user + "\" LOGIN PASSWORD '" + password + "'");
    if (psql("SELECT count(*) FROM pg_database WHERE datname = '" + db + "'") == "0")
        psql("CREATE DATABASE \"" + db + "\" OWNER \"" + user + "\"");
    else
        psql("ALTER DATABASE \"" + db + "\" OWNER TO \"" + user + "\"");
    psql("GRANT ALL ON SCHEMA public TO \"" + user + "\"", db);
}

void PgServer::prepend_hba(const std::string& line) const {
    auto path = data_dir_ / "pg_hba.conf";
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    in.close();
    std::ofstream out(path, std::ios::trunc);
    out << line << "\n" << content.str();
}

std::string PgServer::replace_hba(const std::string& lines) const {
    auto path = data_dir_ / "pg_hba.conf";
    std::ifstream in(path);
    std::stringstream old;
    old << in.rdbuf();
    in.close();
    std::ofstream(path, std::ios::trunc) << "local all postgres trust\n" << lines << "\n";
    return old.str();
}

void PgServer::restore_hba(const std::string& content) const {
    std::ofstream(data_dir_ / "pg_hba.conf", std::ios::trunc) << content;
}

void PgServer::reload() const {
    psql("SELECT pg_reload_conf()");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

std::filesystem::path PgServer::enable_tls() const {
    auto dir = root_ / "tls";
    std::filesystem::create_directories(dir);
    auto at = [&](const char* name) { return shell_quote((dir / name).string()); };
    std::ofstream(dir / "san.cnf") << "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
    // A CA, and a server key and certificate it signs (valid for the test's lifetime).
    const std::string script =
        "set -e; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=modelrepo-test-ca "
        "-keyout " +
        at("ca.key") + " -out " + at("ca.crt") +
        "; openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + at("server.key") +
        " -out " + at("server.csr") + "; openssl x509 -req -days 2 -in " + at("server.csr") +
        " -CA " + at("ca.crt") + " -CAkey " + at("ca.key") + " -CAcreateserial -extfile " +
        at("san.cnf") + " -out " + at("server.crt") + "; chmod 600 " + at("server.key");
    std::string output;
    int rc = run_shell(script, &output);
    REQUIRE_MESSAGE(rc == 0, "openssl could not make the test's certificates: " << output);
    if (as_root_)
        REQUIRE(run_shell("chown -R postgres:postgres " + shell_quote(dir.string())) == 0);
    psql("ALTER SYSTEM SET ssl_cert_file = '" + (dir / "server.crt").string() + "'");
    psql("ALTER SYSTEM SET ssl_key_file = '" + (dir / "server.key").string() + "'");
    psql("ALTER SYSTEM SET ssl = on");
    reload();
    REQUIRE_MESSAGE(psql("SHOW ssl") == "on", "the server did not turn TLS on");
    return dir / "ca.crt";
}

int PgServer::postmaster_pid() const {
    std::ifstream in(data_dir_ / "postmaster.pid");
    int pid = 0;
    in >> pid;
    return pid;
}

void PgServer::signal_all(int signal) const {
    int pid = postmaster_pid();
    if (pid <= 0)
        return;
    std::string children = "pkill -" + std::to_string(signal) + " -P " + std::to_string(pid);
    if (signal == SIGSTOP) {
        // Children first, so none sees its parent stop before it does.
        run_shell(children);
        ::kill(pid, signal);
    } else {
        // The parent first: a postmaster that sees a child die would restart it.
        ::kill(pid, signal);
        run_shell(children);
    }
}

void PgServer::kill9() {
    int pid = postmaster_pid();
    // Children first into a list: once the postmaster dies they are reparented and
    // `pkill -P` would no longer find them, and a surviving backend keeps the old
    // shared memory attached, which makes the next start refuse.
    std::vector<int> pids{pid};
    std::string children;
    run_shell("pgrep -P " + std::to_string(pid), &children);
    std::stringstream list(children);
    for (int child; list >> child;)
        pids.push_back(child);
    for (int p : pids)
        if (p > 0)
            ::kill(p, SIGKILL);
    // Reap what was reparented to us (see PR_SET_CHILD_SUBREAPER above) and wait until
    // every process is gone.
    for (int i = 0; i < 250; ++i) {
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        bool alive = false;
        for (int p : pids)
            alive = alive || (p > 0 && ::kill(p, 0) == 0);
        if (!alive)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::error_code ignored;
    std::filesystem::remove(data_dir_ / "postmaster.pid", ignored);
    running_ = false;
}

void PgServer::stop_processes() const {
    signal_all(SIGSTOP);
}

void PgServer::continue_processes() const {
    signal_all(SIGCONT);
}

PgServer& shared_pg_server() {
    static PgServer server;
    return server;
}

void require_pg(const PgServer& server) {
    if (server.available())
        return;
    if (in_ci())
        FAIL("PostgreSQL is required in CI but could not start: " << server.why());
    std::fprintf(stderr, "SKIP: no PostgreSQL here: %s\n", server.why().c_str());
    std::exit(77);
}

} // namespace modelrepo::test
