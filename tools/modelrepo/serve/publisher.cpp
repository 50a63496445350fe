// SPDX-License-Identifier: MIT
#include "publisher.hpp"

#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace modelrepo::serve {

namespace {

enum Outcome { changed, unchanged, failed, skipped };
constexpr std::array<const char*, 4> outcome_names{"changed", "unchanged", "failed", "skipped"};

} // namespace

struct Publisher::Impl {
    std::shared_ptr<FallbackRepository> chain;
    PublisherOptions options;
    std::string primary;

    std::mutex mutex; ///< guards dirty, stopping
    std::condition_variable wake;
    bool dirty = true; ///< the first publish is made at start
    bool stopping = false;
    bool watching = false;
    Subscription subscription;
    std::thread thread;

    std::array<std::atomic<std::uint64_t>, outcome_names.size()> outcomes{};
    std::atomic<double> last_success{0};

    void log(const std::string& line) {
        if (options.log)
            options.log(line);
    }

    void publish_once() {
        Provenance answered_by;
        auto snapshot = chain->export_snapshot(answered_by);
        if (!snapshot) {
            outcomes[failed].fetch_add(1);
            log("publish: cannot export the catalogue: " + snapshot.error().to_string());
            return mark_dirty_later();
        }
        if (answered_by.backup()) {
            std::string from(answered_by.source);
            outcomes[skipped].fetch_add(1);
            log("publish: not publishing what " + from + " answered (a backup); " + primary +
                " cannot export now, trying again later");
            return mark_dirty_later();
        }
        auto result = publish_snapshot(snapshot.value(), options.destination, options.publish);
        if (!result) {
            outcomes[failed].fetch_add(1);
            log("publish: " + result.error().to_string());
            return mark_dirty_later();
        }
        last_success.store(
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count());
        const PublishResult& r = result.value();
        outcomes[r.changed ? changed : unchanged].fetch_add(1);
        if (r.changed)
            log("publish: stored " + std::to_string(snapshot.value().models.size()) +
                " models at " + r.destination +
                (r.commit.empty() ? "" : " (commit " + r.commit + ")"));
    }

    /// A failed or skipped publish is tried again after the interval.
    void mark_dirty_later() {
        std::lock_guard lock(mutex);
        dirty = true;
    }

    void run() {
        using clock = std::chrono::steady_clock;
        auto next = clock::now();
        std::unique_lock lock(mutex);
        while (!stopping) {
            if (!watching)
                dirty = true; // no feed: publish each interval; unchanged writes nothing
            wake.wait_until(lock, next, [&] { return stopping; });
            if (stopping)
                break;
            wake.wait(lock, [&] { return stopping || dirty; });
            if (stopping)
                break;
            dirty = false;
            lock.unlock();
            publish_once();
            next = clock::now() + options.interval;
            lock.lock();
        }
    }
};

Result<std::unique_ptr<Publisher>> Publisher::start(std::shared_ptr<FallbackRepository> chain,
                                                    PublisherOptions options) {
    std::string_view dest = options.destination;
    if (!dest.starts_with("github://") && !dest.starts_with("file://"))
        return make_error(Errc::invalid_argument,
                          "--publish takes github://OWNER/REPO/PATH@BRANCH or file:///path.json");
    auto impl = std::make_unique<Impl>();
    impl->primary = chain->sources().front()->name();
    impl->chain = std::move(chain);
    impl->options = std::move(options);
    Impl* raw = impl.get();
    auto sub = raw->chain->watch([raw](const CatalogChange&) {
        {
            std::lock_guard lock(raw->mutex);
            raw->dirty = true;
        }
        raw->wake.notify_all();
    });
    if (sub) {
        raw->subscription = std::move(sub).value();
        raw->watching = true;
    } else {
        raw->log("publish: " + sub.error().to_string() + "; publishing once per interval instead");
    }
    raw->thread = std::thread([raw] { raw->run(); });
    return std::unique_ptr<Publisher>(new Publisher(std::move(impl)));
}

Publisher::Publisher(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

Publisher::~Publisher() {
    impl_->subscription.cancel();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wake.notify_all();
    if (impl_->thread.joinable())
        impl_->thread.join();
}

std::vector<MetricFamily> Publisher::metrics() const {
    std::vector<MetricFamily> out;
    MetricFamily total{"modelrepo_publish_total",
                       MetricFamily::Type::counter,
                       "Publishes of the catalogue (serve --publish), by result.",
                       {}};
    for (std::size_t i = 0; i < outcome_names.size(); ++i)
        total.add({{"result", outcome_names[i]}}, static_cast<double>(impl_->outcomes[i].load()));
    out.push_back(std::move(total));
    out.push_back({"modelrepo_publish_last_success_timestamp_seconds",
                   MetricFamily::Type::gauge,
                   "When the last publish succeeded (Unix time; 0: never).",
                   {}});
    out.back().add({}, impl_->last_success.load());
    return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    long long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data() || n < 0)
        return std::nullopt;
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    long long scale = 0;
    if (unit == "ms")
        scale = 1;
    else if (unit == "s")
        scale = 1000;
    else if (unit == "m")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    else
        return std::nullopt;
    if (n > 100LL * 24 * 3'600'000 / scale)
        return std::nullopt;
    return std::chrono::milliseconds(n * scale);
}

} // namespace modelrepo::serve
