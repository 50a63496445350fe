// SPDX-License-Identifier: MIT
// Shared by the Google Benchmark programs: run every benchmark 9 times and keep the
// median real time (ns) of each, for the summary lines they print.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace bench {

class MedianCollector : public benchmark::ConsoleReporter {
public:
    std::map<std::string, double> median_ns;

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs)
            if (run.aggregate_name == "median")
                median_ns[run.run_name.function_name] =
                    run.GetAdjustedRealTime() * to_ns(run.time_unit);
    }

private:
    static double to_ns(benchmark::TimeUnit unit) {
        switch (unit) {
        case benchmark::kMicrosecond:
            return 1e3;
        case benchmark::kMillisecond:
            return 1e6;
        case benchmark::kSecond:
            return 1e9;
        default:
            return 1;
        }
    }
};

/// Runs the registered benchmarks, 9 repetitions reported as aggregates unless the
/// command line says otherwise; returns the medians in nanoseconds by name.
inline std::map<std::string, double> run_medians(int argc, char** argv) {
    std::vector<char*> args(argv, argv + argc);
    std::string repetitions = "--benchmark_repetitions=9";
    std::string aggregates = "--benchmark_report_aggregates_only=true";
    args.push_back(repetitions.data());
    args.push_back(aggregates.data());
    int count = static_cast<int>(args.size());
    benchmark::Initialize(&count, args.data());
    MedianCollector reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return reporter.median_ns;
}

} // namespace bench
