// SPDX-License-Identifier: MIT
/// @file
/// `Progress` and `ProgressFn`: how a long operation (an import, an outbox drain) tells
/// its caller how far it has come, so that a command line can show a count and a rate.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace modelrepo {

/// One step of a long operation, as far as it has come.
struct Progress {
    std::string_view step;   ///< what is counted, in words: "models merged", "statuses applied"
    std::int64_t done = 0;   ///< items of this step done so far
    std::int64_t total = -1; ///< items this step will do in all; -1 when not known
};

/// Called on the operation's own thread, after each part of it (never concurrently for one
/// call); an empty function is not called. It must not call back into the object that
/// reports: that object may hold a lock while it reports.
using ProgressFn = std::function<void(const Progress&)>;

} // namespace modelrepo
