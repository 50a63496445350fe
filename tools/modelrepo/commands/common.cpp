// SPDX-License-Identifier: MIT
// What several commands share (command.hpp).
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../json_form.hpp"
#include "command.hpp"

namespace modelrepo::cli {

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (!item.empty())
            items.emplace_back(item);
        if (comma == std::string_view::npos)
            break;
        start = comma + 1;
    }
    return items;
}

Result<std::vector<std::string>> resolve_sources(const Globals& globals) {
    if (!globals.sources.empty())
        return globals.sources;
    if (const char* file = std::getenv("MODELREPO_SOURCES_FILE"); file && *file) {
        // One URI a line ('#' comments): a database URL with its password kept out of the
        // environment (a systemd credential). Its content is never shown.
        auto text = read_input(file);
        if (!text)
            return make_error(Errc::invalid_argument,
                              "MODELREPO_SOURCES_FILE: " + text.error().message);
        std::vector<std::string> uris;
        std::istringstream lines(text.value());
        for (std::string line; std::getline(lines, line);) {
            while (!line.empty() &&
                   (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
                line.pop_back();
            std::size_t start = line.find_first_not_of(" \t");
            if (start == std::string::npos || line[start] == '#')
                continue;
            uris.push_back(line.substr(start));
        }
        if (uris.empty())
            return make_error(Errc::invalid_argument,
                              std::string("MODELREPO_SOURCES_FILE '") + file +
                                  "' holds no source URI: put one on each line");
        return uris;
    }
    if (const char* env = std::getenv("MODELREPO_SOURCES"); env && *env)
        if (auto list = split_list(env); !list.empty())
            return list;
    return std::vector<std::string>{"builtin:"};
}

Result<Sources> open_sources(const Globals& globals) {
    auto resolved = resolve_sources(globals);
    if (!resolved)
        return std::move(resolved).error();
    const auto& uris = resolved.value();
    Sources sources;
    if (uris.size() == 1) {
        auto repo = open(uris.front());
        if (!repo)
            return std::move(repo).error();
        sources.repo = std::move(repo).value();
        return sources;
    }
    auto chain = open_fallback(uris);
    if (!chain)
        return std::move(chain).error();
    sources.chain = std::move(chain).value();
    sources.repo = sources.chain;
    return sources;
}

Result<std::shared_ptr<FallbackRepository>> open_chain_of(const Globals& globals) {
    auto uris = resolve_sources(globals);
    if (!uris)
        return std::move(uris).error();
    return open_fallback(uris.value());
}

int fail(const Error& error) {
    std::cerr << "modelrepo: error: " << error.to_string() << '\n';
    return exit_error;
}

void print_json(const nlohmann::ordered_json& value) {
    std::cout << dump_json(value, 2) << '\n';
}

Result<std::string> read_input(const std::string& from) {
    constexpr std::size_t limit = 16 * 1024 * 1024;
    auto too_large = [&] {
        return make_error(Errc::bad_data,
                          (from == "-" ? std::string("standard input") : "'" + from + "'") +
                              " is larger than 16 MiB");
    };
    std::string text;
    char buffer[65536];
    if (from == "-") {
        while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
            text.append(buffer, static_cast<std::size_t>(std::cin.gcount()));
            if (text.size() > limit)
                return too_large();
        }
        return text;
    }
    // A FIFO, a device or a directory is refused at once, never waited on.
    int fd = ::open(from.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return make_error(Errc::io_error, "cannot open '" + from + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(Errc::io_error, "'" + from + "' is not a regular file");
    }
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return make_error(Errc::io_error, "cannot read '" + from + "': " + std::strerror(e));
        }
        if (n == 0)
            break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > limit) {
            ::close(fd);
            return too_large();
        }
    }
    ::close(fd);
    return text;
}

namespace {

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

} // namespace

void block_stop_signals() {
    sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_stop() {
    sigset_t set = stop_signals();
    int signal = 0;
    sigwait(&set, &signal);
    return signal;
}

} // namespace modelrepo::cli
