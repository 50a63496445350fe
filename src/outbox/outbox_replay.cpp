// SPDX-License-Identifier: MIT
#include "outbox_replay.hpp"

#include <algorithm>

namespace modelrepo::detail {

using namespace std::chrono;

namespace {

/// Batches applied in one pipeline.
constexpr int group = 32;

} // namespace

OutboxReplay::OutboxReplay(OutboxStore& outbox, StatusWriter& writer, Options options)
    : outbox_(outbox)
    , writer_(writer)
    , options_(options) {}

OutboxReplay::~OutboxReplay() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void OutboxReplay::start() {
    thread_ = std::thread([this] { run(); });
}

void OutboxReplay::wake() {
    {
        std::lock_guard lock(mutex_);
        woken_ = true;
    }
    wake_.notify_all();
}

void OutboxReplay::set_listener(Listener listener) {
    std::lock_guard lock(mutex_);
    listener_ = std::move(listener);
}

OutboxReplay::Stats OutboxReplay::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void OutboxReplay::emit(const OutboxEvent& event) {
    Listener listener;
    {
        std::lock_guard lock(mutex_);
        listener = listener_;
    }
    if (listener) {
        try {
            listener(event);
        } catch (...) {
            // the listener's own business
        }
    }
}

Result<OutboxDrain> OutboxReplay::drain() {
    std::lock_guard drain_lock(drain_mutex_);
    OutboxDrain report;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                break;
        }
        // The oldest batches, applied in order in one pipeline (one round trip), each in
        // a transaction of its own; removed together once committed (one fsync). A crash
        // between the two applies them again: harmless, an upsert never moves a status
        // back in time.
        auto next = outbox_.oldest(group);
        if (!next)
            return std::move(next).error();
        if (next.value().empty())
            break;
        const auto& group_batches = next.value();
        std::vector<std::vector<ModelStatus>> statuses;
        for (const auto& b : group_batches)
            statuses.push_back(b.statuses);
        auto applied = writer_.apply_each(statuses);
        if (!applied) {
            (void)outbox_.note_attempt(group_batches.front().id, applied.error());
            std::lock_guard lock(mutex_);
            ++stats_.failed_attempts;
            return std::move(applied).error();
        }
        std::vector<std::int64_t> done;
        std::uint64_t done_statuses = 0;
        std::optional<Error> stopped; // the database could not take one: the rest wait
        // A writer may stop at an outage before the end: the rest wait for the next drain.
        const std::size_t answered = std::min(group_batches.size(), applied.value().size());
        for (std::size_t k = 0; k < answered; ++k) {
            const auto& batch = group_batches[k];
            auto& r = applied.value()[k];
            auto n = static_cast<std::int64_t>(batch.statuses.size());
            if (r) {
                done.push_back(batch.id);
                done_statuses += static_cast<std::uint64_t>(n);
                report.batches += 1;
                report.statuses += n;
                continue;
            }
            // The source cannot take it now (an outage), or refused it for another
            // client's sake (a deadlock): it waits for the next drain, never buried.
            if (ErrorClass kind = classify(r.error());
                kind.outage || (kind.retryable && !kind.caller_fault)) {
                (void)outbox_.note_attempt(batch.id, r.error());
                stopped = r.error();
                break;
            }
            // The database refuses this batch for good (a model deleted since, a
            // constraint): it goes to the dead letters and the rest continue.
            if (auto buried = outbox_.bury(batch, r.error()); !buried)
                return std::move(buried).error();
            report.dead_letters += 1;
            {
                std::lock_guard lock(mutex_);
                ++stats_.dead_letters;
            }
            emit(
                {OutboxEvent::Kind::dead_letter, batch.id, n, r.error().to_string(), Clock::now()});
        }
        if (auto removed = outbox_.remove(done); !removed)
            return std::move(removed).error();
        {
            std::lock_guard lock(mutex_);
            stats_.replayed_batches += done.size();
            stats_.replayed_statuses += done_statuses;
        }
        for (std::size_t k = 0; k < group_batches.size(); ++k)
            if (std::find(done.begin(), done.end(), group_batches[k].id) != done.end())
                emit({OutboxEvent::Kind::replayed, group_batches[k].id,
                      static_cast<std::int64_t>(group_batches[k].statuses.size()), "",
                      Clock::now()});
        if (stopped) {
            std::lock_guard lock(mutex_);
            ++stats_.failed_attempts;
            return *stopped;
        }
    }
    auto left = outbox_.state();
    if (left)
        report.remaining = left.value().statuses;
    return report;
}

void OutboxReplay::run() {
    milliseconds backoff = options_.backoff_initial;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        auto drained = drain();
        lock.lock();
        if (stopping_)
            break;
        // While the database cannot take the oldest batch: back off (doubling); else wait
        // for the next write or the idle check.
        milliseconds wait = drained ? options_.idle_check : backoff;
        backoff = drained ? options_.backoff_initial : std::min(backoff * 2, options_.backoff_max);
        wake_.wait_for(lock, wait, [&] { return stopping_ || woken_; });
        woken_ = false;
    }
}

} // namespace modelrepo::detail
