// SPDX-License-Identifier: MIT
// A backend's registration: what open() needs of it (the URI schemes it takes, a function
// that builds it from a URI, whether the durable layer may be asked for in that URI). Here,
// in core, so that each backend folder defines its opener (src/<backend>/open_*.cpp) without
// reaching up into src/open, the top floor, whose open.cpp lists them, one line each.
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include <modelrepo/model_repository.hpp>

#include "uri.hpp"

namespace modelrepo::detail {

/// Builds a repository from the whole URI `text` (already split into `uri`).
using Opener = Result<std::shared_ptr<ModelRepository>> (*)(std::string_view text, const Uri& uri);

struct Backend {
    std::string_view title;                  ///< "PostgreSQL", for messages
    std::array<std::string_view, 3> schemes; ///< lower case; unused entries empty
    Opener open;                             ///< nullptr when this build lacks the backend
    std::string_view build_option;           ///< how to build it in ("-Dpostgres=enabled")
    /// The URI takes the durable layer's parameters (`cache_dir`, `cache`, `max_stale`,
    /// `outbox`, `outbox_max`): open() takes them out and puts the layer around the backend
    /// (a backend whose own parameters have those names, as GitHub's cache_dir, says false).
    bool durable = false;
};

// The openers, each defined in its backend's folder.
Result<std::shared_ptr<ModelRepository>> open_builtin(std::string_view text, const Uri& uri);
Result<std::shared_ptr<ModelRepository>> open_file(std::string_view text, const Uri& uri);
Result<std::shared_ptr<ModelRepository>> open_postgres(std::string_view text, const Uri& uri);
Result<std::shared_ptr<ModelRepository>> open_github(std::string_view text, const Uri& uri);

} // namespace modelrepo::detail
