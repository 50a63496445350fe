// SPDX-License-Identifier: MIT
// Reading, validating and writing modelrepo.snapshot/1 (docs/snapshot-format.md).
#include <modelrepo/snapshot.hpp>

#include "json_limits.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <unistd.h>

namespace modelrepo {

namespace {

using json = nlohmann::json;

Error bad_data(const std::string& path, std::string_view what)
{
    return make_error(Errc::bad_data, path + ": " + std::string(what));
}

std::string type_name(const json& value)
{
    if (value.is_number_integer() || value.is_number_unsigned())
        return "an integer";
    if (value.is_number())
        return "a number";
    if (value.is_string())
        return "a string";
    if (value.is_boolean())
        return "a boolean";
    if (value.is_null())
        return "null";
    if (value.is_array())
        return "an array";
    return "an object";
}

// Reads members of one JSON object and remembers the first problem; callers check
// `failed()` once per object instead of after every member.
class ObjectReader {
public:
    ObjectReader(const json& object, std::string path, std::optional<Error>& error)
        : object_(object)
        , path_(std::move(path))
        , error_(error)
    {
        if (!object_.is_object())
            fail(path_, "expected an object, found " + type_name(object_));
    }

    bool failed() const { return error_.has_value(); }

    std::string string(const char* key, bool required)
    {
        const json* value = member(key, required);
        if (!value)
            return {};
        if (!value->is_string()) {
            fail(member_path(key), "expected a string, found " + type_name(*value));
            return {};
        }
        return value->get<std::string>();
    }

    std::string slug(const char* key)
    {
        std::string value = string(key, true);
        if (!failed() && value.empty())
            fail(member_path(key), "must not be empty");
        return value;
    }

    std::optional<double> number(const char* key, bool required)
    {
        const json* value = member(key, required);
        if (!value || (!required && value->is_null()))
            return std::nullopt;
        if (!value->is_number()) {
            fail(member_path(key), "expected a number, found " + type_name(*value));
            return std::nullopt;
        }
        return value->get<double>();
    }

    std::optional<std::int64_t> integer(const char* key)
    {
        const json* value = member(key, false);
        if (!value || value->is_null())
            return std::nullopt;
        if (value->is_number_unsigned() && value->get<std::uint64_t>() > INT64_MAX) {
            fail(member_path(key), "integer out of range");
            return std::nullopt;
        }
        if (!value->is_number_integer()) {
            fail(member_path(key), "expected an integer, found " + type_name(*value));
            return std::nullopt;
        }
        return value->get<std::int64_t>();
    }

    bool boolean(const char* key, bool fallback)
    {
        const json* value = member(key, false);
        if (!value)
            return fallback;
        if (!value->is_boolean()) {
            fail(member_path(key), "expected a boolean, found " + type_name(*value));
            return fallback;
        }
        return value->get<bool>();
    }

    Timestamp timestamp(const char* key)
    {
        std::string text = string(key, true);
        if (failed())
            return {};
        auto t = parse_timestamp(text);
        if (!t) {
            fail(member_path(key), "'" + text.substr(0, 40) +
                                       "' is not an RFC 3339 UTC timestamp "
                                       "(expected e.g. 2026-11-24T09:30:00Z)");
            return {};
        }
        return *t;
    }

    std::optional<Health> health(const char* key)
    {
        std::string text = string(key, true);
        if (failed())
            return std::nullopt;
        auto h = parse_health(text);
        if (!h)
            fail(member_path(key), "'" + text.substr(0, 40) +
                                       "' is not a health (operational, degraded, outage, "
                                       "unknown)");
        return h;
    }

private:
    const json* member(const char* key, bool required)
    {
        if (failed())
            return nullptr;
        auto it = object_.find(key);
        if (it == object_.end()) {
            if (required)
                fail(member_path(key), "required member is missing");
            return nullptr;
        }
        return &*it;
    }

    std::string member_path(const char* key) const { return path_ + "." + key; }

    void fail(const std::string& path, std::string_view what)
    {
        if (!error_)
            error_ = bad_data(path, what);
    }

    const json& object_;
    std::string path_;
    std::optional<Error>& error_;
};

// Calls `read(element, path)` for each element of the array member `key`.
template <class Fn>
void for_each_element(const json& root, const char* key, std::optional<Error>& error, Fn&& read)
{
    std::string path = std::string("$.") + key;
    auto it = root.find(key);
    if (it == root.end()) {
        error = bad_data(path, "required member is missing");
        return;
    }
    if (!it->is_array()) {
        error = bad_data(path, "expected an array, found " + type_name(*it));
        return;
    }
    std::size_t index = 0;
    for (const json& element : *it) {
        read(element, path + "[" + std::to_string(index++) + "]");
        if (error)
            return;
    }
}

bool in_unit_range(double v)
{
    return std::isfinite(v) && v >= 0.0 && v <= 1.0;
}

std::string at(const char* list, std::size_t index, const char* member)
{
    return std::string("$.") + list + "[" + std::to_string(index) + "]." + member;
}

nlohmann::ordered_json status_to_json(const ModelStatus& status)
{
    nlohmann::ordered_json out;
    out["model"] = status.model_slug;
    out["health"] = std::string(to_string(status.health));
    out["availability"] = status.availability;
    out["latency_ms"] = status.latency_ms ? nlohmann::ordered_json(*status.latency_ms)
                                          : nlohmann::ordered_json(nullptr);
    out["error_rate"] = status.error_rate;
    out["region"] = status.region;
    out["checked_at"] = format_timestamp(status.checked_at);
    return out;
}

} // namespace

Result<void> validate(const Snapshot& snapshot)
{
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
        if (!in_unit_range(s.availability))
            return bad_data(at("statuses", i, "availability"), "must be within 0..1");
        if (!in_unit_range(s.error_rate))
            return bad_data(at("statuses", i, "error_rate"), "must be within 0..1");
        if (s.latency_ms && !(std::isfinite(*s.latency_ms) && *s.latency_ms >= 0))
            return bad_data(at("statuses", i, "latency_ms"), "must be a non-negative number");
    }
    return success();
}

Result<Snapshot> parse_snapshot(std::string_view text)
{
    if (auto depth = detail::check_json_depth(text); !depth)
        return depth.error();

    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        return make_error(Errc::bad_data,
                          "$: malformed JSON at byte " + std::to_string(e.byte) + ": " +
                              std::string(e.what()).substr(0, 200));
    }
    if (!root.is_object())
        return bad_data("$", "expected an object, found " + type_name(root));

    auto format = root.find("format");
    if (format == root.end())
        return bad_data("$.format", "required member is missing (expected \"" +
                                        std::string(snapshot_format) + "\")");
    if (!format->is_string() || format->get<std::string>() != snapshot_format)
        return bad_data("$.format", "unsupported format " + format->dump().substr(0, 60) +
                                        " (expected \"" + std::string(snapshot_format) + "\")");

    std::optional<Error> error;
    Snapshot snapshot;
    ObjectReader top(root, "$", error);
    snapshot.generated_at = top.timestamp("generated_at");
    if (error)
        return *error;

    for_each_element(root, "providers", error, [&](const json& element, std::string path) {
        ObjectReader r(element, std::move(path), error);
        Provider p;
        p.slug = r.slug("slug");
        p.name = r.string("name", true);
        p.website = r.string("website", false);
        snapshot.providers.push_back(std::move(p));
    });
    if (error)
        return *error;

    for_each_element(root, "models", error, [&](const json& element, std::string path) {
        ObjectReader r(element, std::move(path), error);
        Model m;
        m.slug = r.slug("slug");
        m.name = r.string("name", true);
        m.provider_slug = r.slug("provider");
        m.description = r.string("description", false);
        m.context_window = r.integer("context_window");
        m.active = r.boolean("active", true);
        snapshot.models.push_back(std::move(m));
    });
    if (error)
        return *error;

    for_each_element(root, "statuses", error, [&](const json& element, std::string path) {
        ObjectReader r(element, std::move(path), error);
        ModelStatus s;
        s.model_slug = r.slug("model");
        if (auto h = r.health("health"))
            s.health = *h;
        s.availability = r.number("availability", true).value_or(0.0);
        s.latency_ms = r.number("latency_ms", false);
        s.error_rate = r.number("error_rate", true).value_or(0.0);
        s.region = r.string("region", false);
        s.checked_at = r.timestamp("checked_at");
        snapshot.statuses.push_back(std::move(s));
    });
    if (error)
        return *error;

    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    return snapshot;
}

Result<Snapshot> read_snapshot_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return make_error(Errc::io_error, "cannot open snapshot file '" + path.string() +
                                              "': " + std::strerror(errno));
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad())
        return make_error(Errc::io_error, "cannot read snapshot file '" + path.string() + "'");
    auto snapshot = parse_snapshot(content.str());
    if (!snapshot) {
        Error error = snapshot.error();
        error.target = path.string();
        error.message = path.string() + ": " + error.message;
        return error;
    }
    return snapshot;
}

std::string write_snapshot(const Snapshot& snapshot, int indent)
{
    nlohmann::ordered_json root;
    root["format"] = snapshot_format;
    root["generated_at"] = format_timestamp(snapshot.generated_at);
    auto& providers = root["providers"] = nlohmann::ordered_json::array();
    for (const Provider& p : snapshot.providers)
        providers.push_back({{"slug", p.slug}, {"name", p.name}, {"website", p.website}});
    auto& models = root["models"] = nlohmann::ordered_json::array();
    for (const Model& m : snapshot.models) {
        nlohmann::ordered_json out;
        out["slug"] = m.slug;
        out["name"] = m.name;
        out["provider"] = m.provider_slug;
        out["description"] = m.description;
        out["context_window"] = m.context_window ? nlohmann::ordered_json(*m.context_window)
                                                 : nlohmann::ordered_json(nullptr);
        out["active"] = m.active;
        models.push_back(std::move(out));
    }
    auto& statuses = root["statuses"] = nlohmann::ordered_json::array();
    for (const ModelStatus& s : snapshot.statuses)
        statuses.push_back(status_to_json(s));
    std::string text = root.dump(indent, ' ', false, json::error_handler_t::replace);
    text.push_back('\n');
    return text;
}

Result<void> write_snapshot_file(const Snapshot& snapshot, const std::filesystem::path& path)
{
    std::filesystem::path temp = path;
    temp += ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out)
            return make_error(Errc::io_error, "cannot create '" + temp.string() +
                                                  "': " + std::strerror(errno));
        out << write_snapshot(snapshot);
        out.flush();
        if (!out) {
            std::error_code ignored;
            std::filesystem::remove(temp, ignored);
            return make_error(Errc::io_error, "cannot write '" + temp.string() + "'");
        }
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) {
        std::error_code ignored;
        std::filesystem::remove(temp, ignored);
        return make_error(Errc::io_error, "cannot rename '" + temp.string() + "' to '" +
                                              path.string() + "': " + ec.message());
    }
    return success();
}

} // namespace modelrepo
