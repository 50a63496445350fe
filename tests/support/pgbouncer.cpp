// SPDX-License-Identifier: MIT
#include "pgbouncer.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <pwd.h>
#include <unistd.h>

#include "process.hpp"

namespace modelrepo::test {

namespace {

const char* const binary = "/usr/sbin/pgbouncer";

} // namespace

PgBouncerServer::PgBouncerServer(const PgServer& server,
                                 std::vector<std::pair<std::string, std::string>> users,
                                 const std::string& pool_mode) {
    if (!std::filesystem::exists(binary)) {
        why_ = std::string(binary) + " is missing (scripts/setup test installs pgbouncer)";
        return;
    }
    char pattern[] = "/tmp/modelrepo-pgbouncer-XXXXXX";
    if (!::mkdtemp(pattern)) {
        why_ = "mkdtemp failed";
        return;
    }
    dir_ = pattern;
    port_ = free_loopback_port();
    {
        std::ofstream users_file(dir_ / "userlist.txt");
        for (const auto& [user, password] : users)
            users_file << '"' << user << "\" \"" << password << "\"\n";
    }
    {
        std::ofstream ini(dir_ / "pgbouncer.ini");
        ini << "[databases]\n"
            << "* = host=127.0.0.1 port=" << server.port() << "\n"
            << "[pgbouncer]\n"
            << "listen_addr = 127.0.0.1\n"
            << "listen_port = " << port_ << "\n"
            << "unix_socket_dir =\n"
            << "auth_type = scram-sha-256\n"
            << "auth_file = " << (dir_ / "userlist.txt").string() << "\n"
            << "pool_mode = " << pool_mode << "\n"
            << "max_client_conn = 400\n"
            << "default_pool_size = 8\n"
            << "logfile = " << (dir_ / "pgbouncer.log").string() << "\n"
            << "pidfile = " << (dir_ / "pgbouncer.pid").string() << "\n";
    }
    std::string out;
    // pgbouncer refuses to run as root: its files go to the server's user.
    if (::geteuid() == 0)
        if (passwd* pw = ::getpwnam("postgres"))
            for (const auto& p : {dir_, dir_ / "userlist.txt", dir_ / "pgbouncer.ini"})
                (void)::chown(p.c_str(), pw->pw_uid, pw->pw_gid);
    if (server.shell_as_server_user(
            std::string(binary) + " -d -q '" + (dir_ / "pgbouncer.ini").string() + "'", &out) !=
        0) {
        why_ = "pgbouncer did not start: " + out;
        return;
    }
    for (int i = 0; i < 200 && pid_ <= 0; ++i) {
        std::ifstream pid_file(dir_ / "pgbouncer.pid");
        int pid = 0;
        if (pid_file >> pid && pid > 0 && ::kill(pid, 0) == 0)
            pid_ = pid;
        else
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ <= 0) {
        std::ifstream log(dir_ / "pgbouncer.log");
        std::stringstream text;
        text << log.rdbuf();
        why_ = "pgbouncer wrote no pid file: " + text.str();
    }
}

std::string PgBouncerServer::log_tail(std::size_t bytes) const {
    std::ifstream log(dir_ / "pgbouncer.log");
    std::stringstream text;
    text << log.rdbuf();
    auto all = text.str();
    return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

PgBouncerServer::~PgBouncerServer() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 200 && ::kill(pid_, 0) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ::kill(pid_, SIGKILL);
    }
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

std::string PgBouncerServer::url(const std::string& user, const std::string& password,
                                 const std::string& db, const std::string& query) const {
    std::string u =
        "postgresql://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
    return query.empty() ? u : u + "?" + query;
}

void require_pgbouncer(const PgBouncerServer& bouncer) {
    if (bouncer.available())
        return;
    if (in_ci())
        FAIL("no pgbouncer in CI: " << bouncer.why());
    MESSAGE("skipping: " << bouncer.why());
    std::exit(77);
}

} // namespace modelrepo::test
