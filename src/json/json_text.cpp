// SPDX-License-Identifier: MIT
// JSON text in nlohmann::json's bytes (see json_text.hpp), written straight into the
// caller's string.
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

#include <modelrepo/json_text.hpp>

namespace modelrepo {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

/// The bytes copied as they are into a JSON string: printable ASCII but '"' and '\\'.
constexpr std::array<bool, 256> plain_table = [] {
    std::array<bool, 256> table{};
    for (int c = 0x20; c < 0x80; ++c)
        table[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    return table;
}();

constexpr bool plain_ascii(unsigned char c) {
    return plain_table[c];
}

/// How many bytes from `at` are plain (plain_ascii), eight at a time while they are.
std::size_t plain_run(const unsigned char* bytes, std::size_t at, std::size_t size) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    auto has_zero = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
    std::size_t i = at;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, bytes + i, 8);
        // A byte at or over 0x80, under 0x20, a '"' or a '\\': not plain.
        if ((w & highs) | ((w - ones * 0x20) & ~w & highs) | has_zero(w ^ (ones * '"')) |
            has_zero(w ^ (ones * '\\')))
            break;
    }
    while (i < size && plain_ascii(bytes[i]))
        ++i;
    return i - at;
}

void append_escape(std::string& out, unsigned char c) {
    switch (c) {
    case '"':
        out += "\\\"";
        return;
    case '\\':
        out += "\\\\";
        return;
    case '\b':
        out += "\\b";
        return;
    case '\f':
        out += "\\f";
        return;
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    case '\t':
        out += "\\t";
        return;
    default:
        out += "\\u00";
        out.push_back(hex_digits[c >> 4]);
        out.push_back(hex_digits[c & 0xF]);
    }
}

/// How many bytes of a well-formed UTF-8 sequence start at `text[at]` (a byte at or over
/// 0x80), or, when it is ill-formed, 0 with `bad` the bytes to replace by one U+FFFD: the
/// lead byte alone when it cannot start a sequence, else the bytes accepted before the
/// one that does not fit (that one is read again, as nlohmann's decoder does). Unicode's
/// table 3-7 of well-formed sequences: no overlong forms, surrogates or code points past
/// U+10FFFF.
std::size_t utf8_sequence(std::string_view text, std::size_t at, std::size_t& bad) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char lead = byte(at);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF; // the second byte's range
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    } else {
        bad = 1;
        return 0;
    }
    for (std::size_t i = 1; i < length; ++i) {
        if (at + i >= text.size()) {
            bad = i; // cut short at the end: what there is, replaced
            return 0;
        }
        unsigned char c = byte(at + i);
        bool fits = i == 1 ? c >= low && c <= high : c >= 0x80 && c <= 0xBF;
        if (!fits) {
            bad = i;
            return 0;
        }
    }
    return length;
}

} // namespace

void append_json_string(std::string& out, std::string_view text) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t size = text.size();
    // Most text needs no escape: one scan, one append.
    std::size_t run = plain_run(bytes, 0, size);
    if (run == size) {
        const std::size_t at = out.size();
        out.resize(at + size + 2);
        char* to = out.data() + at;
        to[0] = '"';
        std::memcpy(to + 1, text.data(), size);
        to[size + 1] = '"';
        return;
    }
    out.push_back('"');
    out.append(text.data(), run);
    std::size_t i = run;
    while (i < text.size()) {
        run = i + plain_run(bytes, i, size);
        out.append(text.data() + i, run - i);
        i = run;
        if (i == text.size())
            break;
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            append_escape(out, c);
            ++i;
            continue;
        }
        std::size_t bad = 0;
        if (std::size_t length = utf8_sequence(text, i, bad)) {
            out.append(text.data() + i, length);
            i += length;
        } else {
            out += replacement;
            i += bad;
        }
    }
    out.push_back('"');
}

void append_json_number(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    // nlohmann's own Grisu2 and layout (what its serializer calls), so that the digits
    // are the ones a tree's dump() has, not merely ones that read back the same.
    char buffer[64];
    char* end = nlohmann::detail::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, end);
}

void append_json_integer(std::string& out, std::int64_t value) {
    char buffer[24];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, end);
}

JsonText& JsonText::key(std::string_view name) {
    separate();
    append_json_string(*out_, name);
    *out_ += indent_ < 0 ? ":" : ": ";
    after_key_ = true;
    return *this;
}

JsonText& JsonText::string(std::string_view text) {
    separate();
    append_json_string(*out_, text);
    return *this;
}

JsonText& JsonText::number(double value) {
    separate();
    append_json_number(*out_, value);
    return *this;
}

JsonText& JsonText::integer(std::int64_t value) {
    separate();
    append_json_integer(*out_, value);
    return *this;
}

JsonText& JsonText::boolean(bool value) {
    separate();
    *out_ += value ? "true" : "false";
    return *this;
}

JsonText& JsonText::null() {
    separate();
    *out_ += "null";
    return *this;
}

JsonText& JsonText::open(char bracket) {
    separate();
    out_->push_back(bracket);
    ++depth_;
    first_ = true;
    return *this;
}

JsonText& JsonText::close(char bracket) {
    --depth_;
    if (!first_ && indent_ >= 0)
        newline(depth_);
    out_->push_back(bracket);
    first_ = false; // the container just closed is a member of the one around it
    return *this;
}

void JsonText::newline(int depth) {
    out_->push_back('\n');
    out_->append(static_cast<std::size_t>(depth * indent_), ' ');
}

} // namespace modelrepo
