// SPDX-License-Identifier: MIT
// What several commands share (command.hpp).
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <pthread.h>

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

std::vector<std::string> resolve_sources(const Globals& globals) {
    if (!globals.sources.empty())
        return globals.sources;
    if (const char* env = std::getenv("MODELREPO_SOURCES"); env && *env)
        if (auto list = split_list(env); !list.empty())
            return list;
    return {"builtin:"};
}

Result<Sources> open_sources(const Globals& globals) {
    auto uris = resolve_sources(globals);
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
    return open_fallback(resolve_sources(globals));
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
    std::ifstream file;
    std::istream* in = &std::cin;
    if (from != "-") {
        file.open(from, std::ios::binary);
        if (!file)
            return make_error(Errc::io_error, "cannot open '" + from + "'");
        in = &file;
    }
    std::string text;
    char buffer[65536];
    while (in->read(buffer, sizeof buffer) || in->gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in->gcount()));
        if (text.size() > limit)
            return make_error(Errc::bad_data,
                              (from == "-" ? std::string("standard input") : "'" + from + "'") +
                                  " is larger than 16 MiB");
    }
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
