// SPDX-License-Identifier: MIT
#include "json_form.hpp"

namespace modelrepo::cli {

namespace {

using ojson = nlohmann::ordered_json;

template <class T>
ojson or_null(const std::optional<T>& value) {
    return value ? ojson(*value) : ojson(nullptr);
}

} // namespace

ojson to_json(const ModelStatus& s) {
    ojson out;
    out["model"] = s.model_slug;
    out["health"] = std::string(to_string(s.health));
    out["availability"] = s.availability;
    out["latency_ms"] = or_null(s.latency_ms);
    out["error_rate"] = s.error_rate;
    out["region"] = s.region;
    out["checked_at"] = format_timestamp(s.checked_at);
    return out;
}

ojson to_json(const Model& m) {
    ojson out;
    out["slug"] = m.slug;
    out["name"] = m.name;
    out["provider_slug"] = m.provider_slug;
    out["description"] = m.description;
    out["context_window"] = or_null(m.context_window);
    out["active"] = m.active;
    if (m.provider)
        out["provider"] = {{"slug", m.provider->slug},
                           {"name", m.provider->name},
                           {"website", m.provider->website}};
    else
        out["provider"] = nullptr;
    out["status"] = m.status ? to_json(*m.status) : ojson(nullptr);
    return out;
}

ojson to_json(const SystemStats& s) {
    ojson out;
    out["source"] = s.source;
    out["as_of"] = format_timestamp(s.as_of);
    out["models"] = s.models;
    out["active_models"] = s.active_models;
    out["providers"] = s.providers;
    out["health"] = {{"operational", s.health.operational},
                     {"degraded", s.health.degraded},
                     {"outage", s.health.outage},
                     {"unknown", s.health.unknown}};
    return out;
}

namespace {

template <class T>
void or_null(JsonText& json, const std::optional<T>& value) {
    if (!value)
        json.null();
    else if constexpr (std::is_floating_point_v<T>)
        json.number(*value);
    else
        json.integer(*value);
}

} // namespace

void write_json(JsonText& json, const ModelStatus& s) {
    json.begin_object();
    json.key("model").string(s.model_slug);
    json.key("health").string(to_string(s.health));
    json.key("availability").number(s.availability);
    json.key("latency_ms");
    or_null(json, s.latency_ms);
    json.key("error_rate").number(s.error_rate);
    json.key("region").string(s.region);
    json.key("checked_at").string(format_timestamp(s.checked_at));
    json.end_object();
}

void write_json(JsonText& json, const Model& m) {
    json.begin_object();
    json.key("slug").string(m.slug);
    json.key("name").string(m.name);
    json.key("provider_slug").string(m.provider_slug);
    json.key("description").string(m.description);
    json.key("context_window");
    or_null(json, m.context_window);
    json.key("active").boolean(m.active);
    json.key("provider");
    if (m.provider) {
        json.begin_object();
        json.key("slug").string(m.provider->slug);
        json.key("name").string(m.provider->name);
        json.key("website").string(m.provider->website);
        json.end_object();
    } else {
        json.null();
    }
    json.key("status");
    if (m.status)
        write_json(json, *m.status);
    else
        json.null();
    json.end_object();
}

std::string dump_json(const nlohmann::ordered_json& value, int indent) {
    // Text from a database may not be UTF-8 (an SQL_ASCII database passes bytes through):
    // replace what is not, rather than abort on nlohmann::json's type_error.
    return value.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace modelrepo::cli
