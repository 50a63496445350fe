// SPDX-License-Identifier: MIT
// Local files as the library writes and reads them: atomically, without following a
// planted link, and never more than a limit.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <modelrepo/error.hpp>

namespace modelrepo::detail {

/// Writes `content` to `path` atomically: a new temporary file beside it, made with
/// mkstemp (O_EXCL: a symlink planted in a shared directory is never followed), written,
/// fsync'ed when `durable`, then renamed over `path`. Errors: `Errc::io_error` naming the
/// file.
Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content,
                                   bool durable = false);

/// Reads a whole file, refusing more than `limit` bytes (a device like /dev/zero
/// included). Errors: `Errc::io_error` (cannot open or read), `Errc::bad_data` (over the
/// limit).
Result<std::string> read_file_limited(const std::filesystem::path& path, std::size_t limit);

/// 16 hex digits of the FNV-1a hash of `text`: a stable file name for a URL or a key.
std::string fnv1a_hex(std::string_view text);

} // namespace modelrepo::detail
