// SPDX-License-Identifier: MIT
/// @file
/// `MemoryRepository`: the catalogue held in memory; the embedded default.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <modelrepo/model_repository.hpp>

namespace modelrepo {

/// An in-memory catalogue built from a `Snapshot`.
///
/// Thread safety: all methods may be called concurrently. Each call reads one
/// immutable catalogue, so it always sees a consistent one. Reads take no lock on the
/// hot path: a thread keeps a reference to the catalogue it last read and checks one
/// atomic publication number; only the first read after a change takes a mutex
/// briefly. Writers (`upsert_statuses`, `replace`) serialize on a mutex and publish a
/// new catalogue copy-on-write; readers never wait for a writer's work.
///
/// Lookups: `find_model` is one hash lookup; `system_stats` is precomputed per
/// catalogue. An upsert copies pointers to the models, not the models: its cost grows
/// with the size of the catalogue only by a pointer copy per model.
class MemoryRepository final : public ModelRepository {
public:
    /// A repository over `snapshot`, named `name` (what `name()` and
    /// `SystemStats::source` say). Errors: `Errc::bad_data` from `validate()`.
    static Result<std::shared_ptr<MemoryRepository>> create(Snapshot snapshot,
                                                            std::string name = "memory");
    /// The bundled catalogue, named "builtin". Cannot fail: the bundled data is
    /// validated when the library is built and tested.
    static std::shared_ptr<MemoryRepository> builtin();
    /// A snapshot file, named "file:<path>". Errors: `Errc::io_error`, `Errc::bad_data`.
    static Result<std::shared_ptr<MemoryRepository>> from_file(const std::filesystem::path& path);

    ~MemoryRepository() override;
    MemoryRepository(const MemoryRepository&) = delete;
    MemoryRepository& operator=(const MemoryRepository&) = delete;

    std::string_view name() const noexcept override;
    Result<std::int64_t> count_models() override;
    Result<std::int64_t> count_providers() override;
    Result<std::vector<ModelStatus>> list_statuses() override;
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override;
    Result<std::optional<Model>> find_model(std::string_view slug) override;
    Result<SystemStats> system_stats() override;
    /// Always succeeds: memory does not go down.
    Result<void> check_health() override;
    /// Applies the batch all or nothing: a status for an unknown model, an empty slug,
    /// an out-of-range value or a `checked_at` further ahead of the clock than
    /// `max_clock_skew` fails the whole batch with `Errc::invalid_argument` and nothing is
    /// applied. Statuses older than the stored ones are skipped (the receipt's `ignored`).
    /// Memory keeps no outbox: `WriteOptions::source_down` is answered with its cause.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override;
    Result<std::vector<Model>> list_models() override;
    /// The catalogue version held now: nothing copied.
    Result<SharedModels> share_models() override;
    Result<Snapshot> export_snapshot() override;
    /// The snapshot's `generated_at` (the last replace()'s).
    std::optional<Timestamp> data_as_of() const override;
    /// Always: the catalogue is in memory.
    bool reads_from_memory() const noexcept override { return true; }
    /// CatalogueVersion (the catalogue's: a new one at each write and replace()).
    void* find_capability(const std::type_info& type) noexcept override;

    /// Replaces the whole catalogue (watchers get a `resync`). Errors: `Errc::bad_data`
    /// from `validate()`.
    Result<void> replace(Snapshot snapshot);

    /// How far ahead of the clock a written status may be dated (`max_clock_skew=` of
    /// `builtin:` and `file:`; default `default_max_clock_skew`). Thread-safe.
    void set_max_clock_skew(std::chrono::milliseconds skew) noexcept;

    /// This repository's own changes: a `status` per model an upsert changed, a `resync`
    /// per replace(). Versions count the changes made since it was built.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override;

private:
    struct State;
    explicit MemoryRepository(std::unique_ptr<State> state);

    std::unique_ptr<State> state_;
};

} // namespace modelrepo
