// SPDX-License-Identifier: MIT
// The REST endpoint of the incident: one answer as JSON, with the source that served
// it and how fresh it is, so a client can show "backup data as of …".
#include <iostream>

#include <CLI/CLI.hpp>

#include <modelrepo/modelrepo.hpp>

#include "common.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> sources;
    CLI::App app{"Print system stats as one JSON object (the body of GET /api/stats).",
                 "api_stats"};
    app.add_option("-s,--source", sources,
                   "Source URI, repeatable, in order (default: $MODELREPO_SOURCES, then builtin:)");
    CLI11_PARSE(app, argc, argv);

    auto list = example::sources_or_default(sources);
    auto opened = modelrepo::open_chain(list);
    if (!opened) {
        std::cout << R"({"error":")"
                  << modelrepo::to_string(
                         opened.error().errc().value_or(modelrepo::Errc::invalid_argument))
                  << "\"}\n";
        return 1;
    }
    auto stats = opened.value()->system_stats();
    if (!stats) {
        // The message can hold addresses; a public endpoint shows the code only.
        std::cerr << "api_stats: " << stats.error().to_string() << '\n';
        std::cout << R"({"error":")"
                  << modelrepo::to_string(
                         stats.error().errc().value_or(modelrepo::Errc::all_sources_failed))
                  << "\"}\n";
        return 1;
    }
    const auto& s = stats.value();
    std::string first(opened.value()->name());
    if (auto chain = std::dynamic_pointer_cast<modelrepo::FallbackRepository>(opened.value()))
        first = std::string(chain->sources().front()->name());
    bool backup = s.source != first;
    std::cout << "{\"models\":" << s.models << ",\"active_models\":" << s.active_models
              << ",\"providers\":" << s.providers
              << ",\"health\":{\"operational\":" << s.health.operational
              << ",\"degraded\":" << s.health.degraded << ",\"outage\":" << s.health.outage
              << ",\"unknown\":" << s.health.unknown << "},\"source\":\"" << s.source
              << "\",\"backup\":" << (backup ? "true" : "false") << ",\"as_of\":\""
              << modelrepo::format_timestamp(s.as_of) << "\"}\n";
    return 0;
}
