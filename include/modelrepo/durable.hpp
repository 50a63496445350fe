// SPDX-License-Identifier: MIT
/// @file
/// The durable layer of a source: a last-known copy of its catalogue (`cache_dir=`,
/// `cache=live`, `max_stale=`) and an outbox for its writes (`outbox=`, `outbox_max=`).
/// `open()` puts it around any backend whose URI asks for it; `make_durable()` does the
/// same for a repository built directly. Backend-neutral: the copy needs a source that
/// can be read whole and reports its changes, the outbox one that takes status writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/outbox.hpp>

namespace modelrepo {

/// The last-known copy.
struct CopyConfig {
    /// Kept on disk here (`cache_dir=DIR`), written atomically after the first load, then
    /// at most about once a second after changes, and at exit; loaded at start, so a
    /// process started during an outage answers with what its previous run saw. Empty:
    /// memory only.
    std::filesystem::path dir;
    /// How long after it was last known current the copy may stand in for the source
    /// (`max_stale=`, a duration: 90s, 15m, 24h).
    std::chrono::milliseconds max_stale{24 * 3'600'000};
    /// Serve reads from the copy while the source is up too (`cache=live`): memory speed,
    /// staleness bounded by the change feed.
    bool live = false;

    /// A copy is kept (`cache=live` or `cache_dir=`).
    bool enabled() const noexcept { return live || !dir.empty(); }
};

/// The outbox.
struct OutboxConfig {
    /// The SQLite file (`outbox=PATH`) that durably keeps the status writes the source
    /// could not take for an outage-class cause, applied when it can. Empty: no outbox
    /// (such a write fails with the source's error). A file belongs to one source (its
    /// database, host, role and tables, recorded in it): opening it for another is
    /// `Errc::invalid_argument`; repositories of the same source may share it.
    std::filesystem::path file;
    /// Most statuses the outbox holds (`outbox_max=`); past it a write is refused with
    /// `Errc::outbox_full`.
    std::int64_t max_statuses = 100'000;
};

/// Both, as a source URI's query string gives them.
struct DurableConfig {
    CopyConfig copy;
    OutboxConfig outbox;

    /// Nothing to add: the backend is used as it is.
    bool empty() const noexcept { return !copy.enabled() && outbox.file.empty(); }
    /// Takes `cache_dir`, `max_stale`, `cache`, `outbox` and `outbox_max` out of the query
    /// string of `url` (the rest is left as written, for the backend). Errors:
    /// `Errc::invalid_argument` naming the parameter (never the password).
    static Result<DurableConfig> take_from(std::string& url);
};

/// What the copy holds and how current it is.
struct CopyState {
    bool has_data = false; ///< loaded from the source or from cache_dir
    bool in_sync = false;  ///< loaded and kept current by a connected change feed
    Timestamp as_of{};     ///< when it was last known current
    std::int64_t version = 0;
    std::uint64_t served_while_down = 0; ///< reads answered from it for the source
    /// Loads of the file in cache_dir refused (unreadable, not a regular file, invalid, an
    /// as_of in the future) and writes of it that failed (a full disk, no permission).
    std::uint64_t load_failures = 0, save_failures = 0;
    /// The last such problem, for a person ("" when none): what failed and why.
    std::string disk_error;
};

/// A repository's last-known copy: `repo->capability<CopyControl>()`. Thread-safe.
class CopyControl {
public:
    virtual CopyState copy_state() const = 0;

protected:
    ~CopyControl() = default;
};

/// `backend` with the copy and the outbox of `config` around it: reads from the copy while
/// the backend cannot answer for an outage (or always with `copy.live`, while in sync),
/// writes kept in the outbox while it cannot take them. `backend` itself when `config` is
/// empty. Errors: `Errc::invalid_argument` when the backend cannot carry what is asked (a
/// copy needs a source that can be read whole and reports its changes, an outbox one that
/// takes status writes), `Errc::io_error` for an outbox file that cannot be one.
Result<std::shared_ptr<ModelRepository>> make_durable(std::shared_ptr<ModelRepository> backend,
                                                      const DurableConfig& config);

} // namespace modelrepo
