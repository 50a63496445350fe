// SPDX-License-Identifier: MIT
#include "http_fetch.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include <curl/curl.h>

namespace modelrepo::detail {

namespace {

/// What to do about a failed TLS handshake, where modelrepo knows.
const char* tls_hint(CURLcode rc) {
    return rc == CURLE_PEER_FAILED_VERIFICATION
               ? " (a server with a private CA: give the source ca_file=FILE)"
               : "";
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
    HttpResponse* response;
    std::size_t limit;
    bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::size_t n = size * count;
    if (t->response->body.size() + n > t->limit) {
        t->too_large = true;
        return 0; // aborts the transfer: nothing past the limit is buffered
    }
    t->response->body.append(data, n);
    return n;
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.pop_back();
    std::size_t start = 0;
    while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start])))
        ++start;
    return s.substr(start);
}

std::optional<long long> number(const std::string& s) {
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str())
        return std::nullopt;
    return v;
}

/// Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3), as seconds from now,
/// within 0..1 day (a longer or garbled value is not trusted to silence the source).
std::optional<long long> retry_after_seconds(const std::string& value) {
    std::optional<long long> seconds = number(value);
    if (!seconds || value.find_first_not_of("0123456789") != std::string::npos) {
        time_t at = curl_getdate(value.c_str(), nullptr);
        if (at < 0)
            return std::nullopt;
        seconds = static_cast<long long>(at) - static_cast<long long>(std::time(nullptr));
    }
    return std::clamp<long long>(*seconds, 0, 86'400);
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::size_t n = size * count;
    std::string line(data, n);
    if (line.starts_with("HTTP/")) {
        // A new response (after a redirect): forget the previous one's headers.
        t->response->etag.clear();
        t->response->retry_after.reset();
        t->response->ratelimit_remaining.reset();
        t->response->ratelimit_reset.reset();
        return n;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos)
        return n;
    std::string name = line.substr(0, colon);
    for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "etag")
        t->response->etag = value;
    else if (name == "retry-after")
        t->response->retry_after = retry_after_seconds(value);
    else if (name == "x-ratelimit-remaining")
        t->response->ratelimit_remaining = number(value);
    else if (name == "x-ratelimit-reset")
        t->response->ratelimit_reset = number(value);
    return n;
}

} // namespace

struct HttpClient::Handle {
    CURL* curl = nullptr;
    ~Handle() {
        if (curl)
            curl_easy_cleanup(curl);
    }
};

HttpClient::HttpClient()
    : handle_(std::make_unique<Handle>()) {
    global_init();
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::send(const HttpRequest& request, const std::string& display_url) {
    if (!handle_->curl)
        handle_->curl = curl_easy_init();
    CURL* curl = handle_->curl;
    if (!curl)
        return make_error(Errc::unreachable, "libcurl could not start a transfer");
    curl_easy_reset(curl); // keeps the connection cache: the handle is reused

    HttpResponse response;
    Transfer transfer{&response, request.max_body_bytes};
    curl_slist* headers = nullptr;
    for (const std::string& h : request.headers)
        headers = curl_slist_append(headers, h.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_guard(headers, curl_slist_free_all);

    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    const bool get = request.method == "GET";
    if (!get)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body->size()));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body->data());
    }
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, get ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, static_cast<long>(request.max_redirects));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, ""); // every encoding libcurl knows
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!request.ca_file.empty())
        curl_easy_setopt(curl, CURLOPT_CAINFO, request.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.max_body_bytes));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);

    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    if (rc == CURLE_OK)
        return response;

    Errc code = Errc::unreachable;
    std::string what;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        code = Errc::timeout;
        what = "no complete answer within " + std::to_string(request.timeout.count()) + " ms";
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        what = "the host name does not resolve";
        break;
    case CURLE_COULDNT_CONNECT:
        what = "connection refused or no route";
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        code = Errc::bad_data;
        what = "the body is larger than the limit of " + std::to_string(request.max_body_bytes) +
               " bytes; the download was stopped";
        break;
    case CURLE_PARTIAL_FILE:
        code = Errc::bad_data;
        what = "the transfer ended before the announced Content-Length (truncated body)";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
        code = Errc::tls_failed;
        what = "TLS failed: " + std::string(curl_easy_strerror(rc)) + tls_hint(rc);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        code = Errc::http_status;
        what = "more than " + std::to_string(request.max_redirects) + " redirects";
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = Errc::invalid_argument;
        what = "the URL is not usable: " + std::string(curl_easy_strerror(rc));
        break;
    default:
        what = curl_easy_strerror(rc);
    }
    if (rc == CURLE_WRITE_ERROR && !transfer.too_large)
        what = curl_easy_strerror(rc);
    Error error = make_error(code, request.method + " " + display_url + ": " + what);
    error.target = display_url;
    return error;
}

} // namespace modelrepo::detail
