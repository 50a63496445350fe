// SPDX-License-Identifier: MIT
#include "inspections.hpp"

#include "../../json_form.hpp"

namespace modelrepo::serve {

using ojson = nlohmann::ordered_json;
using std::chrono::system_clock;

namespace {

ojson failed_check(const std::string& name, const std::string& detail) {
    return ojson{
        {"scope", "url"}, {"name", name}, {"status", "fail"}, {"detail", detail}, {"fix", ""}};
}

} // namespace

ojson doctor_json(const std::string& source, Errc error, const std::string& url,
                  const std::string& admin_url) {
    ojson d{{"source", source},
            {"ran_at", format_timestamp(system_clock::now())},
            {"error", std::string(to_string(error))},
            {"admin", !admin_url.empty()}};
#if MODELREPO_HAS_POSTGRES
    auto report = diagnose_postgres(url, admin_url);
    if (!report) {
        d["checks"] = ojson::array();
        d["failed"] = ojson::array({failed_check("parse", report.error().message)});
        return d;
    }
    ojson checks = ojson::array(), failed = ojson::array();
    for (const DoctorCheck& c : report.value().checks) {
        ojson entry{{"scope", c.scope},
                    {"name", c.name},
                    {"status", std::string(to_string(c.status))},
                    {"detail", c.detail},
                    {"fix", c.fix}};
        if (c.status == DoctorCheck::Status::fail)
            failed.push_back(entry);
        checks.push_back(std::move(entry));
    }
    d["failed"] = std::move(failed);
    d["checks"] = std::move(checks);
#else
    (void)url;
    d["checks"] = ojson::array();
    d["failed"] =
        ojson::array({failed_check("support", "this build of modelrepo has no PostgreSQL")});
#endif
    return d;
}

std::string first_finding(const ojson& diagnosis) {
    for (const auto& c : diagnosis.value("failed", ojson::array()))
        if (!c.value("detail", "").empty())
            return c["detail"].get<std::string>() +
                   (c.value("fix", "").empty() ? "" : " Fix: " + c["fix"].get<std::string>());
    return {};
}

ojson future_statuses_in(FallbackRepository& chain) {
    auto limit = system_clock::now() + default_max_clock_skew;
    std::int64_t count = 0;
    std::optional<Timestamp> latest;
    ojson models = ojson::array();
    auto note = [&](const ModelStatus& s) {
        if (s.checked_at <= limit)
            return;
        ++count;
        if (!latest || s.checked_at > *latest)
            latest = s.checked_at;
        if (models.size() < 5)
            models.push_back(s.model_slug);
    };
    if (chain.reads_from_memory()) {
        if (auto shared = chain.share_models())
            for (const Model* m : shared.value().models)
                if (m->status)
                    note(*m->status);
    } else if (auto statuses = chain.list_statuses()) {
        for (const auto& s : statuses.value())
            note(s);
    }
    if (count == 0)
        return nullptr;
    return ojson{{"count", count},
                 {"latest", format_timestamp(*latest)},
                 {"models", std::move(models)},
                 {"fix", "modelrepo doctor names them with the UPDATE that dates them now"}};
}

} // namespace modelrepo::serve
