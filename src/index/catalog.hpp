// SPDX-License-Identifier: MIT
// Catalog: one immutable version of an in-memory catalogue, and the copy-on-write
// edits that make the next version without copying what did not change. What
// MemoryRepository serves and what PostgreSQL's last-known copy keeps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/snapshot.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo::detail {

struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
/// Slug -> position in Catalog::models.
using SlugIndex = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

/// The models of one catalogue version, sorted by slug: a persistent vector in chunks of
/// 256 pointers. A copy shares the chunks; set() copies the one chunk it changes (and the
/// list of chunks, 1/256 of the models), so an edit that replaces a model costs the same
/// at 100,000 models as at 1,000.
class ModelList {
public:
    using Ptr = std::shared_ptr<const Model>;
    static constexpr std::size_t chunk_size = 256;

    ModelList() = default;
    explicit ModelList(const std::vector<Ptr>& models);
    /// A copy shares every chunk (none of them its own to change).
    ModelList(const ModelList& other)
        : chunks_(other.chunks_)
        , own_(other.chunks_.size(), false)
        , size_(other.size_) {}
    ModelList& operator=(const ModelList& other) {
        if (this != &other)
            *this = ModelList(other);
        return *this;
    }
    ModelList(ModelList&&) noexcept = default;
    ModelList& operator=(ModelList&&) noexcept = default;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const Ptr& operator[](std::size_t i) const noexcept {
        return (*chunks_[i / chunk_size])[i % chunk_size];
    }
    /// Replaces the model at `i` (in this list only; copies sharing the chunk keep theirs).
    void set(std::size_t i, Ptr model);
    /// Every pointer, in order (for edits that add or remove models).
    std::vector<Ptr> to_vector() const;

    class const_iterator {
    public:
        const_iterator(const ModelList* list, std::size_t at)
            : list_(list)
            , at_(at) {}
        const Ptr& operator*() const noexcept { return (*list_)[at_]; }
        const_iterator& operator++() noexcept {
            ++at_;
            return *this;
        }
        bool operator==(const const_iterator& other) const noexcept { return at_ == other.at_; }

    private:
        const ModelList* list_;
        std::size_t at_;
    };
    const_iterator begin() const noexcept { return {this, 0}; }
    const_iterator end() const noexcept { return {this, size_}; }

private:
    using Chunk = std::vector<Ptr>;
    /// Shared between copies; a chunk is changed only while own_ says no copy shares it.
    std::vector<std::shared_ptr<Chunk>> chunks_;
    std::vector<bool> own_; ///< chunk i was made by this list since it was copied
    std::size_t size_ = 0;
};

/// Never modified after it is built, so readers share it freely. Models are shared
/// between versions: an edit copies the chunks of pointers it touches, not models, and
/// the index is shared while the set of slugs stays the same.
struct Catalog {
    ModelList models; ///< joined with provider and status, by slug
    std::shared_ptr<const SlugIndex> index;
    std::shared_ptr<const std::vector<Provider>> providers; ///< by slug
    SystemStats stats; ///< `source` empty; `as_of` is generated_at
    Timestamp generated_at{};
    std::int64_t version = 0; ///< the source's catalogue version this copy is at (0: unknown)

    /// The model with this slug, or nullptr.
    const Model* find(std::string_view slug) const;
    /// The models with these slugs, in that order; unknown ones skipped.
    std::vector<Model> find_all(std::span<const std::string> slugs) const;
    /// The whole catalogue in the backup format (models and statuses by slug).
    Snapshot snapshot() const;
    /// Every status, by model slug.
    std::vector<ModelStatus> statuses() const;
};

/// The models of `catalog`, shared with it (SharedModels's owner keeps it).
SharedModels share_models(std::shared_ptr<const Catalog> catalog);

/// A catalogue built from a (valid) snapshot.
std::shared_ptr<Catalog> build_catalog(const Snapshot& snapshot, std::int64_t version = 0);

/// What an edit changed.
struct Edit {
    std::shared_ptr<Catalog> next;    ///< null when nothing changed; the caller may set its version
    std::vector<std::string> changed; ///< the slugs that changed
    /// with_statuses: the slugs whose status was not applied, the one held being newer.
    std::vector<std::string> ignored;
};

/// `base` with `statuses` applied: with `keep_newer_status`, a status older than the stored
/// one (`checked_at`) is skipped (a replay); without, statuses are taken as they are (a
/// change feed's rows, a correction back in time included). Statuses of models `base` does
/// not hold are skipped.
Edit with_statuses(const Catalog& base, std::span<const ModelStatus> statuses,
                   bool keep_newer_status = true);

/// `base` with these models (provider and status as given, or none) put in place of
/// the models with their slugs or added, and the models with the `removed` slugs taken
/// out. A model whose provider `base` lacks is skipped. With `keep_newer_status`, a status
/// older than the one held (`checked_at`) does not replace it (a replay); without, the
/// models are taken as they are (a change feed's rows are the source's current ones).
Edit with_models(const Catalog& base, std::span<const Model> upserts,
                 std::span<const std::string> removed, bool keep_newer_status = true);

/// `base` with these providers put in place or added (and each of their models joined
/// to the new provider), and the `removed` ones taken out (with their models).
Edit with_providers(const Catalog& base, std::span<const Provider> upserts,
                    std::span<const std::string> removed);

} // namespace modelrepo::detail
