// SPDX-License-Identifier: MIT
#include "operator_routes.hpp"

#include <array>
#include <charconv>

#include "answers.hpp"

namespace modelrepo::serve {

namespace {

/// GET /v1/events[?since=ID]: the timeline after event `since`.
Response events(OperatorView& view, const std::vector<QueryParam>& query) {
    long long since = 0;
    for (const auto& p : query)
        if (p.key == "since") {
            auto [end, ec] =
                std::from_chars(p.value.data(), p.value.data() + p.value.size(), since);
            if (ec != std::errc() || end != p.value.data() + p.value.size() || since < 0)
                return error_answer(400, "invalid_argument",
                                    "since must be an event id (a whole number), got '" + p.value +
                                        "'");
        }
    return view.events(since);
}

} // namespace

void add_operator_routes(RouteTable& table, OperatorView& view) {
    auto add = [&](std::string_view pattern, std::string_view summary, RouteDoc doc,
                   std::function<Response(const RouteCall&)> handler) {
        table.add({"GET",
                   pattern,
                   Lane::io,
                   Scope::operate,
                   summary,
                   std::move(handler),
                   {},
                   std::move(doc)});
    };
    constexpr std::array<std::pair<std::string_view, std::string_view>, 3> files{
        {{"/", "text/html"}, {"/status.css", "text/css"}, {"/status.js", "text/javascript"}}};
    for (auto [file, type] : files)
        add(file, "the status page (embedded in the binary)", {"Text", type},
            [file](const RouteCall&) { return *OperatorView::page(std::string(file)); });
    add("/v1/status", "everything the status page draws, from memory", {"OperatorStatus"},
        [&view](const RouteCall&) { return view.status(); });
    add("/v1/events", "the incident timeline (the chain's events) after since=ID",
        {"EventList",
         "application/json",
         {{"since", "only events after this id", false, "integer"}},
         {},
         {400}},
        [&view](const RouteCall& c) { return events(view, c.query); });
    add("/v1/events/stream", "the timeline as server-sent events, as they happen",
        {"ChainEvent", "text/event-stream"}, [&view](const RouteCall& c) {
            return c.head ? Response{200, "text/event-stream", {}, {}, {}, {}}
                          : view.event_stream();
        });
    add("/v1/diagnosis", "the doctor's finding on the first source's last failure", {"Diagnosis"},
        [&view](const RouteCall&) { return view.diagnosis(); });
    add("/api/v2/summary.json", "the state in Atlassian Statuspage's summary format",
        {"StatuspageSummary"},
        [&view](const RouteCall& c) { return view.statuspage(c.request.host); });
}

} // namespace modelrepo::serve
