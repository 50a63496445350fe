// SPDX-License-Identifier: MIT
// libFuzzer target: the snapshot reader must answer every input with a Snapshot or a
// bad_data Error, never crash, hang or leak; what it accepts must round-trip.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <modelrepo/snapshot.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = modelrepo::parse_snapshot(text);
    if (!parsed) {
        if (!parsed.error().is(modelrepo::Errc::bad_data) || parsed.error().message.empty())
            std::abort();
        return 0;
    }
    auto again = modelrepo::parse_snapshot(modelrepo::write_snapshot(parsed.value()));
    if (!again || !(again.value() == parsed.value()))
        std::abort();
    return 0;
}
