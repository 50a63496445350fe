// SPDX-License-Identifier: MIT
#include "change_feed.hpp"

#include <cerrno>
#include <charconv>

#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../catalog/schema.hpp"
#include "../driver/connection.hpp"
#include "reconnect_backoff.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

static_assert(ChangeFeed::poll_statement_id_for_checks() >= statement_count &&
                  ChangeFeed::poll_statement_id_for_checks() < 64,
              "the feed's poll has a prepared-set bit of its own");

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
    , wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    poll_head_ =
        "SELECT s.xmax, s.running, c.version, c.kind, c.slug, "
        "(extract(epoch FROM c.at) * 1000000)::bigint FROM (SELECT pg_snapshot_xmax(x)::text "
        "AS xmax, array_to_string(ARRAY(SELECT pg_snapshot_xip(x)), ',') AS running FROM "
        "pg_current_snapshot() x) s LEFT JOIN " +
        prefix_ + "catalog_changes c ON ";
    poll_sql_ = poll_head_ + "(c.xid >= $1::xid8 OR c.xid = ANY($2::xid8[])) ORDER BY c.version";
    // The first poll reads only the newest row: what the first resync covers ends there.
    poll_sql_first_ =
        poll_head_ + "c.version = (SELECT max(version) FROM " + prefix_ + "catalog_changes)";
    poll_statement_ = Statement{poll_statement_id, "modelrepo_feed_poll", poll_sql_.c_str()};
}

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
    ReconnectBackoff backoff(options_.backoff_initial, options_.backoff_max);
    auto connects = [this] {
        std::lock_guard lock(mutex_);
        return stats_.connects;
    };
    while (!stopping_) {
        const auto before = connects();
        session();
        if (stopping_)
            break;
        // A session that got as far as listening was not a failing connect.
        if (!pause(backoff.after(connects() != before)))
            break;
    }
    std::lock_guard lock(mutex_);
    stats_.connected = false;
}

Deadline ChangeFeed::round_trip() const {
    return SteadyClock::now() + options_.heartbeat_timeout;
}

void ChangeFeed::session() {
    Watchdog watchdog;
    auto opened = Connection::open(session_, watchdog,
                                   SteadyClock::now() + session_->connect_timeout +
                                       options_.heartbeat_timeout);
    if (!opened) {
        if (options_.health)
            options_.health->failed("feed", opened.error());
        return set_error(std::move(opened).error());
    }
    Connection& c = *opened.value();
    if (auto listening = listen_on_channel(c); !listening) {
        if (options_.health)
            options_.health->failed("feed", listening.error());
        return set_error(std::move(listening).error());
    }
    if (!still_installed(c, false))
        return;
    if (options_.health)
        options_.health->reached("feed");
    // Awake while catching up; old rows go (count and age) once per session.
    if (auto awake = mark(c, false, true); !awake)
        return set_error(std::move(awake).error());
    (void)c.script("SELECT " + prefix_ + "modelrepo_prune_changes(true)", round_trip());
    bool first = !cursor_.set;
    auto caught_up = poll(c, true);
    if (!caught_up)
        return set_error(std::move(caught_up).error());
    std::vector<CatalogChange> batch = std::move(caught_up).value().changes;
    // The resync's version: the newest the log has handed out (a resume point for serve).
    std::int64_t version = 0;
    if (auto newest = c.script("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " +
                                   prefix_ + "catalog_change_seq",
                               round_trip());
        newest && !newest.value().empty())
        version = number(newest.value().text(0, 0));
    {
        std::lock_guard lock(mutex_);
        stats_.version = std::max(stats_.version, version);
        stats_.connected = true;
        stats_.last_error.reset();
        ++stats_.connects;
        stats_.caught_up += first ? 0 : batch.size();
        ++stats_.resyncs;
        version = stats_.version;
    }
    tell(true);
    // What was missed is in the batch, change by change; the resync says so.
    batch.push_back({CatalogChange::Kind::resync, "", version, system_clock::now()});
    sink_(std::move(batch));
    follow(c);
}

Result<void> ChangeFeed::listen_on_channel(Connection& c) {
    // The channel is named after the schema the triggers live in (two catalogues in one
    // database do not hear each other).
    auto schema =
        c.script("SELECT n.nspname, to_regclass(" + quote_literal(prefix_ + "catalog_change_seq") +
                     ") IS NOT NULL FROM pg_class c JOIN pg_namespace n ON "
                     "n.oid = c.relnamespace WHERE c.oid = to_regclass(" +
                     quote_literal(prefix_ + "catalog_changes") + ")",
                 round_trip());
    if (!schema)
        return std::move(schema).error();
    if (schema.value().empty() || schema.value().text(0, 1) != "t") {
        Error error =
            make_error(Errc::schema_missing,
                       "PostgreSQL " + session_->target.display() + ": the database has " +
                           (schema.value().empty() ? "no change feed (schema version 1)"
                                                   : "the change feed of schema version 2") +
                           "; run modelrepo migrate");
        error.source = session_->source;
        return error;
    }
    std::string channel = "modelrepo:" + std::string(schema.value().text(0, 0));
    auto listening = c.script("LISTEN " + quote_identifier(channel), round_trip());
    if (!listening)
        return std::move(listening).error();
    return success();
}

Result<void> ChangeFeed::mark(Connection& c, bool asleep, bool tidy) {
    auto marked = c.script("SELECT " + prefix_ + "modelrepo_feed_mark(" +
                               (asleep ? "true" : "false") + ", " + (tidy ? "true" : "false") + ")",
                           round_trip());
    if (!marked)
        return std::move(marked).error();
    std::lock_guard lock(mutex_);
    stats_.asleep = asleep;
    stats_.sleeps += asleep;
    return success();
}

Result<ChangeFeed::Poll> ChangeFeed::poll(Connection& c, bool catch_up) {
    // One statement, one snapshot: the rows and the snapshot they were read in. Prepared
    // (planning it took longer than running it); the first poll only places the cursor.
    Result<Rows> rows = Rows();
    if (!cursor_.set) {
        rows = c.script(poll_sql_first_, round_trip());
    } else {
        std::string xmax = std::to_string(cursor_.xmax), running = "{";
        for (std::size_t i = 0; i < cursor_.running.size(); ++i)
            running += (i ? "," : "") + std::to_string(cursor_.running[i]);
        running += "}";
        const char* params[] = {xmax.c_str(), running.c_str()};
        if (catch_up)
            // Once a session, so not prepared; the values are numbers.
            rows = c.script(poll_head_ + "(c.xid >= '" + xmax + "'::xid8 OR c.xid = ANY('" +
                                running + "'::xid8[]) OR c.version > " +
                                std::to_string(cursor_.delivered) + ") ORDER BY c.version",
                            round_trip());
        else
            rows = c.execute(poll_statement_, params, round_trip());
    }
    if (!rows)
        return std::move(rows).error();
    const Rows& r = rows.value();
    Poll out;
    if (r.empty())
        return make_error(Errc::query_failed, "the change log's poll returned no snapshot");
    std::int64_t highest = 0;
    for (int row = 0; row < r.size(); ++row) {
        if (r.is_null(row, 2))
            continue;
        auto kind = kind_of(r.text(row, 3));
        if (!kind)
            continue;
        std::int64_t version = number(r.text(row, 2));
        highest = std::max(highest, version);
        if (!cursor_.set)
            continue;
        out.changes.push_back(
            {*kind, std::string(r.text(row, 4)), version, from_micros(number(r.text(row, 5)))});
    }
    std::string_view running = r.text(0, 1);
    for (std::size_t at = 0; at < running.size();) {
        auto comma = std::min(running.find(',', at), running.size());
        out.running.push_back(static_cast<std::uint64_t>(number(running.substr(at, comma - at))));
        at = comma + 1;
    }
    cursor_.set = true;
    cursor_.delivered = std::max(cursor_.delivered, highest);
    cursor_.xmax = static_cast<std::uint64_t>(number(r.text(0, 0)));
    cursor_.running = out.running;
    std::lock_guard lock(mutex_);
    ++stats_.polls;
    stats_.delivered += out.changes.size();
    stats_.resyncs += static_cast<std::uint64_t>(
        std::count_if(out.changes.begin(), out.changes.end(), [](const CatalogChange& ch) {
            return ch.kind == CatalogChange::Kind::resync;
        }));
    stats_.version = std::max(stats_.version, highest);
    return out;
}

bool ChangeFeed::drain_notifications(PGconn* pg) {
    std::uint64_t received = 0, unknown = 0;
    while (PGnotify* n = PQnotifies(pg)) {
        ++received;
        unknown += !parse_change_payload(n->extra ? n->extra : "");
        PQfreemem(n);
    }
    if (received > 0) {
        std::lock_guard lock(mutex_);
        stats_.received += received;
        stats_.unknown += unknown;
    }
    return received > unknown;
}

void ChangeFeed::lost(Error error) {
    {
        std::lock_guard lock(mutex_);
        ++stats_.disconnects;
        stats_.connected = false;
        stats_.asleep = false;
        stats_.last_error = std::move(error);
    }
    tell(false);
}

bool ChangeFeed::still_installed(Connection& c, bool connected) {
    if (options_.installed_sql.empty())
        return true;
    auto here = c.script(options_.installed_sql, round_trip());
    if (!here) {
        if (connected)
            lost(std::move(here).error());
        else
            set_error(std::move(here).error());
        return false;
    }
    if (here.value().text(0, 0) == "t")
        return true;
    if (options_.uninstalled) {
        // feed=auto: the chooser starts what migrate installed instead.
        if (connected)
            tell(false);
        {
            std::lock_guard lock(mutex_);
            stats_.connected = false;
            stats_.asleep = false;
        }
        stopping_ = true;
        options_.uninstalled();
        return false;
    }
    Error error = make_error(Errc::schema_missing,
                             "PostgreSQL " + session_->target.display() +
                                 ": the trigger feed's row triggers are gone (a migrate with "
                                 "feed=logical drops them), so this feed hears nothing: use "
                                 "feed=auto (it follows what migrate installed), or run migrate "
                                 "with feed=triggers");
    error.source = session_->source;
    if (options_.health)
        options_.health->failed("feed", error);
    if (connected)
        lost(std::move(error));
    else
        set_error(std::move(error));
    return false;
}

void ChangeFeed::follow(Connection& c) {
    PGconn* pg = c.native_handle();
    auto now = SteadyClock::now();
    auto last_traffic = now, last_change = now, next_poll = now + options_.poll_interval;
    bool asleep = false;
    // Asleep: transactions that were running when the feed went to sleep may not have
    // seen it and will not notify; polled (backing off) until they are all over.
    std::vector<std::uint64_t> unsure;
    milliseconds unsure_wait = options_.poll_interval;
    constexpr milliseconds unsure_wait_max{250};
    // Writers prune the log by count; by age only a feed does (at connect, then hourly).
    constexpr hours prune_every{1};
    auto pruned = now;
    while (!stopping_) {
        now = SteadyClock::now();
        auto wake_at =
            asleep ? (unsure.empty() ? last_traffic + options_.heartbeat : now + unsure_wait)
                   : next_poll;
        auto wait = duration_cast<milliseconds>(wake_at - now);
        pollfd fds[2] = {{PQsocket(pg), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        int ready = ::poll(fds, 2, static_cast<int>(std::max<long long>(wait.count(), 0)));
        if (stopping_) {
            // Writers need not notify a feed that is gone (at once: a stopped server is
            // not waited for).
            (void)c.script("SELECT " + prefix_ + "modelrepo_feed_mark(NULL)",
                           SteadyClock::now() + milliseconds(200));
            return tell(false);
        }
        if (ready < 0 && errno != EINTR)
            return lost(
                make_error(Errc::unreachable, "poll() on the change feed's session failed"));
        bool notified = false;
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
            notified = drain_notifications(pg);
        }
        now = SteadyClock::now();
        if (!notified && now < wake_at)
            continue;
        if (asleep && !notified && unsure.empty() && !still_installed(c, true))
            return;
        auto polled = poll(c);
        if (!polled)
            return lost(std::move(polled).error());
        (void)drain_notifications(pg); // those that came with the poll's answer
        now = last_traffic = SteadyClock::now();
        next_poll = now + options_.poll_interval;
        if (now - pruned >= prune_every) {
            pruned = now;
            (void)c.script("SELECT " + prefix_ + "modelrepo_prune_changes(true)", round_trip());
        }
        Poll& p = polled.value();
        if (!unsure.empty()) {
            std::erase_if(unsure, [&](std::uint64_t xid) {
                return std::find(p.running.begin(), p.running.end(), xid) == p.running.end();
            });
            unsure_wait = std::min(unsure_wait * 2, unsure_wait_max);
        }
        if (!p.changes.empty()) {
            last_change = now;
            sink_(std::move(p.changes));
            if (asleep) {
                // Changes are coming: writers need not notify while the feed polls.
                if (auto awake = mark(c, false); !awake)
                    return lost(std::move(awake).error());
                asleep = false;
                unsure.clear();
            }
        } else if (!asleep && now - last_change >= options_.idle_after) {
            if (auto slept = mark(c, true); !slept)
                return lost(std::move(slept).error());
            asleep = true;
            // The next poll's snapshot is taken after the mark committed: what runs then
            // may have missed it.
            auto after = poll(c);
            if (!after)
                return lost(std::move(after).error());
            unsure = after.value().running;
            unsure_wait = options_.poll_interval;
            if (!after.value().changes.empty())
                sink_(std::move(after.value().changes));
        }
    }
}

} // namespace modelrepo::detail
