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

void OutboxReplay::count_dead(const OutboxStore::Batch& batch, std::int64_t statuses,
                              const std::string& why, std::optional<Errc> errc,
                              OutboxDrain& report) {
    report.dead_letters += 1;
    {
        std::lock_guard lock(mutex_);
        ++stats_.dead_letters;
    }
    if (options_.health)
        options_.health->dead_letter("the outbox set aside batch " + std::to_string(batch.id) +
                                         " (" + std::to_string(statuses) +
                                         " statuses) that the source refused: " + why,
                                     errc);
    emit({OutboxEvent::Kind::dead_letter, batch.id, statuses, why, Clock::now()});
}

Result<void> OutboxReplay::refused(const OutboxStore::Batch& batch, const Error& error,
                                   OutboxDrain& report) {
    if (batch.statuses.size() < 2) {
        if (auto buried = outbox_.bury(batch, error.to_string()); !buried)
            return buried;
        count_dead(batch, batch.count, error.to_string(), error.errc(), report);
        return success();
    }
    // One status may be what the database refuses: each on its own, so that the valid
    // ones land and only the refused ones are kept aside.
    std::vector<std::vector<ModelStatus>> singles;
    for (const auto& status : batch.statuses)
        singles.push_back({status});
    auto each = writer_.apply_each(singles);
    if (!each)
        return std::move(each).error();
    if (each.value().size() < singles.size()) // stopped at an outage: all again later
        return make_error(Errc::unreachable, "the source stopped taking a batch's statuses");
    std::vector<ModelStatus> bad;
    std::string why;
    std::optional<Errc> first_errc;
    for (std::size_t i = 0; i < singles.size(); ++i) {
        const auto& r = each.value()[i];
        if (r)
            continue;
        if (ErrorClass kind = classify(r.error());
            kind.outage || (kind.retryable && !kind.caller_fault))
            return r.error(); // the batch stays; what was applied is applied again, harmless
        bad.push_back(batch.statuses[i]);
        if (!first_errc)
            first_errc = r.error().errc();
        why += (why.empty() ? "" : "; ") +
               ("statuses[" + std::to_string(i) + "] (" + batch.statuses[i].model_slug + "): ") +
               r.error().to_string();
    }
    auto applied = static_cast<std::int64_t>(batch.statuses.size() - bad.size());
    auto settled = bad.empty() // all of them went in, one by one
                       ? outbox_.remove(std::span<const std::int64_t>(&batch.id, 1))
                       : outbox_.bury(batch, why, std::span<const ModelStatus>(bad));
    if (!settled)
        return settled;
    report.statuses += applied;
    report.batches += bad.empty() ? 1 : 0;
    {
        std::lock_guard lock(mutex_);
        stats_.replayed_statuses += static_cast<std::uint64_t>(applied);
    }
    if (!bad.empty())
        count_dead(batch, static_cast<std::int64_t>(bad.size()), why, first_errc, report);
    return success();
}

Result<OutboxDrain> OutboxReplay::drain(const ProgressFn& progress) {
    std::lock_guard drain_lock(drain_mutex_);
    OutboxDrain report;
    std::int64_t pending = -1; // told as the total: what the outbox held when this began
    if (progress)
        if (auto state = outbox_.state())
            pending = state.value().statuses;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                break;
        }
        // Batches applied before but not removed (the disk was full): removed first, and
        // never applied again meanwhile.
        if (!unremoved_.empty()) {
            if (auto removed = outbox_.remove(unremoved_); !removed)
                return std::move(removed).error();
            unremoved_.clear();
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
        auto done = apply_group(next.value(), report);
        if (!done)
            return std::move(done).error();
        if (progress)
            progress(Progress{"statuses applied", report.statuses,
                              pending < 0 ? -1 : std::max(pending, report.statuses)});
    }
    auto left = outbox_.state();
    if (left)
        report.remaining = left.value().statuses;
    return report;
}

Result<void> OutboxReplay::apply_group(const std::vector<OutboxStore::Batch>& batches,
                                       OutboxDrain& report) {
    // A batch that does not read back is kept aside with why; the rest go on.
    std::vector<const OutboxStore::Batch*> readable;
    for (const auto& b : batches) {
        if (!b.unreadable) {
            readable.push_back(&b);
            continue;
        }
        if (auto buried = outbox_.bury(b, *b.unreadable); !buried)
            return buried;
        count_dead(b, b.count, *b.unreadable, Errc::bad_data, report);
    }
    if (readable.empty())
        return success();
    std::vector<std::vector<ModelStatus>> statuses;
    for (const auto* b : readable)
        statuses.push_back(b->statuses);
    auto applied = writer_.apply_each(statuses);
    if (!applied) {
        (void)outbox_.note_attempt(readable.front()->id, applied.error());
        std::lock_guard lock(mutex_);
        ++stats_.failed_attempts;
        return std::move(applied).error();
    }
    std::vector<std::int64_t> done;
    std::uint64_t done_statuses = 0;
    std::optional<Error> stopped; // the database could not take one: the rest wait
    // A writer may stop at an outage before the end: the rest wait for the next drain.
    const std::size_t answered = std::min(readable.size(), applied.value().size());
    for (std::size_t k = 0; k < answered && !stopped; ++k) {
        const auto& batch = *readable[k];
        auto& r = applied.value()[k];
        if (r) {
            done.push_back(batch.id);
            done_statuses += batch.statuses.size();
            report.batches += 1;
            report.statuses += static_cast<std::int64_t>(batch.statuses.size());
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
        // Refused for good (a model deleted since, a constraint): the statuses it takes
        // are applied, the others go to the dead letters; the rest continue.
        if (auto settled = refused(batch, r.error(), report); !settled) {
            stopped = settled.error();
            break;
        }
    }
    {
        std::lock_guard lock(mutex_);
        stats_.replayed_batches += done.size();
        stats_.replayed_statuses += done_statuses;
    }
    for (const auto* b : readable)
        if (std::find(done.begin(), done.end(), b->id) != done.end())
            emit({OutboxEvent::Kind::replayed, b->id, static_cast<std::int64_t>(b->statuses.size()),
                  "", Clock::now()});
    if (auto removed = outbox_.remove(done); !removed) {
        unremoved_ = std::move(done); // applied: removed at the next drain, not applied again
        return std::move(removed).error();
    }
    if (stopped) {
        std::lock_guard lock(mutex_);
        ++stats_.failed_attempts;
        return *stopped;
    }
    return success();
}

void OutboxReplay::run() {
    milliseconds backoff = options_.backoff_initial;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, options_.first_look, [&] { return stopping_ || woken_; });
    woken_ = false;
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
