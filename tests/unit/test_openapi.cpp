// SPDX-License-Identifier: MIT
// GET /v1/openapi.json against the route table, both ways, and the schemas it names against
// real answers (serve/routes/openapi.cpp).
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "serve/service.hpp"

using namespace modelrepo;
using namespace modelrepo::serve;
using nlohmann::json;

namespace {

struct Server {
    std::shared_ptr<FallbackRepository> chain;
    std::unique_ptr<Service> service;
    explicit Server(AccessOptions access = {}) {
        auto memory = MemoryRepository::create(builtin_snapshot(), "memory").value();
        chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({memory}).value());
        ServiceOptions options;
        options.access = std::move(access);
        service = std::make_unique<Service>(chain, options);
    }
    Response get(const std::string& target, const std::string& auth = "") {
        Request r;
        r.method = "GET";
        auto q = target.find('?');
        r.path = target.substr(0, q);
        r.query = q == std::string::npos ? "" : target.substr(q + 1);
        r.authorization = auth;
        Response answer = service->handle(r);
        if (answer.shared_body)
            answer.body = *answer.shared_body;
        if (answer.parts)
            for (bool more = true; more;)
                more = answer.parts(answer.body);
        return answer;
    }
};

/// The problems of `value` against `schema` (a subset of JSON Schema: $ref, type, const,
/// enum, required, properties, items, oneOf), each with its JSON path.
void validate(const json& root, const json& schema, const json& value, const std::string& at,
              std::vector<std::string>& problems) {
    if (schema.contains("$ref")) {
        std::string ref = schema["$ref"];
        REQUIRE(ref.starts_with("#/components/schemas/"));
        validate(root, root["components"]["schemas"][ref.substr(21)], value, at, problems);
        return;
    }
    if (schema.contains("oneOf")) {
        int matched = 0;
        for (const json& one : schema["oneOf"]) {
            std::vector<std::string> mine;
            validate(root, one, value, at, mine);
            matched += mine.empty();
        }
        if (matched != 1)
            problems.push_back(at + ": matches " + std::to_string(matched) + " of oneOf");
        return;
    }
    if (schema.contains("type")) {
        auto is = [&](const std::string& t) {
            return (t == "object" && value.is_object()) || (t == "array" && value.is_array()) ||
                   (t == "string" && value.is_string()) ||
                   (t == "integer" && value.is_number_integer()) ||
                   (t == "number" && value.is_number()) || (t == "boolean" && value.is_boolean()) ||
                   (t == "null" && value.is_null());
        };
        bool ok = false;
        if (schema["type"].is_array()) {
            for (const auto& t : schema["type"])
                ok = ok || is(t);
        } else {
            ok = is(schema["type"]);
        }
        if (!ok) {
            problems.push_back(at + ": not " + schema["type"].dump() + ": " + value.dump());
            return;
        }
    }
    if (schema.contains("const") && value != schema["const"])
        problems.push_back(at + ": not " + schema["const"].dump());
    if (schema.contains("enum") &&
        std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end())
        problems.push_back(at + ": " + value.dump() + " not in the enum");
    if (value.is_object()) {
        const json required = schema.value("required", json::array());
        for (const auto& name : required)
            if (!value.contains(name.get<std::string>()))
                problems.push_back(at + ": lacks " + name.get<std::string>());
        const json properties = schema.value("properties", json::object()); // kept: items()
        for (const auto& [name, sub] : properties.items())
            if (value.contains(name))
                validate(root, sub, value[name], at + "." + name, problems);
    }
    if (value.is_array() && schema.contains("items"))
        for (std::size_t i = 0; i < value.size(); ++i)
            validate(root, schema["items"], value[i], at + "[" + std::to_string(i) + "]", problems);
}

} // namespace

TEST_CASE("openapi.json: every route of the table is in it, and nothing else") {
    Server s;
    auto answer = s.get("/v1/openapi.json");
    REQUIRE(answer.status == 200);
    json doc = json::parse(answer.body);
    CHECK(doc["openapi"] == "3.1.0");
    std::set<std::pair<std::string, std::string>> in_table, in_doc;
    for (const Route& r : s.service->routes().routes()) {
        std::string method(r.method);
        for (char& c : method)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        in_table.emplace(std::string(r.pattern), method);
        CHECK_MESSAGE(!r.summary.empty(), r.pattern);
    }
    for (const auto& [path, item] : doc["paths"].items())
        for (const auto& [method, op] : item.items()) {
            in_doc.emplace(path, method);
            CHECK(op.contains("operationId"));
            CHECK(op["responses"].contains("200"));
            CHECK(op["responses"].contains("503"));
        }
    CHECK(in_table == in_doc);
    CHECK(in_doc.count({"/v1/openapi.json", "get"}) == 1);
    CHECK(in_doc.count({"/v1/statuses", "put"}) == 1);
    // Every $ref names a schema that is there.
    std::function<void(const json&)> refs = [&](const json& v) {
        if (v.is_object()) {
            if (v.contains("$ref")) {
                std::string ref = v["$ref"];
                CHECK_MESSAGE(doc["components"]["schemas"].contains(ref.substr(21)), ref);
            }
            for (const auto& [k, sub] : v.items())
                refs(sub);
        } else if (v.is_array()) {
            for (const auto& sub : v)
                refs(sub);
        }
    };
    refs(doc);
}

TEST_CASE("openapi.json: the schemas describe the real answers") {
    Server s;
    json doc = json::parse(s.get("/v1/openapi.json").body);
    for (std::string path : {"/v1/stats", "/v1/models", "/v1/models?slug=gpt-4o&slug=gpt-5",
                             "/v1/models/gpt-4o", "/v1/statuses", "/v1/snapshot", "/v1/status",
                             "/v1/events", "/v1/diagnosis", "/api/v2/summary.json", "/healthz"}) {
        CAPTURE(path);
        auto answer = s.get(path);
        REQUIRE(answer.status == 200);
        std::string pattern = path.substr(0, path.find('?'));
        if (pattern == "/v1/models/gpt-4o")
            pattern = "/v1/models/{slug}";
        const json& schema = doc["paths"][pattern]["get"]["responses"]["200"]["content"]
                                ["application/json"]["schema"];
        std::vector<std::string> problems;
        validate(doc, schema, json::parse(answer.body), "$", problems);
        for (const auto& p : problems)
            FAIL_CHECK(p);
    }
    // The check can fail: a stats answer without its counts, a model with a string window.
    std::vector<std::string> caught;
    validate(doc, doc["components"]["schemas"]["Stats"], json{{"source", "x"}}, "$", caught);
    CHECK(caught.size() >= 5);
    json model = json::parse(s.get("/v1/models/gpt-4o").body);
    model["model"]["context_window"] = "big";
    caught.clear();
    validate(doc, doc["components"]["schemas"]["ModelAnswer"], model, "$", caught);
    CHECK(caught.size() == 1);
    auto missing = s.get("/v1/models/no-such");
    std::vector<std::string> problems;
    validate(doc, doc["components"]["schemas"]["Error"], json::parse(missing.body), "$", problems);
    CHECK(problems.empty());
}

TEST_CASE("openapi.json: security follows the scopes the server was started with") {
    Server open;
    json doc = json::parse(open.get("/v1/openapi.json").body);
    CHECK(doc["paths"]["/v1/stats"]["get"]["security"].empty());
    CHECK(!doc["paths"]["/v1/statuses"]["put"]["security"].empty());
    CHECK(doc["paths"]["/v1/statuses"]["put"]["responses"].contains("401"));

    AccessOptions a;
    a.read_tokens = {"r"};
    a.public_catalogue = true;
    Server closed(a);
    json scoped = json::parse(closed.get("/v1/openapi.json").body);
    CHECK(scoped["paths"]["/v1/stats"]["get"]["security"].empty());
    CHECK(!scoped["paths"]["/v1/status"]["get"]["security"].empty());
    CHECK(scoped["paths"]["/v1/status"]["get"]["responses"].contains("401"));
    CHECK(scoped["paths"]["/healthz"]["get"]["security"].empty());
}
