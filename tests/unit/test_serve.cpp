// SPDX-License-Identifier: MIT
// The routes of `modelrepo serve` called directly (no socket), over scripted sources:
// the error-to-status map, provenance, backup and readiness, the token check, the
// query parsing; and the transport's duration parser and answer heads.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "hook_receiver.hpp"
#include "json_form.hpp"
#include "scripted_repository.hpp"
#include "serve/http/session.hpp"
#include "serve/http/work_pool.hpp"
#include "serve/operator/alerts.hpp"
#include "serve/publisher.hpp"
#include "serve/service.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::serve;
using namespace std::chrono;
using nlohmann::json;

namespace {

/// `answer` with what its `parts` make (an answer written as it goes) put in its body, as
/// the transport would send it; each part at most a part and one entry long.
Response drained(Response answer) {
    if (answer.shared_body) {
        REQUIRE(answer.body.empty());
        answer.body = *answer.shared_body;
        answer.shared_body.reset();
    }
    if (!answer.parts)
        return answer;
    REQUIRE(answer.body.empty());
    bool more = true;
    std::string part;
    while (more) {
        more = answer.parts(part);
        CHECK(part.size() <= answer_part_bytes + 4096);
        answer.body += part;
        part.clear();
    }
    answer.parts = nullptr;
    return answer;
}

/// How many parts `answer` is made in.
/// How many parts the transport writes `answer` in (a whole body: one).
std::size_t parts_of(Response answer) {
    if (answer.shared_body)
        return 1;
    if (!answer.parts)
        return answer.body.empty() ? 0 : 1;
    std::size_t parts = 0;
    std::string part;
    for (bool more = true; more; part.clear()) {
        more = answer.parts(part);
        ++parts;
    }
    return parts;
}

struct Fixture {
    std::shared_ptr<test::ScriptedRepository> primary =
        std::make_shared<test::ScriptedRepository>("primary");
    std::shared_ptr<test::ScriptedRepository> backup =
        std::make_shared<test::ScriptedRepository>("backup");
    std::shared_ptr<FallbackRepository> chain;
    std::unique_ptr<Service> service;

    explicit Fixture(bool with_backup = true, std::optional<std::string> token = "s3cret") {
        std::vector<std::shared_ptr<ModelRepository>> sources{primary};
        if (with_backup)
            sources.push_back(backup);
        chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create(sources).value());
        ServiceOptions options;
        options.token = std::move(token);
        options.ready_interval = milliseconds(5);
        service = std::make_unique<Service>(chain, options);
    }
    /// GET /readyz until `wanted` holds of its answer (it answers the prober's last check,
    /// made every 5 ms here), for at most 10 s; the last answer.
    Response ready_when(const std::function<bool(const Response&, const json&)>& wanted) {
        Response r;
        for (auto until = steady_clock::now() + seconds(10); steady_clock::now() < until;) {
            r = get("/readyz");
            if (wanted(r, json::parse(r.body)))
                break;
            std::this_thread::sleep_for(milliseconds(5));
        }
        return r;
    }
    Response get(const std::string& target) {
        Request r;
        r.method = "GET";
        auto q = target.find('?');
        r.path = target.substr(0, q);
        r.query = q == std::string::npos ? "" : target.substr(q + 1);
        return drained(service->handle(r));
    }
    Response put(const std::string& body, const std::string& auth) {
        Request r;
        r.method = "PUT";
        r.path = "/v1/statuses";
        r.authorization = auth;
        r.body = body;
        return service->handle(r);
    }
};

std::string code_of(const Response& r) {
    return json::parse(r.body)["error"]["code"];
}

std::string header(const Response& r, const std::string& name) {
    for (auto& [k, v] : r.headers)
        if (k == name)
            return v;
    return "";
}

const std::string one_status =
    R"([{"model":"gpt-4o","health":"outage","availability":0.25,"latency_ms":null,)"
    R"("error_rate":0.75,"region":"eu","checked_at":"2026-12-02T10:00:00Z"}])";

} // namespace

TEST_CASE("errors map to HTTP statuses") {
    auto status = [](Errc code, std::string sqlstate = "") {
        Error e = make_error(code, "x");
        e.sqlstate = std::move(sqlstate);
        return http_status_of(e);
    };
    CHECK(status(Errc::invalid_argument) == 400);
    CHECK(status(Errc::bad_data) == 400);
    CHECK(status(Errc::not_found) == 404);
    CHECK(status(Errc::read_only) == 403);
    CHECK(status(Errc::timeout) == 504);
    CHECK(status(Errc::not_supported) == 501);
    CHECK(status(Errc::query_failed, "22003") == 400);
    CHECK(status(Errc::query_failed, "23503") == 400);
    CHECK(status(Errc::query_failed, "42P01") == 500);
    for (Errc outage :
         {Errc::unreachable, Errc::auth_failed, Errc::circuit_open, Errc::all_sources_failed,
          Errc::pool_exhausted, Errc::outbox_full, Errc::rate_limited, Errc::too_many_connections})
        CHECK(status(outage) == 503);
    Error foreign;
    foreign.code = std::make_error_code(std::errc::io_error);
    CHECK(http_status_of(foreign) == 500);
}

TEST_CASE("sources that time out and sources that are down: 504 only when all timed out") {
    Fixture f;
    f.primary->fail_with(Errc::timeout);
    f.backup->fail_with(Errc::timeout);
    CHECK(f.get("/v1/stats").status == 504);
    f.backup->fail_with(Errc::unreachable);
    CHECK(f.get("/v1/stats").status == 503);
}

TEST_CASE("reads carry their provenance; a backup's answer says backup") {
    Fixture f;
    auto stats = f.get("/v1/stats");
    CHECK(stats.status == 200);
    CHECK(json::parse(stats.body)["backup"] == false);
    CHECK(json::parse(stats.body)["source"] == "primary");
    auto first = f.ready_when([](auto&, const json& b) { return b["state"] != "starting"; });
    CHECK(json::parse(first.body)["state"] == "ready");
    CHECK(json::parse(first.body)["check_age_seconds"] >= 0);

    f.primary->fail_with(Errc::unreachable);
    auto from_backup = f.get("/v1/stats");
    CHECK(from_backup.status == 200);
    CHECK(json::parse(from_backup.body)["backup"] == true);
    CHECK(json::parse(from_backup.body)["source"] == "backup");
    auto models = f.get("/v1/models?slug=gpt-4o");
    CHECK(json::parse(models.body)["source"] == "backup");
    auto ready = json::parse(
        f.ready_when([](auto&, const json& b) { return b.contains("primary_error"); }).body);
    CHECK(ready["state"] == "degraded");
    CHECK(ready["sources"][0]["last_error"] == "unreachable");
    CHECK(ready["primary_error"]["code"] == "unreachable");

    f.backup->fail_with(Errc::timeout);
    auto none = f.get("/v1/stats");
    CHECK(none.status == 503);
    CHECK(code_of(none) == "all_sources_failed");
    CHECK(!header(none, "Retry-After").empty());
    CHECK(f.ready_when([](const Response& r, auto&) { return r.status == 503; }).status == 503);
    CHECK(json::parse(f.get("/readyz").body)["state"] == "unavailable");
    CHECK(f.get("/healthz").status == 200);
}

TEST_CASE("a single source's timeout is a 504, its unknown model a 404") {
    Fixture f(false);
    CHECK(f.get("/v1/models/no-such").status == 404);
    CHECK(f.get("/v1/models/gpt%2D4o").status == 200); // percent-decoded
    CHECK(f.get("/v1/models/a%2Fb").status == 400);
    f.primary->fail_with(Errc::timeout);
    auto r = f.get("/v1/models/gpt-4o");
    CHECK(r.status == 504); // every source timed out: a gateway timeout, not an outage
    CHECK(code_of(r) == "all_sources_failed");
}

TEST_CASE("queries: slugs in order, limits, bad escapes and parameters") {
    Fixture f;
    auto r = json::parse(f.get("/v1/models?slug=gpt-5&slug=nope&slug=gpt-4o&slug=").body);
    REQUIRE(r["models"].size() == 2);
    CHECK(r["models"][0]["slug"] == "gpt-5");
    CHECK(r["models"][1]["slug"] == "gpt-4o");
    CHECK(json::parse(f.get("/v1/models?slug=").body)["models"].empty());
    CHECK(f.get("/v1/models?slug=%4").status == 400);
    CHECK(f.get("/v1/models?size=3").status == 400);
    std::string many = "/v1/models?";
    for (int i = 0; i < 1001; ++i)
        many += "slug=s" + std::to_string(i) + "&";
    CHECK(f.get(many).status == 400);
    CHECK(f.get("/v1/statuses?health=degraded").status == 200);
    auto degraded = json::parse(f.get("/v1/statuses?health=degraded").body);
    CHECK(!degraded["statuses"].empty());
    for (auto& s : degraded["statuses"])
        CHECK(s["health"] == "degraded");
    CHECK(f.get("/v1/statuses?health=fine").status == 400);
}

TEST_CASE("PUT /v1/statuses: the bearer token, and what the chain says") {
    Fixture f;
    CHECK(f.put(one_status, "").status == 401);
    CHECK(f.put(one_status, "Bearer s3cre").status == 401);
    CHECK(f.put(one_status, "Bearer s3cret!").status == 401);
    CHECK(f.put(one_status, "Basic s3cret").status == 401);
    auto ok = f.put(one_status, "bearer s3cret"); // the scheme is case-insensitive
    CHECK(ok.status == 200);
    CHECK(json::parse(ok.body)["applied"] == 1);
    CHECK(json::parse(f.get("/v1/models/gpt-4o").body)["model"]["status"]["health"] == "outage");
    CHECK(f.put("{", "Bearer s3cret").status == 400);
    // Writes go to the first source only: while it is down, the caller hears so.
    f.primary->fail_with(Errc::unreachable);
    auto down = f.put(one_status, "Bearer s3cret");
    CHECK(down.status == 503);
    for (auto* r : {&ok, &down})
        CHECK(r->body.find("s3cret") == std::string::npos);

    Fixture read_only(true, std::nullopt);
    auto refused = read_only.put(one_status, "Bearer s3cret");
    CHECK(refused.status == 403);
    CHECK(code_of(refused) == "read_only");
}

TEST_CASE("PUT /v1/statuses: a checked_at past the allowed skew is 400 naming it; a status older "
          "than the stored one is ignored, and the receipt says which") {
    Fixture f;
    const std::string future =
        R"([{"model":"gpt-4o","health":"outage","availability":0.25,"latency_ms":null,)"
        R"("error_rate":0.75,"region":"eu","checked_at":"2206-01-01T00:00:00Z"}])";
    auto refused = f.put(future, "Bearer s3cret");
    CHECK(refused.status == 400);
    CHECK(code_of(refused) == "invalid_argument");
    CHECK(json::parse(refused.body)["error"]["message"].get<std::string>().find(
              "ahead of this clock") != std::string::npos);
    // Nothing of it was stored: a real status after it lands.
    auto ok = f.put(one_status, "Bearer s3cret");
    REQUIRE(ok.status == 200);
    CHECK(json::parse(ok.body)["applied"] == 1);
    CHECK(json::parse(ok.body)["ignored"] == 0);
    // The same status again, and an older one: the first applied (a replay of the same
    // checked_at replaces), the second ignored, named.
    const std::string older =
        R"([{"model":"gpt-4o","health":"degraded","availability":0.5,"latency_ms":null,)"
        R"("error_rate":0.1,"region":"eu","checked_at":"2026-12-01T10:00:00Z"}])";
    auto stale = f.put(older, "Bearer s3cret");
    REQUIRE(stale.status == 200);
    auto body = json::parse(stale.body);
    CHECK(body["applied"] == 0);
    CHECK(body["ignored"] == 1);
    CHECK(body["ignored_models"] == json::array({"gpt-4o"}));
    CHECK(json::parse(f.get("/v1/models/gpt-4o").body)["model"]["status"]["health"] == "outage");
}

TEST_CASE("methods and paths") {
    Fixture f;
    Request r;
    r.method = "POST";
    r.path = "/v1/stats";
    auto post = f.service->handle(r);
    CHECK(post.status == 405);
    CHECK(header(post, "Allow") == "GET, HEAD, OPTIONS");
    r.path = "/v1/statuses";
    CHECK(header(f.service->handle(r), "Allow") == "GET, HEAD, OPTIONS, PUT");
    r.method = "OPTIONS";
    auto options = f.service->handle(r);
    CHECK(options.status == 204);
    CHECK(header(options, "Allow") == "GET, HEAD, OPTIONS, PUT");
    r.path = "*";
    CHECK(f.service->handle(r).status == 204);
    r.path = "/nowhere";
    CHECK(f.service->handle(r).status == 404);
    r.method = "HEAD";
    r.path = "/v1/stats";
    auto head = f.service->handle(r);
    CHECK(head.status == 200);
    // The route answers as for GET; the transport drops the body and keeps its length.
    CHECK(head.body.find("\"models\"") != std::string::npos);
    r.path = "/v1/changes";
    auto head_changes = f.service->handle(r);
    CHECK(head_changes.status == 200);
    CHECK_FALSE(static_cast<bool>(head_changes.on_stream)); // no stream for a HEAD
    CHECK(f.get("/nowhere").status == 404);
    CHECK(f.get("/metrics").content_type.starts_with("text/plain"));
    CHECK(f.get("/metrics").body.find("modelrepo_source_calls_total") != std::string::npos);
    auto changes = f.get("/v1/changes");
    CHECK(changes.status == 200);
    CHECK(static_cast<bool>(changes.on_stream));
}

TEST_CASE("--publish-interval durations") {
    CHECK(parse_duration("5m") == minutes(5));
    CHECK(parse_duration("30s") == seconds(30));
    CHECK(parse_duration("1500ms") == milliseconds(1500));
    CHECK(parse_duration("2h") == hours(2));
    CHECK(!parse_duration("5"));
    CHECK(!parse_duration("m"));
    CHECK(!parse_duration("-1s"));
    CHECK(!parse_duration("5 m"));
    CHECK(!parse_duration("99999999h"));
}

TEST_CASE("a work pool: its queue bound counts beyond its idle workers; stop() runs what waits") {
    std::mutex mutex;
    std::condition_variable cv;
    bool open = false;
    std::atomic<int> ran{0};
    auto blocked = [&] {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return open; });
        ++ran;
    };
    auto pool = std::make_unique<WorkPool>("read", 2, 1);
    CHECK(pool->threads() == 2);
    CHECK(pool->submit(blocked)); // two idle workers take these at once…
    CHECK(pool->submit(blocked));
    CHECK(pool->submit(blocked));  // …and one may wait
    CHECK(!pool->submit(blocked)); // the next is refused, whether or not the workers woke
    for (int i = 0; i < 1000 && pool->busy() < 2; ++i)
        std::this_thread::sleep_for(milliseconds(1));
    CHECK(pool->busy() == 2);
    CHECK(pool->queued() == 1);
    {
        std::lock_guard lock(mutex);
        open = true;
    }
    cv.notify_all();
    pool->stop();
    CHECK(ran == 3);
    CHECK(!pool->submit([] {})); // stopped
}

TEST_CASE("lanes: what is answered from memory runs on the I/O threads, the rest on workers") {
    Fixture f;
    auto lane = [&](const std::string& method, const std::string& path) {
        Request r;
        r.method = method;
        r.path = path;
        return f.service->lane(r);
    };
    for (auto* path : {"/healthz", "/readyz", "/metrics", "/nope"})
        CHECK(lane("GET", path) == Lane::io);
    CHECK(lane("OPTIONS", "/v1/stats") == Lane::io);
    CHECK(lane("DELETE", "/v1/stats") == Lane::io); // a 405
    CHECK(lane("PUT", "/v1/statuses") == Lane::write);
    CHECK(lane("PUT", "/v1/stats") == Lane::io);
    CHECK(lane("GET", "/v1/stats") == Lane::read); // scripted sources are not memory
    CHECK(lane("HEAD", "/v1/models/gpt-4o") == Lane::read);

    std::shared_ptr<ModelRepository> memory = MemoryRepository::builtin();
    auto chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({memory}).value());
    Service on_memory(chain, {});
    auto memory_lane = [&](const std::string& path, const std::string& query = {}) {
        Request r;
        r.method = "GET";
        r.path = path;
        r.query = query;
        return on_memory.lane(r);
    };
    CHECK(memory_lane("/v1/stats") == Lane::io);
    CHECK(memory_lane("/v1/models/gpt-4o") == Lane::io);
    CHECK(memory_lane("/v1/models", "slug=gpt-4o") == Lane::io);
    // What grows with the catalogue runs on a worker: the snapshot (copied and hashed)…
    CHECK(memory_lane("/v1/snapshot") == Lane::read);
    // …and the whole list while its text is large or not made yet. A small one is made again
    // on the I/O thread after a write.
    CHECK(memory_lane("/v1/models") == Lane::read);
    Request all;
    all.method = "GET";
    all.path = "/v1/models";
    Response first = on_memory.handle(all);
    REQUIRE(first.status == 200);
    REQUIRE(first.shared_body);
    CHECK(memory_lane("/v1/models") == Lane::io);
    CHECK(on_memory.handle(all).shared_body == first.shared_body); // the same text, kept
    std::vector<ModelStatus> batch{
        {"gpt-4o", Health::outage, 0, 1.0, 1, "", std::chrono::system_clock::now()}};
    REQUIRE(memory->upsert_statuses(batch));
    Response second = on_memory.handle(all);
    REQUIRE(second.shared_body);
    CHECK(second.shared_body != first.shared_body); // a new version, a new text
    CHECK(memory_lane("/v1/models") == Lane::io);

    Snapshot big = memory->export_snapshot().value();
    const Model model = big.models.front();
    big.statuses.clear();
    for (int i = 0; i < 2000; ++i) {
        Model copy = model;
        copy.slug = "many-" + std::to_string(i);
        copy.status.reset();
        big.models.push_back(std::move(copy));
    }
    std::shared_ptr<ModelRepository> large = MemoryRepository::create(big).value();
    Service on_large(
        std::shared_ptr<FallbackRepository>(FallbackRepository::create({large}).value()), {});
    Response whole = on_large.handle(all);
    REQUIRE(whole.shared_body);
    CHECK(whole.shared_body->size() > 64 * 1024);
    CHECK(on_large.lane(all) == Lane::read); // made: large, so on a worker still
}

TEST_CASE("a readiness check that hangs: /readyz answers at once, degraded, saying how long") {
    auto primary = std::make_shared<test::ScriptedRepository>("primary");
    auto chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({primary}).value());
    ServiceOptions options;
    options.ready_interval = milliseconds(5);
    options.ready_stall = milliseconds(100);
    Service service(chain, options);
    Request ready;
    ready.method = "GET";
    ready.path = "/readyz";
    auto when = [&](auto wanted) {
        json body;
        for (int i = 0; i < 2'000 && !wanted(body = json::parse(service.handle(ready).body)); ++i)
            std::this_thread::sleep_for(milliseconds(5));
        return body;
    };
    CHECK(when([](const json& b) { return b["state"] == "ready"; })["state"] == "ready");
    primary->delay(milliseconds(1'500)); // the next check takes that long
    auto stalled = when([](const json& b) { return b.contains("check_running_seconds"); });
    CHECK(stalled["state"] == "degraded"); // answered while the check still runs
    CHECK(stalled["check_running_seconds"] >= 0.1);
    CHECK(stalled["sources"][0]["source"] == "primary"); // the last check's findings
    primary->delay(milliseconds(0));
    CHECK(when([](const json& b) { return b["state"] == "ready"; })["state"] == "ready");
}

TEST_CASE("BodyTag: parts cut anywhere hash as the whole; any byte changed, or a zero byte "
          "added, changes the tag") {
    std::string body;
    for (int i = 0; i < 1000; ++i)
        body.push_back(static_cast<char>((i * 37 + 11) % 256));
    const std::string whole = etag_of(body);
    CHECK(whole.size() == 18);
    for (std::size_t step : {1u, 3u, 7u, 8u, 9u, 64u, 999u}) {
        CAPTURE(step);
        BodyTag tag;
        for (std::size_t at = 0; at < body.size(); at += step)
            tag.add(std::string_view(body).substr(at, step));
        CHECK(tag.tag() == whole);
    }
    std::set<std::string> seen{whole};
    for (std::size_t at = 0; at < body.size(); ++at) {
        std::string changed = body;
        changed[at] = static_cast<char>(changed[at] ^ 1);
        seen.insert(etag_of(changed));
    }
    for (std::string longer = body + '\0'; longer.size() <= body.size() + 9; longer.push_back('\0'))
        seen.insert(etag_of(longer));
    CHECK(seen.size() == 1 + body.size() + 9);
    CHECK(etag_of("") != etag_of(std::string(1, '\0')));
}

TEST_CASE("lists and the snapshot at 10,000 models: written as they go, the tree's bytes") {
    Snapshot big;
    big.generated_at = Timestamp(seconds(1'700'000'000));
    big.providers = {{"p0", "P \"0\"", "https://p0.example"}, {"p1", "P1", ""}};
    for (int i = 0; i < 10'000; ++i) {
        Model m;
        m.slug = "m" + std::to_string(100'000 + i);
        m.name = "Model \u00e9 " + std::to_string(i);
        m.provider_slug = i % 2 ? "p1" : "p0";
        m.description = i % 9 ? "" : "line\nbreak";
        if (i % 3)
            m.context_window = 4096 * i;
        m.active = i % 4 != 0;
        big.models.push_back(m);
        if (i % 5)
            big.statuses.push_back({m.slug, i % 7 ? Health::operational : Health::outage,
                                    0.5 + i / 40'000.0,
                                    i % 2 ? std::optional<double>(i / 3.0) : std::nullopt,
                                    1.0 / (i + 1), "eu", big.generated_at - seconds(i)});
    }
    auto memory = MemoryRepository::create(big, "memory").value();
    auto chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({memory}).value());
    Service service(chain, {});
    auto get = [&](std::string path, std::string query = "") {
        Request r;
        r.method = "GET";
        r.path = std::move(path);
        r.query = std::move(query);
        return service.handle(r);
    };
    using ojson = nlohmann::ordered_json;

    // What the routes built as a tree before they wrote as they went.
    ojson models = ojson::array();
    auto listed = memory->list_models();
    REQUIRE(listed);
    for (const Model& m : listed.value())
        models.push_back(cli::to_json(m));
    ojson statuses = ojson::array(), outages = ojson::array();
    auto all = memory->list_statuses();
    REQUIRE(all);
    for (const ModelStatus& s : all.value()) {
        statuses.push_back(cli::to_json(s));
        if (s.health == Health::outage)
            outages.push_back(cli::to_json(s));
    }
    auto tree = [](std::string_view member, ojson list) {
        ojson body;
        body["source"] = "memory";
        body[std::string(member)] = std::move(list);
        return cli::dump_json(body);
    };

    CHECK(parts_of(get("/v1/statuses")) > 10); // about 2 MB in parts of 64 KiB
    CHECK(drained(get("/v1/models")).body == tree("models", models));
    CHECK(drained(get("/v1/statuses")).body == tree("statuses", statuses));
    CHECK(drained(get("/v1/statuses", "health=outage")).body == tree("statuses", outages));

    Response snapshot = drained(get("/v1/snapshot"));
    CHECK(snapshot.body == write_snapshot(memory->export_snapshot().value()));
    std::string tag = header(snapshot, "ETag");
    CHECK(tag.size() == 18);
    Request again;
    again.method = "GET";
    again.path = "/v1/snapshot";
    again.if_none_match = tag;
    Response unchanged = service.handle(again);
    CHECK(unchanged.status == 304);
    CHECK_FALSE(unchanged.parts);
    CHECK(unchanged.body.empty());

    // A small answer is made in one part: the transport sends it with a Content-Length.
    CHECK(parts_of(get("/v1/models", "slug=m100001")) == 1);

    // The whole model list's ETag is its body's hash; the second request for the same
    // catalogue version gets the same text, not made again (one body, shared); a write
    // makes another.
    Response first = get("/v1/models");
    REQUIRE(first.shared_body);
    const std::string list_tag = header(first, "ETag");
    const std::string body = drained(first).body;
    CHECK(list_tag == etag_of(body));
    Response second = get("/v1/models");
    CHECK(header(second, "ETag") == list_tag);
    CHECK(second.shared_body == first.shared_body);
    CHECK(drained(std::move(second)).body == body);
    std::vector<ModelStatus> change{
        {"m100001", Health::outage, 0.1, std::nullopt, 0.9, "eu", big.generated_at + seconds(1)}};
    REQUIRE(memory->write_statuses(change));
    Response third = get("/v1/models");
    const std::string third_tag = header(third, "ETag");
    CHECK(third_tag != list_tag);
    CHECK(third.shared_body != first.shared_body);
    CHECK(third_tag == etag_of(drained(std::move(third)).body));
}

namespace {

FallbackEvent event(FallbackEvent::Kind kind, const std::string& source,
                    std::optional<Errc> errc = std::nullopt, const std::string& cause = "") {
    return {kind, system_clock::now(), source, cause.empty() ? "a cause" : cause, errc};
}

AlertOptions quick_alerts(const std::string& url) {
    AlertOptions o;
    o.webhooks = {url};
    o.settle = milliseconds(100);
    o.resolve_after = milliseconds(300);
    o.interval = milliseconds(1'500);
    return o;
}

} // namespace

TEST_CASE("alerts: the events of one outage (the origin down, the breaker open, a backup "
          "serving) are one alert naming the settled cause and what serves; one resolved once "
          "the recovery held") {
    using Kind = FallbackEvent::Kind;
    test::HookReceiver hook;
    auto alerter = Alerter::start(quick_alerts(hook.url()), "pg", [](const std::string&) {
                       return "builtin, a backup, answers";
                   }).value();
    alerter->on_event(event(Kind::source_down, "pg", Errc::unreachable, "connection cut"));
    alerter->on_event(event(Kind::source_down, "pg", Errc::auth_failed, "password rejected"));
    alerter->on_event(event(Kind::breaker_opened, "pg"));
    alerter->on_event(event(Kind::served_by_backup, "builtin"));
    REQUIRE(test::eventually([&] { return hook.count() >= 1; }, 5s));
    std::this_thread::sleep_for(milliseconds(400));
    auto alerts = hook.alerts();
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0]["event"] == "source_down");
    CHECK(alerts[0]["errc"] == "auth_failed"); // settled: the login's refusal, not the cut
    CHECK(alerts[0]["cause"] == "password rejected");
    CHECK(alerts[0]["meanwhile"] == "builtin, a backup, answers");
    CHECK(alerts[0]["alert"] == "ModelrepoSourceDown");
    // A recovery that does not hold is no resolved.
    alerter->on_event(event(Kind::source_recovered, "pg"));
    alerter->on_event(event(Kind::breaker_closed, "pg"));
    alerter->on_event(event(Kind::primary_recovered, "pg"));
    alerter->on_event(event(Kind::source_down, "pg", Errc::auth_failed));
    std::this_thread::sleep_for(milliseconds(600));
    CHECK(hook.count() == 1);
    alerter->on_event(event(Kind::source_recovered, "pg"));
    REQUIRE(test::eventually([&] { return hook.count() >= 2; }, 5s));
    alerts = hook.alerts();
    CHECK(alerts[1]["event"] == "resolved");
    CHECK(alerts[1]["text"].get<std::string>().find("answers again") != std::string::npos);
    // A flap: down again right after the resolved is held back until the interval passes,
    // then alerted once if still down.
    auto resolved_at = steady_clock::now();
    alerter->on_event(event(Kind::source_down, "pg", Errc::timeout));
    std::this_thread::sleep_for(milliseconds(500));
    CHECK(hook.count() == 2);
    REQUIRE(test::eventually([&] { return hook.count() >= 3; }, 5s));
    CHECK(steady_clock::now() - resolved_at >= milliseconds(1'400));
    CHECK(hook.alerts()[2]["errc"] == "timeout");
}

TEST_CASE("alerts: Alertmanager's v2 body: labels, annotations with the fix and runbook, "
          "endsAt ahead while firing and now when resolved") {
    AlertNotice n;
    n.alertname = "ModelrepoSourceDown";
    n.event = "source_down";
    n.source = "postgresql://app@db/catalogue";
    n.cause = "the server rejected the password";
    n.errc = Errc::auth_failed;
    n.severity = "critical";
    n.meanwhile = "its last-known copy answers reads";
    n.runbook = "https://example.org/runbook#a-source-is-down";
    n.at = n.started = system_clock::now();
    auto firing = json::parse(alertmanager_body(n, n.at + 4min, "web-1"));
    REQUIRE(firing.is_array());
    REQUIRE(firing.size() == 1);
    const auto& a = firing[0];
    CHECK(a["labels"]["alertname"] == "ModelrepoSourceDown");
    CHECK(a["labels"]["source"] == "postgresql://app@db/catalogue");
    CHECK(a["labels"]["cause"] == "auth_failed");
    CHECK(a["labels"]["severity"] == "critical");
    CHECK(a["annotations"]["summary"].get<std::string>().find("is down (auth_failed)") !=
          std::string::npos);
    CHECK(a["annotations"]["description"].get<std::string>().find("Meanwhile: its last-known") !=
          std::string::npos);
    CHECK(a["annotations"]["runbook_url"] == "https://example.org/runbook#a-source-is-down");
    CHECK(parse_timestamp(a["endsAt"].get<std::string>()).value() > n.at + 3min);
    CHECK(parse_timestamp(a["startsAt"].get<std::string>()).value() <= n.at);
    n.event = "resolved";
    auto resolved = json::parse(alertmanager_body(n, n.at, "web-1"));
    CHECK(resolved[0]["endsAt"] == format_timestamp(n.at));
}

TEST_CASE("an answer's head: the status line, the headers in order, the framing, Connection") {
    std::string head;
    Response ok{200, "application/json", "{}", {{"ETag", "\"a\""}, {"Vary", "Origin"}}, {}, {}};
    format_head(head, ok, 11, true, 2);
    CHECK(head == "HTTP/1.1 200 OK\r\nServer: modelrepo\r\nContent-Type: application/json\r\n"
                  "ETag: \"a\"\r\nVary: Origin\r\nContent-Length: 2\r\n\r\n");
    // Closing on HTTP/1.1 says so; HTTP/1.0 says when it keeps the connection.
    format_head(head, ok, 11, false, 2);
    CHECK(head.find("Connection: close\r\n") != std::string::npos);
    format_head(head, ok, 10, true, 2);
    CHECK(head.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(head.find("Connection: keep-alive\r\n") != std::string::npos);
    format_head(head, ok, 10, false, 2);
    CHECK(head.find("Connection") == std::string::npos);
    // Without a length: chunked. 304 and 204: neither.
    format_head(head, ok, 11, true, std::nullopt);
    CHECK(head.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(head.find("Content-Length") == std::string::npos);
    for (int status : {204, 304}) {
        Response none{status, "application/json", {}, {{"ETag", "\"a\""}}, {}, {}};
        format_head(head, none, 11, true, 0);
        CAPTURE(head);
        CHECK(head.find("Content-Length") == std::string::npos);
        CHECK(head.find("Transfer-Encoding") == std::string::npos);
        CHECK(head.find("ETag: \"a\"\r\n") != std::string::npos);
    }
    // A status Beast knows no reason for still makes a well-formed line.
    Response odd{299, "text/plain", {}, {}, {}, {}};
    format_head(head, odd, 11, true, 0);
    CHECK(head.rfind("HTTP/1.1 299 ", 0) == 0);
    // A header that would split the answer (CR, LF, NUL in its name or value) is left out;
    // one header may come twice.
    Response split{401,
                   "application/json",
                   {},
                   {{"WWW-Authenticate", "Bearer"},
                    {"WWW-Authenticate", "Basic realm=\"modelrepo\""},
                    {"X-Evil", "a\r\nSet-Cookie: x=1"},
                    {"X-Nul", std::string("a\0b", 3)},
                    {"Bad\nName", "v"}},
                   {},
                   {}};
    format_head(head, split, 11, true, 0);
    CAPTURE(head);
    CHECK(
        head.find("WWW-Authenticate: Bearer\r\nWWW-Authenticate: Basic realm=\"modelrepo\"\r\n") !=
        std::string::npos);
    CHECK(head.find("Set-Cookie") == std::string::npos);
    CHECK(head.find("X-Nul") == std::string::npos);
    CHECK(head.find("Bad") == std::string::npos);
    CHECK(head.find("X-Evil") == std::string::npos);
    // Every line ends with CRLF, the head with an empty line, and no bare LF anywhere.
    CHECK(head.size() >= 4);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
    for (std::size_t i = 0; i < head.size(); ++i)
        if (head[i] == '\n')
            CHECK((i > 0 && head[i - 1] == '\r'));
}

TEST_CASE("?slug= lists read from memory are kept per catalogue version: the same bytes and tag "
          "with no call on the chain, a write's change at once, the backup's own answer while "
          "the primary's breaker is open") {
    std::shared_ptr<ModelRepository> primary = MemoryRepository::builtin();
    std::shared_ptr<ModelRepository> backup =
        MemoryRepository::create(builtin_snapshot(), "backup").value();
    auto chain =
        std::shared_ptr<FallbackRepository>(FallbackRepository::create({primary, backup}).value());
    REQUIRE(chain->capability<CatalogueVersion>() != nullptr);
    Service service(chain, {});
    auto ask = [&](const std::string& query, const std::string& if_none_match = {}) {
        Request r;
        r.method = "GET";
        r.path = "/v1/models";
        r.query = query;
        r.if_none_match = if_none_match;
        return service.handle(r);
    };
    auto calls = [&] { return chain->metrics(false).sources.at(0).calls; };
    const std::string query = "slug=gpt-5&slug=gpt-4o";

    Response first = drained(ask(query));
    REQUIRE(first.status == 200);
    const std::string tag = header(first, "ETag");
    CHECK(!tag.empty());
    CHECK(json::parse(first.body)["source"] == "builtin");
    const auto called = calls();
    for (int i = 0; i < 3; ++i) {
        Response again = ask(query);
        CHECK(again.shared_body != nullptr); // the kept text, not made again
        again = drained(std::move(again));
        CHECK(again.body == first.body);
        CHECK(header(again, "ETag") == tag);
    }
    CHECK(calls() == called);
    CHECK(ask(query, tag).status == 304);
    // Another query string is another answer.
    auto one = json::parse(drained(ask("slug=gpt-4o")).body);
    REQUIRE(one["models"].size() == 1);
    CHECK(one["models"][0]["slug"] == "gpt-4o");

    // A write through the chain shows in the next answer (read your writes).
    ModelStatus outage{
        "gpt-5", Health::outage, 0.1, std::nullopt, 0.9, "eu", std::chrono::system_clock::now()};
    REQUIRE(chain->write_statuses(std::span(&outage, 1)));
    Response after = drained(ask(query));
    CHECK(json::parse(after.body)["models"][0]["status"]["health"] == "outage");
    CHECK(header(after, "ETag") != tag);

    // The primary's breaker open: the backup answers, and says so; nothing kept is used.
    CircuitBreaker& breaker = chain->breaker(0);
    Error failure = make_error(Errc::unreachable, "made to fail for the test");
    for (int i = 0; i < 1000 && breaker.state() != BreakerState::open; ++i)
        if (breaker.permit())
            breaker.record(&failure, milliseconds(1));
    REQUIRE(breaker.state() == BreakerState::open);
    auto from_backup = json::parse(drained(ask(query)).body);
    CHECK(from_backup["source"] == "backup");
    CHECK(from_backup["models"][0]["status"]["health"] != "outage");
}
