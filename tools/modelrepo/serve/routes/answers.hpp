// SPDX-License-Identifier: MIT
// How serve's routes answer: JSON bodies, the error body with its Errc code and HTTP
// status (Retry-After on outages), and lists written as they go (never whole in memory).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <modelrepo/error.hpp>
#include <modelrepo/json_text.hpp>

#include "../../json_form.hpp"
#include "../http/http_server.hpp"

namespace modelrepo::serve {

using ojson = nlohmann::ordered_json;

/// The HTTP status an error of a source maps to: 400 for what the caller sent wrong,
/// 404 not found, 503 for outages (with Retry-After when known), 504 for timeouts.
int http_status_of(const Error& error);

/// `value` as JSON text; text from a database that is not UTF-8 is replaced, not thrown on.
std::string dump(const ojson& value);
Response json_answer(int status, const ojson& value);
Response error_answer(int status, std::string_view code, std::string_view message);
/// An error of a source: its status, code and message; Retry-After on an outage.
Response error_answer(const Error& error);
/// The Errc name an error answer carries ("other" for a foreign code).
std::string code_name(const Error& error);
/// 405 with the Allow header.
Response method_not_allowed(std::string_view allow);

/// `{"source": SOURCE, "<member>": [ITEM, …]}`, made as it is written (Response::parts):
/// `items` point into what `owner` keeps, held until the last part is sent; the text is
/// never whole. The items `keep` refuses are left out.
template <class T>
Response list_answer(std::string source, std::string member, std::shared_ptr<const void> owner,
                     std::vector<const T*> items, std::function<bool(const T&)> keep = {}) {
    struct State {
        std::shared_ptr<const void> owner;
        std::vector<const T*> items;
        std::function<bool(const T&)> keep;
        std::string source, member;
        std::string scratch;
        JsonText json{scratch};
        std::size_t at = 0;
    };
    auto state = std::make_shared<State>();
    state->owner = std::move(owner);
    state->items = std::move(items);
    state->keep = std::move(keep);
    state->source = std::move(source);
    state->member = std::move(member);
    Response answer{200, "application/json", {}, {}, {}, {}};
    answer.parts = [state](std::string& out) {
        State& s = *state;
        s.json.write_to(out);
        if (s.at == 0)
            s.json.begin_object().key("source").string(s.source).key(s.member).begin_array();
        const std::size_t stop = out.size() + answer_part_bytes;
        while (s.at < s.items.size() && out.size() < stop) {
            const T& item = *s.items[s.at++];
            if (!s.keep || s.keep(item))
                cli::write_json(s.json, item);
        }
        if (s.at < s.items.size())
            return true;
        s.json.end_array().end_object();
        return false;
    };
    return answer;
}

/// list_answer() over a vector it keeps.
template <class T>
Response list_answer(std::string source, std::string member, std::vector<T> items,
                     std::function<bool(const T&)> keep = {}) {
    auto owned = std::make_shared<const std::vector<T>>(std::move(items));
    std::vector<const T*> pointers;
    pointers.reserve(owned->size());
    for (const T& item : *owned)
        pointers.push_back(&item);
    return list_answer<T>(std::move(source), std::move(member), std::move(owned),
                          std::move(pointers), std::move(keep));
}

} // namespace modelrepo::serve
