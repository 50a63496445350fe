// SPDX-License-Identifier: MIT
// Runs a program and collects what it printed, for tests of the CLI and of server
// harnesses.
#pragma once

#include <chrono>
#include <map>
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

/// The value of environment variable `name`; fails the test when unset.
std::string require_env(const char* name);

} // namespace modelrepo::test
