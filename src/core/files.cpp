// SPDX-License-Identifier: MIT
#include "files.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace modelrepo::detail {

namespace {

Error io_error(const std::string& what, const std::filesystem::path& path, int error_number) {
    Error error = make_error(Errc::io_error,
                             what + " '" + path.string() + "': " + std::strerror(error_number));
    error.target = path.string();
    return error;
}

} // namespace

std::string fnv1a_hex(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text)
        h = (h ^ c) * 1099511628211ull;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content,
                                   bool durable) {
    std::filesystem::path dir = path.parent_path();
    std::string temp = (dir / (path.filename().string() + ".tmp.XXXXXX")).string();
    int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0)
        return io_error("cannot create a temporary file beside", path, errno);
    auto fail = [&](const char* what) {
        int saved = errno;
        ::close(fd);
        ::unlink(temp.c_str());
        return io_error(what, path, saved);
    };
    for (std::size_t done = 0; done < content.size();) {
        ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("cannot write");
        done += static_cast<std::size_t>(n);
    }
    if (durable && ::fsync(fd) != 0)
        return fail("cannot fsync");
    // mkstemp makes it 0600; a snapshot is no secret, keep the usual mode.
    ::fchmod(fd, 0644);
    if (::close(fd) != 0) {
        int saved = errno;
        ::unlink(temp.c_str());
        return io_error("cannot close", path, saved);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        int saved = errno;
        ::unlink(temp.c_str());
        return io_error("cannot rename the temporary file onto", path, saved);
    }
    if (durable) {
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    return success();
}

Result<std::string> read_file_limited(const std::filesystem::path& path, std::size_t limit,
                                      Links links) {
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (links == Links::refuse ? O_NOFOLLOW : 0);
    int fd = ::open(path.c_str(), flags);
    if (fd < 0 && errno == ELOOP && links == Links::refuse) {
        Error error = make_error(Errc::io_error, "'" + path.string() +
                                                     "' is a symbolic link; modelrepo reads "
                                                     "only the regular file it wrote there");
        error.target = path.string();
        return error;
    }
    if (fd < 0)
        return io_error("cannot open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bool stat_failed = st.st_mode == 0;
        int saved = errno;
        ::close(fd);
        if (stat_failed)
            return io_error("cannot stat", path, saved);
        Error error = make_error(Errc::io_error,
                                 "'" + path.string() + "' is not a regular file (" +
                                     (S_ISFIFO(st.st_mode)                         ? "a FIFO"
                                      : S_ISDIR(st.st_mode)                        ? "a directory"
                                      : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                                   : "a socket") +
                                     "); not read");
        error.target = path.string();
        return error;
    }
    // Reads of a regular file do not block; the flag only kept open() from waiting.
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    std::string content;
    char buffer[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            return io_error("cannot read", path, saved);
        }
        if (n == 0)
            break;
        if (content.size() + static_cast<std::size_t>(n) > limit) {
            ::close(fd);
            Error error =
                make_error(Errc::bad_data, "'" + path.string() + "' is larger than " +
                                               std::to_string(limit) + " bytes; not read");
            error.target = path.string();
            return error;
        }
        content.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return content;
}

} // namespace modelrepo::detail
