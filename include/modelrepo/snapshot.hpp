// SPDX-License-Identifier: MIT
/// @file
/// `Snapshot`: the whole catalogue at one point in time, and its JSON form
/// `modelrepo.snapshot/1`, the backup format (docs/snapshot-format.md).
/// All functions here are thread-safe (they touch no shared state but the
/// builtin snapshot, which is built once).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <modelrepo/error.hpp>
#include <modelrepo/json_text.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo {

/// The value of the "format" member this library reads and writes.
inline constexpr std::string_view snapshot_format = "modelrepo.snapshot/1";

/// The whole catalogue. `Model::provider` and `Model::status` stay empty here: the
/// lists `providers` and `statuses` hold them, keyed by slug.
struct Snapshot {
    Timestamp generated_at{};
    std::vector<Provider> providers;
    std::vector<Model> models;
    std::vector<ModelStatus> statuses; ///< at most one per model

    bool operator==(const Snapshot&) const = default;
};

/// Orders providers, models and statuses by slug: the order in which every backend's
/// `export_snapshot()` returns them. Two catalogues hold the same data when their sorted
/// snapshots are equal (`generated_at` aside).
Snapshot sorted_by_slug(Snapshot snapshot);

/// Checks what JSON cannot: unique slugs, every model's provider and every status's
/// model known, availability and error rate within 0..1, non-negative latency and
/// context window, non-empty slugs. Errors are `Errc::bad_data` whose message starts
/// with the JSON path of the first problem, e.g. `$.models[3].provider: …`.
Result<void> validate(const Snapshot& snapshot);

/// Reads `modelrepo.snapshot/1` JSON and validates it. Unknown members are ignored.
/// Errors: `Errc::bad_data` naming the JSON path of the first problem.
Result<Snapshot> parse_snapshot(std::string_view json);

/// The largest snapshot file `read_snapshot_file` reads (64 MiB; a 10,000-model
/// catalogue is about 4.4 MB).
inline constexpr std::size_t max_snapshot_file_bytes = 64 * 1024 * 1024;

/// Reads a snapshot file. Errors: `Errc::io_error` (file unreadable), `Errc::bad_data`
/// (invalid, or larger than `max_snapshot_file_bytes`).
Result<Snapshot> read_snapshot_file(const std::filesystem::path& path);

/// The JSON form of `snapshot`; `indent` < 0 gives one line. Models and statuses
/// keep their order, so write(parse(x)) is stable.
std::string write_snapshot(const Snapshot& snapshot, int indent = 2);

/// The JSON form of a snapshot (the bytes `write_snapshot` returns) in parts, for
/// answers and files too large to build whole: a 100,000-model catalogue is about 40 MB
/// of text. Holds the snapshot until it is done. Not thread-safe (one writer, one thread).
///
///     SnapshotWriter writer(snapshot, -1);
///     std::string part;
///     while (writer.next(part)) { send(part); part.clear(); }
///     send(part);
class SnapshotWriter {
public:
    explicit SnapshotWriter(std::shared_ptr<const Snapshot> snapshot, int indent = 2);
    /// Appends the next part, of about `about` bytes (more by one provider, model or
    /// status), to `out`. False with the last part: everything is written.
    bool next(std::string& out, std::size_t about = 64 * 1024);

private:
    enum class Part { head, providers, models, statuses, done };
    std::shared_ptr<const Snapshot> snapshot_;
    std::string scratch_; ///< what json_ points at before the first next()
    JsonText json_;
    Part part_ = Part::head;
    std::size_t at_ = 0;
};

/// Writes the JSON form atomically: a new temporary file beside `path` (made with
/// mkstemp, so a planted symlink is never followed), then rename. Errors:
/// `Errc::io_error`.
Result<void> write_snapshot_file(const Snapshot& snapshot, const std::filesystem::path& path);

/// Reads a JSON array of status objects in the snapshot's form (`{"model", "health",
/// "availability", "latency_ms", "error_rate", "region", "checked_at"}`): what
/// `modelrepo upsert` and `PUT /v1/statuses` take. Errors: `Errc::bad_data` naming the
/// JSON path of the first problem (`$[2].availability: must be within 0..1`).
Result<std::vector<ModelStatus>> parse_statuses(std::string_view json);
/// The JSON array `parse_statuses` reads; `indent` < 0 gives one line.
std::string statuses_json(std::span<const ModelStatus> statuses, int indent = -1);
/// The former name of `statuses_json`, which read as the repository's write.
[[deprecated("use statuses_json: a JSON text, not a write to a repository")]] inline std::string
write_statuses(std::span<const ModelStatus> statuses, int indent = -1) {
    return statuses_json(statuses, indent);
}

/// The catalogue bundled with the library (data/models.json, embedded at build time).
const Snapshot& builtin_snapshot();
/// The bundled catalogue's JSON text, as embedded.
std::string_view builtin_snapshot_json() noexcept;

} // namespace modelrepo
