// SPDX-License-Identifier: MIT
// MemoryRepository and snapshot reading, against the targets of the foundation issue
// and against the floor a bare implementation would reach:
//   find_model          target: median < 100 ns;  peer: std::unordered_map find + copy
//   snapshot, 10k models target: < 50 ms;         peer: nlohmann::json::parse alone
// Prints Google Benchmark's table, then a summary of medians, ratios and verdicts.
#include <cstdio>
#include <map>
#include <unordered_map>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "bench_support.hpp"

namespace {

using namespace modelrepo;

std::shared_ptr<MemoryRepository> builtin_repo() {
    static auto repo = MemoryRepository::builtin();
    return repo;
}

const std::string& large_snapshot_json() {
    static const std::string text = [] {
        Snapshot s;
        s.generated_at = Clock::now();
        for (int p = 0; p < 50; ++p)
            s.providers.push_back({"provider-" + std::to_string(p), "Provider " + std::to_string(p),
                                   "https://provider" + std::to_string(p) + ".example"});
        for (int m = 0; m < 10'000; ++m) {
            std::string slug = "model-" + std::to_string(m);
            s.models.push_back({slug,
                                "Model " + std::to_string(m),
                                "provider-" + std::to_string(m % 50),
                                "A generated model used to measure snapshot reading.",
                                128'000 + m,
                                m % 10 != 0,
                                {},
                                {}});
            s.statuses.push_back({slug, static_cast<Health>(m % 4), 0.99, 250.0 + m % 1000, 0.01,
                                  "us-east", s.generated_at});
        }
        return write_snapshot(s);
    }();
    return text;
}

void BM_find_model(benchmark::State& state) {
    auto repo = builtin_repo();
    std::string_view slug = "claude-sonnet-4-5";
    for (auto _ : state) {
        auto model = repo->find_model(slug);
        benchmark::DoNotOptimize(model);
    }
}
BENCHMARK(BM_find_model);

// What value() on a temporary costs (issue 31: it returns the value, moved out, so that a
// reference bound to it does not dangle), beside value() on a named result (a reference).
void BM_find_model_value_of_temporary(benchmark::State& state) {
    auto repo = builtin_repo();
    std::string_view slug = "claude-sonnet-4-5";
    for (auto _ : state) {
        const Model& model = *repo->find_model(slug).value();
        benchmark::DoNotOptimize(&model);
    }
}
BENCHMARK(BM_find_model_value_of_temporary);

void BM_find_model_value_of_named(benchmark::State& state) {
    auto repo = builtin_repo();
    std::string_view slug = "claude-sonnet-4-5";
    for (auto _ : state) {
        auto result = repo->find_model(slug);
        const Model& model = *result.value();
        benchmark::DoNotOptimize(&model);
    }
}
BENCHMARK(BM_find_model_value_of_named);

void BM_peer_unordered_map_find_copy(benchmark::State& state) {
    std::unordered_map<std::string, Model> map;
    auto models = builtin_repo()->list_models();
    for (const Model& m : models.value())
        map.emplace(m.slug, m);
    std::string slug = "claude-sonnet-4-5";
    for (auto _ : state) {
        std::optional<Model> model;
        if (auto it = map.find(slug); it != map.end())
            model = it->second;
        benchmark::DoNotOptimize(model);
    }
}
BENCHMARK(BM_peer_unordered_map_find_copy);

void BM_find_models_5(benchmark::State& state) {
    auto repo = builtin_repo();
    const std::vector<std::string> slugs{"gpt-5", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro",
                                         "llama-4-maverick"};
    for (auto _ : state) {
        auto models = repo->find_models(slugs);
        benchmark::DoNotOptimize(models);
    }
}
BENCHMARK(BM_find_models_5);

void BM_system_stats(benchmark::State& state) {
    auto repo = builtin_repo();
    for (auto _ : state) {
        auto stats = repo->system_stats();
        benchmark::DoNotOptimize(stats);
    }
}
BENCHMARK(BM_system_stats);

void BM_find_model_2_threads(benchmark::State& state) {
    auto repo = builtin_repo();
    for (auto _ : state) {
        auto model = repo->find_model("gpt-4o");
        benchmark::DoNotOptimize(model);
    }
}
BENCHMARK(BM_find_model_2_threads)->Threads(2);

void BM_read_snapshot_10k(benchmark::State& state) {
    const std::string& text = large_snapshot_json();
    for (auto _ : state) {
        auto snapshot = parse_snapshot(text);
        if (!snapshot)
            state.SkipWithError(snapshot.error().message.c_str());
        benchmark::DoNotOptimize(snapshot);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_read_snapshot_10k)->Unit(benchmark::kMillisecond);

void BM_peer_json_parse_10k(benchmark::State& state) {
    const std::string& text = large_snapshot_json();
    for (auto _ : state) {
        auto doc = nlohmann::json::parse(text);
        benchmark::DoNotOptimize(doc);
    }
}
BENCHMARK(BM_peer_json_parse_10k)->Unit(benchmark::kMillisecond);

} // namespace

int main(int argc, char** argv) {
    // Medians over repetitions unless the caller chose otherwise.
    auto m = bench::run_medians(argc, argv);

    auto get = [&](const char* name) { return m.count(name) ? m[name] : 0.0; };
    std::printf("\nsummary (medians of 9 repetitions)\n");
    double temporary = get("BM_find_model_value_of_temporary");
    double named = get("BM_find_model_value_of_named");
    if (temporary > 0 && named > 0)
        std::printf("find_model + value() on a temporary %.1f ns, on a named result %.1f ns: "
                    "%+.1f ns (the move that keeps a reference to it alive)\n",
                    temporary, named, temporary - named);
    double find = get("BM_find_model");
    double peer = get("BM_peer_unordered_map_find_copy");
    if (find > 0 && peer > 0)
        std::printf("find_model           %8.1f ns   target < 100 ns: %s   vs unordered_map "
                    "find+copy %.1f ns: %.2fx\n",
                    find, find < 100 ? "met" : "MISSED", peer, find / peer);
    if (double v = get("BM_find_models_5"); v > 0)
        std::printf("find_models (5)      %8.1f ns\n", v);
    if (double v = get("BM_system_stats"); v > 0)
        std::printf("system_stats         %8.1f ns\n", v);
    double read = get("BM_read_snapshot_10k");
    double parse = get("BM_peer_json_parse_10k");
    if (read > 0 && parse > 0)
        std::printf("read 10k snapshot    %8.2f ms   target < 50 ms: %s   vs json::parse alone "
                    "%.2f ms: %.2fx\n",
                    read / 1e6, read < 50e6 ? "met" : "MISSED", parse / 1e6, read / parse);
}
