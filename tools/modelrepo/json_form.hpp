// SPDX-License-Identifier: MIT
// The JSON forms of modelrepo's answers: what the commands print with --json and what
// serve's routes answer, one form for both.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::cli {

nlohmann::ordered_json to_json(const ModelStatus& status);
nlohmann::ordered_json to_json(const Model& model);
nlohmann::ordered_json to_json(const SystemStats& stats);

/// The same forms written into JSON text as it goes, without a tree (serve's lists);
/// the bytes are those of the tree's dump_json().
void write_json(JsonText& json, const ModelStatus& status);
void write_json(JsonText& json, const Model& model);

/// `value` as text (`indent` -1: one line); text that is not UTF-8 is replaced, not thrown.
std::string dump_json(const nlohmann::ordered_json& value, int indent = -1);

} // namespace modelrepo::cli
