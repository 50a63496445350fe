// SPDX-License-Identifier: MIT
// Published<T>: one immutable value shared by many readers and replaced by writers,
// with reads that take no lock and touch no shared reference count.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

namespace modelrepo::detail {

/// Every value ever published, in any Published<T>, gets a number from this counter,
/// so a number names one value for the life of the process.
std::uint64_t next_publication_number() noexcept;

/// Holds the current `std::shared_ptr<const T>`.
///
/// Readers: `read()` loads the current publication number (one acquire load); when the
/// calling thread's small cache already holds that publication it is returned without
/// any lock or reference-count traffic. Only the first read of each new publication on
/// a thread takes `mutex_` to copy the shared_ptr into the cache.
///
/// Writers: `publish()` swaps the pointer and the number under `mutex_`.
///
/// The reference `read()` returns stays valid until the calling thread's next `read()`
/// of any Published<T> (the cache may evict it then); take one read per operation.
/// The cache keeps the last few values alive per thread until that thread reads
/// something newer or exits.
template <class T>
class Published {
public:
    explicit Published(std::shared_ptr<const T> initial) { publish(std::move(initial)); }

    const T& read() const {
        std::uint64_t number = number_.load(std::memory_order_acquire);
        ThreadCache& cache = thread_cache();
        for (auto& entry : cache.entries)
            if (entry.number == number)
                return *entry.value;
        std::shared_ptr<const T> value;
        {
            std::lock_guard lock(mutex_);
            value = value_;
            number = number_.load(std::memory_order_relaxed);
        }
        auto& slot = cache.entries[cache.next++ % cache.entries.size()];
        slot.number = number;
        slot.value = std::move(value);
        return *slot.value;
    }

    /// The current publication's number: never 0, different for every publication (of any
    /// Published), so two equal readings mean nothing was published between them.
    std::uint64_t number() const noexcept { return number_.load(std::memory_order_acquire); }

    /// A counted reference to the current value, for callers that keep it.
    std::shared_ptr<const T> share() const {
        std::lock_guard lock(mutex_);
        return value_;
    }

    void publish(std::shared_ptr<const T> value) {
        std::uint64_t number = next_publication_number();
        std::shared_ptr<const T> old;
        {
            std::lock_guard lock(mutex_);
            old = std::exchange(value_, std::move(value));
            number_.store(number, std::memory_order_release);
        }
        // `old` is released here, outside the lock; readers' caches may keep it longer.
    }

private:
    struct ThreadCache {
        struct Entry {
            std::uint64_t number = 0; // 0 is never a publication number
            std::shared_ptr<const T> value;
        };
        std::array<Entry, 4> entries;
        unsigned next = 0;
    };

    static ThreadCache& thread_cache() {
        // initial-exec: a direct %fs-relative access instead of a __tls_get_addr call
        // per read; the cache is small enough for the static TLS surplus a dlopen()ed
        // library may use.
        [[gnu::tls_model("initial-exec")]] thread_local ThreadCache cache;
        return cache;
    }

    mutable std::mutex mutex_; ///< guards value_ and orders number_ updates
    std::shared_ptr<const T> value_;
    std::atomic<std::uint64_t> number_{0};
};

} // namespace modelrepo::detail
