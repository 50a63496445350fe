// SPDX-License-Identifier: MIT
// How the modelrepo CLI prints answers: readable tables, or JSON with --json.
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::cli {

nlohmann::ordered_json to_json(const ModelStatus& status);
nlohmann::ordered_json to_json(const Model& model);
nlohmann::ordered_json to_json(const SystemStats& stats);

void print_stats(std::ostream& out, const SystemStats& stats);
void print_models(std::ostream& out, std::span<const Model> models, std::string_view source);
void print_model(std::ostream& out, const Model& model, std::string_view source);
void print_statuses(std::ostream& out, std::span<const ModelStatus> statuses,
                    std::string_view source);

} // namespace modelrepo::cli
