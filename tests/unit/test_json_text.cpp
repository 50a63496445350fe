// SPDX-License-Identifier: MIT
// JSON text written without a tree (json_text.hpp, SnapshotWriter) equals, byte for
// byte, what nlohmann::json's dump() writes for the same values: ill-formed UTF-8,
// control characters, doubles of every magnitude, pretty and one-line layouts, and a
// 10,000-model snapshot whichever size its parts are.
#include <random>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

using namespace modelrepo;
using ojson = nlohmann::ordered_json;

namespace {

std::string dumped(const ojson& value, int indent = -1) {
    return value.dump(indent, ' ', false, ojson::error_handler_t::replace);
}

std::string string_text(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

/// Where `a` and `b` first differ, and what each has there (for a failure's message).
std::string first_difference(const std::string& a, const std::string& b) {
    std::size_t at = 0;
    while (at < a.size() && at < b.size() && a[at] == b[at])
        ++at;
    auto around = [&](const std::string& s) {
        std::size_t from = at < 40 ? 0 : at - 40;
        return s.substr(from, 80);
    };
    return "at byte " + std::to_string(at) + ": '" + around(a) + "' vs '" + around(b) + "'";
}

std::string number_text(double value) {
    std::string out;
    append_json_number(out, value);
    return out;
}

/// The snapshot's tree, as write_snapshot built it before it wrote as it went.
ojson snapshot_tree(const Snapshot& snapshot) {
    ojson root;
    root["format"] = snapshot_format;
    root["generated_at"] = format_timestamp(snapshot.generated_at);
    auto& providers = root["providers"] = ojson::array();
    for (const Provider& p : snapshot.providers)
        providers.push_back({{"slug", p.slug}, {"name", p.name}, {"website", p.website}});
    auto& models = root["models"] = ojson::array();
    for (const Model& m : snapshot.models) {
        ojson out;
        out["slug"] = m.slug;
        out["name"] = m.name;
        out["provider"] = m.provider_slug;
        out["description"] = m.description;
        out["context_window"] = m.context_window ? ojson(*m.context_window) : ojson(nullptr);
        out["active"] = m.active;
        models.push_back(std::move(out));
    }
    auto& statuses = root["statuses"] = ojson::array();
    for (const ModelStatus& s : snapshot.statuses) {
        ojson out;
        out["model"] = s.model_slug;
        out["health"] = std::string(to_string(s.health));
        out["availability"] = s.availability;
        out["latency_ms"] = s.latency_ms ? ojson(*s.latency_ms) : ojson(nullptr);
        out["error_rate"] = s.error_rate;
        out["region"] = s.region;
        out["checked_at"] = format_timestamp(s.checked_at);
        statuses.push_back(std::move(out));
    }
    return root;
}

/// `n` models with awkward text: quotes, control characters, multi-byte UTF-8, and
/// (in descriptions) bytes that are not UTF-8, as an SQL_ASCII database hands them out.
Snapshot awkward_catalogue(int n) {
    Snapshot s;
    s.generated_at = Timestamp(std::chrono::seconds(1'700'000'000));
    s.providers = {{"p0", "Provider \"zero\"", "https://p0.example/\u00e9"}, {"p1", "P1\n\t", ""}};
    std::mt19937 random(7);
    for (int i = 0; i < n; ++i) {
        Model m;
        m.slug = "m" + std::to_string(i);
        m.name = "Model " + std::to_string(i) + " \u6a21\u578b";
        m.provider_slug = i % 2 ? "p1" : "p0";
        m.description = i % 7 == 0 ? std::string("bad \xff\xc3( bytes \\ \x01") : "";
        if (i % 3)
            m.context_window = 1000 * i;
        m.active = i % 5 != 0;
        s.models.push_back(m);
        std::optional<double> latency;
        if (i % 4)
            latency = std::uniform_real_distribution<double>(0, 5000)(random);
        s.statuses.push_back({m.slug, i % 3 ? Health::operational : Health::degraded,
                              std::uniform_real_distribution<double>(0, 1)(random), latency,
                              i % 2 ? 0.0 : 1.0 / (i + 3), i % 2 ? "eu-west" : "",
                              s.generated_at - std::chrono::seconds(i)});
    }
    return s;
}

} // namespace

TEST_CASE("strings: escapes and replaced UTF-8 as nlohmann writes them") {
    const std::vector<std::string> cases = {
        "",
        "plain",
        "quote \" backslash \\ slash /",
        std::string("nul \0 and \x01\x1f\x7f", 12),
        "\b\f\n\r\t",
        "\u00e9\u6a21\U0001F600",
        "\xff",
        "\xc3",             // cut short at the end
        "\xc3(",            // a lead byte whose next byte does not fit: that one read again
        "\xe0\x80\x80",     // overlong
        "\xed\xa0\x80",     // a surrogate
        "\xf4\x90\x80\x80", // past U+10FFFF
        "\xf0\x9f\x98",     // a 4-byte sequence cut short
        "a\xf0\x9f\x98"
        "b\xe2\x82\xac\xc0\xaf",
    };
    for (const auto& text : cases) {
        CAPTURE(text);
        CHECK(string_text(text) == dumped(ojson(text)));
    }
    // Random bytes, mostly from the troublesome ranges.
    std::mt19937 random(1);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int round = 0; round < 20'000; ++round) {
        std::string text(static_cast<std::size_t>(byte(random) % 12), '\0');
        for (char& c : text) {
            int b = byte(random);
            c = static_cast<char>(b < 64 ? 0x80 + b : b < 128 ? 0xC0 + b % 64 : b);
        }
        CAPTURE(round);
        REQUIRE(string_text(text) == dumped(ojson(text)));
    }
}

TEST_CASE("numbers: nlohmann's digits and form at every magnitude") {
    const std::vector<double> cases = {0.0,
                                       -0.0,
                                       1.0,
                                       -1.0,
                                       0.5,
                                       0.99,
                                       0.1,
                                       1e-5,
                                       1e-4,
                                       1.5e-7,
                                       123.25,
                                       1e15,
                                       1e16,
                                       9.99e15,
                                       1e21,
                                       1e100,
                                       1e-300,
                                       5e-324,
                                       1.7976931348623157e308,
                                       12.5,
                                       3.0e7,
                                       0.001,
                                       2.0 / 3.0};
    for (double value : cases) {
        CAPTURE(value);
        CHECK(number_text(value) == dumped(ojson(value)));
    }
    CHECK(number_text(std::nan("")) == "null");
    CHECK(number_text(-INFINITY) == "null");
    std::mt19937_64 random(3);
    for (int round = 0; round < 100'000; ++round) {
        double value;
        switch (round % 3) {
        case 0: // any bit pattern
            do {
                std::uint64_t bits = random();
                std::memcpy(&value, &bits, sizeof value);
            } while (!std::isfinite(value));
            break;
        case 1:
            value = std::uniform_real_distribution<double>(0, 1)(random);
            break;
        default:
            value = std::uniform_real_distribution<double>(0, 10'000)(random);
        }
        CAPTURE(value);
        REQUIRE(number_text(value) == dumped(ojson(value)));
    }
}

TEST_CASE("JsonText: one-line and pretty layouts, empty containers") {
    for (int indent : {-1, 0, 2, 4}) {
        std::string out;
        JsonText json(out, indent);
        json.begin_object();
        json.key("a").begin_array().end_array();
        json.key("b").begin_object().end_object();
        json.key("c").begin_array().integer(1).null().boolean(false).begin_object();
        json.key("d").string("x").key("e").number(0.25).end_object().end_array();
        json.end_object();
        ojson tree = {{"a", ojson::array()},
                      {"b", ojson::object()},
                      {"c", {1, nullptr, false, {{"d", "x"}, {"e", 0.25}}}}};
        CAPTURE(indent);
        CHECK(out == dumped(tree, indent));
    }
}

TEST_CASE("write_snapshot and SnapshotWriter at 10,000 models equal the tree's dump") {
    auto snapshot = std::make_shared<const Snapshot>(awkward_catalogue(10'000));
    ojson tree = snapshot_tree(*snapshot);
    for (int indent : {-1, 2}) {
        CAPTURE(indent);
        std::string expected = dumped(tree, indent) + "\n";
        std::string written = write_snapshot(*snapshot, indent);
        CAPTURE(first_difference(written, expected));
        CHECK(written == expected);
        for (std::size_t about : {std::size_t(1), std::size_t(1000), std::size_t(64 * 1024)}) {
            SnapshotWriter writer(snapshot, indent);
            std::string whole, part;
            std::size_t parts = 0, largest = 0;
            bool more = true;
            while (more) {
                more = writer.next(part, about);
                ++parts;
                largest = std::max(largest, part.size());
                whole += part;
                part.clear();
            }
            CAPTURE(about);
            CHECK(whole == expected);
            CHECK(parts >= expected.size() / (about + 1024));
            CHECK(largest <= about + 1024); // about, plus one entry at most
            CHECK_FALSE(writer.next(part, about));
            CHECK(part.empty());
        }
    }
    // The snapshot still reads back whole.
    auto back = parse_snapshot(write_snapshot(*snapshot, -1));
    REQUIRE(back);
    CHECK(back.value().models.size() == 10'000);
}

TEST_CASE("write_statuses equals the tree's dump") {
    Snapshot s = awkward_catalogue(300);
    ojson tree = snapshot_tree(s)["statuses"];
    CAPTURE(first_difference(statuses_json(s.statuses), dumped(tree)));
    CHECK(statuses_json(s.statuses) == dumped(tree));
    CHECK(statuses_json(s.statuses, 2) == dumped(tree, 2));
    CHECK(statuses_json({}) == "[]");
}
