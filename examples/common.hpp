// SPDX-License-Identifier: MIT
// Shared by the example services: choosing the sources the way the CLI does.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

namespace example {

/// --source values, else $MODELREPO_SOURCES (comma-separated), else the bundled snapshot.
inline std::vector<std::string> sources_or_default(std::vector<std::string> given) {
    if (!given.empty())
        return given;
    std::vector<std::string> out;
    if (const char* env = std::getenv("MODELREPO_SOURCES")) {
        std::string list = env, item;
        for (char c : list + ",") {
            if (c == ',') {
                if (!item.empty())
                    out.push_back(item);
                item.clear();
            } else if (c != ' ') {
                item.push_back(c);
            }
        }
    }
    if (out.empty())
        out.push_back("builtin:");
    return out;
}

} // namespace example
