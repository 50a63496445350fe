// SPDX-License-Identifier: MIT
// JSON text written as it goes, without a document tree: what the snapshot writer and
// serve's streamed answers are made of, for programs that write modelrepo's values into
// answers of their own. The bytes are those nlohmann::json's dump() writes for the same
// values (error_handler_t::replace, ensure_ascii false), so a streamed answer equals the
// one built from a tree.
//
// Thread safety: free functions on the caller's string; a JsonText is one thread's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace modelrepo {

/// Appends `text` quoted as a JSON string: `"` and `\` and control characters escaped
/// (\n, \t, … or \u00XX), every ill-formed UTF-8 sequence replaced by U+FFFD, each as
/// nlohmann::json's replacing error handler does (text from a database need not be
/// UTF-8).
void append_json_string(std::string& out, std::string_view text);

/// Appends `value` as a JSON number, in nlohmann::json's form (its Grisu2 digits, which
/// read back as the same double; a `.0` on whole numbers, `1.0`; an exponent outside
/// 1e-5..1e15, `1e-07`). NaN and the infinities, which JSON lacks, are `null`.
void append_json_number(std::string& out, double value);

/// Appends `value` as a JSON integer.
void append_json_integer(std::string& out, std::int64_t value);

/// A JSON value written member by member into a string, in nlohmann::json's layout:
/// one line (`indent` < 0) or pretty-printed with `indent` spaces per level. The caller
/// keeps the nesting right (a key before each member of an object); nothing is checked.
///
///     JsonText json(out);
///     json.begin_object().key("models").begin_array();
///     ...
///     json.end_array().end_object();
class JsonText {
public:
    explicit JsonText(std::string& out, int indent = -1)
        : out_(&out)
        , indent_(indent) {}

    JsonText& begin_object() { return open('{'); }
    JsonText& end_object() { return close('}'); }
    JsonText& begin_array() { return open('['); }
    JsonText& end_array() { return close(']'); }
    /// The next member's name (in an object).
    JsonText& key(std::string_view name);

    JsonText& string(std::string_view text);
    JsonText& number(double value);
    JsonText& integer(std::int64_t value);
    JsonText& boolean(bool value);
    JsonText& null();

    /// The string being written to.
    std::string& out() noexcept { return *out_; }
    /// Goes on writing into `out` (a writer that hands its text out in parts).
    void write_to(std::string& out) noexcept { out_ = &out; }

private:
    JsonText& open(char bracket);
    JsonText& close(char bracket);
    /// Before a value: the comma and line break it needs (none after a key). Inline: it
    /// comes before every value of every list.
    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (depth_ == 0)
            return;
        if (!first_)
            out_->push_back(',');
        if (indent_ >= 0)
            newline(depth_);
        first_ = false;
    }
    void newline(int depth);

    std::string* out_;
    int indent_;
    int depth_ = 0;
    bool first_ = true;      ///< the innermost open object or array has no member yet
    bool after_key_ = false; ///< the value of a key comes next
};

} // namespace modelrepo
