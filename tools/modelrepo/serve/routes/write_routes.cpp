// SPDX-License-Identifier: MIT
#include "write_routes.hpp"

#include "answers.hpp"

namespace modelrepo::serve {

WriteRoutes::WriteRoutes(std::shared_ptr<FallbackRepository> chain)
    : chain_(std::move(chain)) {}

void WriteRoutes::add_to(RouteTable& table) {
    table.add({"PUT",
               "/v1/statuses",
               Lane::write,
               Scope::write,
               "writes statuses (a JSON array) to the first source; 202 when its outbox kept "
               "them through an outage",
               [this](const RouteCall& c) { return put_statuses(c.request); },
               {},
               {"WriteReceipt", "application/json", {}, "StatusArray", {202, 400, 413, 504}}});
}

Response WriteRoutes::put_statuses(const Request& request) {
    // Who may write was settled before (Access: a token of --token-file).
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
