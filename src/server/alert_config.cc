#include "server/alert_config.h"

#include <set>

#include "core/job.h"

namespace ym {
namespace {

Result<alerts::AlertRule> ParseOne(const toml::node& node, const std::string& where_index) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidRequest(where_index + ": must be a table ([[alerts]])");
  alerts::AlertRule rule;
  const toml::node* name = t->get("name");
  if (name == nullptr) return InvalidRequest(where_index + ".name: required");
  const std::optional<std::string> name_text = name->value<std::string>();
  if (!name_text || !IsValidName(*name_text) || name_text->size() > alerts::kMaxRuleNameBytes) {
    return InvalidRequest(where_index + ".name: must be 1..64 characters of [A-Za-z0-9_.:-]");
  }
  rule.name = *name_text;
  const std::string where = where_index + " (" + rule.name + ")";
  for (const auto& [k, v] : *t) {
    const std::string key(k.str());
    if (key != "name" && key != "queue" && key != "condition" && key != "webhooks" &&
        key != "headers") {
      return InvalidRequest(where + ": unknown key \"" + key +
                            "\" (name, queue, condition, webhooks, headers)");
    }
  }
  if (const toml::node* q = t->get("queue")) {
    const std::optional<std::string> queue = q->value<std::string>();
    if (!queue || (*queue != "*" && !IsValidName(*queue))) {
      return InvalidRequest(where +
                            ".queue: must be a queue name (1..128 characters of "
                            "[A-Za-z0-9_.:-]) or \"*\" for every queue");
    }
    if (*queue != "*") rule.queue = *queue;
  }
  const toml::node* cond = t->get("condition");
  if (cond == nullptr) {
    return InvalidRequest(where + ".condition: required, e.g. \"lag_seconds > 30 for 1m\"");
  }
  const std::optional<std::string> cond_text = cond->value<std::string>();
  if (!cond_text) return InvalidRequest(where + ".condition: must be a string");
  Result<alerts::Condition> c = alerts::ParseCondition(*cond_text);
  if (!c.ok()) return InvalidRequest(where + ".condition: " + c.status().message());
  rule.condition = std::move(c).value();

  std::vector<std::pair<std::string, std::string>> headers;
  if (const toml::node* h = t->get("headers")) {
    const toml::table* ht = h->as_table();
    if (ht == nullptr) {
      return InvalidRequest(where +
                            ".headers: must be a table of strings, e.g. "
                            "{ Authorization = \"Bearer ...\" }");
    }
    for (const auto& [hk, hv] : *ht) {
      const std::string hname(hk.str());
      const std::optional<std::string> value = hv.value<std::string>();
      if (!value) return InvalidRequest(where + ".headers." + hname + ": must be a string");
      if (std::string err = alerts::CheckHeader(hname, *value); !err.empty()) {
        return InvalidRequest(where + ".headers." + hname + ": " + err);
      }
      headers.emplace_back(hname, *value);
    }
  }
  const toml::node* hooks = t->get("webhooks");
  if (hooks == nullptr) {
    return InvalidRequest(where + ".webhooks: required, an array of http:// URLs");
  }
  const toml::array* arr = hooks->as_array();
  if (arr == nullptr || arr->empty() || arr->size() > alerts::kMaxWebhooksPerRule) {
    return InvalidRequest(where + ".webhooks: must be an array of 1 to " +
                          std::to_string(alerts::kMaxWebhooksPerRule) + " http:// URLs");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string at = where + ".webhooks[" + std::to_string(i) + "]";
    const std::optional<std::string> url = (*arr)[i].value<std::string>();
    if (!url) return InvalidRequest(at + ": must be a string");
    Result<alerts::WebhookUrl> parsed = alerts::ParseWebhookUrl(*url);
    if (!parsed.ok()) return InvalidRequest(at + ": " + parsed.status().message());
    if (!seen.insert(*url).second) return InvalidRequest(at + ": listed twice");
    rule.webhooks.push_back({std::move(parsed).value(), headers});
  }
  return rule;
}

}  // namespace

Result<std::vector<alerts::AlertRule>> ParseAlertTables(const toml::node& node,
                                                        const std::string& config_path) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    return InvalidRequest(config_path + ": key \"alerts\" must be an array of tables ([[alerts]])");
  }
  std::vector<alerts::AlertRule> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string where = config_path + ": alerts[" + std::to_string(i) + "]";
    Result<alerts::AlertRule> rule = ParseOne((*arr)[i], where);
    if (!rule.ok()) return rule.status();
    if (!names.insert(rule->name).second) {
      return InvalidRequest(where + ".name: the alert " + rule->name + " is defined twice");
    }
    out.push_back(std::move(rule).value());
  }
  return out;
}

}  // namespace ym
