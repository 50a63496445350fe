// SPDX-License-Identifier: MIT
// The read commands: stats, models, model, statuses, export.
#include <iostream>

#include "../json_form.hpp"
#include "command.hpp"
#include "progress_line.hpp"
#include "tables.hpp"

namespace modelrepo::cli {

namespace {

/// Writes `text` to `out` a MiB at a time, telling `progress` the bytes written.
void write_with_progress(std::ostream& out, const std::string& text, ProgressLine& progress) {
    constexpr std::size_t chunk = 1 << 20;
    const auto total = static_cast<std::int64_t>(text.size());
    for (std::size_t at = 0; at < text.size() && out; at += chunk) {
        out.write(text.data() + at,
                  static_cast<std::streamsize>(std::min(chunk, text.size() - at)));
        if (progress.shown()) {
            out.flush();
            progress.tell({"bytes written",
                           static_cast<std::int64_t>(std::min(at + chunk, text.size())), total});
        }
    }
    progress.finish();
}

constexpr const char* default_priority = "gpt-5,gpt-4o,claude-sonnet-4-5,gemini-2.5-pro,"
                                         "llama-4-maverick";

} // namespace

Command define_stats(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand("stats", "Counts of models and providers, per health");
    return {sub, [&globals] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                auto stats = sources.value().repo->system_stats();
                if (!stats)
                    return fail(stats.error());
                if (globals.json)
                    print_json(to_json(stats.value()));
                else
                    print_stats(std::cout, stats.value());
                return exit_ok;
            }};
}

Command define_models(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand("models", "List models with provider and status");
    auto priority = std::make_shared<std::vector<std::string>>();
    auto* option = sub->add_option("-p,--priority", *priority,
                                   "Only these slugs, in this order (comma-separated), e.g. " +
                                       std::string(default_priority))
                       ->delimiter(',')
                       ->type_name("SLUG,...");
    return {sub, [&globals, priority, option] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                bool only = option->count() > 0;
                std::string from;
                auto models = answered(sources.value(), from, [&](auto& repo, auto&... p) {
                    return only ? repo.find_models(*priority, p...) : repo.list_models(p...);
                });
                if (!models)
                    return fail(models.error());
                if (only)
                    for (const std::string& slug : *priority) {
                        bool found = false;
                        for (const Model& m : models.value())
                            found = found || m.slug == slug;
                        if (!found)
                            std::cerr << "modelrepo: note: no model '" << slug << "' in "
                                      << sources.value().repo->name() << '\n';
                    }
                if (!globals.json) {
                    print_models(std::cout, models.value(), from);
                    return exit_ok;
                }
                nlohmann::ordered_json out;
                out["source"] = from;
                out["models"] = nlohmann::ordered_json::array();
                for (const Model& m : models.value())
                    out["models"].push_back(to_json(m));
                print_json(out);
                return exit_ok;
            }};
}

Command define_model(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand("model", "One model by slug");
    auto slug = std::make_shared<std::string>();
    sub->add_option("slug", *slug, "Model slug, e.g. gpt-4o")->required();
    return {sub, [&globals, slug] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                std::string from;
                auto model = answered(sources.value(), from, [&](auto& repo, auto&... p) {
                    return repo.find_model(*slug, p...);
                });
                if (!model)
                    return fail(model.error());
                if (!model.value())
                    return fail(
                        make_error(Errc::not_found, "no model '" + *slug + "' in " +
                                                        std::string(sources.value().repo->name()) +
                                                        " (list them with: modelrepo models)"));
                if (!globals.json) {
                    print_model(std::cout, *model.value(), from);
                    return exit_ok;
                }
                nlohmann::ordered_json out = to_json(*model.value());
                out["source"] = from;
                print_json(out);
                return exit_ok;
            }};
}

Command define_statuses(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand("statuses", "Current status of every model");
    auto health = std::make_shared<std::string>();
    sub->add_option("--health", *health, "Only this health")
        ->check(CLI::IsMember({"operational", "degraded", "outage", "unknown"}));
    return {sub, [&globals, health] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                std::string from;
                auto statuses = answered(sources.value(), from, [&](auto& repo, auto&... p) {
                    return repo.list_statuses(p...);
                });
                if (!statuses)
                    return fail(statuses.error());
                std::optional<Health> wanted;
                if (!health->empty())
                    wanted = parse_health(*health);
                std::vector<ModelStatus> shown;
                for (const ModelStatus& s : statuses.value())
                    if (!wanted || s.health == *wanted)
                        shown.push_back(s);
                if (!globals.json) {
                    print_statuses(std::cout, shown, from);
                    return exit_ok;
                }
                nlohmann::ordered_json out;
                out["source"] = from;
                out["statuses"] = nlohmann::ordered_json::array();
                for (const ModelStatus& s : shown)
                    out["statuses"].push_back(to_json(s));
                print_json(out);
                return exit_ok;
            }};
}

Command define_export(CLI::App& app, const Globals& globals) {
    auto* sub = app.add_subcommand("export", "Write the whole catalogue as snapshot JSON "
                                             "(modelrepo.snapshot/1) to stdout");
    return {sub, [&globals] {
                auto sources = open_sources(globals);
                if (!sources)
                    return fail(sources.error());
                std::string from;
                ProgressLine progress("export");
                auto snapshot = answered(sources.value(), from, [&](auto& repo, auto&... p) {
                    return repo.export_snapshot(p...);
                });
                if (snapshot) {
                    const auto models = static_cast<std::int64_t>(snapshot.value().models.size());
                    progress.tell({"models read", models, models});
                }
                if (!snapshot)
                    return fail(snapshot.error());
                write_with_progress(std::cout, write_snapshot(snapshot.value()), progress);
                std::cerr << "modelrepo: exported " << snapshot.value().models.size()
                          << " models from " << from << '\n';
                return exit_ok;
            }};
}

} // namespace modelrepo::cli
