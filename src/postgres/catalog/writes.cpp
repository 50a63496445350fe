// SPDX-License-Identifier: MIT
// SqlCatalog's status writes: one upsert statement per batch (atomic on its own, run again
// after a deadlock or a serialization failure), and the outbox's replay of many batches in
// one round trip.
#include <random>
#include <thread>
#include <unordered_set>

#include "../../core/catalog_view.hpp"
#include "../../core/write_check.hpp"
#include "../driver/errors.hpp"
#include "calls.hpp"

namespace modelrepo::detail {

namespace {

/// How often a write meets another client's deadlock or serialization failure before its
/// error is the caller's; it is run again only while the time since its first attempt is
/// under the query timeout (5 s by default), so a caller waits about that long at most.
/// Time is the bound that matters (64 attempts take 15 s or more); 16 ran out first in one
/// CI run of 8 writers against reversed-order transactions under a 60 s timeout.
constexpr int max_write_attempts = 64;

/// The server refused the transaction for another's sake, not for what it asked (40P01
/// deadlock, 40001 serialization failure): the same statement may simply run again.
bool is_transient(const Error& error) {
    return error.is(Errc::query_failed) && classify(error).retryable;
}

/// 5-20 ms, then 10-40 ms, 20-80 ms, up to 80-320 ms: jittered, so two writers that met
/// do not meet again.
std::chrono::milliseconds retry_pause(int attempt) {
    thread_local std::minstd_rand random(std::random_device{}());
    int base = 5 << std::min(attempt - 1, 4);
    return std::chrono::milliseconds(
        base + static_cast<int>(random() % static_cast<unsigned>(3 * base + 1)));
}

/// Which of `statuses` the upsert wrote (`written`: the slugs it returned): per slug, the
/// newest status of the batch is the one sent; the others, and those whose slug was not
/// written (the stored one is newer), were ignored.
WriteReceipt receipt_of(std::span<const ModelStatus> statuses,
                        const std::unordered_set<std::string>& written) {
    std::unordered_map<std::string_view, std::size_t> sent;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        auto [it, fresh] = sent.emplace(statuses[i].model_slug, i);
        if (!fresh && statuses[it->second].checked_at <= statuses[i].checked_at)
            it->second = i;
    }
    WriteReceipt receipt;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        const std::string& slug = statuses[i].model_slug;
        if (written.count(slug) && sent[slug] == i) {
            ++receipt.applied;
        } else {
            ++receipt.ignored;
            receipt.ignored_models.push_back(slug);
        }
    }
    return receipt;
}

} // namespace

Result<WriteReceipt> SqlCatalog::upsert_statuses(std::span<const ModelStatus> statuses,
                                                 bool checked) {
    // Checked at the door (here, unless a layer above did) so that a bad batch never
    // reaches the server half-checked.
    if (!checked)
        if (auto refused = detail::check_write(statuses, {config_.max_clock_skew, name()}))
            return *refused;
    if (statuses.empty())
        return WriteReceipt{};
    auto a = status_arrays(statuses);
    // One statement: atomic on its own. A deadlock or a serialization failure against
    // another client's transaction (40P01, 40001) is the server asking for the same
    // statement again: it is run again a few times, after a short jittered pause.
    // Another client that locks the same rows in the opposite order makes this statement
    // the server's victim again and again while its transactions go on, so the attempts
    // are bounded by time as well as by number.
    const auto give_up = std::chrono::steady_clock::now() + config_.query_timeout;
    for (int attempt = 1;; ++attempt) {
        auto written =
            query(*write_pool_, StatementId::upsert_statuses,
                  params(a[0], a[1], a[2], a[3], a[4], a[5], a[6]), [](const Rows& rows) {
                      std::unordered_set<std::string> slugs;
                      for (int r = 0; r < rows.size(); ++r)
                          slugs.emplace(rows.text(r, 0));
                      return slugs;
                  });
        if (written)
            return receipt_of(statuses, written.value());
        if (attempt == max_write_attempts || !is_transient(written.error()))
            return std::move(written).error();
        auto pause = retry_pause(attempt);
        if (std::chrono::steady_clock::now() + pause >= give_up)
            return std::move(written).error();
        std::this_thread::sleep_for(pause);
    }
}

Result<std::vector<Result<std::int64_t>>>
SqlCatalog::upsert_each(std::span<const std::vector<ModelStatus>> batches) {
    std::vector<Result<std::int64_t>> out(batches.size(), Result<std::int64_t>(std::int64_t{0}));
    std::vector<std::array<std::string, 7>> arrays;
    std::vector<std::array<const char*, 7>> values;
    std::vector<std::size_t> sent; // which batches go to the server
    const detail::WriteCheck check{config_.max_clock_skew, {}, {}};
    for (std::size_t b = 0; b < batches.size(); ++b) {
        if (auto refused = detail::check_write(batches[b], check)) {
            out[b] = std::move(*refused);
            continue;
        }
        if (batches[b].empty())
            continue;
        arrays.push_back(status_arrays(batches[b]));
        sent.push_back(b);
    }
    for (const auto& a : arrays)
        values.push_back({a[0].c_str(), a[1].c_str(), a[2].c_str(), a[3].c_str(), a[4].c_str(),
                          a[5].c_str(), a[6].c_str()});
    std::vector<Params> params(values.begin(), values.end());
    auto done = with_connection(
        *write_pool_, [&](Connection& c, Deadline until) -> Result<std::vector<Result<Rows>>> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            if (!planned.value()->write_problems.empty())
                return mapping_error(planned.value()->write_problems, "cannot be written through");
            return c.execute_each(planned.value()->statements[StatementId::upsert_statuses], params,
                                  until);
        });
    if (!done)
        return std::move(done).error();
    for (std::size_t k = 0; k < sent.size(); ++k) {
        auto& r = done.value()[k];
        out[sent[k]] = r ? Result<std::int64_t>(r.value().affected())
                         : Result<std::int64_t>(std::move(r).error());
    }
    return out;
}

} // namespace modelrepo::detail
