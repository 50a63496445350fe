// SPDX-License-Identifier: MIT
#include "answers.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace modelrepo::serve {

using std::chrono::system_clock;

int http_status_of(const Error& error) {
    return classify(error).http_status;
}

std::string dump(const ojson& value) {
    // Text from a database may not be UTF-8: replace what is not, rather than throw.
    return value.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Response json_answer(int status, const ojson& value) {
    return Response{status, "application/json", dump(value), {}, {}, {}};
}

Response shared_answer(std::shared_ptr<const std::string> body, std::string tag) {
    Response answer{200, "application/json", {}, {{"ETag", std::move(tag)}}, {}, {}};
    answer.shared_body = std::move(body);
    return answer;
}

Response error_answer(int status, std::string_view code, std::string_view message) {
    return Response{status, "application/json", error_body(code, message), {}, {}, {}};
}

std::string code_name(const Error& error) {
    return error.errc() ? std::string(to_string(*error.errc())) : "other";
}

Response error_answer(const Error& error) {
    Response answer = error_answer(http_status_of(error), code_name(error), error.message);
    if (error.retry_after) {
        auto wait =
            std::chrono::ceil<std::chrono::seconds>(*error.retry_after - system_clock::now());
        answer.headers.emplace_back("Retry-After",
                                    std::to_string(std::max<long long>(1, wait.count())));
    } else if (answer.status == 503) {
        answer.headers.emplace_back("Retry-After", "1");
    }
    return answer;
}

Response method_not_allowed(std::string_view allow) {
    Response answer =
        error_answer(405, "invalid_argument", "this path answers " + std::string(allow) + " only");
    answer.headers.emplace_back("Allow", std::string(allow));
    return answer;
}

std::string BodyTag::tag() const {
    // The bytes left over (fewer than eight) and the length, then a finalizer (MurmurHash3's
    // fmix64) so that every bit of the tag depends on every bit of the body.
    std::uint64_t last = 0;
    std::memcpy(&last, pending_, pending_size_);
    std::uint64_t h = (hash_ ^ last) * 0x9e3779b97f4a7c15ull ^ length_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    char text[24];
    std::snprintf(text, sizeof text, "\"%016llx\"", static_cast<unsigned long long>(h));
    return text;
}

std::string etag_of(std::string_view body) {
    BodyTag tag;
    tag.add(body);
    return tag.tag();
}

bool etag_matches(std::string_view header, std::string_view tag) {
    while (!header.empty()) {
        auto comma = header.find(',');
        std::string_view one = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        while (!one.empty() && (one.front() == ' ' || one.front() == '\t'))
            one.remove_prefix(1);
        while (!one.empty() && (one.back() == ' ' || one.back() == '\t'))
            one.remove_suffix(1);
        if (one.starts_with("W/"))
            one.remove_prefix(2); // If-None-Match compares weakly
        if (one == "*" || one == tag)
            return true;
    }
    return false;
}

} // namespace modelrepo::serve
