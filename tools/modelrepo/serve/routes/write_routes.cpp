// SPDX-License-Identifier: MIT
#include "write_routes.hpp"

#include <algorithm>
#include <cctype>

#include "answers.hpp"

namespace modelrepo::serve {

namespace {

/// Compares in time that depends on the expected token's length only.
bool same_token(std::string_view given, std::string_view expected) {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

} // namespace

WriteRoutes::WriteRoutes(std::shared_ptr<FallbackRepository> chain,
                         std::optional<std::string> token)
    : chain_(std::move(chain))
    , token_(std::move(token)) {}

void WriteRoutes::add_to(RouteTable& table) {
    table.add({"PUT",
               "/v1/statuses",
               Lane::write,
               Scope::write,
               "writes statuses (a JSON array); Authorization: Bearer TOKEN",
               [this](const RouteCall& c) { return put_statuses(c.request); },
               {}});
}

Response WriteRoutes::put_statuses(const Request& request) {
    if (!token_)
        return error_answer(403, "read_only",
                            "this server takes no writes: start it with --token-file FILE");
    std::string_view auth = request.authorization;
    constexpr std::string_view scheme = "bearer ";
    bool bearer = auth.size() > scheme.size() &&
                  std::equal(scheme.begin(), scheme.end(), auth.begin(), [](char a, char b) {
                      return a == std::tolower(static_cast<unsigned char>(b));
                  });
    if (!bearer || !same_token(auth.substr(scheme.size()), *token_)) {
        Response answer = error_answer(401, "auth_failed",
                                       bearer ? "the bearer token is not this server's"
                                              : "writes need 'Authorization: Bearer TOKEN'");
        answer.headers.emplace_back("WWW-Authenticate", "Bearer");
        return answer;
    }
    auto statuses = parse_statuses(request.body);
    if (!statuses)
        return error_answer(statuses.error());
    auto receipt = chain_->write_statuses(statuses.value());
    if (!receipt)
        return error_answer(receipt.error());
    const WriteReceipt& r = receipt.value();
    ojson body;
    body["applied"] = r.applied;
    body["queued"] = r.queued;
    body["ignored"] = r.ignored;
    if (r.ignored > 0)
        body["ignored_models"] = r.ignored_models; // the stored status is newer
    if (r.queued > 0) {
        body["outbox"] = r.outbox;
        if (r.unchecked > 0)
            body["unchecked"] = r.unchecked;
        if (r.deferred_because)
            body["deferred_because"] = {{"code", code_name(*r.deferred_because)},
                                        {"message", r.deferred_because->message}};
    }
    return json_answer(r.queued > 0 ? 202 : 200, body);
}

} // namespace modelrepo::serve
