// SPDX-License-Identifier: MIT
// Reading, validating and writing modelrepo.snapshot/1 (docs/snapshot-format.md).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <modelrepo/json_text.hpp>
#include <modelrepo/snapshot.hpp>

#include "catalog_view.hpp"
#include "files.hpp"

namespace modelrepo {

namespace {

using json = nlohmann::json;

/// Deepest nesting accepted inside an unknown member; a snapshot itself needs 3 levels.
constexpr int max_skipped_depth = 64;

Error bad_data(const std::string& path, std::string_view what) {
    return make_error(Errc::bad_data, path + ": " + std::string(what));
}

std::string at(const char* list, std::size_t index, const char* member) {
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
    void finish() {
        if (error || statuses_only_)
            return;
        if (!have_format_)
            fail("$.format",
                 "required member is missing (expected \"" + std::string(snapshot_format) + "\")");
        else if (!have_generated_at_)
            fail("$.generated_at", "required member is missing");
        else
            for (int list = 0; list < 3; ++list)
                if (!have_list_[list]) {
                    fail(std::string("$.") + list_names[list], "required member is missing");
                    break;
                }
    }

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
    bool number_unsigned(number_unsigned_t value) override {
        Scalar v{Scalar::Kind::integer};
        v.integer_in_range = value <= static_cast<number_unsigned_t>(INT64_MAX);
        v.integer = static_cast<std::int64_t>(value);
        return scalar(v);
    }
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

    std::string path() const {
        switch (level_) {
        case Level::top:
            return "$." + key_;
        case Level::list:
            return element_path();
        case Level::element:
            return element_path() + "." + key_;
        default:
            return "$";
        }
    }

    int field_index(std::span<const char* const> fields) const {
        for (std::size_t i = 0; i < fields.size(); ++i)
            if (key_ == fields[i])
                return static_cast<int>(i);
        return -1;
    }

    std::span<const char* const> fields() const {
        switch (list_) {
        case providers:
            return provider_fields;
        case models:
            return model_fields;
        default:
            return status_fields;
        }
    }

    int top_list() const {
        for (int i = 0; i < 3; ++i)
            if (key_ == list_names[i])
                return i;
        return -1;
    }

    bool open_container(bool object) {
        const char* found = object ? "an object" : "an array";
        if (skip_ > 0) {
            if (++skip_ > max_skipped_depth)
                return fail("$", "JSON nested too deeply");
            return true;
        }
        switch (level_) {
        case Level::before:
            if (statuses_only_) {
                if (object)
                    return fail("$", "expected an array of statuses, found an object");
                level_ = Level::list;
                list_ = statuses;
                index_ = 0;
                return true;
            }
            if (!object)
                return fail("$", "expected an object, found an array");
            level_ = Level::top;
            return true;
        case Level::top:
            if (int list = top_list(); list >= 0) {
                if (object)
                    return fail(path(), "expected an array, found an object");
                level_ = Level::list;
                list_ = static_cast<List>(list);
                have_list_[list] = true;
                index_ = 0;
                return true;
            }
            if (key_ == "format" || key_ == "generated_at")
                return fail(path(), std::string("expected a string, found ") + found);
            skip_ = 1;
            return true;
        case Level::list:
            if (!object)
                return fail(path(), "expected an object, found an array");
            level_ = Level::element;
            seen_ = 0;
            provider_ = Provider{};
            model_ = Model{};
            status_ = ModelStatus{};
            return true;
        case Level::element:
            if (field_index(fields()) >= 0)
                return fail(path(), std::string("expected a scalar value, found ") + found);
            skip_ = 1;
            return true;
        case Level::done:
            break;
        }
        return fail("$", "unexpected content after the document");
    }

    bool close_container() {
        if (skip_ > 0) {
            --skip_;
            return true;
        }
        switch (level_) {
        case Level::element:
            return close_element();
        case Level::list:
            level_ = statuses_only_ ? Level::done : Level::top;
            list_ = none;
            return true;
        case Level::top:
            level_ = Level::done;
            return true;
        default:
            return fail("$", "unbalanced JSON");
        }
    }

    bool close_element() {
        auto names = fields();
        unsigned required = list_ == providers ? provider_required
                            : list_ == models  ? model_required
                                               : status_required;
        for (std::size_t i = 0; i < names.size(); ++i)
            if ((required & (1u << i)) && !(seen_ & (1u << i)))
                return fail(element_path() + "." + names[i], "required member is missing");
        switch (list_) {
        case providers:
            snapshot.providers.push_back(std::move(provider_));
            break;
        case models:
            snapshot.models.push_back(std::move(model_));
            break;
        default:
            snapshot.statuses.push_back(std::move(status_));
            break;
        }
        ++index_;
        level_ = Level::list;
        return true;
    }

    bool scalar(const Scalar& v) {
        if (skip_ > 0)
            return true;
        switch (level_) {
        case Level::before:
            return fail("$", std::string(statuses_only_ ? "expected an array of statuses, found "
                                                        : "expected an object, found ") +
                                 v.type_name());
        case Level::top:
            return top_member(v);
        case Level::list:
            return fail(path(), std::string("expected an object, found ") + v.type_name());
        case Level::element:
            return element_member(v);
        case Level::done:
            break;
        }
        return fail("$", "unexpected content after the document");
    }

    bool top_member(const Scalar& v) {
        if (key_ == "format") {
            have_format_ = true;
            if (v.kind != Scalar::Kind::string || *v.string != snapshot_format)
                return fail(path(), "unsupported format " +
                                        (v.kind == Scalar::Kind::string
                                             ? "\"" + v.string->substr(0, 40) + "\""
                                             : std::string(v.type_name())) +
                                        " (expected \"" + std::string(snapshot_format) + "\")");
            return true;
        }
        if (key_ == "generated_at") {
            have_generated_at_ = true;
            return timestamp(v, snapshot.generated_at);
        }
        if (top_list() >= 0)
            return fail(path(), std::string("expected an array, found ") + v.type_name());
        return true; // unknown member: ignored
    }

    bool expect_string(const Scalar& v, std::string& out, bool non_empty) {
        if (v.kind != Scalar::Kind::string)
            return fail(path(), std::string("expected a string, found ") + v.type_name());
        if (non_empty && v.string->empty())
            return fail(path(), "must not be empty");
        out = std::move(*v.string);
        return true;
    }

    bool expect_number(const Scalar& v, double& out) {
        if (!v.is_number())
            return fail(path(), std::string("expected a number, found ") + v.type_name());
        out = v.number();
        return true;
    }

    bool timestamp(const Scalar& v, Timestamp& out) {
        if (v.kind != Scalar::Kind::string)
            return fail(path(), std::string("expected a string, found ") + v.type_name());
        auto t = parse_timestamp(*v.string);
        if (!t)
            return fail(path(), "'" + v.string->substr(0, 40) +
                                    "' is not an RFC 3339 UTC timestamp (expected e.g. "
                                    "2026-11-24T09:30:00Z)");
        out = *t;
        return true;
    }

    bool element_member(const Scalar& v) {
        int field = field_index(fields());
        if (field < 0)
            return true; // unknown member: ignored
        seen_ |= 1u << field;
        switch (list_) {
        case providers:
            return provider_member(field, v);
        case models:
            return model_member(field, v);
        default:
            return status_member(field, v);
        }
    }

    bool provider_member(int field, const Scalar& v) {
        switch (field) {
        case 0:
            return expect_string(v, provider_.slug, true);
        case 1:
            return expect_string(v, provider_.name, false);
        default:
            return expect_string(v, provider_.website, false);
        }
    }

    bool model_member(int field, const Scalar& v) {
        switch (field) {
        case 0:
            return expect_string(v, model_.slug, true);
        case 1:
            return expect_string(v, model_.name, false);
        case 2:
            return expect_string(v, model_.provider_slug, true);
        case 3:
            return expect_string(v, model_.description, false);
        case 4:
            if (v.kind != Scalar::Kind::boolean)
                return fail(path(), std::string("expected a boolean, found ") + v.type_name());
            model_.active = v.boolean;
            return true;
        default:
            if (v.kind == Scalar::Kind::null)
                return true;
            if (v.kind != Scalar::Kind::integer)
                return fail(path(), std::string("expected an integer, found ") + v.type_name());
            if (!v.integer_in_range)
                return fail(path(), "integer out of range");
            model_.context_window = v.integer;
            return true;
        }
    }

    bool status_member(int field, const Scalar& v) {
        switch (field) {
        case 0:
            return expect_string(v, status_.model_slug, true);
        case 1: {
            if (v.kind != Scalar::Kind::string)
                return fail(path(), std::string("expected a string, found ") + v.type_name());
            auto h = parse_health(*v.string);
            if (!h)
                return fail(path(), "'" + v.string->substr(0, 40) +
                                        "' is not a health (operational, degraded, outage, "
                                        "unknown)");
            status_.health = *h;
            return true;
        }
        case 2:
            return expect_number(v, status_.availability);
        case 3:
            return expect_number(v, status_.error_rate);
        case 4:
            return timestamp(v, status_.checked_at);
        case 5: {
            if (v.kind == Scalar::Kind::null)
                return true;
            double ms = 0;
            if (!expect_number(v, ms))
                return false;
            status_.latency_ms = ms;
            return true;
        }
        default:
            return expect_string(v, status_.region, false);
        }
    }

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

void write_status(JsonText& json, const ModelStatus& status) {
    json.begin_object();
    json.key("model").string(status.model_slug);
    json.key("health").string(to_string(status.health));
    json.key("availability").number(status.availability);
    json.key("latency_ms");
    if (status.latency_ms)
        json.number(*status.latency_ms);
    else
        json.null();
    json.key("error_rate").number(status.error_rate);
    json.key("region").string(status.region);
    json.key("checked_at").string(format_timestamp(status.checked_at));
    json.end_object();
}

} // namespace

Snapshot sorted_by_slug(Snapshot s) {
    std::sort(s.providers.begin(), s.providers.end(),
              [](const Provider& a, const Provider& b) { return a.slug < b.slug; });
    std::sort(s.models.begin(), s.models.end(),
              [](const Model& a, const Model& b) { return a.slug < b.slug; });
    std::sort(s.statuses.begin(), s.statuses.end(), [](const ModelStatus& a, const ModelStatus& b) {
        return a.model_slug < b.model_slug;
    });
    return s;
}

Result<void> validate(const Snapshot& snapshot) {
    std::unordered_set<std::string_view> providers;
    for (std::size_t i = 0; i < snapshot.providers.size(); ++i) {
        const Provider& p = snapshot.providers[i];
        if (p.slug.empty())
            return bad_data(at("providers", i, "slug"), "must not be empty");
        if (!providers.insert(p.slug).second)
            return bad_data(at("providers", i, "slug"), "duplicate provider slug '" + p.slug + "'");
    }
    std::unordered_set<std::string_view> models;
    for (std::size_t i = 0; i < snapshot.models.size(); ++i) {
        const Model& m = snapshot.models[i];
        if (m.slug.empty())
            return bad_data(at("models", i, "slug"), "must not be empty");
        if (!models.insert(m.slug).second)
            return bad_data(at("models", i, "slug"), "duplicate model slug '" + m.slug + "'");
        if (!providers.contains(m.provider_slug))
            return bad_data(at("models", i, "provider"),
                            "unknown provider '" + m.provider_slug + "' (not in $.providers)");
        if (m.context_window && *m.context_window <= 0)
            return bad_data(at("models", i, "context_window"), "must be positive");
    }
    std::unordered_set<std::string_view> with_status;
    for (std::size_t i = 0; i < snapshot.statuses.size(); ++i) {
        const ModelStatus& s = snapshot.statuses[i];
        if (!models.contains(s.model_slug))
            return bad_data(at("statuses", i, "model"),
                            "status for unknown model '" + s.model_slug + "' (not in $.models)");
        if (!with_status.insert(s.model_slug).second)
            return bad_data(at("statuses", i, "model"),
                            "second status for model '" + s.model_slug + "'");
        if (auto problem = detail::check_status(s))
            return bad_data(at("statuses", i, std::string(problem->member).c_str()), problem->what);
    }
    return success();
}

Result<std::vector<ModelStatus>> parse_statuses(std::string_view text) {
    SnapshotReader reader(SnapshotReader::Mode::statuses);
    bool complete = json::sax_parse(text, &reader, json::input_format_t::json, true);
    if (reader.error)
        return *reader.error;
    if (!complete)
        return make_error(Errc::bad_data, "$: malformed JSON");
    auto& statuses = reader.snapshot.statuses;
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (auto problem = detail::check_status(statuses[i]))
            return bad_data("$[" + std::to_string(i) + "]." + std::string(problem->member),
                            problem->what);
    return std::move(statuses);
}

std::string write_statuses(std::span<const ModelStatus> statuses, int indent) {
    std::string out;
    JsonText json(out, indent);
    json.begin_array();
    for (const ModelStatus& s : statuses)
        write_status(json, s);
    json.end_array();
    return out;
}

Result<Snapshot> parse_snapshot(std::string_view text) {
    SnapshotReader reader;
    bool complete = json::sax_parse(text, &reader, json::input_format_t::json, true);
    if (complete)
        reader.finish();
    if (reader.error)
        return *reader.error;
    if (!complete)
        return make_error(Errc::bad_data, "$: malformed JSON");
    if (auto valid = validate(reader.snapshot); !valid)
        return valid.error();
    return std::move(reader.snapshot);
}

Result<Snapshot> read_snapshot_file(const std::filesystem::path& path) {
    auto content = detail::read_file_limited(path, max_snapshot_file_bytes);
    if (!content) {
        Error error = std::move(content).error();
        error.message = "cannot read snapshot file: " + error.message;
        return error;
    }
    auto snapshot = parse_snapshot(content.value());
    if (!snapshot) {
        Error error = snapshot.error();
        error.target = path.string();
        error.message = path.string() + ": " + error.message;
        return error;
    }
    return snapshot;
}

SnapshotWriter::SnapshotWriter(std::shared_ptr<const Snapshot> snapshot, int indent)
    : snapshot_(std::move(snapshot))
    , json_(scratch_, indent) {}

bool SnapshotWriter::next(std::string& out, std::size_t about) {
    json_.write_to(out);
    const Snapshot& s = *snapshot_;
    const std::size_t stop = out.size() + about;
    while (out.size() < stop) {
        switch (part_) {
        case Part::head:
            json_.begin_object();
            json_.key("format").string(snapshot_format);
            json_.key("generated_at").string(format_timestamp(s.generated_at));
            json_.key("providers").begin_array();
            part_ = Part::providers;
            break;
        case Part::providers:
            if (at_ == s.providers.size()) {
                json_.end_array().key("models").begin_array();
                part_ = Part::models;
                at_ = 0;
                break;
            }
            {
                const Provider& p = s.providers[at_++];
                json_.begin_object();
                json_.key("slug").string(p.slug);
                json_.key("name").string(p.name);
                json_.key("website").string(p.website);
                json_.end_object();
            }
            break;
        case Part::models:
            if (at_ == s.models.size()) {
                json_.end_array().key("statuses").begin_array();
                part_ = Part::statuses;
                at_ = 0;
                break;
            }
            {
                const Model& m = s.models[at_++];
                json_.begin_object();
                json_.key("slug").string(m.slug);
                json_.key("name").string(m.name);
                json_.key("provider").string(m.provider_slug);
                json_.key("description").string(m.description);
                json_.key("context_window");
                if (m.context_window)
                    json_.integer(*m.context_window);
                else
                    json_.null();
                json_.key("active").boolean(m.active);
                json_.end_object();
            }
            break;
        case Part::statuses:
            if (at_ == s.statuses.size()) {
                json_.end_array().end_object();
                out.push_back('\n');
                part_ = Part::done;
                return false;
            }
            write_status(json_, s.statuses[at_++]);
            break;
        case Part::done:
            return false;
        }
    }
    return true;
}

std::string write_snapshot(const Snapshot& snapshot, int indent) {
    // Not owned: the writer is done before this returns.
    SnapshotWriter writer(std::shared_ptr<const Snapshot>(std::shared_ptr<void>(), &snapshot),
                          indent);
    std::string text;
    while (writer.next(text, std::size_t(-1) / 2)) {
    }
    return text;
}

Result<void> write_snapshot_file(const Snapshot& snapshot, const std::filesystem::path& path) {
    return detail::write_file_atomically(path, write_snapshot(snapshot));
}

} // namespace modelrepo
