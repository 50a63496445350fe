// SPDX-License-Identifier: MIT
// The README's example, kept identical to it by tests/install/check_readme_example.py.
#include <iostream>

#include <modelrepo/modelrepo.hpp>

int main() {
    auto repo = modelrepo::open("builtin:"); // or "postgresql://…", "file:///…"
    if (!repo) {
        std::cerr << repo.error().to_string()
                  << '\n'; // e.g. "invalid_argument: unknown scheme 'ftp' …"
        return 1;
    }
    auto stats = repo.value()->system_stats();
    if (stats)
        std::cout << stats.value().models << " models from " << stats.value().source << '\n';

    const std::vector<std::string> priority{"gpt-4o", "claude-sonnet-4-5"};
    for (const auto& model : repo.value()->find_models(priority).value())
        std::cout << model.slug << ": " << model.provider->name << '\n';
}
