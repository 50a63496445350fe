// SPDX-License-Identifier: MIT
#include "copied_repository.hpp"

#include "../../core/backend_metrics.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

namespace {

LiveCopy::Options copy_options(const CopyConfig& config, const CatalogReader& reader,
                               HealthObserver* health) {
    LiveCopy::Options options;
    options.dir = config.dir;
    options.key = reader.copy_key();
    options.max_stale = config.max_stale;
    options.on_stale = [health](bool stale, const std::string& why) {
        health->copy_stale(stale, why);
    };
    return options;
}

} // namespace

Result<std::shared_ptr<CopiedRepository>>
CopiedRepository::create(std::shared_ptr<ModelRepository> source, CopyConfig config) {
    auto* reader = source->capability<CatalogReader>();
    auto* changes = source->capability<ChangeSource>();
    auto refuse = [&](const std::string& why) {
        Error error = make_error(Errc::invalid_argument,
                                 "cache_dir and cache=live keep a last-known copy current through "
                                 "the source's change feed; " +
                                     std::string(source->name()) + " " + why);
        error.source = std::string(source->name());
        return error;
    };
    if (!reader || !changes)
        return refuse("cannot be read whole or reports no changes (the copy is for sources "
                      "such as postgresql://; a file or an HTTP backup is a copy already)");
    if (auto why = changes->unavailable())
        return refuse("cannot give one: " + why->message);
    return std::make_shared<CopiedRepository>(std::move(source), *reader, *changes,
                                              std::move(config));
}

CopiedRepository::CopiedRepository(std::shared_ptr<ModelRepository> source, CatalogReader& reader,
                                   ChangeSource& changes, CopyConfig config)
    : source_(std::move(source))
    , own_health_(health_unless_kept(*source_))
    , health_(own_health_ ? own_health_.get() : source_->capability<HealthObserver>())
    , changes_(changes)
    , config_(std::move(config))
    , copy_source_(std::string(source_->name()) + " (last-known copy)")
    , copy_(copy_options(config_, reader, health_), reader, hub_) {
    copy_.start();
    changes_.start_changes(
        [this](std::vector<CatalogChange> batch) { copy_.on_changes(std::move(batch)); },
        [this](bool connected) { copy_.on_feed(connected); },
        [this](std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows) {
            return copy_.on_rows(changes, rows);
        });
}

CopiedRepository::~CopiedRepository() {
    changes_.stop_changes();
}

template <class Db, class FromCopy>
auto CopiedRepository::read(Db&& db, FromCopy&& from_copy) -> decltype(db()) {
    if (config_.live && copy_.in_sync())
        return from_copy(copy_.catalog(), false);
    return or_copy(db(), from_copy);
}

template <class Answer, class FromCopy>
Answer CopiedRepository::or_copy(Answer answer, FromCopy& from_copy) {
    if (answer) {
        copy_.note_answered();
        return answer;
    }
    if (!classify(answer.error()).outage || !copy_.has_data())
        return answer;
    auto age = Clock::now() - copy_.as_of();
    if (age > config_.max_stale) {
        answer.error().message += " (the last-known copy is " +
                                  std::to_string(duration_cast<seconds>(age).count()) +
                                  " s old, past max_stale)";
        return answer;
    }
    served_while_down_.fetch_add(1, std::memory_order_relaxed);
    return from_copy(copy_.catalog(), true);
}

Result<std::int64_t> CopiedRepository::count_models() {
    return read([&] { return source_->count_models(); },
                [](const Catalog& c, bool) -> Result<std::int64_t> { return c.stats.models; });
}

Result<std::int64_t> CopiedRepository::count_providers() {
    return read([&] { return source_->count_providers(); },
                [](const Catalog& c, bool) -> Result<std::int64_t> { return c.stats.providers; });
}

Result<std::vector<ModelStatus>> CopiedRepository::list_statuses() {
    return read(
        [&] {
            auto answer = source_->list_statuses();
            if (answer)
                copy_.note_statuses(answer.value());
            return answer;
        },
        [](const Catalog& c, bool) -> Result<std::vector<ModelStatus>> { return c.statuses(); });
}

Result<std::vector<Model>> CopiedRepository::find_models(std::span<const std::string> slugs) {
    return read(
        [&] { return source_->find_models(slugs); },
        [&](const Catalog& c, bool) -> Result<std::vector<Model>> { return c.find_all(slugs); });
}

Result<std::optional<Model>> CopiedRepository::find_model(std::string_view slug) {
    using Answer = Result<std::optional<Model>>;
    return read([&] { return source_->find_model(slug); },
                [&](const Catalog& c, bool) -> Answer {
                    if (const Model* m = c.find(slug))
                        return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>,
                                      std::in_place, *m);
                    return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>);
                });
}

Result<std::vector<Model>> CopiedRepository::list_models() {
    return read([&] { return source_->list_models(); },
                [](const Catalog& c, bool) -> Result<std::vector<Model>> {
                    std::vector<Model> out;
                    out.reserve(c.models.size());
                    for (const auto& m : c.models)
                        out.push_back(*m);
                    return out;
                });
}

Result<SharedModels> CopiedRepository::share_models() {
    // The version held now: at most newer than the one read() looked at.
    return read([&] { return source_->share_models(); },
                [&](const Catalog&, bool) -> Result<SharedModels> {
                    return detail::share_models(copy_.share());
                });
}

Result<SystemStats> CopiedRepository::system_stats() {
    return read([&] { return source_->system_stats(); },
                [&](const Catalog& c, bool down) -> Result<SystemStats> {
                    SystemStats s = c.stats;
                    s.as_of = copy_.as_of();
                    s.source = down ? copy_source_ : std::string(source_->name());
                    return s;
                });
}

Result<Snapshot> CopiedRepository::export_snapshot() {
    return read([&] { return source_->export_snapshot(); },
                [&](const Catalog& c, bool) -> Result<Snapshot> {
                    Snapshot s = c.snapshot();
                    s.generated_at = copy_.as_of();
                    return s;
                });
}

Result<WriteReceipt> CopiedRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                      const WriteOptions& options) {
    auto receipt = source_->write_statuses(statuses, options);
    if (receipt && !receipt.value().deferred())
        copy_.apply_statuses(statuses); // read your writes, before the feed says so
    return receipt;
}

Result<Subscription> CopiedRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    return subscribe(std::move(on_change), "watch()", &ChangeHub::subscribe);
}

Result<Subscription> CopiedRepository::relay(std::function<void(const CatalogChange&)> to) {
    return subscribe(std::move(to), "relay()", &ChangeHub::relay);
}

Result<Subscription> CopiedRepository::subscribe(
    std::function<void(const CatalogChange&)> callback, const char* call,
    Subscription (ChangeHub::*how)(std::function<void(const CatalogChange&)>)) {
    if (!callback)
        return make_error(Errc::invalid_argument, std::string(call) + " needs a callback");
    if (auto ready = changes_.check_watchable(); !ready)
        return std::move(ready).error();
    return (hub_.*how)(std::move(callback));
}

std::vector<MetricFamily> CopiedRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    std::vector<MetricFamily> out = source_->backend_metrics();
    auto gauge = [&](const char* name, const char* help, double value) {
        detail::append_metric(out, name, Type::gauge, help, value);
    };
    auto counter = [&](const char* name, const char* help, double value) {
        detail::append_metric(out, name, Type::counter, help, value);
    };
    detail::append_hub_metrics(out, hub_.stats());
    auto stats = copy_.stats(); // one look at the copy for all its metrics
    CopyState c = state_of(stats);
    gauge("modelrepo_copy_in_sync", "1 while the last-known copy is kept current by the feed.",
          c.in_sync ? 1 : 0);
    if (c.has_data)
        gauge("modelrepo_copy_age_seconds",
              "Seconds since the last-known copy was last known current (0 in sync).",
              duration<double>(Clock::now() - c.as_of).count());
    counter("modelrepo_copy_served_while_down_total",
            "Reads the last-known copy answered while the database could not.",
            static_cast<double>(c.served_while_down));
    counter("modelrepo_copy_reloads_total", "Full reloads of the copy (resyncs).",
            static_cast<double>(stats.reloads));
    counter("modelrepo_copy_rows_applied_total",
            "Changes applied to the copy as the logical feed decoded them, with no re-read.",
            static_cast<double>(stats.rows_applied));
    out.push_back({"modelrepo_copy_disk_failures_total",
                   MetricFamily::Type::counter,
                   "Loads of the copy's file refused and writes of it that failed.",
                   {}});
    out.back()
        .add({{"op", "load"}}, static_cast<double>(c.load_failures))
        .add({{"op", "save"}}, static_cast<double>(c.save_failures));
    return out;
}

std::optional<Timestamp> CopiedRepository::data_as_of() const {
    if (!copy_.has_data())
        return std::nullopt;
    return copy_.as_of();
}

void* CopiedRepository::find_capability(const std::type_info& type) noexcept {
    if (void* p = offer<CopyControl>(type, this))
        return p;
    if (void* p = offer<LocalCopy>(type, this))
        return p;
    if (void* p = offer<ChangeRelay>(type, this))
        return p;
    if (void* p = offer<CatalogueVersion>(type, this))
        return p;
    if (void* p = detail::offer_own_health(type, own_health_.get()))
        return p;
    return source_->find_capability(type);
}

CopyState CopiedRepository::copy_state() const {
    return state_of(copy_.stats());
}

CopyState CopiedRepository::state_of(const LiveCopy::Stats& stats) const {
    CopyState s;
    s.has_data = copy_.has_data();
    s.in_sync = copy_.in_sync();
    s.as_of = copy_.as_of();
    s.version = stats.version;
    s.served_while_down = served_while_down_.load(std::memory_order_relaxed);
    s.load_failures = stats.load_failures;
    s.save_failures = stats.save_failures;
    s.disk_error = stats.disk_error;
    return s;
}

bool CopiedRepository::knows_model(std::string_view slug) const {
    return copy_.catalog().find(slug) != nullptr;
}

void CopiedRepository::show_writes(std::span<const ModelStatus> statuses) {
    copy_.apply_statuses(statuses);
}

} // namespace modelrepo::detail
