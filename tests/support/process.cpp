// SPDX-License-Identifier: MIT
#include "process.hpp"

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace modelrepo::test {

namespace {

/// Starts `argv` with `env`, standard input from /dev/null; its standard output and error
/// go to the returned pipes (read ends).
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            int& out, int& err) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        FAIL("pipe: " << std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0)
        FAIL("fork: " << std::strerror(errno));
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        for (const auto& [name, value] : env) {
            if (value.empty())
                ::unsetenv(name.c_str());
            else
                ::setenv(name.c_str(), value.c_str(), 1);
        }
        std::vector<char*> args;
        for (const std::string& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out = out_pipe[0];
    err = err_pipe[0];
    return pid;
}

} // namespace

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

ProcessResult run_on_terminal(const std::vector<std::string>& argv,
                              const std::map<std::string, std::string>& env,
                              const std::string& shell_tail) {
    std::string line;
    for (const auto& a : argv)
        line += shell_quote(a) + " ";
    line += shell_tail;
    // -e: script exits with the command's status; -q: no banner; the log to /dev/null.
    return run_process({"script", "-q", "-e", "-c", line, "/dev/null"}, env);
}

ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env,
                          std::chrono::milliseconds timeout) {
    int out = -1, err = -1;
    pid_t pid = spawn(argv, env, out, err);

    ProcessResult result;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    int open_fds = 2;
    bool killed = false;
    while (open_fds > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        int n = ::poll(fds, 2, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& fd : fds)
        if (fd.fd >= 0)
            ::close(fd.fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status))
        result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.exit_code = 128 + WTERMSIG(status);
    if (killed)
        result.err += "\n[killed after timeout]";
    return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env) {
    pid_ = spawn(argv, env, out_, err_fd_);
}

ChildProcess::~ChildProcess() {
    if (!waited_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (out_ >= 0)
        ::close(out_);
    if (err_fd_ >= 0)
        ::close(err_fd_);
}

void ChildProcess::pump(std::chrono::milliseconds timeout) {
    pollfd fds[2] = {{out_closed_ ? -1 : out_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (n <= 0)
        return;
    char buf[4096];
    if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
        ssize_t got = ::read(err_fd_, buf, sizeof buf);
        if (got > 0)
            err_.append(buf, static_cast<std::size_t>(got));
        else {
            ::close(err_fd_);
            err_fd_ = -1;
        }
    }
    if (fds[0].fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
        ssize_t got = ::read(out_, buf, sizeof buf);
        if (got > 0)
            buffer_.append(buf, static_cast<std::size_t>(got));
        else
            out_closed_ = true;
    }
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (out_closed_ || left.count() <= 0)
            return std::nullopt;
        pump(left);
    }
}

void ChildProcess::signal(int signal) {
    if (pid_ > 0 && !waited_)
        ::kill(pid_, signal);
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (waited_)
        return exit_code_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid_, &status, WNOHANG);
        if (done == pid_)
            break;
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            break;
        }
        pump(std::chrono::milliseconds(20));
    }
    // What it wrote before it ended may still be in the pipes: read to their end (for a
    // short while: a child of its own may hold them open).
    auto drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (err_fd_ >= 0 && std::chrono::steady_clock::now() < drain_until)
        pump(std::chrono::milliseconds(20));
    waited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
}

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && *ci && std::string(ci) != "false" && std::string(ci) != "0";
}

bool have_tool(const std::string& tool, const std::vector<std::string>& version_args) {
    std::vector<std::string> argv{tool};
    argv.insert(argv.end(), version_args.begin(), version_args.end());
    if (run_process(argv, {}, std::chrono::seconds(20)).exit_code == 0)
        return true;
    if (in_ci())
        FAIL(tool << " is required in CI (scripts/setup test installs it)");
    MESSAGE("skipped: " << tool << " is not installed (scripts/setup test)");
    return false;
}

std::string require_env(const char* name) {
    const char* value = std::getenv(name);
    REQUIRE_MESSAGE(value != nullptr, "environment variable " << name << " is not set");
    return value;
}

std::string percent_encode(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char hex[4];
            std::snprintf(hex, sizeof hex, "%%%02X", c);
            out += hex;
        }
    }
    return out;
}

} // namespace modelrepo::test
