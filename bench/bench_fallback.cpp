// SPDX-License-Identifier: MIT
// The cost of the FallbackRepository chain:
//   healthy: find_model through a one-breaker chain vs the same MemoryRepository
//            directly (target: at most 50 ns or 1.5x over direct, whichever is larger)
//   also:    every call timed (latency_sample_every = 1), and two threads on one chain
//   outage:  find_model through primary (down, breaker open) -> backup vs the backup
//            directly (target: the same order as a direct call to the backup)
#include <cstdio>
#include <map>

#include <benchmark/benchmark.h>

#include <modelrepo/modelrepo.hpp>

#include "bench_support.hpp"
#include "scripted_repository.hpp"

namespace {

using namespace modelrepo;

std::shared_ptr<MemoryRepository> memory() {
    static auto repo = MemoryRepository::builtin();
    return repo;
}

void BM_direct_find_model(benchmark::State& state) {
    auto repo = memory();
    for (auto _ : state) {
        auto m = repo->find_model("claude-sonnet-4-5");
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_direct_find_model);

void BM_chain_find_model(benchmark::State& state) {
    auto chain = FallbackRepository::create({memory()}).value();
    for (auto _ : state) {
        auto m = chain->find_model("claude-sonnet-4-5");
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_chain_find_model);

/// The same with every call in the latency histogram (two precise clock reads each).
void BM_chain_find_model_every_call_timed(benchmark::State& state) {
    FallbackConfig config;
    config.latency_sample_every = 1;
    auto chain = FallbackRepository::create({memory()}, config).value();
    for (auto _ : state) {
        auto m = chain->find_model("claude-sonnet-4-5");
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_chain_find_model_every_call_timed);

/// Two threads on one chain: the shared per-source counters are the only contention.
void BM_chain_find_model_2_threads(benchmark::State& state) {
    static std::shared_ptr<FallbackRepository> chain;
    if (state.thread_index() == 0)
        chain = FallbackRepository::create({memory()}).value();
    for (auto _ : state) {
        auto m = chain->find_model("claude-sonnet-4-5");
        benchmark::DoNotOptimize(m);
    }
    if (state.thread_index() == 0)
        chain.reset();
}
BENCHMARK(BM_chain_find_model_2_threads)->Threads(2)->UseRealTime();

void BM_outage_find_model(benchmark::State& state) {
    auto primary = std::make_shared<test::ScriptedRepository>("primary");
    primary->fail_with(Errc::unreachable);
    FallbackConfig config;
    config.breaker.open_duration = std::chrono::hours(1); // stays open for the run
    config.probe_interval = std::chrono::hours(1);
    auto chain = FallbackRepository::create({primary, memory()}, config).value();
    for (int i = 0; i < 10; ++i)
        (void)chain->find_model("gpt-4o"); // trips the breaker
    if (chain->breaker(0).state() != BreakerState::open)
        state.SkipWithError("breaker did not open");
    for (auto _ : state) {
        auto m = chain->find_model("claude-sonnet-4-5");
        benchmark::DoNotOptimize(m);
    }
}
BENCHMARK(BM_outage_find_model);

} // namespace

int main(int argc, char** argv) {
    auto m = bench::run_medians(argc, argv);

    double direct = m["BM_direct_find_model"], chain = m["BM_chain_find_model"],
           outage = m["BM_outage_find_model"];
    if (direct <= 0)
        return 1;
    double allowed = std::max(direct + 50.0, direct * 1.5);
    std::printf("\nsummary (medians of 9 repetitions)\n");
    std::printf("healthy chain   %7.1f ns vs direct %7.1f ns: +%.1f ns, %.2fx  (target <= %.1f ns: "
                "%s)\n",
                chain, direct, chain - direct, chain / direct, allowed,
                chain <= allowed ? "met" : "MISSED");
    std::printf("every call timed %7.1f ns (latency_sample_every = 1): +%.1f ns, %.2fx\n",
                m["BM_chain_find_model_every_call_timed"],
                m["BM_chain_find_model_every_call_timed"] - direct,
                m["BM_chain_find_model_every_call_timed"] / direct);
    std::printf("2 threads        %7.1f ns per call, wall (each thread %.1f ns of CPU per call)\n",
                m["BM_chain_find_model_2_threads"], 2 * m["BM_chain_find_model_2_threads"]);
    std::printf("outage, open    %7.1f ns vs direct backup %7.1f ns: %.2fx  (target: same order: "
                "%s)\n",
                outage, direct, outage / direct, outage < direct * 10 ? "met" : "MISSED");
}
