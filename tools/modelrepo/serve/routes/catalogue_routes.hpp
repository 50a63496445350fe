// SPDX-License-Identifier: MIT
// The catalogue's routes: GET /v1/stats, /v1/models, /v1/models/{slug}, /v1/statuses and
// /v1/snapshot. Each read is one call on the chain; its answer names the source that gave
// it (the chain's Provenance). A ?slug= list read from memory is kept, and answered again
// while the primary answers from the same catalogue version.
#pragma once

#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <modelrepo/fallback_repository.hpp>

#include "route_table.hpp"

namespace modelrepo::serve {

/// Thread safety: its calls may run on several threads at once.
class CatalogueRoutes {
public:
    CatalogueRoutes(std::shared_ptr<FallbackRepository> chain, std::size_t max_slugs);
    void add_to(RouteTable& table);

    Response stats();
    /// `raw`: the query string as it came, what a kept answer is found by.
    Response models(const std::vector<QueryParam>& query, const std::string& raw);
    Response model(std::string_view encoded);
    Response statuses(const std::vector<QueryParam>& query);
    /// The whole catalogue as snapshot JSON: what another modelrepo reads as a source
    /// (`--source http://HOST:PORT/v1/snapshot`), with an ETag so its polls cost a 304.
    Response snapshot(const Request& request);

    /// A read's error: when every source of the chain failed by timing out, a gateway
    /// timeout (504) rather than an outage (503).
    Response read_error(const Error& error);

private:
    /// The whole model list. Read from memory (a live copy, a memory source): its text
    /// made once per catalogue version (the version cannot change: a write makes a new
    /// one), by one request at a time, and shared by every answer while that version is
    /// the newest asked for; one kept at a time. Read from a database: made as it is
    /// written, as other lists are.
    Response whole_list(SharedModels all, std::string source);

    /// The newest whole list made, with its ETag (the text's hash).
    struct KnownList {
        std::weak_ptr<const void> version;
        std::string source;
        std::string tag;
        std::shared_ptr<const std::string> body;
    };

    /// ?slug= lists read from memory, kept by query string with the catalogue version they
    /// were read from (the primary's CatalogueVersion): while the primary answers (its
    /// breaker closed) from that version, the kept text is its answer. A version is read
    /// before and after the read, and the answer kept only when both are the same: nothing
    /// changed in between. At most kept_entries answers of at most kept_body_bytes each,
    /// kept_bytes in all (keys included); the lot is dropped when full or when the version
    /// moves. Kept answers are not calls on the chain (its source metrics do not count them).
    std::optional<Response> kept_answer(const std::string& raw, std::uint64_t version);
    void keep_answer(const std::string& raw, std::uint64_t version, Response& answer);
    /// The primary's catalogue version when a ?slug= answer may be kept or taken from what
    /// is kept (0: it may not).
    std::uint64_t answering_version();
    struct KeptAnswer {
        std::shared_ptr<const std::string> body;
        std::string tag;
    };
    static constexpr std::size_t kept_entries = 1024;
    static constexpr std::size_t kept_body_bytes = 64 * 1024;
    static constexpr std::size_t kept_bytes = 8 * 1024 * 1024;

    std::shared_ptr<FallbackRepository> chain_;
    std::string primary_;
    CatalogueVersion* versions_ = nullptr; ///< the primary's, if it offers it
    std::mutex kept_mutex_;
    std::uint64_t kept_version_ = 0;                   ///< kept_mutex_
    std::unordered_map<std::string, KeptAnswer> kept_; ///< kept_mutex_
    std::size_t kept_size_ = 0;                        ///< kept_mutex_: bytes
    std::size_t max_slugs_;
    std::mutex list_mutex_;
    KnownList list_;        ///< list_mutex_
    std::mutex make_mutex_; ///< held while a whole list's text is made
    /// The size of the last whole list's text made (none yet: the most). While it is at most
    /// `io_list_bytes`, the whole list is answered on the I/O thread: making it again after
    /// a write costs under a millisecond. A catalogue that grows past that at once from a
    /// small one (an import) is made once more on the I/O thread.
    static constexpr std::size_t io_list_bytes = 64 * 1024;
    std::atomic<std::size_t> made_bytes_{std::numeric_limits<std::size_t>::max()};
};

} // namespace modelrepo::serve
