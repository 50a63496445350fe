// SPDX-License-Identifier: MIT
// Shared by the benchmarks that load `modelrepo serve` over HTTP: wrk's figures, nginx
// serving the same bytes from files (the peer for an answer from memory), whole-answer
// fetches with curl, the serve process's RSS, and a fan-out of raw /v1/changes clients.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peers.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

namespace bench {

using namespace std::chrono_literals;

struct WrkResult {
    double rps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    long errors = 0;
};

inline double wrk_ms(const std::string& number, const std::string& unit) {
    double v = std::stod(number);
    if (unit == "us")
        return v / 1000;
    if (unit == "s")
        return v * 1000;
    return v; // ms
}

/// wrk -t2 -c`connections` on `path` for `seconds`: requests per second, p50, p99, and
/// the answers that were errors (non-2xx/3xx, socket errors).
inline WrkResult wrk(int port, const std::string& path, int seconds, int connections = 32) {
    auto r = modelrepo::test::run_process({"wrk", "-t2", "-c" + std::to_string(connections),
                                           "-d" + std::to_string(seconds) + "s", "--latency",
                                           "http://127.0.0.1:" + std::to_string(port) + path},
                                          {}, std::chrono::seconds(seconds) + 60s);
    WrkResult out;
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
        out.rps = std::stod(m[1]);
    if (std::regex_search(r.out, m, std::regex(R"(\n\s+50%\s+([0-9.]+)(us|ms|s))")))
        out.p50_ms = wrk_ms(m[1], m[2]);
    if (std::regex_search(r.out, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s))")))
        out.p99_ms = wrk_ms(m[1], m[2]);
    if (std::regex_search(r.out, m, std::regex(R"(Non-2xx or 3xx responses:\s+(\d+))")))
        out.errors += std::stol(m[1]);
    if (std::regex_search(
            r.out, m,
            std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
        out.errors += std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
    if (r.exit_code != 0 || out.rps == 0)
        std::fprintf(stderr, "wrk failed (%d): %s %s\n", r.exit_code, r.out.c_str(), r.err.c_str());
    return out;
}

/// The port a process prints on the line starting with `prefix` ("listening on http://…:N").
inline int wait_port(modelrepo::test::ChildProcess& process, const std::string& prefix) {
    auto line =
        process.read_line_until([&](const std::string& l) { return l.starts_with(prefix); }, 120s);
    if (!line) {
        std::fprintf(stderr, "did not start: %s\n", process.err().c_str());
        return -1;
    }
    return std::stoi(line->substr(line->find_last_of(": ") + 1));
}

inline int connect_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// A free loopback port (bound, read, released: another process could take it first).
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t length = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// The resident set of process `pid`, in KiB (VmRSS), 0 when unknown.
inline long rss_kib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmRSS:"))
            return std::atol(line.c_str() + 6);
    return 0;
}

/// Raises this process's descriptor limit to its hard limit (for thousands of clients).
/// As root, past the hard limit to 65,536 (the fan-out floor holds both ends of 10,000
/// connections).
inline void raise_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        rlimit more{65'536, 65'536};
        if (limit.rlim_max < more.rlim_max && ::setrlimit(RLIMIT_NOFILE, &more) == 0)
            return;
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/// curl fetching `url` whole into /dev/null: milliseconds (curl's time_total) and the bytes
/// received; 0 ms on failure. `args`: more of curl's options (--compressed).
inline std::pair<double, double> fetch(const std::string& url, std::vector<std::string> args = {}) {
    std::vector<std::string> argv{
        "curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download} %{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    auto r = modelrepo::test::run_process(argv, {}, 120s);
    double seconds = 0, bytes = 0;
    int code = 0;
    if (r.exit_code != 0 ||
        std::sscanf(r.out.c_str(), "%lf %lf %d", &seconds, &bytes, &code) != 3 || code != 200) {
        std::fprintf(stderr, "fetch %s failed: %s %s\n", url.c_str(), r.out.c_str(), r.err.c_str());
        return {0, 0};
    }
    return {seconds * 1000, bytes};
}

/// Debian's nginx serving the files under `root()` on a loopback port: sendfile, keep-alive,
/// access log off, one worker per core; the peer for an answer that is bytes in memory.
class Nginx {
public:
    explicit Nginx(const modelrepo::test::TempDir& dir)
        : root_(dir.path() / "www")
        , port_(free_port()) {
        std::filesystem::create_directories(root_);
        std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all |
                                                     std::filesystem::perms::group_exec |
                                                     std::filesystem::perms::others_exec);
        auto conf = dir.path() / "nginx.conf";
        std::ofstream(conf) << (::geteuid() == 0 ? "user root;\n" : "")
                            << "daemon off;\nworker_processes auto;\n"
                               "error_log "
                            << (dir.path() / "nginx-error.log").string() << ";\npid "
                            << (dir.path() / "nginx.pid").string()
                            << ";\nevents { worker_connections 16384; }\n"
                               "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
                               "  keepalive_requests 1000000;\n  default_type application/json;\n"
                               "  client_body_temp_path "
                            << (dir.path() / "nginx-tmp").string() << ";\n  proxy_temp_path "
                            << (dir.path() / "nginx-tmp").string() << ";\n  fastcgi_temp_path "
                            << (dir.path() / "nginx-tmp").string() << ";\n  uwsgi_temp_path "
                            << (dir.path() / "nginx-tmp").string() << ";\n  scgi_temp_path "
                            << (dir.path() / "nginx-tmp").string()
                            << ";\n  server {\n    listen 127.0.0.1:" << port_ << ";\n    root "
                            << root_.string() << ";\n    location / { }\n  }\n}\n";
        process_ = std::make_unique<modelrepo::test::ChildProcess>(
            std::vector<std::string>{"nginx", "-c", conf.string(), "-p", dir.path().string()});
        for (int i = 0; i < 100 && !answers(); ++i)
            std::this_thread::sleep_for(50ms);
    }
    ~Nginx() {
        process_->signal(SIGQUIT);
        process_->wait(10s);
    }
    /// Puts `bytes` where nginx answers GET `path` ("/v1/models") with them.
    void put(const std::string& path, const std::string& bytes) const {
        auto file = root_ / path.substr(1);
        std::filesystem::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << bytes;
    }
    int port() const { return port_; }
    bool answers() const {
        int fd = connect_loopback(port_);
        if (fd >= 0)
            ::close(fd);
        return fd >= 0;
    }

private:
    std::filesystem::path root_;
    int port_;
    std::unique_ptr<modelrepo::test::ChildProcess> process_;
};

/// The fan-out peer: nginx with nchan (Debian's libnginx-mod-nchan), which serializes a
/// message once and writes it to every subscriber. Subscribers GET /sub as an
/// EventSource; publish() POSTs a message to /pub on a kept-alive connection.
class Nchan {
public:
    static constexpr const char* module = "/usr/lib/nginx/modules/ngx_nchan_module.so";

    explicit Nchan(const modelrepo::test::TempDir& dir)
        : port_(free_port()) {
        if (!std::filesystem::exists(module))
            return;
        std::filesystem::create_directories(dir.path() / "nchan-tmp");
        auto conf = dir.path() / "nchan.conf";
        std::ofstream(conf) << "load_module " << module << ";\n"
                            << (::geteuid() == 0 ? "user root;\n" : "")
                            << "daemon off;\nworker_processes auto;\nworker_rlimit_nofile 65536;\n"
                               "error_log "
                            << (dir.path() / "nchan-error.log").string() << ";\npid "
                            << (dir.path() / "nchan.pid").string()
                            << ";\nevents { worker_connections 16384; }\n"
                               "http {\n  access_log off;\n  client_body_temp_path "
                            << (dir.path() / "nchan-tmp").string()
                            << ";\n  server {\n    listen 127.0.0.1:" << port_
                            << ";\n    location = /sub { nchan_subscriber eventsource; "
                               "nchan_channel_id feed; nchan_subscriber_first_message newest; }\n"
                               "    location = /pub { nchan_publisher; nchan_channel_id feed; "
                               "nchan_message_buffer_length 16; }\n  }\n}\n";
        process_ = std::make_unique<modelrepo::test::ChildProcess>(
            std::vector<std::string>{"nginx", "-c", conf.string(), "-p", dir.path().string()});
        for (int i = 0; i < 100 && !answers(); ++i)
            std::this_thread::sleep_for(50ms);
    }
    ~Nchan() {
        if (publisher_ >= 0)
            ::close(publisher_);
        if (process_) {
            process_->signal(SIGQUIT);
            process_->wait(10s);
        }
    }
    Nchan(const Nchan&) = delete;
    Nchan& operator=(const Nchan&) = delete;

    int port() const { return port_; }
    bool answers() const {
        int fd = process_ ? connect_loopback(port_) : -1;
        if (fd >= 0)
            ::close(fd);
        return fd >= 0;
    }
    /// POSTs `message` to every subscriber and reads the answer. False on failure.
    bool publish(const std::string& message) {
        if (publisher_ < 0)
            publisher_ = connect_loopback(port_);
        std::string request = "POST /pub HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                              "application/json\r\nContent-Length: " +
                              std::to_string(message.size()) + "\r\n\r\n" + message;
        if (publisher_ < 0 || ::send(publisher_, request.data(), request.size(), MSG_NOSIGNAL) !=
                                  static_cast<ssize_t>(request.size()))
            return false;
        // The answer: headers and a short text body (its Content-Length).
        std::string answer;
        char buf[2048];
        for (;;) {
            ssize_t n = ::recv(publisher_, buf, sizeof buf, 0);
            if (n <= 0)
                return false;
            answer.append(buf, static_cast<std::size_t>(n));
            auto end = answer.find("\r\n\r\n");
            if (end == std::string::npos)
                continue;
            auto length = answer.find("Content-Length: ");
            std::size_t body =
                length == std::string::npos ? 0 : std::stoul(answer.substr(length + 16));
            if (answer.size() >= end + 4 + body)
                return answer.compare(0, 12, "HTTP/1.1 201") == 0 ||
                       answer.compare(0, 12, "HTTP/1.1 202") == 0;
        }
    }

private:
    int port_;
    int publisher_ = -1;
    std::unique_ptr<modelrepo::test::ChildProcess> process_;
};

/// The floor of fan-out on this machine: no HTTP server at all. A child process (its own
/// descriptors: the clients' ends stay in the benchmark) accepts the clients and says
/// ": connected"; publish() hands it a message through a pipe and its one thread send()s
/// it to every client in a loop while they read it: a kernel's loopback TCP cost per
/// client, and nothing else.
class RawFanOut {
public:
    RawFanOut() {
        int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof addr;
        int pipe[2] = {-1, -1};
        if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listener, 4096) != 0 ||
            ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length) != 0 ||
            ::pipe2(pipe, O_CLOEXEC) != 0) {
            ::close(listener);
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(pipe[1]);
            serve(listener, pipe[0]);
            ::_exit(0);
        }
        ::close(pipe[0]);
        ::close(listener);
        pipe_ = pipe[1];
        port_ = pid_ > 0 ? ntohs(addr.sin_port) : -1;
    }
    ~RawFanOut() {
        if (pipe_ >= 0)
            ::close(pipe_); // the child's end of input: it exits
        if (pid_ > 0)
            ::waitpid(pid_, nullptr, 0);
    }
    RawFanOut(const RawFanOut&) = delete;
    RawFanOut& operator=(const RawFanOut&) = delete;

    int port() const { return port_; }
    /// Hands `message` (under PIPE_BUF) to the child for every client connected now.
    void publish(const std::string& message) {
        auto n = static_cast<std::uint32_t>(message.size());
        std::string frame(reinterpret_cast<const char*>(&n), sizeof n);
        frame += message;
        (void)!::write(pipe_, frame.data(), frame.size());
    }

private:
    static bool read_full(int fd, char* to, std::size_t n) {
        while (n > 0) {
            ssize_t got = ::read(fd, to, n);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return false;
            to += got;
            n -= static_cast<std::size_t>(got);
        }
        return true;
    }
    /// The child: accepts clients and sends each message to all of them, on one thread.
    static void serve(int listener, int input) {
        std::vector<int> clients;
        for (;;) {
            pollfd fds[2] = {{listener, POLLIN, 0}, {input, POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                return;
            }
            if (fds[0].revents & POLLIN) {
                int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
                if (fd >= 0) {
                    const char hello[] = ": connected\n\n";
                    (void)!::send(fd, hello, sizeof hello - 1, MSG_NOSIGNAL);
                    clients.push_back(fd);
                }
            }
            if (fds[1].revents & (POLLIN | POLLHUP)) {
                std::uint32_t n = 0;
                if (!read_full(input, reinterpret_cast<char*>(&n), sizeof n))
                    return;
                std::string message(n, '\0');
                if (!read_full(input, message.data(), n))
                    return;
                for (int fd : clients)
                    (void)!::send(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            }
        }
    }

    int pipe_ = -1;
    int port_ = -1;
    pid_t pid_ = -1;
};

/// What a fan-out client asks for, and the line that says it is subscribed.
struct Stream {
    std::string path = "/v1/changes";
    std::string headers;                   ///< more request headers, each ending "\r\n"
    std::string connected = ": connected"; ///< serve's first comment
};

/// nchan's EventSource subscription.
inline Stream nchan_stream() {
    return {"/sub", "Accept: text/event-stream\r\n", ": hi"};
}

/// The whole body of GET `path` (curl; chunks undone): what nginx is to serve.
inline std::string body_of(int port, const std::string& path) {
    auto r = modelrepo::test::run_process(
        {"curl", "-sS", "http://127.0.0.1:" + std::to_string(port) + path}, {}, 120s);
    return r.exit_code == 0 ? r.out : std::string();
}

/// `clients` raw connections on /v1/changes; `changes` times, `make_change(c)` (an
/// UPDATE through a plain libpq session, one at a time) and the time from calling it
/// until each client has an event containing `needle(c)`, in ms. Empty when not every
/// client connected.
inline std::vector<double> fan_out(int port, int clients, int changes,
                                   const std::function<void(int)>& make_change,
                                   const std::function<std::string(int)>& needle,
                                   const Stream& stream = {}) {
    using std::chrono::steady_clock;
    std::vector<int> fds;
    std::vector<std::string> got(static_cast<std::size_t>(clients));
    auto close_all = [&] {
        for (int fd : fds)
            ::close(fd);
    };
    for (int i = 0; i < clients; ++i) {
        int fd = connect_loopback(port);
        std::string request =
            "GET " + stream.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + stream.headers + "\r\n";
        if (fd < 0 || ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
            std::fprintf(stderr, "fan-out: connect %d failed\n", i);
            close_all();
            return {};
        }
        fds.push_back(fd);
    }
    // epoll, edge-triggered: the reader's cost per wake-up is what became readable, not
    // every client (poll() over 10,000 descriptors was the reader's own bottleneck).
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < fds.size(); ++i) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u64 = i;
        ::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    auto read_until = [&](const std::string& want, std::chrono::milliseconds limit,
                          std::vector<double>* arrival, steady_clock::time_point from) {
        std::vector<bool> finished(fds.size(), false);
        std::size_t left = fds.size();
        auto deadline = steady_clock::now() + limit;
        std::vector<epoll_event> events(1024);
        while (left > 0 && steady_clock::now() < deadline) {
            int ready = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
            if (ready <= 0)
                continue;
            auto now = steady_clock::now();
            for (int e = 0; e < ready; ++e) {
                auto i = static_cast<std::size_t>(events[static_cast<std::size_t>(e)].data.u64);
                // Read all there is (edge-triggered); a finished client's bytes stay for
                // the next round.
                for (;;) {
                    char buf[4096];
                    ssize_t n = ::recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
                    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (n <= 0) {
                        if (!finished[i]) {
                            finished[i] = true;
                            --left;
                        }
                        break;
                    }
                    got[i].append(buf, static_cast<std::size_t>(n));
                }
                if (!finished[i] && got[i].find(want) != std::string::npos) {
                    finished[i] = true;
                    --left;
                    if (arrival)
                        arrival->push_back(
                            std::chrono::duration<double, std::milli>(now - from).count());
                    got[i].erase(0, got[i].find(want) + want.size());
                }
            }
        }
        return left == 0;
    };
    struct CloseEpoll {
        int fd;
        ~CloseEpoll() { ::close(fd); }
    } close_epoll{ep};
    if (!read_until(stream.connected, 60s, nullptr, steady_clock::now())) {
        std::fprintf(stderr, "fan-out: not every client connected\n");
        close_all();
        return {};
    }
    std::vector<double> arrivals;
    for (int c = 0; c < changes; ++c) {
        auto sent = steady_clock::now();
        make_change(c);
        read_until(needle(c), 10s, &arrivals, sent);
        std::this_thread::sleep_for(50ms);
    }
    close_all();
    return arrivals;
}

} // namespace bench
