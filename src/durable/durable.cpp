// SPDX-License-Identifier: MIT
// The durable layer's parameters, and make_durable(): a source's last-known copy and its
// outbox, put around whichever backend's URI asks for them (open.cpp) or around a
// repository built directly.
#include <charconv>

#include <modelrepo/durable.hpp>

#include "../core/uri.hpp"
#include "copy/copied_repository.hpp"
#if MODELREPO_OUTBOX
#include "outbox/outbox_repository.hpp"
#endif

namespace modelrepo {

namespace {

Error invalid(std::string_view url, const std::string& what) {
    return make_error(Errc::invalid_argument,
                      "invalid source URI '" + detail::redact_url(url) + "': " + what);
}

/// Sets one of the layer's parameters; false when `key` is not one of them.
Result<bool> take_param(DurableConfig& config, std::string_view url, const std::string& key,
                        const std::string& value) {
    if (value.find('\0') != std::string::npos)
        return invalid(url, key + " holds a NUL (%00), which no file name can");
    if (key == "cache_dir") {
        if (value.empty())
            return invalid(url, "cache_dir must name a directory");
        config.copy.dir = value;
    } else if (key == "max_stale") {
        auto d = detail::parse_duration(value);
        if (!d)
            return invalid(url, "max_stale must be a duration like 90s, 15m or 24h, got '" + value +
                                    "'");
        config.copy.max_stale = *d;
    } else if (key == "cache") {
        if (value != "live" && value != "off")
            return invalid(url, "cache must be live or off, got '" + value + "'");
        config.copy.live = value == "live";
    } else if (key == "outbox") {
        if (value.empty())
            return invalid(url, "outbox must name a file");
        config.outbox.file = value;
    } else if (key == "outbox_max") {
        long n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size() || n < 1)
            return invalid(url, "outbox_max must be a positive whole number, got '" + value + "'");
        config.outbox.max_statuses = n;
    } else {
        return false;
    }
    return true;
}

} // namespace

Result<DurableConfig> DurableConfig::take_from(std::string& url) {
    DurableConfig config;
    std::size_t q = detail::query_start(url);
    if (q == std::string::npos)
        return config;
    std::string_view query = std::string_view(url).substr(q + 1);
    std::string_view fragment;
    if (auto hash = query.find('#'); hash != std::string_view::npos) {
        fragment = query.substr(hash);
        query = query.substr(0, hash);
    }
    auto params = detail::split_query(query);
    if (!params)
        return invalid(url, "malformed %-escape in the query string");
    std::string kept;
    for (const auto& p : *params) {
        auto taken = take_param(config, url, p.key, p.value);
        if (!taken)
            return std::move(taken).error();
        if (!taken.value())
            kept += (kept.empty() ? "" : "&") + std::string(p.raw);
    }
    url = url.substr(0, q) + (kept.empty() ? "" : "?" + kept) + std::string(fragment);
    return config;
}

Result<std::shared_ptr<ModelRepository>> make_durable(std::shared_ptr<ModelRepository> backend,
                                                      const DurableConfig& config) {
    if (!backend)
        return make_error(Errc::invalid_argument, "make_durable: the backend is null");
    // The outbox above the copy: a write it keeps is checked against the copy and shown in
    // it (read your writes during an outage).
    std::shared_ptr<ModelRepository> layered = std::move(backend);
    if (config.copy.enabled()) {
        auto copied = detail::CopiedRepository::create(std::move(layered), config.copy);
        if (!copied)
            return std::move(copied).error();
        layered = std::move(copied).value();
    }
    if (!config.outbox.file.empty()) {
#if MODELREPO_OUTBOX
        auto kept = detail::OutboxRepository::create(std::move(layered), config.outbox);
        if (!kept)
            return std::move(kept).error();
        layered = std::move(kept).value();
#else
        return make_error(Errc::not_supported,
                          "this build of modelrepo has no outbox (it needs SQLite 3: install "
                          "libsqlite3-dev and rebuild)");
#endif
    }
    return layered;
}

} // namespace modelrepo
