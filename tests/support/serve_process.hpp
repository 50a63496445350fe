// SPDX-License-Identifier: MIT
// `modelrepo serve` from outside, for the serve tests: the CLI started as a process
// (Serve), curl, a raw socket for what HTTP clients will not do, and the tools CI must
// have.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "process.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

namespace modelrepo::test {

using namespace std::chrono_literals;

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

/// A file in `dir` holding `token` on its first line, for --token-file.
inline std::string token_file(const TempDir& dir, const std::string& token) {
    auto path = dir.path() / "token";
    std::ofstream(path) << token << "\n";
    return path.string();
}

/// `modelrepo [--source …] serve --listen 127.0.0.1:0 …`, its port read from stdout.
class Serve {
public:
    /// `wrapper`: a command serve runs under (e.g. {"prlimit", "--nofile=128:128"}).
    explicit Serve(std::vector<std::string> sources, std::vector<std::string> args = {},
                   std::map<std::string, std::string> env = {},
                   std::vector<std::string> wrapper = {})
        : process_(command(std::move(wrapper), std::move(sources), std::move(args)), env) {
        auto line = process_.read_line_until(
            [](const std::string& l) { return l.starts_with("listening on http"); }, 30s);
        REQUIRE_MESSAGE(line, "serve did not start: " << process_.err());
        port_ = std::stoi(line->substr(line->rfind(':') + 1));
        scheme_ = line->starts_with("listening on https") ? "https" : "http";
    }

    int port() const { return port_; }
    /// http://127.0.0.1:PORT, or https:// when serve speaks TLS (on any --listen address).
    std::string base() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
    ChildProcess& process() { return process_; }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(10, 0);
        c.set_connection_timeout(5, 0);
        return c;
    }
    /// One sample of GET /metrics, e.g. metric("modelrepo_serve_streams").
    double metric(const std::string& name) {
        auto c = client();
        auto r = c.Get("/metrics");
        REQUIRE(r);
        auto at = r->body.find("\n" + name + " ");
        REQUIRE_MESSAGE(at != std::string::npos, name << " missing from\n" << r->body);
        return std::stod(r->body.substr(at + name.size() + 2));
    }

private:
    static std::vector<std::string> command(std::vector<std::string> wrapper,
                                            std::vector<std::string> sources,
                                            std::vector<std::string> args) {
        std::vector<std::string> argv = std::move(wrapper);
        argv.push_back(require_env("MODELREPO_CLI"));
        for (auto& s : sources) {
            argv.push_back("--source");
            argv.push_back(s);
        }
        argv.push_back("serve");
        if (std::find(args.begin(), args.end(), "--listen") == args.end()) {
            argv.push_back("--listen");
            argv.push_back("127.0.0.1:0");
        }
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    ChildProcess process_;
    int port_ = 0;
    std::string scheme_ = "http";
};

/// curl's answer: the body and, on the last line, the status (-w).
struct CurlAnswer {
    int status = 0;
    std::string body;
};
inline CurlAnswer curl(std::vector<std::string> args) {
    std::vector<std::string> argv{"curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv, {}, seconds(30));
    REQUIRE_MESSAGE(r.exit_code == 0, "curl failed: " << r.err);
    auto nl = r.out.rfind('\n');
    return {std::stoi(r.out.substr(nl + 1)), r.out.substr(0, nl)};
}

inline nlohmann::json error_of(const std::string& body) {
    auto parsed = nlohmann::json::parse(body);
    REQUIRE(parsed.contains("error"));
    REQUIRE(parsed["error"]["code"].is_string());
    REQUIRE(parsed["error"]["message"].is_string());
    return parsed["error"];
}

/// A plain TCP connection to the server, for what HTTP clients will not do: drip a
/// request, hold a stream open without a library, read raw chunks.
class RawSocket {
public:
    explicit RawSocket(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~RawSocket() { close(); }
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    bool send(std::string_view text) {
        return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(text.size());
    }
    /// Reads until `needle` is in what was received (true), the peer closes or the
    /// timeout passes (false).
    bool wait_for(std::string_view needle, milliseconds timeout) {
        auto deadline = steady_clock::now() + timeout;
        while (received_.find(needle) == std::string::npos) {
            auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
            if (left.count() <= 0 || !read_some(left))
                return false;
        }
        return true;
    }
    /// True when the peer closed the connection within `timeout`.
    bool closed_within(milliseconds timeout) {
        auto deadline = steady_clock::now() + timeout;
        for (;;) {
            auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
            if (left.count() <= 0)
                return false;
            if (!read_some(left))
                return eof_;
        }
    }
    const std::string& received() const { return received_; }
    /// The socket, for a reader of its own (after what wait_for() read).
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

private:
    bool read_some(milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
            return false;
        char buf[8192];
        ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
        if (got <= 0) {
            eof_ = true;
            return false;
        }
        received_.append(buf, static_cast<std::size_t>(got));
        return true;
    }
    int fd_ = -1;
    std::string received_;
    bool eof_ = false;
};

/// GET /v1/changes on a raw socket, up to the ": connected" comment; `target` and
/// `headers` ("Last-Event-ID: 7\r\n") for a stream that resumes.
inline std::unique_ptr<RawSocket> open_stream(int port, const std::string& target = "/v1/changes",
                                              const std::string& headers = "") {
    auto s = std::make_unique<RawSocket>(port);
    REQUIRE(s->send("GET " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" + headers +
                    "\r\n"));
    REQUIRE_MESSAGE(s->wait_for(": connected", 10s), s->received());
    REQUIRE(s->received().starts_with("HTTP/1.1 200"));
    REQUIRE(s->received().find("Content-Type: text/event-stream") != std::string::npos);
    return s;
}

/// The `id:` of every event received on a stream, in order.
inline std::vector<long long> event_ids(const std::string& received) {
    std::vector<long long> out;
    for (std::size_t at = received.find("\nid: "); at != std::string::npos;
         at = received.find("\nid: ", at + 1))
        out.push_back(std::stoll(received.substr(at + 5)));
    return out;
}

/// GET /readyz until its body satisfies `wanted` (it answers the last check of a prober
/// that runs every second), for at most 15 s; the last answer.
/// `client`: more of curl's arguments (--cacert for a serve that speaks TLS).
template <class Pred>
CurlAnswer ready_when(const Serve& serve, Pred&& wanted, std::vector<std::string> client = {}) {
    CurlAnswer answer;
    client.push_back(serve.base() + "/readyz");
    eventually(
        [&] {
            answer = curl(client);
            return wanted(nlohmann::json::parse(answer.body));
        },
        15s);
    return answer;
}

inline bool checked(const nlohmann::json& ready) {
    return ready["state"] != "starting";
}

/// The first source's copy follows its change feed: a change made from now on reaches the
/// streams as that change (made earlier, before the feed listened, it would be a resync).
inline bool copy_in_sync(const nlohmann::json& ready) {
    return ready.contains("copy") && ready["copy"]["in_sync"] == true;
}

} // namespace modelrepo::test
