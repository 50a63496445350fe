// SPDX-License-Identifier: MIT
// A writer for the outbox crash test: writes one status at a time through a PostgreSQL
// repository with an outbox, and prints "ack SLUG MICROSECONDS" once a write is
// acknowledged (applied or queued). The test kills it with SIGKILL at random moments.
//
//   outbox_writer URL FIRST_MICROSECONDS
#include <cstdio>
#include <cstdlib>
#include <string>

#include <modelrepo/modelrepo.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: outbox_writer URL FIRST_MICROSECONDS\n");
        return 2;
    }
    auto repo = modelrepo::open(argv[1]);
    if (!repo) {
        std::fprintf(stderr, "%s\n", repo.error().to_string().c_str());
        return 1;
    }
    std::vector<std::string> slugs;
    for (const auto& s : modelrepo::builtin_snapshot().statuses)
        slugs.push_back(s.model_slug);
    long long us = std::atoll(argv[2]);
    for (long long i = 0;; ++i, ++us) {
        const std::string& slug = slugs[static_cast<std::size_t>(i) % slugs.size()];
        modelrepo::ModelStatus s{slug,
                                 modelrepo::Health::degraded,
                                 0.5,
                                 10.0,
                                 0.1,
                                 "crash-test",
                                 modelrepo::Timestamp(std::chrono::microseconds(us))};
        auto r = repo.value()->upsert_statuses(std::span(&s, 1));
        if (!r) {
            std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
            return 1;
        }
        std::printf("ack %s %lld\n", slug.c_str(), us);
        std::fflush(stdout);
    }
}
