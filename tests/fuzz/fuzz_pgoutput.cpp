// SPDX-License-Identifier: MIT
// libFuzzer target: the pgoutput decoder and the replication stream's framing must answer
// any bytes with a message or a typed Error (Errc::bad_data), never read past a message,
// and every change they let through must fit the relation it names. The input is a series
// of messages, each after a two-byte big-endian length, given to one decoder in turn (so
// relations told earlier are known to the changes after them). Each decoded row is also
// read as a status (the row path's decoder), and each value as a timestamp.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "postgres/logical/pgoutput.hpp"
#include "postgres/logical/status_rows.hpp"
#include "postgres/logical/wal_stream.hpp"

using namespace modelrepo;
using namespace modelrepo::detail::logical;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* bytes = reinterpret_cast<const char*>(data);
    (void)parse_copy_data(std::span<const char>(bytes, size));
    PgoutputDecoder decoder;
    std::size_t at = 0;
    while (size - at >= 2) {
        std::size_t length = (static_cast<std::size_t>(data[at]) << 8) | data[at + 1];
        at += 2;
        if (length > size - at)
            length = size - at;
        // A copy of exactly the message's bytes: reading past them is ASan's to find.
        std::vector<char> message(bytes + at, bytes + at + length);
        at += length;
        auto decoded = decoder.decode(message);
        if (!decoded) {
            if (!decoded.error().is(Errc::bad_data))
                std::abort();
            continue;
        }
        if (auto* change = std::get_if<Change>(&decoded.value())) {
            if (!change->relation)
                std::abort();
            const std::size_t columns = change->relation->columns.size();
            for (const auto* row : {&change->old_row, &change->new_row})
                if (*row &&
                    ((*row)->values.size() != columns || (*row)->unchanged.size() != columns))
                    std::abort();
            for (const auto* row : {&change->old_row, &change->new_row}) {
                if (!*row)
                    continue;
                (void)status_of_row(*change->relation, **row);
                for (const auto& value : (*row)->values)
                    if (value)
                        (void)parse_timestamptz(*value);
            }
        }
    }
    return 0;
}
