// SPDX-License-Identifier: MIT
/// @file
/// `GithubRepository`: the JSON backup of the catalogue (a `modelrepo.snapshot/1`
/// file) fetched over HTTP with libcurl, from a GitHub repository through the contents
/// API, or from any URL. libcurl headers stay out of this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <modelrepo/model_repository.hpp>

namespace modelrepo {

/// Where the backup is and how it is fetched. `from_uri()` reads the same settings
/// from `github://OWNER/REPO/PATH@REF?api_base=…&refresh_interval=…&cache_dir=…&max_stale=…`
/// or an `https://`/`http://` URL with the same parameters.
struct GithubConfig {
    /// The URL requested: `{api_base}/repos/OWNER/REPO/contents/PATH?ref=REF` for the
    /// contents API, or the plain URL.
    std::string url;
    /// True for the contents API: sends `Accept: application/vnd.github.raw+json` and
    /// `X-GitHub-Api-Version`.
    bool contents_api = false;
    /// Sent as `Authorization: Bearer …` when not empty; never printed. `from_uri()` takes
    /// it from the URI's `token_file=` (the file's first line), else from `GITHUB_TOKEN` for
    /// github:// and for https:// URLs on GitHub's own hosts (github.com,
    /// api.github.com, raw.githubusercontent.com, *.githubusercontent.com) only: never
    /// for another host.
    std::string token;
    /// A PEM file of CA certificates to trust for https:// (`ca_file=`), instead of the
    /// system's: another modelrepo serve with a private CA. Empty: the system's.
    std::filesystem::path ca_file;
    /// How long a fetched copy is served before the next call revalidates it
    /// (`If-None-Match`; a 304 costs no download and no parse).
    std::chrono::milliseconds refresh_interval{60'000};
    /// How old a last-good copy may be and still be served when revalidation fails.
    std::chrono::milliseconds max_stale{24 * 3'600'000};
    std::chrono::milliseconds connect_timeout{5'000};
    /// The whole transfer, redirects included.
    std::chrono::milliseconds timeout{10'000};
    /// Bodies larger than this are refused while downloading (`Errc::bad_data`).
    std::size_t max_body_bytes = 16 * 1024 * 1024;
    int max_redirects = 3;
    /// Where the last-good copy (body, ETag, fetch time) is kept across restarts;
    /// empty for none.
    std::filesystem::path cache_dir;
    /// What `name()` and `SystemStats::source` say; `from_uri()` sets the URI (redacted).
    std::string name;

    /// Errors: `Errc::invalid_argument` naming the part that is wrong.
    static Result<GithubConfig> from_uri(std::string_view uri);
};

/// Thread safety: all methods may be called concurrently. Reads are served from the
/// in-memory copy; when it is older than `refresh_interval`, one caller revalidates
/// while the others keep getting the current copy. Nothing here throws.
class GithubRepository final : public ModelRepository {
public:
    /// Loads the disk cache if there is one; does not fetch until the first call.
    static Result<std::shared_ptr<GithubRepository>> create(GithubConfig config);
    static Result<std::shared_ptr<GithubRepository>> open(std::string_view uri);
    ~GithubRepository() override;

    std::string_view name() const noexcept override;
    Result<std::int64_t> count_models() override;
    Result<std::int64_t> count_providers() override;
    Result<std::vector<ModelStatus>> list_statuses() override;
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override;
    Result<std::optional<Model>> find_model(std::string_view slug) override;
    /// `as_of` is the snapshot's `generated_at`; see `age()` for the copy's age.
    Result<SystemStats> system_stats() override;
    /// Revalidates now (a real request unless rate limited).
    Result<void> check_health() override;
    Result<std::vector<Model>> list_models() override;
    Result<Snapshot> export_snapshot() override;

    /// A `resync` each time a revalidation brings a new body. While anyone watches, a
    /// thread revalidates every `refresh_interval` (one conditional request: a 304 costs
    /// nothing), so changes are seen without calls.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override;

    /// How long ago the copy being served was fetched or confirmed (304); nullopt
    /// before the first copy.
    std::optional<std::chrono::seconds> age() const;

    struct Stats {
        std::uint64_t requests = 0;     ///< HTTP requests sent
        std::uint64_t downloads = 0;    ///< 200 answers parsed
        std::uint64_t not_modified = 0; ///< 304 answers
        std::uint64_t failures = 0;     ///< failed revalidations
        std::uint64_t stale_served = 0; ///< calls answered from a copy whose revalidation failed
    };
    Stats stats() const;
    /// `modelrepo_http_requests_total`, `modelrepo_http_answers_total{outcome}`,
    /// `modelrepo_copy_stale_served_total`, `modelrepo_copy_age_seconds`.
    std::vector<MetricFamily> backend_metrics() const override;
    /// The copy's `generated_at`; nothing before the first copy.
    std::optional<Timestamp> data_as_of() const override;
    /// `HealthControl`: whether the last fetch reached the server (a backup that keeps
    /// answering from its copy while its server fails is still told as down).
    void* find_capability(const std::type_info& type) noexcept override;

private:
    struct Mirror; ///< the fetched copy, its revalidation, its file in cache_dir
    explicit GithubRepository(std::unique_ptr<Mirror> mirror);
    std::unique_ptr<Mirror> mirror_;
};

} // namespace modelrepo
