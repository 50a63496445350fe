// SPDX-License-Identifier: MIT
#include "openapi.hpp"

#include <cctype>

#include <modelrepo/version.hpp>

#include "answers.hpp"

namespace modelrepo::serve {

namespace {

/// The bodies' schemas. Keep in step with json_form.cpp (models, statuses, stats) and
/// docs/serve.md; tests/unit/test_openapi.cpp checks real answers against them.
constexpr std::string_view schemas = R"json({
  "Error": {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
      "properties": {"code": {"type": "string", "description": "the Errc name: auth_failed, unreachable, invalid_argument, not_found, …"},
                     "message": {"type": "string", "description": "what failed and what to do; never a password or token"}}}}
  },
  "Health": {"type": "string", "enum": ["operational", "degraded", "outage", "unknown"]},
  "Status": {
    "type": "object", "required": ["model", "health", "availability", "latency_ms", "error_rate", "region", "checked_at"],
    "properties": {
      "model": {"type": "string"}, "health": {"$ref": "#/components/schemas/Health"},
      "availability": {"type": "number", "minimum": 0, "maximum": 1},
      "latency_ms": {"type": ["number", "null"], "minimum": 0},
      "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
      "region": {"type": "string"},
      "checked_at": {"type": "string", "format": "date-time"}}
  },
  "StatusArray": {"type": "array", "items": {"$ref": "#/components/schemas/Status"}},
  "Provider": {
    "type": "object", "required": ["slug", "name", "website"],
    "properties": {"slug": {"type": "string"}, "name": {"type": "string"}, "website": {"type": "string"}}
  },
  "Model": {
    "type": "object", "required": ["slug", "name", "provider_slug", "description", "context_window", "active", "provider", "status"],
    "properties": {
      "slug": {"type": "string"}, "name": {"type": "string"}, "provider_slug": {"type": "string"},
      "description": {"type": "string"}, "context_window": {"type": ["integer", "null"]},
      "active": {"type": "boolean"},
      "provider": {"oneOf": [{"$ref": "#/components/schemas/Provider"}, {"type": "null"}]},
      "status": {"oneOf": [{"$ref": "#/components/schemas/Status"}, {"type": "null"}]}}
  },
  "Stats": {
    "type": "object", "required": ["source", "as_of", "models", "active_models", "providers", "health", "backup"],
    "properties": {
      "source": {"type": "string", "description": "the source that answered"},
      "as_of": {"type": "string", "format": "date-time"},
      "models": {"type": "integer"}, "active_models": {"type": "integer"}, "providers": {"type": "integer"},
      "health": {"type": "object", "required": ["operational", "degraded", "outage", "unknown"],
        "properties": {"operational": {"type": "integer"}, "degraded": {"type": "integer"},
                       "outage": {"type": "integer"}, "unknown": {"type": "integer"}}},
      "backup": {"type": "boolean", "description": "answered by a source other than the first"}}
  },
  "ModelList": {
    "type": "object", "required": ["source", "models"],
    "properties": {"source": {"type": "string"}, "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}
  },
  "ModelAnswer": {
    "type": "object", "required": ["source", "model"],
    "properties": {"source": {"type": "string"}, "model": {"$ref": "#/components/schemas/Model"}}
  },
  "StatusList": {
    "type": "object", "required": ["source", "statuses"],
    "properties": {"source": {"type": "string"}, "statuses": {"$ref": "#/components/schemas/StatusArray"}}
  },
  "Snapshot": {
    "type": "object", "required": ["format", "generated_at", "providers", "models", "statuses"],
    "description": "modelrepo.snapshot/1 (docs/snapshot-format.md)",
    "properties": {
      "format": {"const": "modelrepo.snapshot/1"},
      "generated_at": {"type": "string", "format": "date-time"},
      "providers": {"type": "array", "items": {"$ref": "#/components/schemas/Provider"}},
      "models": {"type": "array", "items": {"type": "object", "required": ["slug", "name", "provider"],
        "properties": {"slug": {"type": "string"}, "name": {"type": "string"}, "provider": {"type": "string"},
                       "description": {"type": "string"}, "context_window": {"type": ["integer", "null"]},
                       "active": {"type": "boolean"}}}},
      "statuses": {"$ref": "#/components/schemas/StatusArray"}}
  },
  "WriteReceipt": {
    "type": "object", "required": ["applied", "queued", "ignored"],
    "properties": {
      "applied": {"type": "integer"}, "queued": {"type": "integer"},
      "ignored": {"type": "integer", "description": "older than the stored status"},
      "ignored_models": {"type": "array", "items": {"type": "string"}},
      "outbox": {"type": "string", "description": "where queued statuses wait (202)"},
      "unchecked": {"type": "integer"},
      "deferred_because": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}
  },
  "ChangeEvent": {
    "type": "object", "required": ["kind", "slug", "version", "at"],
    "description": "one server-sent event's data: 'id: VERSION', 'event: resync' when changes may have been missed (read again), else a change",
    "properties": {"kind": {"type": "string", "enum": ["model", "provider", "status", "resync"]},
                   "slug": {"type": "string"}, "version": {"type": "integer"},
                   "at": {"type": "string", "format": "date-time"}}
  },
  "ChainEvent": {
    "type": "object", "required": ["id", "kind", "at", "source"],
    "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                   "at": {"type": "string", "format": "date-time"}, "source": {"type": "string"},
                   "cause": {"type": "string"}, "errc": {"type": ["string", "null"]}}
  },
  "EventList": {
    "type": "object", "required": ["events"],
    "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/ChainEvent"}}}
  },
  "OperatorStatus": {
    "type": "object", "required": ["generated_at", "summary", "state", "sources"],
    "description": "everything the status page draws (docs/operating.md)",
    "properties": {"generated_at": {"type": "string", "format": "date-time"},
                   "summary": {"type": "object"}, "state": {"type": "string"},
                   "sources": {"type": "array", "items": {"type": "object"}},
                   "incidents": {"type": "array", "items": {"type": "object"}},
                   "events": {"type": "array", "items": {"$ref": "#/components/schemas/ChainEvent"}}}
  },
  "Diagnosis": {
    "type": "object", "required": ["diagnosis"],
    "properties": {"diagnosis": {"type": ["object", "null"]}, "why": {"type": "string"}}
  },
  "StatuspageSummary": {
    "type": "object", "required": ["page", "status", "components", "incidents"],
    "description": "Atlassian Statuspage's /api/v2/summary.json shape",
    "properties": {"page": {"type": "object"}, "status": {"type": "object"},
                   "components": {"type": "array", "items": {"type": "object"}},
                   "incidents": {"type": "array", "items": {"type": "object"}}}
  },
  "Alive": {"type": "object", "required": ["state"], "properties": {"state": {"const": "alive"}}},
  "Readiness": {
    "type": "object", "required": ["state"],
    "properties": {"state": {"type": "string", "enum": ["starting", "ready", "degraded", "unavailable"]}}
  },
  "OpenApi": {"type": "object", "description": "this document"},
  "Text": {"type": "string"}
})json";

using json = nlohmann::ordered_json;

std::string_view reason(int status) {
    switch (status) {
    case 200:
        return "the answer";
    case 202:
        return "kept in the source's outbox through an outage; applied when it is back";
    case 304:
        return "not modified since the ETag sent in If-None-Match";
    case 400:
        return "the request is wrong: the message says how";
    case 401:
        return "no token, or not one of this server's";
    case 403:
        return "the token may not do this, or the server takes no writes";
    case 404:
        return "no such model";
    case 413:
        return "the body is larger than the server takes";
    case 421:
        return "a loopback listener asked with another Host";
    case 429:
        return "too many streams open; Retry-After says when to try again";
    case 503:
        return "the sources cannot answer, or the server is at a limit; Retry-After";
    case 504:
        return "every source timed out, or the request passed its deadline";
    }
    return "an answer";
}

json error_response(int status) {
    return {{"description", reason(status)},
            {"content",
             {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
}

/// "getV1ModelsSlug" for GET /v1/models/{slug}.
std::string operation_id(std::string_view method, std::string_view pattern) {
    std::string id;
    for (char c : method)
        id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool upper = true;
    for (char c : pattern) {
        if (!std::isalnum(static_cast<unsigned char>(c))) {
            upper = true;
            continue;
        }
        id += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        upper = false;
    }
    if (pattern == "/")
        id += "Root";
    return id;
}

json operation(const Route& route, const Access& access) {
    const RouteDoc& doc = route.doc;
    json op{{"operationId", operation_id(route.method, route.pattern)},
            {"summary", route.summary},
            {"tags", json::array({std::string(to_string(route.scope))})}};
    json parameters = json::array();
    if (auto open = route.pattern.find('{'); open != std::string_view::npos) {
        auto name = route.pattern.substr(open + 1, route.pattern.find('}') - open - 1);
        parameters.push_back(
            {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
    }
    for (const QueryDoc& q : doc.query) {
        json schema = {{"type", q.type}};
        if (q.repeated)
            schema = {{"type", "array"}, {"items", schema}};
        json p{{"name", q.name},
               {"in", "query"},
               {"required", false},
               {"description", q.description},
               {"schema", schema}};
        if (q.repeated) {
            p["style"] = "form";
            p["explode"] = true;
        }
        parameters.push_back(std::move(p));
    }
    if (doc.content_type == "text/event-stream")
        parameters.push_back(
            {{"name", "Last-Event-ID"},
             {"in", "header"},
             {"required", false},
             {"description", "resume after this event's id (EventSource sends it)"},
             {"schema", {{"type", "string"}}}});
    if (!parameters.empty())
        op["parameters"] = std::move(parameters);
    if (!doc.body.empty())
        op["requestBody"] = {
            {"required", true},
            {"content",
             {{"application/json",
               {{"schema", {{"$ref", "#/components/schemas/" + std::string(doc.body)}}}}}}}};

    json schema = doc.schema.empty()
                      ? json{{"type", "object"}}
                      : json{{"$ref", "#/components/schemas/" + std::string(doc.schema)}};
    json ok{{"description", doc.content_type == "text/event-stream"
                                ? "server-sent events; each event's data is this schema"
                                : "the answer"},
            {"content", {{std::string(doc.content_type), {{"schema", schema}}}}}};
    json responses;
    responses["200"] = ok;
    for (int status : doc.also) {
        if (status == 202)
            responses["202"] = ok;
        else if (status == 304)
            responses["304"] = {{"description", reason(304)}};
        else
            responses[std::to_string(status)] = error_response(status);
    }
    if (route.method == "GET") // a malformed %-escape in any query
        responses["400"] = error_response(400);
    const bool is_public = access.is_public(route);
    if (!is_public || route.scope == Scope::write)
        responses["401"] = error_response(401);
    if (route.scope == Scope::write)
        responses["403"] = error_response(403);
    if (doc.content_type == "text/event-stream")
        responses["429"] = error_response(429);
    responses["503"] = error_response(503);
    op["responses"] = std::move(responses);
    op["security"] = is_public && route.scope != Scope::write
                         ? json::array()
                         : json::array({{{"bearer", json::array()}}, {{"basic", json::array()}}});
    return op;
}

} // namespace

std::string_view openapi_schemas() noexcept {
    return schemas;
}

std::string openapi_json(const RouteTable& table, const Access& access) {
    json doc;
    doc["openapi"] = "3.1.0";
    doc["info"] = {{"title", "modelrepo serve"},
                   {"version", MODELREPO_VERSION},
                   {"description", "The catalogue of AI models, their providers and live statuses, "
                                   "answering from whichever source can (docs/serve.md)."},
                   {"license", {{"name", "MIT"}, {"identifier", "MIT"}}}};
    doc["servers"] = json::array({{{"url", "/"}}});
    json paths = json::object();
    for (const Route& route : table.routes()) {
        std::string method;
        for (char c : route.method)
            method += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        paths[std::string(route.pattern)][method] = operation(route, access);
    }
    doc["paths"] = std::move(paths);
    doc["components"] = {
        {"schemas", json::parse(schemas)},
        {"securitySchemes",
         {{"bearer",
           {{"type", "http"},
            {"scheme", "bearer"},
            {"description", "a token of --read-token-file or --token-file"}}},
          {"basic",
           {{"type", "http"},
            {"scheme", "basic"},
            {"description", "any user name, the token as the password (a browser's prompt)"}}}}}};
    doc["tags"] = json::array({{{"name", "read"}, {"description", "the catalogue"}},
                               {{"name", "write"}, {"description", "writes"}},
                               {{"name", "operate"}, {"description", "the operator's view"}},
                               {{"name", "none"}, {"description", "health, for machines"}}});
    return dump(doc);
}

} // namespace modelrepo::serve
