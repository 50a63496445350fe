// SPDX-License-Identifier: MIT
// Runs a program and collects what it printed, for tests of the CLI and of server
// harnesses.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace modelrepo::test {

struct ProcessResult {
    int exit_code = -1; ///< exit status, or 128 + signal number
    std::string out;    ///< standard output
    std::string err;    ///< standard error
};

/// Runs `argv` (argv[0] is a path, or a name looked up in PATH) with extra environment
/// variables `env` (an empty value unsets), standard input from /dev/null, and waits for
/// it, killing it after `timeout`.
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// `s` as one word of a POSIX shell's command line (single-quoted).
std::string shell_quote(const std::string& s);

/// As run_process, with a terminal for its standard streams (a pty, through util-linux's
/// `script`): what a person at a terminal sees is in `out` (stdout and stderr together).
/// `shell_tail`, when given, is appended to the command line as is (a redirection).
ProcessResult run_on_terminal(const std::vector<std::string>& argv,
                              const std::map<std::string, std::string>& env = {},
                              const std::string& shell_tail = "");

/// Under CI (CI set, and not "false" or "0"): a test that would skip fails instead.
bool in_ci();

/// True when `tool` runs (`tool version_args…` exits 0); in CI its absence fails the test
/// (scripts/setup test installs it), elsewhere the caller skips.
bool have_tool(const std::string& tool,
               const std::vector<std::string>& version_args = {"--version"});

/// A program running beside the test, its standard output read line by line (for
/// commands that stream: `modelrepo watch`, `modelrepo serve`). Killed (SIGKILL) on
/// destruction unless it was waited for.
class ChildProcess {
public:
    explicit ChildProcess(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    int pid() const { return pid_; }
    /// The next line of standard output (without the newline), or nullopt when none
    /// came within `timeout` or the output ended.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    /// The next line for which `accept` is true; the others are skipped.
    template <class Accept>
    std::optional<std::string> read_line_until(Accept&& accept, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return std::nullopt;
            auto line = read_line(left);
            if (!line || accept(*line))
                return line;
        }
    }
    /// Sends `signal`.
    void signal(int signal);
    /// Waits for the exit (SIGKILL after `timeout`): the exit code, or 128 + signal.
    int wait(std::chrono::milliseconds timeout);
    /// Everything read from standard error so far.
    const std::string& err() const { return err_; }

private:
    void pump(std::chrono::milliseconds timeout);

    int pid_ = -1;
    int out_ = -1;
    int err_fd_ = -1;
    std::string buffer_;
    std::string err_;
    bool out_closed_ = false;
    bool waited_ = false;
    int exit_code_ = -1;
};

/// The value of environment variable `name`; fails the test when unset.
std::string require_env(const char* name);

/// `text` percent-encoded for a URL's query (all but letters, digits and "-._~"): a URL
/// inside a URL (direct_url=).
std::string percent_encode(const std::string& text);

} // namespace modelrepo::test
