// SPDX-License-Identifier: MIT
// How serve's routes answer: JSON bodies, the error body with its Errc code and HTTP
// status (Retry-After on outages), and lists written as they go (never whole in memory).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
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
/// A 200 whose JSON body is made once and shared between answers, with its ETag.
Response shared_answer(std::shared_ptr<const std::string> body, std::string tag);
Response error_answer(int status, std::string_view code, std::string_view message);
/// An error of a source: its status, code and message; Retry-After on an outage.
Response error_answer(const Error& error);
/// The Errc name an error answer carries ("other" for a foreign code).
std::string code_name(const Error& error);
/// 405 with the Allow header.
Response method_not_allowed(std::string_view allow);

/// The entity tag of a body given in parts: a 64-bit hash of its bytes, taken eight at a
/// time (FNV-1a a byte at a time was 5% of a small answer's CPU), the same in every
/// process; `tag()` is "\"<16 hex digits>\"". Parts in order hash as the whole, however the
/// body is cut. For telling versions apart, not against an adversary.
class BodyTag {
public:
    void add(std::string_view part) noexcept {
        const char* p = part.data();
        std::size_t n = part.size();
        length_ += n;
        if (pending_size_ > 0) {
            while (pending_size_ < 8 && n > 0) {
                pending_[pending_size_++] = *p++;
                --n;
            }
            if (pending_size_ < 8)
                return;
            mix(word(pending_));
            pending_size_ = 0;
        }
        for (; n >= 8; p += 8, n -= 8)
            mix(word(p));
        for (; n > 0; --n)
            pending_[pending_size_++] = *p++;
    }
    std::string tag() const;

private:
    static std::uint64_t word(const char* p) noexcept {
        std::uint64_t w;
        std::memcpy(&w, p, sizeof w);
        return w;
    }
    void mix(std::uint64_t w) noexcept {
        hash_ = (hash_ ^ w) * 0x9e3779b97f4a7c15ull;
        hash_ ^= hash_ >> 32;
    }

    std::uint64_t hash_ = 14695981039346656037ull;
    std::uint64_t length_ = 0;
    char pending_[8] = {};
    std::size_t pending_size_ = 0;
};

/// BodyTag of a whole body.
std::string etag_of(std::string_view body);

/// Whether `if_none_match` (an If-None-Match header: "*", or tags, weak or strong, comma
/// separated) matches the entity tag `tag`.
bool etag_matches(std::string_view if_none_match, std::string_view tag);

/// Lists up to this many items are made whole at once (and tagged by the Service); longer
/// ones are made twice, part by part: once for their tag, once as they are sent.
inline constexpr std::size_t whole_list_items = 4'096;

/// `{"source": SOURCE, "<member>": [ITEM, …]}` with its ETag. `items` point into what
/// `owner` keeps. A long list is made as it is written (Response::parts), held until the
/// last part is sent, never whole. The items `keep` refuses are left out. `known_tag`: the
/// ETag of this very list, when the caller has it (then a long list is made once).
template <class T>
Response list_answer(std::string source, std::string member, std::shared_ptr<const void> owner,
                     std::vector<const T*> items, std::function<bool(const T&)> keep = {},
                     std::string known_tag = {}) {
    struct Items {
        std::shared_ptr<const void> owner;
        std::vector<const T*> items;
        std::function<bool(const T&)> keep;
        std::string source, member;
    };
    struct State {
        explicit State(std::shared_ptr<const Items> items)
            : of(std::move(items)) {}
        State(const State&) = delete; // `json` writes to its own `scratch`
        State& operator=(const State&) = delete;
        std::shared_ptr<const Items> of;
        std::string scratch;
        JsonText json{scratch};
        std::size_t at = 0;
        bool next(std::string& out) {
            const Items& i = *of;
            json.write_to(out);
            if (at == 0)
                json.begin_object().key("source").string(i.source).key(i.member).begin_array();
            const std::size_t stop = out.size() + answer_part_bytes;
            while (at < i.items.size() && out.size() < stop) {
                const T& item = *i.items[at++];
                if (!i.keep || i.keep(item))
                    cli::write_json(json, item);
            }
            if (at < i.items.size())
                return true;
            json.end_array().end_object();
            return false;
        }
    };
    auto all = std::make_shared<const Items>(Items{
        std::move(owner), std::move(items), std::move(keep), std::move(source), std::move(member)});
    Response answer{200, "application/json", {}, {}, {}, {}};
    if (all->items.size() <= whole_list_items) {
        State whole(all);
        while (whole.next(answer.body)) {
        }
        return answer;
    }
    if (known_tag.empty()) {
        BodyTag tag;
        State first(all);
        std::string part;
        for (bool more = true; more; part.clear()) {
            more = first.next(part);
            tag.add(part);
        }
        known_tag = tag.tag();
    }
    answer.headers.emplace_back("ETag", std::move(known_tag));
    auto state = std::make_shared<State>(all);
    answer.parts = [state](std::string& out) { return state->next(out); };
    return answer;
}

/// list_answer()'s body, whole: the text of a body made once and shared between answers.
template <class T>
std::string list_text(std::string_view source, std::string_view member,
                      const std::vector<const T*>& items) {
    std::string out;
    JsonText json(out);
    json.begin_object().key("source").string(source).key(member).begin_array();
    for (const T* item : items)
        cli::write_json(json, *item);
    json.end_array().end_object();
    out.shrink_to_fit(); // kept while its version is the newest: not the growth's slack
    return out;
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
