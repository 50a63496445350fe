// SPDX-License-Identifier: MIT
// A throwaway certificate authority for tests that speak TLS (serve's HTTPS, a source
// that trusts a private CA), made with Debian's openssl.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "process.hpp"
#include "temp_dir.hpp"

namespace modelrepo::test {

/// A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost, made with
/// Debian's openssl; `serial` tells one issue from another.
struct Certificates {
    std::string ca, cert, key;
};
inline Certificates make_certificates(const TempDir& dir, const std::string& name, int serial) {
    auto at = [&](const std::string& file) { return (dir.path() / (name + file)).string(); };
    auto run = [](std::vector<std::string> argv) {
        auto r = run_process(argv, {}, std::chrono::seconds(60));
        REQUIRE_MESSAGE(r.exit_code == 0, argv[1] << ": " << r.err);
    };
    if (!std::filesystem::exists(dir.path() / "ca.pem")) {
        run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=modelrepo test CA", "-keyout", (dir.path() / "ca.key").string(), "-out",
             (dir.path() / "ca.pem").string()});
    }
    run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
         at(".key"), "-out", at(".csr")});
    std::ofstream(at(".ext")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    run({"openssl", "x509", "-req", "-in", at(".csr"), "-CA", (dir.path() / "ca.pem").string(),
         "-CAkey", (dir.path() / "ca.key").string(), "-set_serial", std::to_string(serial), "-days",
         "2", "-extfile", at(".ext"), "-out", at(".pem")});
    return {(dir.path() / "ca.pem").string(), at(".pem"), at(".key")};
}

} // namespace modelrepo::test
