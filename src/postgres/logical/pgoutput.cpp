// SPDX-License-Identifier: MIT
#include "pgoutput.hpp"

#include <charconv>
#include <cstdio>

namespace modelrepo::detail::logical {

std::string format_lsn(Lsn lsn) {
    char text[32];
    std::snprintf(text, sizeof text, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffu));
    return text;
}

std::optional<Lsn> parse_lsn(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size() || slash > 8 ||
        text.size() - slash - 1 > 8)
        return std::nullopt;
    std::uint32_t high = 0, low = 0;
    auto a = std::from_chars(text.data(), text.data() + slash, high, 16);
    auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), low, 16);
    if (a.ec != std::errc() || a.ptr != text.data() + slash || b.ec != std::errc() ||
        b.ptr != text.data() + text.size())
        return std::nullopt;
    return (static_cast<Lsn>(high) << 32) | low;
}

/// Big-endian reads over one message, each checked against its end.
class Reader {
public:
    explicit Reader(std::span<const char> bytes)
        : bytes_(bytes) {}

    bool ok() const noexcept { return ok_; }
    bool at_end() const noexcept { return at_ == bytes_.size(); }
    std::size_t offset() const noexcept { return at_; }

    std::uint64_t uint(int size) {
        if (!need(static_cast<std::size_t>(size)))
            return 0;
        std::uint64_t value = 0;
        for (int i = 0; i < size; ++i)
            value = (value << 8) | static_cast<unsigned char>(bytes_[at_++]);
        return value;
    }
    std::uint8_t u8() { return static_cast<std::uint8_t>(uint(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(uint(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(uint(4)); }
    std::uint64_t u64() { return uint(8); }
    std::int64_t i64() { return static_cast<std::int64_t>(uint(8)); }
    /// A NUL-terminated string.
    std::string text() {
        if (!ok_)
            return {};
        for (std::size_t end = at_; end < bytes_.size(); ++end)
            if (bytes_[end] == '\0') {
                std::string out(bytes_.data() + at_, end - at_);
                at_ = end + 1;
                return out;
            }
        ok_ = false;
        return {};
    }
    std::string bytes(std::uint32_t size) {
        if (!need(size))
            return {};
        std::string out(bytes_.data() + at_, size);
        at_ += size;
        return out;
    }

private:
    bool need(std::size_t size) {
        if (!ok_ || bytes_.size() - at_ < size)
            ok_ = false;
        return ok_;
    }

    std::span<const char> bytes_;
    std::size_t at_ = 0;
    bool ok_ = true;
};

namespace {

Error bad(char tag, const Reader& in, const std::string& what) {
    std::string name = tag >= 0x20 && tag < 0x7f ? std::string(1, tag) : "0x" + std::to_string(tag);
    return make_error(Errc::bad_data, "pgoutput message '" + name + "' at byte " +
                                          std::to_string(in.offset()) + ": " + what);
}

/// TupleData: the column count, then each column's kind and value.
std::optional<Tuple> read_tuple(Reader& in, std::size_t columns) {
    std::uint16_t count = in.u16();
    if (!in.ok() || count != columns)
        return std::nullopt;
    Tuple tuple;
    tuple.values.resize(count);
    tuple.unchanged.assign(count, false);
    for (std::size_t i = 0; i < count; ++i) {
        switch (in.u8()) {
        case 'n':
            break;
        case 'u':
            tuple.unchanged[i] = true;
            break;
        case 't':
        case 'b': {
            std::uint32_t size = in.u32();
            if (size > (1u << 30)) // a varlena is at most 1 GB
                return std::nullopt;
            tuple.values[i] = in.bytes(size);
            break;
        }
        default:
            return std::nullopt;
        }
        if (!in.ok())
            return std::nullopt;
    }
    return tuple;
}

/// `message`, when `in` was read exactly to its end.
Result<Message> whole(const Reader& in, char tag, Message message) {
    if (!in.ok())
        return bad(tag, in, "it ends early");
    if (!in.at_end())
        return bad(tag, in, "bytes after its end");
    return message;
}

} // namespace

const Relation* PgoutputDecoder::relation(std::uint32_t oid) const {
    auto found = relations_.find(oid);
    return found == relations_.end() ? nullptr : &found->second;
}

Result<Message> PgoutputDecoder::decode_relation(Reader& in, char tag) {
    Relation r;
    r.oid = in.u32();
    r.schema = in.text();
    r.name = in.text();
    r.replica_identity = static_cast<char>(in.u8());
    std::uint16_t count = in.u16();
    for (std::uint16_t i = 0; i < count && in.ok(); ++i) {
        Relation::Column column;
        column.key = (in.u8() & 1) != 0;
        column.name = in.text();
        column.type_oid = in.u32();
        in.u32(); // type modifier
        r.columns.push_back(std::move(column));
    }
    if (!in.ok())
        return bad(tag, in, "it ends early");
    if (!in.at_end())
        return bad(tag, in, "bytes after its end");
    Relation& kept = relations_[r.oid];
    kept = std::move(r);
    return Message(static_cast<const Relation*>(&kept));
}

Result<Message> PgoutputDecoder::decode_change(Reader& in, char tag) {
    std::uint32_t oid = in.u32();
    const Relation* r = relation(oid);
    if (in.ok() && !r)
        return bad(tag, in, "relation " + std::to_string(oid) + " was never described");
    Change change;
    change.kind = tag == 'I'   ? Change::Kind::insert
                  : tag == 'U' ? Change::Kind::update
                               : Change::Kind::delete_;
    change.relation = r;
    char part = static_cast<char>(in.u8());
    if (in.ok() && tag != 'I' && (part == 'K' || part == 'O')) {
        change.old_row = read_tuple(in, r->columns.size());
        if (!change.old_row)
            return bad(tag, in, "its old row is not one of the relation's");
        if (tag == 'U')
            part = static_cast<char>(in.u8());
    } else if (tag == 'D') {
        return bad(tag, in, "a delete without its old row or key");
    }
    if (tag != 'D') {
        if (!in.ok() || part != 'N')
            return bad(tag, in, "no new row");
        change.new_row = read_tuple(in, r->columns.size());
        if (!change.new_row)
            return bad(tag, in, "its new row is not one of the relation's");
    }
    return whole(in, tag, std::move(change));
}

Result<Message> PgoutputDecoder::decode_truncate(Reader& in, char tag, std::size_t size) {
    std::uint32_t count = in.u32();
    std::uint8_t options = in.u8();
    Truncate t;
    t.cascade = (options & 1) != 0;
    t.restart_identity = (options & 2) != 0;
    if (count > size / 4)
        return bad(tag, in, "more relations than bytes");
    for (std::uint32_t i = 0; i < count && in.ok(); ++i) {
        std::uint32_t oid = in.u32();
        const Relation* r = relation(oid);
        if (in.ok() && !r)
            return bad(tag, in, "relation " + std::to_string(oid) + " was never described");
        t.relations.push_back(r);
    }
    return whole(in, tag, std::move(t));
}

Result<Message> PgoutputDecoder::decode(std::span<const char> bytes) {
    Reader in(bytes);
    const char tag = static_cast<char>(in.u8());
    if (!in.ok())
        return make_error(Errc::bad_data, "an empty pgoutput message");
    auto finish = [&](Message message) { return whole(in, tag, std::move(message)); };
    switch (tag) {
    case 'B': {
        if (in_transaction_)
            return bad(tag, in, "a Begin inside a transaction");
        Begin b;
        b.final_lsn = in.u64();
        b.commit_us = in.i64();
        b.xid = in.u32();
        auto out = finish(b);
        if (out)
            in_transaction_ = true;
        return out;
    }
    case 'C': {
        if (!in_transaction_)
            return bad(tag, in, "a Commit outside a transaction");
        in.u8(); // flags: unused
        Commit c;
        c.commit_lsn = in.u64();
        c.end_lsn = in.u64();
        c.commit_us = in.i64();
        auto out = finish(c);
        if (out)
            in_transaction_ = false;
        return out;
    }
    case 'R':
        return decode_relation(in, tag);
    case 'I':
    case 'U':
    case 'D':
        if (!in_transaction_)
            return bad(tag, in, "a change outside a transaction");
        return decode_change(in, tag);
    case 'T':
        if (!in_transaction_)
            return bad(tag, in, "a truncate outside a transaction");
        return decode_truncate(in, tag, bytes.size());
    case 'Y': // a type: the oid, its schema, its name
        in.u32();
        in.text();
        in.text();
        return finish(Other{tag});
    case 'O': // the origin of the changes that follow: its commit LSN and name
        in.u64();
        in.text();
        return finish(Other{tag});
    case 'M': { // a logical decoding message (messages 'true' only)
        in.u8();
        in.u64();
        in.text();
        std::uint32_t size = in.u32();
        in.bytes(size);
        return finish(Other{tag});
    }
    default:
        return bad(tag, in, "not a message of protocol version 1");
    }
}

} // namespace modelrepo::detail::logical
