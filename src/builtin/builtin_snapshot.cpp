// SPDX-License-Identifier: MIT
// The catalogue bundled with the library: data/models.json, embedded at build time.
#include <cstdio>
#include <cstdlib>

#include <modelrepo/snapshot.hpp>

namespace modelrepo {

namespace detail {
extern const unsigned char builtin_models_json[];
extern const std::size_t builtin_models_json_size;
} // namespace detail

std::string_view builtin_snapshot_json() noexcept {
    return {reinterpret_cast<const char*>(detail::builtin_models_json),
            detail::builtin_models_json_size};
}

const Snapshot& builtin_snapshot() {
    static const Snapshot snapshot = [] {
        auto parsed = parse_snapshot(builtin_snapshot_json());
        if (!parsed) {
            // The bundled file is validated by the unit tests; reaching this is a build bug.
            std::fprintf(stderr, "modelrepo: bundled data/models.json is invalid: %s\n",
                         parsed.error().to_string().c_str());
            std::abort();
        }
        return std::move(parsed).value();
    }();
    return snapshot;
}

} // namespace modelrepo
