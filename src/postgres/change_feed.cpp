// SPDX-License-Identifier: MIT
#include "change_feed.hpp"

#include <cerrno>
#include <charconv>

#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connection.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

namespace {

long long number(std::string_view text) {
    long long n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    return n;
}

Timestamp from_micros(long long micros) {
    return Timestamp(duration_cast<Clock::duration>(microseconds(micros)));
}

std::optional<CatalogChange::Kind> kind_of(std::string_view text) {
    if (text == "status")
        return CatalogChange::Kind::status;
    if (text == "model")
        return CatalogChange::Kind::model;
    if (text == "provider")
        return CatalogChange::Kind::provider;
    if (text == "resync")
        return CatalogChange::Kind::resync;
    return std::nullopt;
}

} // namespace

std::optional<CatalogChange> parse_change_payload(std::string_view payload) {
    auto doc = nlohmann::json::parse(payload, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return std::nullopt;
    auto kind = doc.find("kind");
    auto slug = doc.find("slug");
    auto version = doc.find("version");
    auto at = doc.find("at_us");
    if (kind == doc.end() || !kind->is_string() || slug == doc.end() || !slug->is_string() ||
        version == doc.end() || !version->is_number_integer() || at == doc.end() ||
        !at->is_number_integer())
        return std::nullopt;
    auto k = kind_of(kind->get_ref<const std::string&>());
    if (!k)
        return std::nullopt;
    return CatalogChange{*k, slug->get<std::string>(), version->get<std::int64_t>(),
                         from_micros(at->get<long long>())};
}

ChangeFeed::ChangeFeed(std::shared_ptr<const SessionConfig> session, std::string schema_prefix,
                       Options options, Sink sink, StateSink state)
    : session_(std::move(session))
    , prefix_(std::move(schema_prefix))
    , options_(options)
    , sink_(std::move(sink))
    , state_(std::move(state))
    , wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ChangeFeed::~ChangeFeed() {
    stop();
    if (wake_fd_ >= 0)
        ::close(wake_fd_);
}

void ChangeFeed::start() {
    std::call_once(started_, [this] {
        std::lock_guard lock(thread_mutex_);
        if (!stopping_)
            thread_ = std::thread([this] { run(); });
    });
}

void ChangeFeed::stop() {
    stopping_ = true;
    std::uint64_t one = 1;
    if (wake_fd_ >= 0)
        (void)!::write(wake_fd_, &one, sizeof one);
    std::lock_guard lock(thread_mutex_);
    if (thread_.joinable())
        thread_.join();
}

ChangeFeed::Stats ChangeFeed::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void ChangeFeed::tell(bool connected) {
    if (state_)
        state_(connected);
}

void ChangeFeed::set_error(Error error) {
    std::lock_guard lock(mutex_);
    stats_.connected = false;
    stats_.last_error = std::move(error);
}

bool ChangeFeed::pause(milliseconds d) {
    pollfd fd{wake_fd_, POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(d.count()));
    return !stopping_;
}

void ChangeFeed::run() {
    milliseconds backoff = options_.backoff_initial;
    while (!stopping_) {
        std::uint64_t connects = 0;
        {
            std::lock_guard lock(mutex_);
            connects = stats_.connects;
        }
        session();
        if (stopping_)
            break;
        // A session that got as far as listening was not a failing connect: the backoff
        // starts over (before: only after a session of over backoff_max, so restarts a few
        // seconds apart found it at its maximum).
        {
            std::lock_guard lock(mutex_);
            if (stats_.connects != connects)
                backoff = options_.backoff_initial;
        }
        if (!pause(backoff))
            break;
        backoff = std::min(backoff * 2, options_.backoff_max);
    }
    std::lock_guard lock(mutex_);
    stats_.connected = false;
}

void ChangeFeed::session() {
    Watchdog watchdog;
    auto opened = Connection::open(session_, watchdog,
                                   SteadyClock::now() + session_->connect_timeout +
                                       options_.heartbeat_timeout);
    if (!opened)
        return set_error(std::move(opened).error());
    Connection& c = *opened.value();
    if (auto listening = listen_on_channel(c); !listening)
        return set_error(std::move(listening).error());
    auto caught_up = catch_up(c);
    if (!caught_up)
        return set_error(std::move(caught_up).error());
    tell(true);
    std::int64_t last = caught_up.value().back().version;
    sink_(std::move(caught_up).value());
    listen(c, last);
}

Result<void> ChangeFeed::listen_on_channel(Connection& c) {
    // The channel is named after the schema the triggers live in (two catalogues in one
    // database do not hear each other).
    auto schema = c.script("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON "
                           "n.oid = c.relnamespace WHERE c.oid = to_regclass(" +
                               quote_literal(prefix_ + "catalog_version") + ")",
                           SteadyClock::now() + options_.heartbeat_timeout);
    if (!schema)
        return std::move(schema).error();
    if (schema.value().empty()) {
        Error error = make_error(Errc::schema_missing,
                                 "PostgreSQL " + session_->target.display() +
                                     ": the database has no change feed (schema version 1); "
                                     "run modelrepo migrate");
        error.source = session_->source;
        return error;
    }
    std::string channel = "modelrepo:" + std::string(schema.value().text(0, 0));
    auto listening = c.script("LISTEN " + quote_identifier(channel),
                              SteadyClock::now() + options_.heartbeat_timeout);
    if (!listening)
        return std::move(listening).error();
    return success();
}

Result<std::vector<CatalogChange>> ChangeFeed::catch_up(Connection& c) {
    auto query = [&](const std::string& sql) {
        return c.script(sql, SteadyClock::now() + options_.heartbeat_timeout);
    };
    auto version_rows = query("SELECT version, (extract(epoch FROM changed_at) * 1000000)::bigint "
                              "FROM " +
                              prefix_ + "catalog_version");
    if (!version_rows)
        return std::move(version_rows).error();
    if (version_rows.value().empty())
        return make_error(Errc::schema_missing, "catalog_version is empty");
    std::int64_t current = number(version_rows.value().text(0, 0));
    Timestamp changed_at = from_micros(number(version_rows.value().text(0, 1)));

    std::vector<CatalogChange> batch;
    std::int64_t last = stats().version;
    if (last > 0 && current > last) {
        // NOTIFY does not replay what was sent while nobody listened: read it back.
        auto missed =
            query("SELECT version, kind, slug, (extract(epoch FROM at) * 1000000)::bigint "
                  "FROM " +
                  prefix_ + "catalog_changes WHERE version > " + std::to_string(last) +
                  " ORDER BY version");
        if (missed)
            for (int row = 0; row < missed.value().size(); ++row)
                if (auto kind = kind_of(missed.value().text(row, 1)))
                    batch.push_back({*kind, std::string(missed.value().text(row, 2)),
                                     number(missed.value().text(row, 0)),
                                     from_micros(number(missed.value().text(row, 3)))});
    }
    std::uint64_t caught_up = batch.size();
    batch.push_back({CatalogChange::Kind::resync, "", current, changed_at});
    std::lock_guard lock(mutex_);
    stats_.connected = true;
    stats_.last_error.reset();
    ++stats_.connects;
    stats_.caught_up += caught_up;
    ++stats_.resyncs;
    stats_.version = current;
    return batch;
}

std::int64_t ChangeFeed::deliver_notifications(PGconn* pg, std::int64_t last) {
    std::vector<CatalogChange> changes;
    std::uint64_t received = 0, unknown = 0, resyncs = 0;
    while (PGnotify* n = PQnotifies(pg)) {
        ++received;
        auto change = parse_change_payload(n->extra ? n->extra : "");
        PQfreemem(n);
        if (!change) {
            ++unknown;
            continue;
        }
        if (change->version != 0 && change->version <= last)
            continue; // already delivered (caught up)
        last = std::max(last, change->version);
        resyncs += change->kind == CatalogChange::Kind::resync;
        changes.push_back(std::move(*change));
    }
    if (received == 0)
        return last;
    {
        std::lock_guard lock(mutex_);
        stats_.received += received;
        stats_.unknown += unknown;
        stats_.resyncs += resyncs;
        stats_.version = last;
    }
    if (!changes.empty())
        sink_(std::move(changes));
    return last;
}

void ChangeFeed::lost(Error error) {
    {
        std::lock_guard lock(mutex_);
        ++stats_.disconnects;
        stats_.connected = false;
        stats_.last_error = std::move(error);
    }
    tell(false);
}

void ChangeFeed::listen(Connection& c, std::int64_t last) {
    PGconn* pg = c.native_handle();
    auto last_traffic = SteadyClock::now();
    while (!stopping_) {
        auto idle_until = last_traffic + options_.heartbeat;
        auto wait = duration_cast<milliseconds>(idle_until - SteadyClock::now());
        pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        int ready = ::poll(fds, 2, static_cast<int>(std::max<long long>(wait.count(), 0)));
        if (stopping_)
            return tell(false);
        if (ready < 0 && errno != EINTR)
            return lost(
                make_error(Errc::unreachable, "poll() on the change feed's session failed"));
        if (ready > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK) {
                Error error = make_error(Errc::unreachable,
                                         "PostgreSQL " + session_->target.display() +
                                             ": the change feed's session was lost: " +
                                             mask_secrets(PQerrorMessage(pg), session_->secrets));
                error.source = session_->source;
                return lost(std::move(error));
            }
            last_traffic = SteadyClock::now();
            last = deliver_notifications(pg, last);
        }
        if (SteadyClock::now() >= idle_until) {
            // Nothing for a while: make sure the server still answers.
            auto alive = c.script("SELECT 1", SteadyClock::now() + options_.heartbeat_timeout);
            if (!alive)
                return lost(std::move(alive).error());
            last_traffic = SteadyClock::now();
            last = deliver_notifications(pg, last);
        }
    }
}

} // namespace modelrepo::detail
