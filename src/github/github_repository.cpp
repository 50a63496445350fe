// SPDX-License-Identifier: MIT
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <modelrepo/github_repository.hpp>
#include <modelrepo/memory_repository.hpp>
#include <modelrepo/version.hpp>

#include "../core/files.hpp"
#include "../core/health_tracker.hpp"
#include "../core/uri.hpp"
#include "http_fetch.hpp"

namespace modelrepo {

namespace {

using namespace std::chrono;
using SteadyClock = steady_clock;

} // namespace

struct GithubRepository::Mirror {
    GithubConfig config;
    std::shared_ptr<MemoryRepository> data; ///< set once, then replace()d
    std::atomic<bool> have_data{false};
    std::atomic<std::int64_t> next_check_ns{0};  ///< steady clock
    std::atomic<std::int64_t> confirmed_at_s{0}; ///< system clock: last 200 or 304

    /// Revalidations finished so far; a caller that waited for the fetch lock takes the
    /// outcome of the fetch that ran meanwhile instead of starting another.
    std::atomic<std::uint64_t> fetches_done{0};
    std::mutex fetch_mutex; ///< one revalidation at a time; guards all below
    detail::HttpClient client;
    std::string etag;
    std::uint64_t loaded_from_cache = 0;
    std::optional<Error> last_error;
    SteadyClock::time_point rate_limited_until{};
    std::optional<system_clock::time_point> rate_limit_reset;

    std::atomic<std::uint64_t> requests{0}, downloads{0}, not_modified{0}, failures{0},
        stale_served{0};

    /// watch(): a new body at a revalidation is a resync. While someone watches, a
    /// thread revalidates every refresh_interval, so that changes are seen without calls.
    ChangeHub hub;
    std::mutex refresher_mutex; ///< guards refreshing, the thread
    std::condition_variable refresher_wake;
    bool refreshing = false;
    bool refresher_stop = false;
    std::thread refresher;

    void start_refresher() {
        std::lock_guard lock(refresher_mutex);
        if (refreshing)
            return;
        refreshing = true;
        refresher = std::thread([this] {
            std::unique_lock lock(refresher_mutex);
            while (!refresher_stop) {
                refresher_wake.wait_for(lock, std::max(config.refresh_interval, milliseconds(100)),
                                        [&] { return refresher_stop; });
                if (refresher_stop)
                    break;
                lock.unlock();
                (void)ensure_fresh();
                lock.lock();
            }
        });
    }

    ~Mirror() {
        {
            std::lock_guard lock(refresher_mutex);
            refresher_stop = true;
        }
        refresher_wake.notify_all();
        if (refresher.joinable())
            refresher.join();
    }

    std::filesystem::path body_path() const {
        return config.cache_dir / (detail::fnv1a_hex(config.url) + ".json");
    }
    std::filesystem::path meta_path() const {
        return config.cache_dir / (detail::fnv1a_hex(config.url) + ".meta");
    }

    bool install(Snapshot snapshot) {
        if (!data) {
            auto repo = MemoryRepository::create(std::move(snapshot), config.name);
            if (!repo)
                return false;
            data = std::move(repo).value();
        } else if (!data->replace(std::move(snapshot))) {
            return false;
        }
        have_data.store(true, std::memory_order_release);
        return true;
    }

    void load_cache() {
        if (config.cache_dir.empty())
            return;
        std::ifstream body(body_path(), std::ios::binary);
        std::ifstream meta(meta_path());
        if (!body || !meta)
            return;
        std::stringstream text;
        text << body.rdbuf();
        std::string cached_etag;
        long long fetched = 0;
        std::getline(meta, cached_etag);
        meta >> fetched;
        auto snapshot = parse_snapshot(text.str());
        if (!snapshot || !install(std::move(snapshot).value()))
            return;
        etag = cached_etag;
        confirmed_at_s.store(fetched);
        loaded_from_cache = 1;
        // A loaded copy is revalidated on the first call.
    }

    void save_cache(const std::string& body) {
        if (config.cache_dir.empty())
            return;
        std::error_code ec;
        std::filesystem::create_directories(config.cache_dir, ec);
        if (!body.empty() && !detail::write_file_atomically(body_path(), body))
            return;
        (void)detail::write_file_atomically(
            meta_path(), etag + "\n" + std::to_string(confirmed_at_s.load()) + "\n");
    }

    std::int64_t now_s() const {
        return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
    }

    Error tag(Error error, int status = 0) {
        error.source = config.name;
        error.target = config.name;
        if (status)
            error.http_status = status;
        return error;
    }

    /// What the fetches see of the server (made once the name is known).
    std::unique_ptr<detail::HealthTracker> health;

    /// One request (unless rate limited), told to the health. Called with fetch_mutex held.
    Result<void> revalidate() {
        auto fetched = fetch();
        if (fetched)
            health->reached("http");
        else
            health->failed("http", fetched.error());
        return fetched;
    }

    Result<void> fetch() {
        auto now = SteadyClock::now();
        next_check_ns.store((now + config.refresh_interval).time_since_epoch().count());
        if (now < rate_limited_until) {
            Error e = make_error(Errc::rate_limited, "GET " + config.name +
                                                         ": rate limited; no request before " +
                                                         format_timestamp(*rate_limit_reset));
            e.retry_after = rate_limit_reset;
            next_check_ns.store(rate_limited_until.time_since_epoch().count());
            return tag(e);
        }
        detail::HttpRequest request;
        request.url = config.url;
        request.connect_timeout = config.connect_timeout;
        request.timeout = config.timeout;
        request.max_body_bytes = config.max_body_bytes;
        request.max_redirects = config.max_redirects;
        request.ca_file = config.ca_file.string();
        request.headers.push_back("User-Agent: modelrepo/" + std::string(MODELREPO_VERSION));
        if (config.contents_api) {
            request.headers.push_back("Accept: application/vnd.github.raw+json");
            request.headers.push_back("X-GitHub-Api-Version: 2022-11-28");
        }
        if (!config.token.empty())
            request.headers.push_back("Authorization: Bearer " + config.token);
        if (have_data.load() && !etag.empty())
            request.headers.push_back("If-None-Match: " + etag);

        requests.fetch_add(1, std::memory_order_relaxed);
        auto response = client.get(request, config.name);
        if (!response) {
            failures.fetch_add(1, std::memory_order_relaxed);
            return tag(response.error());
        }
        detail::HttpResponse& r = response.value();
        if (r.status == 304 && have_data.load()) {
            not_modified.fetch_add(1, std::memory_order_relaxed);
            confirmed_at_s.store(now_s());
            save_cache("");
            return success();
        }
        if (r.status == 200) {
            auto snapshot = parse_snapshot(r.body);
            if (!snapshot) {
                failures.fetch_add(1, std::memory_order_relaxed);
                Error e = snapshot.error();
                e.message = "GET " + config.name + ": the body is not a valid snapshot" +
                            (have_data.load() ? " (the last good copy stays in service)" : "") +
                            ": " + e.message;
                return tag(e, 200);
            }
            if (!install(std::move(snapshot).value())) {
                failures.fetch_add(1, std::memory_order_relaxed);
                return tag(
                    make_error(Errc::bad_data, "GET " + config.name + ": the snapshot was refused"),
                    200);
            }
            bool replaced = have_data.load() && downloads.load() + loaded_from_cache > 0;
            etag = r.etag;
            confirmed_at_s.store(now_s());
            std::uint64_t n = downloads.fetch_add(1, std::memory_order_relaxed) + 1;
            save_cache(r.body);
            if (replaced) // a changed body: watchers re-read what they hold
                hub.publish(
                    {CatalogChange::Kind::resync, "", static_cast<std::int64_t>(n), Clock::now()});
            return success();
        }
        failures.fetch_add(1, std::memory_order_relaxed);
        return refusal(r, now);
    }

    /// A status other than 200 and 304: rate limited (no request until the reset), a
    /// refused token, or another HTTP error, each with what to check.
    Error refusal(const detail::HttpResponse& r, SteadyClock::time_point now);

    /// Makes sure a copy is there and fresh enough; serves a stale copy when
    /// revalidation fails and the copy is younger than max_stale.
    Result<void> ensure_fresh() {
        auto now_ns = SteadyClock::now().time_since_epoch().count();
        if (have_data.load(std::memory_order_acquire) && now_ns < next_check_ns.load())
            return success();
        std::uint64_t seen = fetches_done.load(std::memory_order_acquire);
        std::unique_lock lock(fetch_mutex, std::try_to_lock);
        if (!lock.owns_lock()) {
            if (have_data.load(std::memory_order_acquire))
                return success(); // another caller revalidates; keep serving this copy
            lock.lock();
            // Single flight: the fetch this caller waited for is its answer too.
            if (fetches_done.load(std::memory_order_acquire) != seen) {
                if (have_data.load())
                    return success();
                if (last_error)
                    return *last_error;
            }
        }
        now_ns = SteadyClock::now().time_since_epoch().count();
        if (have_data.load() && now_ns < next_check_ns.load())
            return success();
        if (!have_data.load() && last_error && now_ns < next_check_ns.load())
            return *last_error; // the fetch just before ours failed: do not repeat it
        auto fresh = revalidate();
        if (fresh)
            last_error.reset();
        else
            last_error = fresh.error();
        fetches_done.fetch_add(1, std::memory_order_release);
        if (fresh)
            return success();
        auto age = now_s() - confirmed_at_s.load();
        if (have_data.load() && seconds(age) <= config.max_stale) {
            stale_served.fetch_add(1, std::memory_order_relaxed);
            return success();
        }
        if (have_data.load())
            fresh.error().message +=
                " (the last good copy is " + std::to_string(age) + " s old, past max_stale)";
        return fresh.error();
    }

    template <class Fn>
    auto read(Fn&& fn) -> decltype(fn(std::declval<MemoryRepository&>())) {
        if (auto ok = ensure_fresh(); !ok)
            return ok.error();
        return fn(*data);
    }
};

Error GithubRepository::Mirror::refusal(const detail::HttpResponse& r,
                                        SteadyClock::time_point now) {
    bool limited = (r.status == 403 || r.status == 429) &&
                   (r.retry_after || (r.ratelimit_remaining && *r.ratelimit_remaining == 0));
    if (limited) {
        // X-RateLimit-Reset is epoch seconds; one in the past or more than a day
        // ahead (an overflow, a clock gone wrong) is not trusted: a minute instead.
        auto now_wall = system_clock::now();
        std::optional<system_clock::time_point> reset;
        if (r.ratelimit_reset && *r.ratelimit_reset > 0 && *r.ratelimit_reset < (1LL << 40)) {
            auto at = system_clock::time_point(seconds(*r.ratelimit_reset));
            if (at >= now_wall && at <= now_wall + hours(24))
                reset = at;
        }
        system_clock::time_point until = r.retry_after ? now_wall + seconds(*r.retry_after)
                                         : reset       ? *reset
                                                       : now_wall + seconds(60);
        rate_limit_reset = until;
        rate_limited_until =
            now + duration_cast<SteadyClock::duration>(
                      std::max(until - system_clock::now(), system_clock::duration::zero()));
        next_check_ns.store(
            std::max(next_check_ns.load(), rate_limited_until.time_since_epoch().count()));
        Error e = make_error(
            Errc::rate_limited,
            "GET " + config.name + ": HTTP " + std::to_string(r.status) + ", rate limited until " +
                format_timestamp(until) + "; no request is sent before then" +
                (config.token.empty() ? " (set GITHUB_TOKEN for a higher limit)" : ""));
        e.retry_after = until;
        return tag(e, static_cast<int>(r.status));
    }
    if (r.status == 401)
        return tag(
            make_error(Errc::auth_failed,
                       "GET " + config.name + ": HTTP 401, the server refused the " +
                           (config.token.empty()
                                ? std::string("request without a token (give the source "
                                              "token_file=FILE; GITHUB_TOKEN goes to GitHub's "
                                              "hosts only)")
                                : std::string("token it sent (token_file=, or GITHUB_TOKEN for "
                                              "GitHub): expired, revoked or without access"))),
            401);
    std::string hint = r.status == 404 ? " (check owner, repository, path and ref)"
                       : r.status >= 500
                           ? " (the server failed; retried after the refresh interval)"
                           : "";
    return tag(make_error(Errc::http_status,
                          "GET " + config.name + ": HTTP " + std::to_string(r.status) + hint),
               static_cast<int>(r.status));
}

GithubRepository::GithubRepository(std::unique_ptr<Mirror> mirror)
    : mirror_(std::move(mirror)) {}

GithubRepository::~GithubRepository() = default;

Result<std::shared_ptr<GithubRepository>> GithubRepository::create(GithubConfig config) {
    if (config.url.empty())
        return make_error(Errc::invalid_argument, "GithubConfig::url is empty");
    if (config.name.empty())
        config.name = redact(config.url);
    auto mirror = std::make_unique<Mirror>();
    mirror->config = std::move(config);
    mirror->health = std::make_unique<detail::HealthTracker>(mirror->config.name);
    mirror->load_cache();
    return std::shared_ptr<GithubRepository>(new GithubRepository(std::move(mirror)));
}

Result<std::shared_ptr<GithubRepository>> GithubRepository::open(std::string_view uri) {
    auto config = GithubConfig::from_uri(uri);
    if (!config)
        return config.error();
    return create(std::move(config).value());
}

std::string_view GithubRepository::name() const noexcept {
    return mirror_->config.name;
}

Result<std::int64_t> GithubRepository::count_models() {
    return mirror_->read([](MemoryRepository& m) { return m.count_models(); });
}
Result<std::int64_t> GithubRepository::count_providers() {
    return mirror_->read([](MemoryRepository& m) { return m.count_providers(); });
}
Result<std::vector<ModelStatus>> GithubRepository::list_statuses() {
    return mirror_->read([](MemoryRepository& m) { return m.list_statuses(); });
}
Result<std::vector<Model>> GithubRepository::find_models(std::span<const std::string> slugs) {
    return mirror_->read([&](MemoryRepository& m) { return m.find_models(slugs); });
}
Result<std::optional<Model>> GithubRepository::find_model(std::string_view slug) {
    return mirror_->read([&](MemoryRepository& m) { return m.find_model(slug); });
}
Result<SystemStats> GithubRepository::system_stats() {
    return mirror_->read([](MemoryRepository& m) { return m.system_stats(); });
}
Result<std::vector<Model>> GithubRepository::list_models() {
    return mirror_->read([](MemoryRepository& m) { return m.list_models(); });
}
Result<Snapshot> GithubRepository::export_snapshot() {
    return mirror_->read([](MemoryRepository& m) { return m.export_snapshot(); });
}

void* GithubRepository::find_capability(const std::type_info& type) noexcept {
    if (void* p = offer<HealthControl>(type, mirror_->health.get()))
        return p;
    return offer<detail::HealthObserver>(type, mirror_->health.get());
}

Result<void> GithubRepository::check_health() {
    std::lock_guard lock(mirror_->fetch_mutex);
    auto r = mirror_->revalidate();
    if (!r)
        mirror_->last_error = r.error();
    else
        mirror_->last_error.reset();
    mirror_->fetches_done.fetch_add(1, std::memory_order_release);
    return r;
}

Result<Subscription> GithubRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    auto subscription = mirror_->hub.subscribe(std::move(on_change));
    mirror_->start_refresher();
    return subscription;
}

std::vector<MetricFamily> GithubRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    Stats s = stats();
    std::vector<MetricFamily> out;
    out.push_back({"modelrepo_http_requests_total",
                   Type::counter,
                   "HTTP requests sent for the backup copy.",
                   {}});
    out.back().add({}, static_cast<double>(s.requests));
    out.push_back({"modelrepo_http_answers_total",
                   Type::counter,
                   "Revalidations by outcome: a new copy (200), unchanged (304), failed.",
                   {}});
    out.back()
        .add({{"outcome", "downloaded"}}, static_cast<double>(s.downloads))
        .add({{"outcome", "not_modified"}}, static_cast<double>(s.not_modified))
        .add({{"outcome", "failed"}}, static_cast<double>(s.failures));
    out.push_back({"modelrepo_copy_stale_served_total",
                   Type::counter,
                   "Calls answered from a copy whose revalidation failed.",
                   {}});
    out.back().add({}, static_cast<double>(s.stale_served));
    if (auto a = age()) {
        out.push_back({"modelrepo_copy_age_seconds",
                       Type::gauge,
                       "How long ago the copy served was fetched or confirmed.",
                       {}});
        out.back().add({}, static_cast<double>(a->count()));
    }
    return out;
}

std::optional<Timestamp> GithubRepository::data_as_of() const {
    if (!mirror_->have_data.load())
        return std::nullopt;
    return mirror_->data->data_as_of();
}

std::optional<std::chrono::seconds> GithubRepository::age() const {
    if (!mirror_->have_data.load())
        return std::nullopt;
    return seconds(mirror_->now_s() - mirror_->confirmed_at_s.load());
}

GithubRepository::Stats GithubRepository::stats() const {
    return {mirror_->requests.load(), mirror_->downloads.load(), mirror_->not_modified.load(),
            mirror_->failures.load(), mirror_->stale_served.load()};
}

} // namespace modelrepo
