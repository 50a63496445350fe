// SPDX-License-Identifier: MIT
// SnapshotReader: a modelrepo.snapshot/1 document (or a bare array of statuses) read
// straight from nlohmann/json's SAX events into a Snapshot, each problem reported with its
// JSON path. For src/json only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <modelrepo/snapshot.hpp>

namespace modelrepo::detail {

using json = nlohmann::json;

/// Deepest nesting accepted inside an unknown member; a snapshot itself needs 3 levels.
inline constexpr int max_skipped_depth = 64;

inline Error bad_data(const std::string& path, std::string_view what) {
    return make_error(Errc::bad_data, path + ": " + std::string(what));
}

inline std::string at(const char* list, std::size_t index, const char* member) {
    return std::string("$.") + list + "[" + std::to_string(index) + "]." + member;
}

/// A scalar JSON value as the SAX events deliver it.
struct Scalar {
    enum class Kind { null, boolean, integer, floating, string } kind;
    bool boolean = false;
    std::int64_t integer = 0;
    bool integer_in_range = true;
    double floating = 0.0;
    std::string* string = nullptr; ///< the parser's buffer; may be moved from

    const char* type_name() const {
        switch (kind) {
        case Kind::null:
            return "null";
        case Kind::boolean:
            return "a boolean";
        case Kind::integer:
            return "an integer";
        case Kind::floating:
            return "a number";
        case Kind::string:
            break;
        }
        return "a string";
    }
    bool is_number() const { return kind == Kind::integer || kind == Kind::floating; }
    double number() const {
        return kind == Kind::integer ? static_cast<double>(integer) : floating;
    }
};

/// Builds a Snapshot straight from the parser's SAX events, without a document tree.
/// Tracks where it is (top level, which list, which element, which member) so that the
/// first problem is reported with its JSON path; unknown members, however nested, are
/// skipped.
class SnapshotReader final : public nlohmann::json_sax<json> {
public:
    /// A whole snapshot, or a bare JSON array of statuses (the write path's input).
    enum class Mode { snapshot, statuses };
    explicit SnapshotReader(Mode mode = Mode::snapshot)
        : statuses_only_(mode == Mode::statuses) {}

    std::optional<Error> error;
    Snapshot snapshot; ///< with Mode::statuses, only `statuses`

    /// Checks what only the end of the document can tell.
    void finish();

    bool null() override { return scalar({Scalar::Kind::null}); }
    bool boolean(bool value) override {
        Scalar v{Scalar::Kind::boolean};
        v.boolean = value;
        return scalar(v);
    }
    bool number_integer(number_integer_t value) override {
        Scalar v{Scalar::Kind::integer};
        v.integer = value;
        return scalar(v);
    }
    bool number_unsigned(number_unsigned_t value) override;
    bool number_float(number_float_t value, const string_t&) override {
        Scalar v{Scalar::Kind::floating};
        v.floating = value;
        return scalar(v);
    }
    bool string(string_t& value) override {
        Scalar v{Scalar::Kind::string};
        v.string = &value;
        return scalar(v);
    }
    bool binary(binary_t&) override { return fail(path(), "binary values are not JSON"); }

    bool start_object(std::size_t) override { return open_container(true); }
    bool start_array(std::size_t) override { return open_container(false); }
    bool end_object() override { return close_container(); }
    bool end_array() override { return close_container(); }

    bool key(string_t& name) override {
        if (skip_ == 0)
            key_ = std::move(name);
        return true;
    }

    bool parse_error(std::size_t byte, const std::string&,
                     const nlohmann::detail::exception& e) override {
        return fail("$", "malformed JSON at byte " + std::to_string(byte) + ": " +
                             std::string(e.what()).substr(0, 200));
    }

private:
    static constexpr const char* list_names[] = {"providers", "models", "statuses"};
    enum class Level { before, top, list, element, done };
    enum List { providers = 0, models = 1, statuses = 2, none = 3 };

    // Fields of each element kind, in the order a missing one is reported; the bit of
    // a field is 1 << its index.
    static constexpr const char* provider_fields[] = {"slug", "name", "website"};
    static constexpr unsigned provider_required = 0b011;
    static constexpr const char* model_fields[] = {"slug",        "name",   "provider",
                                                   "description", "active", "context_window"};
    static constexpr unsigned model_required = 0b000111;
    static constexpr const char* status_fields[] = {
        "model", "health", "availability", "error_rate", "checked_at", "latency_ms", "region"};
    static constexpr unsigned status_required = 0b0011111;

    bool fail(const std::string& where, std::string_view what) {
        if (!error)
            error = bad_data(where, what);
        return false;
    }

    std::string element_path() const {
        if (statuses_only_)
            return "$[" + std::to_string(index_) + "]";
        return std::string("$.") + list_names[list_] + "[" + std::to_string(index_) + "]";
    }

    std::string path() const;

    int field_index(std::span<const char* const> fields) const;

    std::span<const char* const> fields() const;

    int top_list() const;

    bool open_container(bool object);

    bool close_container();

    bool close_element();

    bool scalar(const Scalar& v);

    bool top_member(const Scalar& v);

    bool expect_string(const Scalar& v, std::string& out, bool non_empty);

    bool expect_number(const Scalar& v, double& out);

    bool timestamp(const Scalar& v, Timestamp& out);

    bool element_member(const Scalar& v);

    bool provider_member(int field, const Scalar& v);

    bool model_member(int field, const Scalar& v);

    bool status_member(int field, const Scalar& v);

    Level level_ = Level::before;
    List list_ = none;
    std::size_t index_ = 0;
    std::string key_;
    int skip_ = 0; ///< depth inside an unknown member being skipped
    unsigned seen_ = 0;
    bool have_format_ = false;
    bool have_generated_at_ = false;
    bool have_list_[3] = {false, false, false};
    Provider provider_;
    Model model_;
    ModelStatus status_;
    const bool statuses_only_;
};

} // namespace modelrepo::detail
