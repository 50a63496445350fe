// SPDX-License-Identifier: MIT
#include <modelrepo/model_repository.hpp>

#include "catalog_view.hpp"

namespace modelrepo {

Result<WriteReceipt> ModelRepository::write_statuses(std::span<const ModelStatus>,
                                                     const WriteOptions&) {
    Error error =
        make_error(Errc::read_only, std::string(name()) + " is read-only: status writes go to the "
                                                          "primary database");
    error.source = std::string(name());
    return error;
}

Result<std::int64_t> ModelRepository::upsert_statuses(std::span<const ModelStatus> statuses) {
    auto receipt = write_statuses(statuses);
    if (!receipt)
        return std::move(receipt).error();
    return receipt.value().applied + receipt.value().queued;
}

void* ModelRepository::find_capability(const std::type_info&) noexcept {
    return nullptr;
}

Result<std::vector<Model>> ModelRepository::list_models() {
    auto snapshot = export_snapshot();
    if (!snapshot)
        return snapshot.error();
    return detail::assemble_models(snapshot.value());
}

Result<SharedModels> ModelRepository::share_models() {
    auto models = list_models();
    if (!models)
        return models.error();
    auto owned = std::make_shared<const std::vector<Model>>(std::move(models).value());
    SharedModels shared;
    shared.models.reserve(owned->size());
    for (const Model& m : *owned)
        shared.models.push_back(&m);
    shared.owner = std::move(owned);
    return shared;
}

Result<Snapshot> ModelRepository::export_snapshot() {
    Error error =
        make_error(Errc::not_supported, std::string(name()) + " cannot export its catalogue");
    error.source = std::string(name());
    return error;
}

Result<Subscription> ModelRepository::watch(std::function<void(const CatalogChange&)>) {
    Error error =
        make_error(Errc::not_supported, std::string(name()) + " does not report changes (watch)");
    error.source = std::string(name());
    return error;
}

std::optional<Timestamp> ModelRepository::data_as_of() const {
    return std::nullopt;
}

bool ModelRepository::reads_from_memory() const noexcept {
    return false;
}

std::vector<MetricFamily> ModelRepository::backend_metrics() const {
    return {};
}

} // namespace modelrepo
