// SPDX-License-Identifier: MIT
// How the commands print answers as readable tables (--json prints json_form.hpp's).
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::cli {

void print_stats(std::ostream& out, const SystemStats& stats);
void print_models(std::ostream& out, std::span<const Model> models, std::string_view source);
void print_model(std::ostream& out, const Model& model, std::string_view source);
void print_statuses(std::ostream& out, std::span<const ModelStatus> statuses,
                    std::string_view source);

} // namespace modelrepo::cli
