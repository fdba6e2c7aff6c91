#include "cli/alerts.h"

#include <cstdio>
#include <optional>
#include <string>

#include "cli/cli.h"
#include "cli/format.h"
#include "common/json.h"

namespace ym::cli {
namespace {

std::optional<json::Value> Member(const json::Value& obj, std::string_view name) {
  for (const auto& m : obj) {
    if (m.name.GetString() == name) return m.value;
  }
  return std::nullopt;
}

std::string Text(const json::Value& obj, std::string_view name) {
  auto v = Member(obj, name);
  return v && v->IsString() ? std::string(v->GetString()) : "-";
}

std::string Time(const json::Value& obj, std::string_view name) {
  auto v = Member(obj, name);
  return v && v->AsInt64() ? FormatTime(*v->AsInt64()) : "-";
}

std::string Number(const json::Value& obj, std::string_view name) {
  auto v = Member(obj, name);
  if (!v || !v->AsDouble()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", *v->AsDouble());
  return buf;
}

}  // namespace

int PrintAlerts(std::string_view body, std::ostream& out, std::ostream& err) {
  auto doc = json::Document::Parse(body);
  std::optional<json::Value> rules;
  if (doc.ok() && doc->root().IsObject()) rules = Member(doc->root(), "alerts");
  if (!rules || !rules->IsArray()) {
    err << "error: GET /v1/alerts: unexpected reply: " << Clip(body, 200) << '\n';
    return kExitServerError;
  }
  if (rules->Empty()) {
    out << "no alert rules (they are [[alerts]] tables of the server's config file)\n";
    return kExitOk;
  }
  Table t({"RULE", "QUEUE", "CONDITION", "STATE", "SINCE", "VALUE", "LAST EVENT", "JOBS"},
          {false, false, false, false, false, true, false, false});
  for (const auto& r : *rules) {
    const json::Value rule = r.value;
    const std::string name = Text(rule, "name");
    const std::string condition = Text(rule, "condition");
    auto instances = Member(rule, "instances");
    if (!instances || instances->Empty()) {
      t.AddRow({name, Text(rule, "queue"), condition, "-", "-", "-", "-", "-"});
      continue;
    }
    for (const auto& i : *instances) {
      const json::Value inst = i.value;
      std::string last = "-", jobs = "-";
      if (auto e = Member(inst, "last_event"); e && e->IsObject()) {
        last = Text(*e, "state") + " " + Time(*e, "at");
        if (auto ids = Member(*e, "jobs"); ids && !ids->Empty()) {
          jobs.clear();
          for (const auto& id : *ids) {
            if (!jobs.empty()) jobs += ",";
            jobs += std::string(id.value.GetString());
          }
        }
      }
      t.AddRow({name, Text(inst, "queue"), condition, Text(inst, "state"), Time(inst, "since"),
                Number(inst, "value"), last, jobs});
    }
  }
  t.Print(out);
  const json::Value root = doc->root();
  out << "\nevents " << Number(root, "events_total") << ", delivered "
      << Number(root, "delivered_total") << ", failed deliveries "
      << Number(root, "delivery_failures_total") << " (jobs in queue "
      << Text(root, "delivery_queue") << ")\n";
  return kExitOk;
}

}  // namespace ym::cli
