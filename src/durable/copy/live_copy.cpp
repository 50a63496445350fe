// SPDX-License-Identifier: MIT
#include "live_copy.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "../../core/files.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

namespace {

std::int64_t now_ns() {
    return duration_cast<nanoseconds>(Clock::now().time_since_epoch()).count();
}

} // namespace

LiveCopy::LiveCopy(Options options, CatalogReader& reader, ChangeHub& downstream)
    : options_(std::move(options))
    , reader_(reader)
    , downstream_(downstream)
    , published_(build_catalog(Snapshot{})) {}

LiveCopy::~LiveCopy() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
    // A short-lived process (a CLI call) may end before the first load did: load once now
    // while the database answers, so that a later run started during an outage has it.
    // Whether it answers: its feed connected, or a read of it succeeded (the process may
    // end before its feed connects; in an outage neither holds, and exit stays quick).
    if (!has_data() && (feed_connected_.load() || answered_.load()) && !options_.dir.empty())
        reload();
    bool dirty;
    {
        std::lock_guard lock(mutex_);
        dirty = dirty_;
    }
    if (dirty)
        save(); // at exit: the next run starts from what this one saw last
}

void LiveCopy::start() {
    load_from_disk();
    thread_ = std::thread([this] { run(); });
}

Timestamp LiveCopy::as_of() const noexcept {
    if (in_sync())
        return Clock::now();
    return Timestamp(duration_cast<Clock::duration>(nanoseconds(as_of_ns_.load())));
}

LiveCopy::Stats LiveCopy::stats() const {
    std::lock_guard lock(const_cast<std::mutex&>(mutex_));
    return stats_;
}

void LiveCopy::on_changes(std::vector<CatalogChange> changes) {
    {
        std::lock_guard lock(mutex_);
        for (auto& c : changes)
            queue_.push_back({std::move(c), std::nullopt});
    }
    wake_.notify_one();
}

bool LiveCopy::on_rows(std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows) {
    if (changes.size() != rows.size() || !in_sync())
        return false;
    {
        // A status of a model the copy lacks could not be applied: the copy is behind. One
        // older than the status held is a correction back in time, or was overtaken by a
        // write of this process applied at once (read your writes): either way the row
        // to hold is the database's current one, which a re-read gives.
        const Catalog& held = published_.read();
        for (const auto& row : rows) {
            const Model* model = held.find(row.model_slug);
            if (!model || (model->status && model->status->checked_at > row.checked_at))
                return false;
        }
    }
    std::vector<Queued> batch;
    batch.reserve(changes.size());
    std::unique_lock lock(mutex_);
    if (stopping_)
        return false;
    for (std::size_t i = 0; i < changes.size(); ++i)
        batch.push_back({std::move(changes[i]), std::move(rows[i])});
    if (busy_ || !queue_.empty()) {
        for (auto& q : batch)
            queue_.push_back(std::move(q));
        lock.unlock();
        wake_.notify_one();
        return true;
    }
    busy_ = true;
    lock.unlock();
    apply_and_tell(batch);
    lock.lock();
    busy_ = false;
    const bool more = !queue_.empty();
    lock.unlock();
    if (more)
        wake_.notify_one();
    return true;
}

void LiveCopy::apply_and_tell(std::vector<Queued>& batch) {
    apply(batch);
    // Watchers hear of a change once the copy holds it.
    for (auto& q : batch)
        downstream_.publish(std::move(q.change));
}

void LiveCopy::on_feed(bool connected) {
    feed_connected_.store(connected, std::memory_order_release);
    if (!connected && in_sync_.exchange(false))
        as_of_ns_.store(now_ns()); // known current until this moment
}

void LiveCopy::publish(std::shared_ptr<const Catalog> next) {
    published_.publish(std::move(next));
    std::lock_guard lock(mutex_);
    dirty_ = true;
}

void LiveCopy::apply_statuses(std::span<const ModelStatus> statuses) {
    if (!has_data())
        return;
    std::lock_guard lock(write_mutex_);
    auto edit = with_statuses(published_.read(), statuses);
    if (edit.next)
        publish(std::move(edit.next));
}

void LiveCopy::note_statuses(std::span<const ModelStatus> statuses) {
    apply_statuses(statuses);
}

void LiveCopy::run() {
    // A failed reload (the source just restarted, say) is tried again soon, whether or not
    // the copy holds data: 100 ms, doubling to about a second.
    constexpr milliseconds first_retry{100}, last_retry{1'000};
    milliseconds retry_in = first_retry;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        bool retry = needs_reload_ && feed_connected_.load();
        auto wake_at = steady_clock::now() + (retry ? milliseconds(retry_in) : milliseconds(60s));
        lock.unlock();
        wake_at = std::min(wake_at, check_stale());
        lock.lock();
        if (dirty_)
            wake_at = std::min(wake_at, last_save_ + options_.save_interval);
        wake_.wait_until(lock, wake_at, [&] { return stopping_ || (!queue_.empty() && !busy_); });
        if (stopping_)
            break;
        if (busy_)
            continue; // on_rows' caller is applying: its end wakes this thread
        std::vector<Queued> batch;
        batch.swap(queue_);
        busy_ = true;
        lock.unlock();
        if (!batch.empty() || (needs_reload_ && feed_connected_.load())) {
            bool resync = std::any_of(batch.begin(), batch.end(), [](const Queued& q) {
                return q.change.kind == CatalogChange::Kind::resync;
            });
            if (resync || needs_reload_) {
                reload();
                for (auto& q : batch)
                    downstream_.publish(std::move(q.change));
            } else {
                apply_and_tell(batch);
            }
        }
        lock.lock();
        busy_ = false;
        retry_in = needs_reload_ ? std::min(retry_in * 2, last_retry) : first_retry;
        if (dirty_ && steady_clock::now() >= last_save_ + options_.save_interval) {
            lock.unlock();
            save();
            lock.lock();
        }
    }
}

steady_clock::time_point LiveCopy::check_stale() {
    constexpr auto never = steady_clock::time_point::max();
    if (options_.max_stale.count() <= 0 || !options_.on_stale)
        return never;
    if (in_sync() || !has_data()) {
        if (told_stale_ && in_sync()) {
            told_stale_ = false;
            options_.on_stale(false, "the last-known copy is in sync again");
        }
        return never;
    }
    auto age = Clock::now() - as_of();
    if (age < options_.max_stale)
        return steady_clock::now() +
               duration_cast<steady_clock::duration>(options_.max_stale - age);
    if (!told_stale_) {
        told_stale_ = true;
        options_.on_stale(true,
                          "the last-known copy has been out of sync since " +
                              format_timestamp(as_of()) + ", longer than max_stale (" +
                              std::to_string(duration_cast<seconds>(options_.max_stale).count()) +
                              " s): reads no longer fall back to it");
    }
    return never;
}

void LiveCopy::reload() {
    // Lock order: write_mutex_ before mutex_ (as in apply() and apply_statuses()).
    auto loaded = reader_.load();
    if (!loaded) {
        std::lock_guard lock(mutex_);
        ++stats_.reload_failures;
        needs_reload_ = true;
        return;
    }
    auto& [snapshot, version] = loaded.value();
    {
        std::lock_guard write(write_mutex_);
        published_.publish(build_catalog(snapshot, version));
    }
    std::lock_guard lock(mutex_);
    dirty_ = true;
    needs_reload_ = false;
    ++stats_.reloads;
    stats_.version = version;
    has_data_.store(true, std::memory_order_release);
    as_of_ns_.store(now_ns());
    in_sync_.store(feed_connected_.load(), std::memory_order_release);
}

void LiveCopy::apply(const std::vector<Queued>& changes) {
    std::set<std::string> model_slugs, provider_slugs;
    std::int64_t version = 0;
    std::uint64_t by_rows = 0;
    for (const auto& [c, row] : changes) {
        version = std::max(version, c.version);
        if (row)
            ++by_rows;
        else if (c.kind == CatalogChange::Kind::provider)
            provider_slugs.insert(c.slug);
        else
            model_slugs.insert(c.slug);
    }
    // The statuses decoded as written, in commit order, but for those before a re-read of
    // their model in this batch (the read is at least as new). One after it is applied on
    // top of the read: the read may have been made before its transaction was visible,
    // and if it was not, a later change of that model follows it in the stream.
    std::map<std::string, std::size_t> last_read;
    for (std::size_t i = 0; i < changes.size(); ++i)
        if (!changes[i].row && changes[i].change.kind != CatalogChange::Kind::provider)
            last_read[changes[i].change.slug] = i;
    std::vector<ModelStatus> rows;
    for (std::size_t i = 0; i < changes.size(); ++i) {
        const auto& row = changes[i].row;
        if (!row)
            continue;
        auto read = last_read.find(row->model_slug);
        if (read == last_read.end() || read->second < i)
            rows.push_back(*row);
    }
    auto fail = [&] {
        std::lock_guard lock(mutex_);
        needs_reload_ = true; // the changed rows could not be read: reload when possible
        in_sync_.store(false);
        as_of_ns_.store(now_ns());
    };
    std::vector<std::string> wanted_providers(provider_slugs.begin(), provider_slugs.end());
    std::vector<std::string> wanted_models(model_slugs.begin(), model_slugs.end());
    std::vector<Provider> providers;
    if (!wanted_providers.empty()) {
        auto read = reader_.providers(wanted_providers);
        if (!read)
            return fail();
        providers = std::move(read).value();
    }
    std::vector<Model> models;
    if (!wanted_models.empty()) {
        auto read = reader_.models(wanted_models);
        if (!read)
            return fail();
        models = std::move(read).value();
    }
    auto absent = [](const std::vector<std::string>& wanted, const auto& found) {
        std::vector<std::string> out;
        for (const auto& slug : wanted)
            if (std::none_of(found.begin(), found.end(),
                             [&](const auto& item) { return item.slug == slug; }))
                out.push_back(slug);
        return out;
    };
    std::lock_guard write(write_mutex_);
    std::shared_ptr<const Catalog> current = published_.share();
    if (!providers.empty() || !wanted_providers.empty()) {
        auto edit = with_providers(*current, providers, absent(wanted_providers, providers));
        if (edit.next)
            current = std::move(edit.next);
    }
    if (!wanted_models.empty()) {
        // The feed's rows are the database's current ones: applied as they are, even when a
        // status moved back in time (a correction), never kept from it.
        auto edit = with_models(*current, models, absent(wanted_models, models),
                                /*keep_newer_status=*/false);
        if (edit.next)
            current = std::move(edit.next);
    }
    if (!rows.empty()) {
        // As the database holds them, also when a status moved back in time.
        auto edit = with_statuses(*current, rows, /*keep_newer_status=*/false);
        if (edit.next)
            current = std::move(edit.next);
    }
    if (current->version < version) {
        auto versioned = std::make_shared<Catalog>(*current);
        versioned->version = version;
        current = std::move(versioned);
    }
    published_.publish(current);
    std::lock_guard lock(mutex_);
    dirty_ = true;
    stats_.applied += changes.size();
    stats_.rows_applied += by_rows;
    stats_.version = current->version;
    as_of_ns_.store(now_ns());
}

std::filesystem::path LiveCopy::snapshot_path() const {
    return options_.dir / (options_.key + ".json");
}

std::filesystem::path LiveCopy::meta_path() const {
    return options_.dir / (options_.key + ".meta.json");
}

void LiveCopy::save() {
    {
        std::lock_guard lock(mutex_);
        dirty_ = false;
        last_save_ = steady_clock::now();
    }
    if (options_.dir.empty() || !has_data())
        return;
    std::shared_ptr<const Catalog> current = published_.share();
    Snapshot snapshot = current->snapshot();
    Timestamp at = as_of();
    snapshot.generated_at = floor<microseconds>(at);
    std::error_code ec;
    std::filesystem::create_directories(options_.dir, ec);
    nlohmann::json meta{{"format", "modelrepo.live-copy/1"},
                        {"version", current->version},
                        {"as_of", format_timestamp_precise(at)}};
    auto written = write_file_atomically(snapshot_path(), write_snapshot(snapshot, -1), true);
    if (written)
        written = write_file_atomically(meta_path(), meta.dump() + "\n", true);
    std::lock_guard lock(mutex_);
    ++(written ? stats_.saves : stats_.save_failures);
    if (written)
        stats_.disk_error.clear(); // the file holds the copy now
    else
        stats_.disk_error = "the copy cannot be written to cache_dir: " + written.error().message;
}

void LiveCopy::load_from_disk() {
    if (options_.dir.empty())
        return;
    auto refuse = [&](const std::string& why) {
        std::lock_guard lock(mutex_);
        ++stats_.load_failures;
        stats_.disk_error = why;
    };
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(snapshot_path(), ec)))
        return; // no earlier run left a copy: nothing to load, nothing wrong
    // Only the regular files this class wrote: never a link, a FIFO or a device there.
    auto text = read_file_limited(snapshot_path(), max_snapshot_file_bytes, Links::refuse);
    if (!text)
        return refuse("the copy in cache_dir cannot be read: " + text.error().message);
    auto snapshot = parse_snapshot(text.value());
    if (!snapshot)
        return refuse("the copy '" + snapshot_path().string() + "' is not a valid snapshot (" +
                      snapshot.error().message + "); not used");
    auto meta_text = read_file_limited(meta_path(), 64 * 1024, Links::refuse);
    if (!meta_text)
        return refuse("the copy's meta file cannot be read: " + meta_text.error().message);
    auto meta = nlohmann::json::parse(meta_text.value(), nullptr, false);
    std::int64_t version = 0;
    Timestamp at = snapshot.value().generated_at;
    if (meta.is_object() && meta.value("format", "") == "modelrepo.live-copy/1") {
        version = meta.value("version", std::int64_t{0});
        if (auto parsed = parse_timestamp(meta.value("as_of", "")))
            at = *parsed;
    }
    // A copy that says it is from the future would be trusted for ever (its age negative).
    if (at > Clock::now() + minutes(5))
        return refuse("the copy '" + snapshot_path().string() + "' says it was current at " +
                      format_timestamp(at) + ", in the future; not used");
    {
        std::lock_guard write(write_mutex_);
        published_.publish(build_catalog(snapshot.value(), version));
    }
    as_of_ns_.store(duration_cast<nanoseconds>(at.time_since_epoch()).count());
    has_data_.store(true, std::memory_order_release);
    std::lock_guard lock(mutex_);
    ++stats_.loaded_from_disk;
    stats_.version = version;
}

} // namespace modelrepo::detail
