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

/// Whether a read follows a symbolic link at the file's own name.
enum class Links { follow, refuse };

/// Reads a whole regular file, refusing more than `limit` bytes. A FIFO, a device or a
/// directory is refused at once, never waited on (opened non-blocking, checked with
/// fstat); with `Links::refuse` so is a symbolic link (O_NOFOLLOW: files modelrepo writes
/// itself). Errors: `Errc::io_error` (cannot open or read, not a regular file, a link),
/// `Errc::bad_data` (over the limit).
Result<std::string> read_file_limited(const std::filesystem::path& path, std::size_t limit,
                                      Links links = Links::follow);

/// 16 hex digits of the FNV-1a hash of `text`: a stable file name for a URL or a key.
std::string fnv1a_hex(std::string_view text);

} // namespace modelrepo::detail
