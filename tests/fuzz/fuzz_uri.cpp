// SPDX-License-Identifier: MIT
// libFuzzer target: URI parsing of open() and of the backends' configurations must
// answer every input with a value or a typed Error, and never put the URL's password
// into a message.
//
// The password oracle. A message "contains the password" only means something when
// the password is distinctive, so a finding needs all of (the token below keeps the
// password's punctuation, so both runs take the same path through the URL checks):
//   - the password, as the parser reads it (userinfo "user:PASSWORD@"), is at least
//     6 characters and occurs exactly once in the input: a message that quotes the
//     host or the path cannot contain it by accident;
//   - it appears in a message (or a redacted form) made from the input;
//   - it does not appear in the messages made from the same input with the password
//     replaced by a token of the same length: the hit is not a coincidence with the
//     fixed text of a message or with the rest of the input.
// The same input is also checked with the token itself, which must never appear.
// redact(), the free-text redactor, is held to this only for one-word inputs (no
// whitespace or control characters): in prose, whitespace ends a URL.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <modelrepo/github_repository.hpp>
#include <modelrepo/postgres_repository.hpp>

#include "core/uri.hpp"

namespace {

/// Where the password is in `text`, as a URL parser reads it (npos when none).
struct PasswordSpan {
    std::size_t at = std::string::npos;
    std::size_t size = 0;
};

PasswordSpan password_of(const std::string& text) {
    auto uri = modelrepo::detail::parse_uri(text);
    if (!uri || !uri.value().has_authority)
        return {};
    const std::string& authority = uri.value().authority;
    auto at = authority.rfind('@');
    if (at == std::string::npos)
        return {};
    auto colon = authority.find(':');
    if (colon == std::string::npos || colon > at)
        return {};
    // The authority follows the first "//" after the scheme.
    auto start = text.find("//");
    if (start == std::string::npos || text.compare(start + 2, authority.size(), authority) != 0)
        return {};
    return {start + 2 + colon + 1, at - colon - 1};
}

/// Every text the library makes from `text` that a person or a log may see.
std::vector<std::string> messages(const std::string& text) {
    std::vector<std::string> out;
    if (auto pg = modelrepo::PostgresConfig::from_url(text); !pg)
        out.push_back(pg.error().to_string());
    if (auto gh = modelrepo::GithubConfig::from_uri(text); !gh)
        out.push_back(gh.error().to_string());
    if (auto uri = modelrepo::detail::parse_uri(text); !uri)
        out.push_back(uri.error().to_string());
    // redact() reads free text, where whitespace ends a URL: it can only be held to
    // the parser's reading of the password when the input is one word.
    bool one_word = true;
    for (char c : text)
        one_word = one_word && static_cast<unsigned char>(c) > ' ' && c != '\x7f';
    if (one_word)
        out.push_back(modelrepo::redact(text));
    out.push_back(modelrepo::detail::redact_url(text));
    return out;
}

bool any_contains(const std::vector<std::string>& texts, const std::string& needle) {
    for (const auto& t : texts)
        if (t.find(needle) != std::string::npos)
            return true;
    return false;
}

[[noreturn]] void leak(const std::string& input, const std::string& password,
                       const std::vector<std::string>& texts) {
    std::fprintf(stderr, "password %s leaked from input %s into:\n", password.c_str(),
                 input.c_str());
    for (const auto& t : texts)
        if (t.find(password) != std::string::npos)
            std::fprintf(stderr, "  %s\n", t.c_str());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    (void)modelrepo::detail::percent_decode(text);
    auto texts = messages(text);

    PasswordSpan span = password_of(text);
    if (span.at == std::string::npos || span.size == 0)
        return 0;
    std::string password = text.substr(span.at, span.size);

    // The token: the password with each letter and digit replaced (other characters
    // kept in place, so the URL keeps its shape and the library takes the same path
    // through its checks: a password the fuzzer built out of a message's fixed words is
    // then in both runs' messages, a coincidence, not a leak).
    std::string token;
    std::size_t replaced = 0;
    for (std::size_t i = 0; i < span.size; ++i) {
        unsigned char c = static_cast<unsigned char>(password[i]);
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        token.push_back(alnum ? static_cast<char>('Q' + i % 7) : password[i]);
        replaced += alnum;
    }
    if (replaced < 4)
        return 0; // too little of it is distinctive to tell a leak from a coincidence
    std::string masked = text;
    masked.replace(span.at, span.size, token);
    auto masked_texts = messages(masked);
    if (span.size >= 6 && text.find(token) == std::string::npos && masked.find(token) == span.at &&
        masked.find(token, span.at + 1) == std::string::npos && any_contains(masked_texts, token))
        leak(masked, token, masked_texts);

    bool distinctive = span.size >= 6 && text.find(password) == span.at &&
                       text.find(password, span.at + 1) == std::string::npos;
    if (distinctive && any_contains(texts, password) && !any_contains(masked_texts, password))
        leak(text, password, texts);
    return 0;
}
