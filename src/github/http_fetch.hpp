// SPDX-License-Identifier: MIT
// One HTTP request with libcurl, as the GitHub backend (GET) and `publish` (GET, PUT)
// need it. Nothing of libcurl crosses this header.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <modelrepo/error.hpp>

namespace modelrepo::detail {

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    std::optional<std::string> body;  ///< sent as is (set Content-Type in `headers`)
    std::vector<std::string> headers; ///< "Name: value"
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds timeout{10'000};
    std::size_t max_body_bytes = 16 * 1024 * 1024;
    int max_redirects = 3;
    std::string ca_file; ///< CURLOPT_CAINFO when not empty
};

struct HttpResponse {
    long status = 0;
    std::string body;
    std::string etag;                     ///< exactly as received, quotes included
    std::optional<long long> retry_after; ///< seconds, from Retry-After
    std::optional<long long> ratelimit_remaining;
    std::optional<long long> ratelimit_reset; ///< epoch seconds, from X-RateLimit-Reset
};

/// A reusable transfer (one curl easy handle). Not thread-safe: one fetch at a time.
class HttpClient {
public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    /// Any HTTP status is a response; transport failures are errors: timeout,
    /// unreachable (DNS, refused), tls_failed, bad_data (body over the limit, or shorter
    /// than its Content-Length). `display_url` goes into messages instead of the URL.
    /// Redirects are followed for GET only.
    Result<HttpResponse> send(const HttpRequest& request, const std::string& display_url);
    /// send(), for a request whose method is GET.
    Result<HttpResponse> get(const HttpRequest& request, const std::string& display_url) {
        return send(request, display_url);
    }

private:
    struct Handle;
    std::unique_ptr<Handle> handle_;
};

} // namespace modelrepo::detail
