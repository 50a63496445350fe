// SPDX-License-Identifier: MIT
// libFuzzer target: URI parsing of open() and of the backends' configurations must
// answer every input with a value or a typed Error, and never put the URL's password
// into a message.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <modelrepo/github_repository.hpp>
#include <modelrepo/postgres_repository.hpp>

#include "core/uri.hpp"

namespace {

/// The password as a URL parser reads it: userinfo "user:PASSWORD@" of the authority.
std::string password_of(const std::string& text) {
    auto uri = modelrepo::detail::parse_uri(text);
    if (!uri)
        return {};
    const std::string& authority = uri.value().authority;
    auto at = authority.rfind('@');
    if (at == std::string::npos)
        return {};
    auto colon = authority.find(':');
    if (colon == std::string::npos || colon > at)
        return {};
    return authority.substr(colon + 1, at - colon - 1);
}

void check(const modelrepo::Error& error, const std::string& password) {
    if (password.size() >= 6 && error.message.find(password) != std::string::npos)
        std::abort(); // a password reached a message
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    std::string password = password_of(text);
    // A password whose text also stands elsewhere in the input (as a user or host name)
    // cannot be told apart there; only a password that occurs once is checked.
    if (!password.empty() && text.find(password) != text.rfind(password))
        password.clear();
    // Checked: printable passwords without blanks and without the mask's own "***"
    // (an input holding "***" makes the masked text look like its password).
    for (char c : password)
        if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
            password.clear();
    if (password.find("***") != std::string::npos)
        password.clear();
    (void)modelrepo::detail::percent_decode(text);
    if (auto pg = modelrepo::PostgresConfig::from_url(text); !pg)
        check(pg.error(), password);
    if (auto gh = modelrepo::GithubConfig::from_uri(text); !gh)
        check(gh.error(), password);
    // Free-text redaction stops at quotes and blanks (it reads prose); messages that
    // quote a URI use redact_url, checked above through the parsers' errors. Here only
    // that it never crashes, and that redact_url hides what the parser calls a password.
    (void)modelrepo::redact(text);
    if (password.size() >= 6 &&
        modelrepo::detail::redact_url(text).find(password) != std::string::npos)
        std::abort();
    return 0;
}
