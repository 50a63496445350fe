// SPDX-License-Identifier: MIT
// Reading, validating and writing modelrepo.snapshot/1 (docs/snapshot-format.md).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <modelrepo/json_text.hpp>
#include <modelrepo/snapshot.hpp>

#include "../core/catalog_view.hpp"
#include "../core/files.hpp"
#include "snapshot_reader.hpp"

namespace modelrepo {

namespace {

using json = nlohmann::json;

using detail::at;
using detail::bad_data;
using detail::SnapshotReader;

void write_status(JsonText& json, const ModelStatus& status) {
    json.begin_object();
    json.key("model").string(status.model_slug);
    json.key("health").string(to_string(status.health));
    json.key("availability").number(status.availability);
    json.key("latency_ms");
    if (status.latency_ms)
        json.number(*status.latency_ms);
    else
        json.null();
    json.key("error_rate").number(status.error_rate);
    json.key("region").string(status.region);
    json.key("checked_at").string(format_timestamp(status.checked_at));
    json.end_object();
}

} // namespace

Snapshot sorted_by_slug(Snapshot s) {
    std::sort(s.providers.begin(), s.providers.end(),
              [](const Provider& a, const Provider& b) { return a.slug < b.slug; });
    std::sort(s.models.begin(), s.models.end(),
              [](const Model& a, const Model& b) { return a.slug < b.slug; });
    std::sort(s.statuses.begin(), s.statuses.end(), [](const ModelStatus& a, const ModelStatus& b) {
        return a.model_slug < b.model_slug;
    });
    return s;
}

Result<void> validate(const Snapshot& snapshot) {
    std::unordered_set<std::string_view> providers;
    for (std::size_t i = 0; i < snapshot.providers.size(); ++i) {
        const Provider& p = snapshot.providers[i];
        if (p.slug.empty())
            return bad_data(at("providers", i, "slug"), "must not be empty");
        if (!providers.insert(p.slug).second)
            return bad_data(at("providers", i, "slug"), "duplicate provider slug '" + p.slug + "'");
    }
    std::unordered_set<std::string_view> models;
    for (std::size_t i = 0; i < snapshot.models.size(); ++i) {
        const Model& m = snapshot.models[i];
        if (m.slug.empty())
            return bad_data(at("models", i, "slug"), "must not be empty");
        if (!models.insert(m.slug).second)
            return bad_data(at("models", i, "slug"), "duplicate model slug '" + m.slug + "'");
        if (!providers.contains(m.provider_slug))
            return bad_data(at("models", i, "provider"),
                            "unknown provider '" + m.provider_slug + "' (not in $.providers)");
        if (m.context_window && *m.context_window <= 0)
            return bad_data(at("models", i, "context_window"), "must be positive");
    }
    std::unordered_set<std::string_view> with_status;
    for (std::size_t i = 0; i < snapshot.statuses.size(); ++i) {
        const ModelStatus& s = snapshot.statuses[i];
        if (!models.contains(s.model_slug))
            return bad_data(at("statuses", i, "model"),
                            "status for unknown model '" + s.model_slug + "' (not in $.models)");
        if (!with_status.insert(s.model_slug).second)
            return bad_data(at("statuses", i, "model"),
                            "second status for model '" + s.model_slug + "'");
        if (auto problem = detail::check_status(s))
            return bad_data(at("statuses", i, std::string(problem->member).c_str()), problem->what);
    }
    return success();
}

Result<std::vector<ModelStatus>> parse_statuses(std::string_view text) {
    SnapshotReader reader(SnapshotReader::Mode::statuses);
    bool complete = json::sax_parse(text, &reader, json::input_format_t::json, true);
    if (reader.error)
        return *reader.error;
    if (!complete)
        return make_error(Errc::bad_data, "$: malformed JSON");
    auto& statuses = reader.snapshot.statuses;
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (auto problem = detail::check_status(statuses[i]))
            return bad_data("$[" + std::to_string(i) + "]." + std::string(problem->member),
                            problem->what);
    return std::move(statuses);
}

std::string statuses_json(std::span<const ModelStatus> statuses, int indent) {
    std::string out;
    JsonText json(out, indent);
    json.begin_array();
    for (const ModelStatus& s : statuses)
        write_status(json, s);
    json.end_array();
    return out;
}

Result<Snapshot> parse_snapshot(std::string_view text) {
    SnapshotReader reader;
    bool complete = json::sax_parse(text, &reader, json::input_format_t::json, true);
    if (complete)
        reader.finish();
    if (reader.error)
        return *reader.error;
    if (!complete)
        return make_error(Errc::bad_data, "$: malformed JSON");
    if (auto valid = validate(reader.snapshot); !valid)
        return valid.error();
    return std::move(reader.snapshot);
}

Result<Snapshot> read_snapshot_file(const std::filesystem::path& path) {
    auto content = detail::read_file_limited(path, max_snapshot_file_bytes);
    if (!content) {
        Error error = std::move(content).error();
        error.message = "cannot read snapshot file: " + error.message;
        return error;
    }
    auto snapshot = parse_snapshot(content.value());
    if (!snapshot) {
        Error error = snapshot.error();
        error.target = path.string();
        error.message = path.string() + ": " + error.message;
        return error;
    }
    return snapshot;
}

SnapshotWriter::SnapshotWriter(std::shared_ptr<const Snapshot> snapshot, int indent)
    : snapshot_(std::move(snapshot))
    , json_(scratch_, indent) {}

bool SnapshotWriter::next(std::string& out, std::size_t about) {
    json_.write_to(out);
    const Snapshot& s = *snapshot_;
    const std::size_t stop = out.size() + about;
    while (out.size() < stop) {
        switch (part_) {
        case Part::head:
            json_.begin_object();
            json_.key("format").string(snapshot_format);
            json_.key("generated_at").string(format_timestamp(s.generated_at));
            json_.key("providers").begin_array();
            part_ = Part::providers;
            break;
        case Part::providers:
            if (at_ == s.providers.size()) {
                json_.end_array().key("models").begin_array();
                part_ = Part::models;
                at_ = 0;
                break;
            }
            {
                const Provider& p = s.providers[at_++];
                json_.begin_object();
                json_.key("slug").string(p.slug);
                json_.key("name").string(p.name);
                json_.key("website").string(p.website);
                json_.end_object();
            }
            break;
        case Part::models:
            if (at_ == s.models.size()) {
                json_.end_array().key("statuses").begin_array();
                part_ = Part::statuses;
                at_ = 0;
                break;
            }
            {
                const Model& m = s.models[at_++];
                json_.begin_object();
                json_.key("slug").string(m.slug);
                json_.key("name").string(m.name);
                json_.key("provider").string(m.provider_slug);
                json_.key("description").string(m.description);
                json_.key("context_window");
                if (m.context_window)
                    json_.integer(*m.context_window);
                else
                    json_.null();
                json_.key("active").boolean(m.active);
                json_.end_object();
            }
            break;
        case Part::statuses:
            if (at_ == s.statuses.size()) {
                json_.end_array().end_object();
                out.push_back('\n');
                part_ = Part::done;
                return false;
            }
            write_status(json_, s.statuses[at_++]);
            break;
        case Part::done:
            return false;
        }
    }
    return true;
}

std::string write_snapshot(const Snapshot& snapshot, int indent) {
    // Not owned: the writer is done before this returns.
    SnapshotWriter writer(std::shared_ptr<const Snapshot>(std::shared_ptr<void>(), &snapshot),
                          indent);
    std::string text;
    while (writer.next(text, std::size_t(-1) / 2)) {
    }
    return text;
}

Result<void> write_snapshot_file(const Snapshot& snapshot, const std::filesystem::path& path) {
    return detail::write_file_atomically(path, write_snapshot(snapshot));
}

} // namespace modelrepo
