// SPDX-License-Identifier: MIT
// The README's example: open the bundled catalogue and print stats and two models.
#include <modelrepo/modelrepo.hpp>

#include <iostream>

int main()
{
    auto repo = modelrepo::open("builtin:");
    if (!repo) {
        std::cerr << repo.error().to_string() << '\n';
        return 1;
    }
    auto stats = repo.value()->system_stats();
    if (!stats) {
        std::cerr << stats.error().to_string() << '\n';
        return 1;
    }
    std::cout << stats.value().models << " models from " << stats.value().source << '\n';

    const std::vector<std::string> priority{"gpt-4o", "claude-sonnet-4-5"};
    auto models = repo.value()->find_models(priority); // keep the Result alive while iterating
    if (!models) {
        std::cerr << models.error().to_string() << '\n';
        return 1;
    }
    for (const auto& model : models.value()) {
        auto health = model.status ? model.status->health : modelrepo::Health::unknown;
        std::cout << model.slug << ": " << modelrepo::to_string(health) << '\n';
    }
}
