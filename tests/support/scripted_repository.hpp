// SPDX-License-Identifier: MIT
// ScriptedRepository: a fake backend for the logic above the backends (breaker,
// fallback). It answers from the builtin catalogue, or fails with a given Errc, or
// sleeps first; and it counts calls.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <modelrepo/memory_repository.hpp>

#include "manual_clock.hpp"

namespace modelrepo::test {

class ScriptedRepository final : public ModelRepository {
public:
    explicit ScriptedRepository(std::string name)
        : name_(std::move(name))
        , data_(MemoryRepository::create(builtin_snapshot(), name_).value()) {}

    /// From now on every call fails with `code` (nullopt: answers again).
    void fail_with(std::optional<Errc> code, int http_status = 0) {
        std::lock_guard lock(mutex_);
        failure_ = code;
        http_status_ = http_status;
    }
    /// Every call sleeps this long first.
    void delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }
    int calls() const { return calls_.load(); }
    int health_checks() const { return health_checks_.load(); }

    std::string_view name() const noexcept override { return name_; }
    Result<std::int64_t> count_models() override {
        return run([&] { return data_->count_models(); });
    }
    Result<std::int64_t> count_providers() override {
        return run([&] { return data_->count_providers(); });
    }
    Result<std::vector<ModelStatus>> list_statuses() override {
        return run([&] { return data_->list_statuses(); });
    }
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override {
        return run([&] { return data_->find_models(slugs); });
    }
    Result<std::optional<Model>> find_model(std::string_view slug) override {
        return run([&] { return data_->find_model(slug); });
    }
    Result<SystemStats> system_stats() override {
        return run([&] { return data_->system_stats(); });
    }
    Result<void> check_health() override {
        ++health_checks_;
        if (auto e = current_error())
            return *e;
        return success();
    }
    /// The backing catalogue's own changes (its upserts), whatever the script says.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override {
        return data_->watch(std::move(on_change));
    }
    /// A change in the backing catalogue, as another client's write would make it.
    void change_status(const std::string& slug, Timestamp at) {
        std::vector<ModelStatus> s{{slug, Health::degraded, 0.5, 1.0, 0.1, "", at}};
        (void)data_->upsert_statuses(s);
    }
    /// As a backend without an outbox: a write the caller knows cannot be taken
    /// (`source_down`) is answered with its cause, without trying.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override {
        if (options.source_down)
            return *options.source_down;
        return run([&] { return data_->write_statuses(statuses, options); });
    }

private:
    std::optional<Error> current_error() {
        std::lock_guard lock(mutex_);
        if (!failure_)
            return std::nullopt;
        Error e = make_error(*failure_, name_ + " scripted failure");
        e.http_status = http_status_;
        return e;
    }

    template <class Fn>
    auto run(Fn&& fn) -> decltype(fn()) {
        ++calls_;
        if (int ms = delay_ms_.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        if (auto e = current_error())
            return *e;
        return fn();
    }

    std::string name_;
    std::shared_ptr<MemoryRepository> data_;
    std::mutex mutex_; ///< guards failure_, http_status_
    std::optional<Errc> failure_;
    int http_status_ = 0;
    std::atomic<int> delay_ms_{0};
    std::atomic<int> calls_{0};
    std::atomic<int> health_checks_{0};
};

} // namespace modelrepo::test
