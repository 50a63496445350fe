// SPDX-License-Identifier: MIT
// SnapshotReader's SAX handling: where the reader is in the document, each member checked
// as it arrives.
#include "snapshot_reader.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "../core/catalog_view.hpp"

namespace modelrepo::detail {

void SnapshotReader::finish() {
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

bool SnapshotReader::number_unsigned(number_unsigned_t value) {
    Scalar v{Scalar::Kind::integer};
    v.integer_in_range = value <= static_cast<number_unsigned_t>(INT64_MAX);
    v.integer = static_cast<std::int64_t>(value);
    return scalar(v);
}

std::string SnapshotReader::path() const {
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

int SnapshotReader::field_index(std::span<const char* const> fields) const {
    for (std::size_t i = 0; i < fields.size(); ++i)
        if (key_ == fields[i])
            return static_cast<int>(i);
    return -1;
}

std::span<const char* const> SnapshotReader::fields() const {
    switch (list_) {
    case providers:
        return provider_fields;
    case models:
        return model_fields;
    default:
        return status_fields;
    }
}

int SnapshotReader::top_list() const {
    for (int i = 0; i < 3; ++i)
        if (key_ == list_names[i])
            return i;
    return -1;
}

bool SnapshotReader::open_container(bool object) {
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

bool SnapshotReader::close_container() {
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

bool SnapshotReader::close_element() {
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

bool SnapshotReader::scalar(const Scalar& v) {
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

bool SnapshotReader::top_member(const Scalar& v) {
    if (key_ == "format") {
        have_format_ = true;
        if (v.kind != Scalar::Kind::string || *v.string != snapshot_format)
            return fail(path(),
                        "unsupported format " +
                            (v.kind == Scalar::Kind::string ? "\"" + v.string->substr(0, 40) + "\""
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

bool SnapshotReader::expect_string(const Scalar& v, std::string& out, bool non_empty) {
    if (v.kind != Scalar::Kind::string)
        return fail(path(), std::string("expected a string, found ") + v.type_name());
    if (non_empty && v.string->empty())
        return fail(path(), "must not be empty");
    out = std::move(*v.string);
    return true;
}

bool SnapshotReader::expect_number(const Scalar& v, double& out) {
    if (!v.is_number())
        return fail(path(), std::string("expected a number, found ") + v.type_name());
    out = v.number();
    return true;
}

bool SnapshotReader::timestamp(const Scalar& v, Timestamp& out) {
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

bool SnapshotReader::element_member(const Scalar& v) {
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

bool SnapshotReader::provider_member(int field, const Scalar& v) {
    switch (field) {
    case 0:
        return expect_string(v, provider_.slug, true);
    case 1:
        return expect_string(v, provider_.name, false);
    default:
        return expect_string(v, provider_.website, false);
    }
}

bool SnapshotReader::model_member(int field, const Scalar& v) {
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

bool SnapshotReader::status_member(int field, const Scalar& v) {
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

} // namespace modelrepo::detail
