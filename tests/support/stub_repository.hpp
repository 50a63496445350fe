// SPDX-License-Identifier: MIT
// StubRepository: the least a ModelRepository must do, answering empty values; for tests
// of what the interface's defaults do (watch, metrics, writes) and for subclasses that
// override one method.
#pragma once

#include <string>

#include <modelrepo/model_repository.hpp>

namespace modelrepo::test {

class StubRepository : public ModelRepository {
public:
    explicit StubRepository(std::string name = "stub")
        : name_(std::move(name)) {}
    std::string_view name() const noexcept override { return name_; }
    Result<std::int64_t> count_models() override { return 0; }
    Result<std::int64_t> count_providers() override { return 0; }
    Result<std::vector<ModelStatus>> list_statuses() override { return std::vector<ModelStatus>{}; }
    Result<std::vector<Model>> find_models(std::span<const std::string>) override {
        return std::vector<Model>{};
    }
    Result<std::optional<Model>> find_model(std::string_view) override {
        return std::optional<Model>{};
    }
    Result<SystemStats> system_stats() override { return SystemStats{}; }
    Result<void> check_health() override { return success(); }

private:
    std::string name_;
};

} // namespace modelrepo::test
