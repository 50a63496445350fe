// SPDX-License-Identifier: MIT
// The openers of builtin: and file: URIs.
#include <modelrepo/memory_repository.hpp>

#include "../core/registration.hpp"

namespace modelrepo::detail {

namespace {

/// The query parameters an in-memory source takes (`name`, `max_clock_skew`), set on the
/// repository `make(name)` builds (nullopt: its own name); any other is refused by name,
/// so that nothing asked for is silently ignored.
template <class Make>
Result<std::shared_ptr<ModelRepository>> with_params(Make make, std::string_view text,
                                                     const Uri& uri) {
    std::optional<std::string> name;
    for (const auto& [key, value] : uri.query)
        if (key == "name") {
            if (auto problem = display_name_problem(value))
                return make_error(Errc::invalid_argument,
                                  "invalid source URI '" + redact_url(text) + "': " + *problem);
            name = value;
        }
    Result<std::shared_ptr<MemoryRepository>> made = make(std::move(name));
    if (!made)
        return std::move(made).error();
    std::shared_ptr<MemoryRepository> repo = std::move(made).value();
    for (const auto& [key, value] : uri.query) {
        if (key == "name")
            continue;
        if (key == "max_clock_skew") {
            auto skew = parse_duration(value);
            if (!skew)
                return make_error(Errc::invalid_argument,
                                  "invalid source URI '" + redact_url(text) +
                                      "': max_clock_skew must be a duration like 5m or 90s, got '" +
                                      value + "'");
            repo->set_max_clock_skew(*skew);
            continue;
        }
        return make_error(Errc::invalid_argument, "invalid source URI '" + redact_url(text) +
                                                      "': " + uri.scheme +
                                                      ": does not take the parameter '" + key +
                                                      "' (it takes name and max_clock_skew)");
    }
    return std::shared_ptr<ModelRepository>(std::move(repo));
}

} // namespace

Result<std::shared_ptr<ModelRepository>> open_builtin(std::string_view text, const Uri& uri) {
    if (!uri.path.empty() && uri.path != "/")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': builtin: takes no path (write just \"builtin:\")");
    return with_params(
        [](std::optional<std::string> name) -> Result<std::shared_ptr<MemoryRepository>> {
            if (!name)
                return MemoryRepository::builtin();
            return MemoryRepository::create(builtin_snapshot(), std::move(*name));
        },
        text, uri);
}

Result<std::shared_ptr<ModelRepository>> open_file(std::string_view text, const Uri& uri) {
    // file:///abs/path, file://localhost/abs/path, file:relative/path
    if (uri.has_authority && !uri.authority.empty() && uri.authority != "localhost")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': file URIs name a local file (file:///abs/path.json); host '" +
                              uri.authority + "' is not supported");
    auto path = percent_decode(uri.path);
    if (!path || path->empty())
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': expected file:///absolute/path.json or file:relative.json");
    if (path->find('\0') != std::string::npos)
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': the path holds a NUL (%00), which no file name can");
    return with_params(
        [&](std::optional<std::string> name) -> Result<std::shared_ptr<MemoryRepository>> {
            if (!name)
                return MemoryRepository::from_file(*path);
            auto snapshot = read_snapshot_file(*path);
            if (!snapshot)
                return std::move(snapshot).error();
            return MemoryRepository::create(std::move(snapshot).value(), std::move(*name));
        },
        text, uri);
}

} // namespace modelrepo::detail
