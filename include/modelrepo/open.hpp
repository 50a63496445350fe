// SPDX-License-Identifier: MIT
/// @file
/// `open()` and `open_chain()`: a repository from a URI, the way services configure
/// modelrepo (DATABASE_URL, MODELREPO_SOURCES).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/model_repository.hpp>

namespace modelrepo {

/// Opens a repository from a URI:
///
/// | URI                                   | repository                          |
/// |---------------------------------------|-------------------------------------|
/// | `builtin:`                            | the bundled snapshot (MemoryRepository) |
/// | `file:///abs/path.json`, `file:rel.json` | a snapshot file (MemoryRepository) |
/// | `postgresql://…`, `postgres://…`      | PostgreSQL (when built with it)     |
/// | `github://owner/repo/path@ref`, `https://…`, `http://…` | JSON backup (when built with it) |
///
/// A `postgresql://` URI may ask for the durable layer (`durable.hpp`): `cache_dir=DIR`,
/// `cache=live` and `max_stale=` for a last-known copy, `outbox=PATH` and `outbox_max=`
/// for an outbox. They are taken out before the backend sees the URI, and the layer is put
/// around it (`make_durable()`); ask for its parts with `capability<CopyControl>()` and
/// `capability<OutboxControl>()`.
///
/// Errors: `Errc::invalid_argument` for a malformed URI or an unknown scheme (the
/// message names it), `Errc::not_supported` for a backend this build lacks, and the
/// backend's own errors (a missing file is `Errc::io_error`).
Result<std::shared_ptr<ModelRepository>> open(std::string_view uri);

/// Opens each URI in order and composes them into one repository that answers from
/// the first source that can. With a single URI this is `open(uri)`.
/// Errors: `Errc::invalid_argument` for an empty list, and the first URI that fails
/// to open.
Result<std::shared_ptr<ModelRepository>> open_chain(std::span<const std::string> uris);

/// `open_chain()`, always as a `FallbackRepository` (one over a single source too), for a
/// program that wants the chain's own parts: provenance, metrics, events, breakers.
Result<std::shared_ptr<FallbackRepository>> open_fallback(std::span<const std::string> uris);

} // namespace modelrepo
