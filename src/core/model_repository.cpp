// SPDX-License-Identifier: MIT
#include <modelrepo/model_repository.hpp>

#include "catalog_view.hpp"

namespace modelrepo {

Result<std::int64_t> ModelRepository::upsert_statuses(std::span<const ModelStatus>) {
    Error error =
        make_error(Errc::read_only, std::string(name()) + " is read-only: status writes go to the "
                                                          "primary database");
    error.source = std::string(name());
    return error;
}

Result<WriteReceipt> ModelRepository::write_statuses(std::span<const ModelStatus> statuses) {
    auto applied = upsert_statuses(statuses);
    if (!applied)
        return std::move(applied).error();
    WriteReceipt receipt;
    receipt.applied = applied.value();
    return receipt;
}

Result<WriteReceipt> ModelRepository::defer_statuses(std::span<const ModelStatus>) {
    Error error =
        make_error(Errc::not_supported, std::string(name()) + " has no outbox to keep writes in");
    error.source = std::string(name());
    return error;
}

Result<std::vector<Model>> ModelRepository::list_models() {
    auto snapshot = export_snapshot();
    if (!snapshot)
        return snapshot.error();
    return detail::assemble_models(snapshot.value());
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

std::vector<MetricFamily> ModelRepository::backend_metrics() const {
    return {};
}

} // namespace modelrepo
