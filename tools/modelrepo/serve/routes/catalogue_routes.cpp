// SPDX-License-Identifier: MIT
#include "catalogue_routes.hpp"

#include <algorithm>

#include "answers.hpp"

namespace modelrepo::serve {

CatalogueRoutes::CatalogueRoutes(std::shared_ptr<FallbackRepository> chain, std::size_t max_slugs)
    : chain_(std::move(chain))
    , primary_(chain_->sources().front()->name())
    , versions_(chain_->capability<CatalogueVersion>())
    , max_slugs_(max_slugs) {}

void CatalogueRoutes::add_to(RouteTable& table) {
    std::function<bool(const Request&)> memory = [chain = chain_](const Request&) {
        return chain->reads_from_memory();
    };
    auto add = [&](std::string_view pattern, std::string_view summary, RouteDoc doc,
                   std::function<Response(const RouteCall&)> handler,
                   std::function<bool(const Request&)> in_memory) {
        doc.also.insert(doc.also.end(), {304, 504});
        table.add({"GET", pattern, Lane::read, Scope::read, summary, std::move(handler),
                   std::move(in_memory), std::move(doc)});
    };
    add(
        "/v1/stats", "the catalogue's counts by health, and whether a backup answered", {"Stats"},
        [this](const RouteCall&) { return stats(); }, memory);
    // The whole list's text is made once per version. A small one is made and sent on the
    // I/O thread; a large one (or before its size is known) on a worker, where making it
    // again after a write (tens of ms at 100,000 models) holds no other connection up.
    add(
        "/v1/models", "every model, or those of slug=A&slug=B in the order asked",
        {"ModelList",
         "application/json",
         {{"slug", "a model's slug; repeatable, answered in the order asked (at most 1000)", true}},
         {},
         {400}},
        [this](const RouteCall& c) { return models(c.query, c.request.query); },
        [this](const Request& r) {
            return chain_->reads_from_memory() &&
                   (!r.query.empty() ||
                    made_bytes_.load(std::memory_order_relaxed) <= io_list_bytes);
        });
    add(
        "/v1/models/{slug}", "one model (404 when unknown)",
        {"ModelAnswer", "application/json", {}, {}, {400, 404}},
        [this](const RouteCall& c) { return model(c.param); }, memory);
    add(
        "/v1/statuses", "every status, or those of health=H",
        {"StatusList",
         "application/json",
         {{"health", "operational, degraded, outage or unknown"}},
         {},
         {400}},
        [this](const RouteCall& c) { return statuses(c.query); }, memory);
    // Always on a worker: it copies the whole catalogue and makes its text to hash it.
    add(
        "/v1/snapshot", "the catalogue as modelrepo.snapshot/1 JSON, with an ETag", {"Snapshot"},
        [this](const RouteCall& c) { return snapshot(c.request); }, nullptr);
}

Response CatalogueRoutes::read_error(const Error& error) {
    if (error.is(Errc::all_sources_failed)) {
        FallbackMetrics m = chain_->metrics(/*with_backend=*/false);
        bool all_timed_out =
            !m.sources.empty() &&
            std::all_of(m.sources.begin(), m.sources.end(),
                        [](const SourceMetrics& s) { return s.last_errc == Errc::timeout; });
        if (all_timed_out) {
            Response answer = error_answer(error);
            answer.status = 504;
            answer.headers.clear();
            return answer;
        }
    }
    return error_answer(error);
}

Response CatalogueRoutes::stats() {
    auto stats = chain_->system_stats();
    if (!stats)
        return read_error(stats.error());
    ojson body = cli::to_json(stats.value());
    body["backup"] = stats.value().source != primary_;
    return json_answer(200, body);
}

Response CatalogueRoutes::models(const std::vector<QueryParam>& query, const std::string& raw) {
    std::vector<std::string> slugs;
    bool asked = false;
    for (const auto& param : query) {
        if (param.key != "slug")
            return error_answer(400, "invalid_argument",
                                "unknown query parameter '" + param.key +
                                    "' (this path takes slug=)");
        asked = true;
        if (!param.value.empty())
            slugs.push_back(param.value);
    }
    if (slugs.size() > max_slugs_)
        return error_answer(400, "invalid_argument",
                            "at most " + std::to_string(max_slugs_) +
                                " slug= values in one request");
    Provenance from;
    if (!asked) {
        // Shared with the copy (nothing copied per request at 100,000 models), and its
        // text made once per version.
        auto all = chain_->share_models(from);
        if (!all)
            return read_error(all.error());
        return whole_list(std::move(all).value(), std::string(from.source));
    }
    const std::uint64_t version = answering_version();
    if (version != 0)
        if (auto kept = kept_answer(raw, version))
            return std::move(*kept);
    auto models = chain_->find_models(slugs, from);
    if (!models)
        return read_error(models.error());
    Response answer = list_answer(std::string(from.source), "models", std::move(models).value());
    if (version != 0 && from.source == primary_ && answering_version() == version)
        keep_answer(raw, version, answer);
    return answer;
}

std::uint64_t CatalogueRoutes::answering_version() {
    if (!versions_ || chain_->breaker(0).state() != BreakerState::closed)
        return 0;
    return versions_->catalogue_version();
}

std::optional<Response> CatalogueRoutes::kept_answer(const std::string& raw,
                                                     std::uint64_t version) {
    std::lock_guard lock(kept_mutex_);
    if (kept_version_ != version)
        return std::nullopt;
    auto found = kept_.find(raw);
    if (found == kept_.end())
        return std::nullopt;
    return shared_answer(found->second.body, found->second.tag);
}

void CatalogueRoutes::keep_answer(const std::string& raw, std::uint64_t version, Response& answer) {
    if (answer.status != 200 || answer.parts || answer.body.size() > kept_body_bytes)
        return;
    auto body = std::make_shared<const std::string>(std::move(answer.body));
    std::string tag = etag_of(*body);
    answer = shared_answer(body, tag);
    const std::size_t size = raw.size() + body->size();
    std::lock_guard lock(kept_mutex_);
    if (kept_version_ != version || kept_.size() >= kept_entries ||
        kept_size_ + size > kept_bytes) {
        kept_.clear();
        kept_size_ = 0;
        kept_version_ = version;
    }
    auto [at, added] = kept_.try_emplace(raw, KeptAnswer{std::move(body), std::move(tag)});
    if (added)
        kept_size_ += size;
}

Response CatalogueRoutes::whole_list(SharedModels all, std::string source) {
    const std::shared_ptr<const void>& version = all.owner;
    auto same = [&](const KnownList& k) {
        return k.body && k.source == source && !k.version.owner_before(version) &&
               !version.owner_before(k.version) && !k.version.expired();
    };
    std::shared_ptr<const std::string> body;
    std::string tag;
    auto kept = [&] {
        std::lock_guard lock(list_mutex_);
        if (version && same(list_)) {
            body = list_.body;
            tag = list_.tag;
        }
        return body != nullptr;
    };
    if (!kept()) {
        if (!chain_->reads_from_memory())
            // Read from a database each time: a new version each time, nothing to keep;
            // made as it is written, a part at a time.
            return list_answer<Model>(std::move(source), "models", std::move(all.owner),
                                      std::move(all.models));
        // One request makes it; those that asked meanwhile wait for it rather than each
        // making their own.
        std::lock_guard making(make_mutex_);
        if (!kept()) {
            body =
                std::make_shared<const std::string>(list_text<Model>(source, "models", all.models));
            tag = etag_of(*body);
            made_bytes_.store(body->size(), std::memory_order_relaxed);
            if (version) {
                std::lock_guard lock(list_mutex_);
                list_ = {version, std::move(source), tag, body};
            }
        }
    }
    return shared_answer(std::move(body), std::move(tag));
}

Response CatalogueRoutes::model(std::string_view encoded) {
    auto slug = percent_decode(encoded);
    if (!slug || slug->empty() || slug->find('/') != std::string::npos)
        return error_answer(400, "invalid_argument",
                            "not a model slug: '" + std::string(encoded) + "'");
    Provenance from;
    auto model = chain_->find_model(*slug, from);
    if (!model)
        return read_error(model.error());
    if (!model.value())
        return error_answer(404, "not_found", "no model '" + *slug + "' in the catalogue");
    ojson body;
    body["source"] = std::string(from.source);
    body["model"] = cli::to_json(*model.value());
    return json_answer(200, body);
}

Response CatalogueRoutes::statuses(const std::vector<QueryParam>& query) {
    std::optional<Health> only;
    for (const auto& param : query) {
        if (param.key != "health")
            return error_answer(400, "invalid_argument",
                                "unknown query parameter '" + param.key +
                                    "' (this path takes health=)");
        only = parse_health(param.value);
        if (!only)
            return error_answer(400, "invalid_argument",
                                "health must be operational, degraded, outage or unknown, not '" +
                                    param.value + "'");
    }
    Provenance from;
    auto statuses = chain_->list_statuses(from);
    if (!statuses)
        return read_error(statuses.error());
    std::function<bool(const ModelStatus&)> keep;
    if (only)
        keep = [health = *only](const ModelStatus& status) { return status.health == health; };
    return list_answer(std::string(from.source), "statuses", std::move(statuses).value(),
                       std::move(keep));
}

Response CatalogueRoutes::snapshot(const Request& request) {
    auto snapshot = chain_->export_snapshot();
    if (!snapshot)
        return read_error(snapshot.error());
    auto kept = std::make_shared<const Snapshot>(std::move(snapshot).value());
    // The tag is the text's hash: made once to hash it, part by part, then again as
    // it is sent. Never whole in memory.
    BodyTag hash;
    {
        SnapshotWriter writer(kept);
        std::string part;
        for (bool more = true; more; part.clear()) {
            more = writer.next(part, answer_part_bytes);
            hash.add(part);
        }
    }
    Response answer{200, "application/json", {}, {{"ETag", hash.tag()}}, {}, {}};
    if (etag_matches(request.if_none_match, hash.tag())) {
        answer.status = 304;
        return answer;
    }
    auto writer = std::make_shared<SnapshotWriter>(std::move(kept));
    answer.parts = [writer](std::string& out) { return writer->next(out, answer_part_bytes); };
    return answer;
}

} // namespace modelrepo::serve
