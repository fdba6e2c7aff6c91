// Command-line parsing for `yardmaster`: CLI11 definitions and the checks it cannot express.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cli/audit.h"
#include "cli/cli.h"
#include "cli/schedules.h"
#include "cli/suggest.h"
#include "common/build_info.h"
#include "common/json.h"

namespace ym::cli {
namespace {

const char* const kFooter =
    "Exit codes: 0 ok, 1 the server reported an error, 2 usage error, 3 server unreachable;\n"
    "jobs wait: 4 the job ended dead or cancelled, 5 --timeout passed first;\n"
    "audit verify: 6 the audit log is broken (the first bad entry is named).\n"
    "See docs/cli.md for examples.";

const std::vector<std::string> kStates = {"scheduled", "ready", "active",
                                          "succeeded", "dead",  "cancelled"};

// The options every client command takes. All subcommands bind the same variables, so
// `yardmaster --json jobs list` and `yardmaster jobs list --json` mean the same.
struct CommonOptions {
  std::string server;
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string token;
  std::string token_file;
  bool json = false;
};

void AddCommon(CLI::App* app, CommonOptions* common) {
  app->add_option("--server", common->server,
                  "Server base URL, http://HOST:PORT or https://HOST:PORT (default: $YM_URL, "
                  "else " +
                      std::string(kDefaultServerUrl) + ")")
      ->type_name("URL");
  app->add_option("--ca-file", common->ca_file,
                  "For https://: PEM file of the CAs the server's certificate must chain to "
                  "(default: $YM_CA_FILE, else the system's CAs)")
      ->type_name("FILE");
  app->add_option("--client-cert-file", common->client_cert_file,
                  "For https:// to a server that requires client certificates: this client's "
                  "PEM certificate (default: $YM_CLIENT_CERT_FILE)")
      ->type_name("FILE");
  app->add_option("--client-key-file", common->client_key_file,
                  "The key of --client-cert-file (default: $YM_CLIENT_KEY_FILE)")
      ->type_name("FILE");
  app->add_option("--token", common->token,
                  "API token sent as `Authorization: Bearer` (default: $YM_TOKEN; a token on the "
                  "command line is visible to other local users in the process list: prefer "
                  "--token-file or $YM_TOKEN_FILE)")
      ->type_name("TOKEN");
  app->add_option("--token-file", common->token_file,
                  "File whose first line is the API token (default: $YM_TOKEN_FILE). Precedence: "
                  "--token, --token-file, $YM_TOKEN, $YM_TOKEN_FILE")
      ->type_name("FILE");
  app->add_flag("--json", common->json,
                "Print the server's JSON reply instead of a table (for scripts)");
}

// The server's own strict reader: any number of any size passes, as the server keeps it exactly;
// what the server would refuse (a lone surrogate, bytes after the value) is a usage error here.
Status CheckJson(std::string_view text, std::string_view what) {
  Result<json::Document> doc = json::Document::Parse(text);
  if (!doc.ok())
    return Validation(std::string(what) + " is not valid JSON: " + doc.status().message());
  return Status::Ok();
}

bool ParseInt(std::string_view s, std::int64_t* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

ParseOutcome UsageError(std::string message) {
  ParseOutcome o;
  o.exit_code = kExitUsage;
  o.err = "error: " + message + "\nRun with --help for more information.\n";
  return o;
}

// --rate COUNT/PERIOD: PERIOD second|s, minute|m, hour|h or a number of ms. The ranges are the
// server's to check (422 naming the field); this only reads the shape.
Result<client::NamespaceRate> ParseRateArg(std::string_view text) {
  const std::string rule =
      "--rate: must be COUNT/PERIOD with PERIOD second (s), minute (m), hour (h) or a number of "
      "ms, e.g. 100/s, got \"" +
      std::string(text) + "\"";
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return Validation(rule);
  client::NamespaceRate r;
  const std::string_view per = text.substr(slash + 1);
  if (!ParseInt(text.substr(0, slash), &r.count)) return Validation(rule);
  if (per == "s" || per == "second") {
    r.period_ms = 1000;
  } else if (per == "m" || per == "minute") {
    r.period_ms = 60'000;
  } else if (per == "h" || per == "hour") {
    r.period_ms = 3'600'000;
  } else if (!ParseInt(per, &r.period_ms)) {
    return Validation(rule);
  }
  return r;
}

std::vector<std::string> SubcommandNames(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// After CLI11 refused a command line: when the mistake is a command name (`yardmaster queue`,
// `yardmaster jobs lst`) or a missing one (`yardmaster jobs`), a message that names the valid
// ones. CLI11 would say "A subcommand is required" or "argument not expected" for both.
//
// Walks the words the way CLI11 does: options (with their values) are skipped, and each other
// word must name a command of the command reached so far, until a command without
// subcommands is reached. A command that also takes a positional (`queues NAME`) accepts any
// word; there a word is only flagged when it is close to one of the subcommands, since the
// line failed anyway. Returns nullopt when the mistake is elsewhere (CLI11's message stands).
std::optional<std::string> CommandNameMistake(const CLI::App& app,
                                              const std::vector<std::string>& args) {
  const CLI::App* cur = &app;
  std::string path;  // the commands so far, e.g. "jobs"
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") return std::nullopt;
    if (word.size() > 1 && word[0] == '-') {
      if (word.find('=') != std::string::npos) continue;
      // Options fall through to the parents (app.fallthrough()), so look up the chain.
      for (const CLI::App* a = cur; a != nullptr; a = a->get_parent()) {
        const CLI::Option* opt = a->get_option_no_throw(word);
        if (opt != nullptr) {
          if (opt->get_items_expected_max() > 0) ++i;  // its value is the next word
          break;
        }
      }
      continue;
    }
    const std::vector<std::string> subs = SubcommandNames(cur);
    if (subs.empty()) return std::nullopt;  // a leaf command's own argument
    const std::vector<const CLI::App*> named =
        cur->get_subcommands([&](const CLI::App* s) { return s->check_name(word); });
    if (!named.empty()) {
      cur = named.front();
      path += (path.empty() ? "" : " ") + word;
      continue;
    }
    const std::string prefix = path.empty() ? "" : path + " ";
    if (std::optional<std::string> guess = ClosestMatch(word, subs)) {
      return "unknown command '" + prefix + word + "'; did you mean '" + prefix + *guess + "'?";
    }
    const bool takes_positional =
        !cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
    if (takes_positional) return std::nullopt;  // a far-off word there is a name, not a typo
    return "unknown command '" + prefix + word + "'; the commands" +
           (path.empty() ? "" : " of '" + path + "'") + " are: " + JoinNames(subs);
  }
  // Every word was fine: is a command missing?
  if (cur->get_require_subcommand_min() > 0) {
    return (path.empty() ? std::string("a command is required")
                         : "'" + path + "' needs a command") +
           ": " + JoinNames(SubcommandNames(cur));
  }
  return std::nullopt;
}

// The job-filter flags of `jobs list` and `jobs cancel|replay|delete`: the fields of
// client::JobFilterParams (GET /v1/jobs's query parameters, the bulk operations' body).
struct FilterFlags {
  std::string ns, queue, kind, tag;
  std::vector<std::string> states;  // each comma-separated or repeated
  std::string times[4];             // created after/before, finished after/before
  std::vector<CLI::Option*> options;

  static constexpr const char* kTimeFlags[4] = {"--created-after", "--created-before",
                                                "--finished-after", "--finished-before"};

  void Add(CLI::App* app, const std::string& every_state) {
    options = {
        app->add_option("--namespace,-n", ns, "Only jobs of this namespace"),
        app->add_option("--queue,-q", queue, "Only jobs of this queue"),
        app->add_option("--kind,-k", kind, "Only jobs of this kind"),
        app->add_option("--state,-s", states,
                        "Only jobs in these states (comma-separated or repeated, e.g. "
                        "dead,cancelled; default: " +
                            every_state + ")"),
        app->add_option("--tag,-t", tag, "Only jobs carrying this tag"),
    };
    // Time bounds: `after` inclusive, `before` exclusive; RFC 3339 or epoch ms like --run-at.
    const char* const help[4] = {"Only jobs created at or after TIME (RFC 3339 or epoch ms)",
                                 "Only jobs created before TIME (RFC 3339 or epoch ms)",
                                 "Only jobs that finished at or after TIME (RFC 3339 or epoch ms)",
                                 "Only jobs that finished before TIME (RFC 3339 or epoch ms)"};
    for (int i = 0; i < 4; ++i) {
      options.push_back(app->add_option(kTimeFlags[i], times[i], help[i])->type_name("TIME"));
    }
  }

  bool Given() const {
    return std::any_of(options.begin(), options.end(),
                       [](const CLI::Option* o) { return o->count() > 0; });
  }

  Status Fill(client::JobFilterParams* f) const {
    auto set = [](const std::string& v, std::optional<std::string>* out) {
      if (!v.empty()) *out = v;
    };
    set(ns, &f->ns);
    set(queue, &f->queue);
    set(kind, &f->kind);
    set(tag, &f->tag);
    for (const std::string& list : states) {
      std::string_view rest = list;
      for (;;) {
        const std::size_t comma = rest.find(',');
        const std::string one(rest.substr(0, comma));
        if (std::find(kStates.begin(), kStates.end(), one) == kStates.end()) {
          return Validation("--state: \"" + one + "\" is not a state (" + JoinNames(kStates) + ")");
        }
        f->states.push_back(one);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    std::optional<std::int64_t>* const out[4] = {&f->created_after_ms, &f->created_before_ms,
                                                 &f->finished_after_ms, &f->finished_before_ms};
    for (std::size_t i = 0; i < 4; ++i) {
      if (times[i].empty()) continue;
      Result<std::int64_t> at = ParseTimeArg(kTimeFlags[i], times[i]);
      if (!at.ok()) return Validation(at.status().message());
      *out[i] = *at;
    }
    return Status::Ok();
  }
};

// The flags of `jobs cancel|replay|delete` by filter: the filter and the walk over the cursor.
struct BulkFlags {
  FilterFlags filter;
  std::string cursor;
  std::int32_t limit = 0;
  std::int64_t max_pages = 0;
  bool all = false, yes = false, dry_run = false;
  CLI::Option* limit_opt = nullptr;
  CLI::Option* cursor_opt = nullptr;
  CLI::Option* max_pages_opt = nullptr;

  void Add(CLI::App* app, const char* action) {
    const std::string a = action;
    filter.Add(app, "every state " + a + " applies to");
    app->add_flag("--all", all, "Every job " + a + " applies to (instead of a filter)");
    limit_opt = app->add_option("--limit,-l", limit, "Jobs per request, 1..10000 (default: 1000)")
                    ->check(CLI::Range(1, 10000));
    cursor_opt =
        app->add_option("--cursor", cursor, "Resume at this cursor (printed after each request)");
    max_pages_opt = app->add_option("--max-pages", max_pages, "Stop after this many requests")
                        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
    app->add_flag("--yes,-y", yes, "Go ahead: " + a + " what the filter selects");
    app->add_flag("--dry-run", dry_run, "Only count what the filter selects; change nothing");
  }

  bool Given() const {
    return all || yes || dry_run || limit_opt->count() > 0 || cursor_opt->count() > 0 ||
           max_pages_opt->count() > 0 || filter.Given();
  }

  Status ToRequest(const char* action, client::BulkRequest* r,
                   std::optional<std::int64_t>* max) const {
    const std::string verb = std::string("jobs ") + action;
    const bool filtered = filter.Given();
    if (!filtered && !all) {
      return Validation(verb + " needs a job id" + (std::string(action) == "delete" ? "" : ",") +
                        " a filter (--queue, --kind, --state, --tag, --namespace, "
                        "--created-after, ...) or --all");
    }
    if (filtered && all) return Validation(verb + ": --all cannot be combined with a filter");
    if (!yes && !dry_run) {
      return Validation(verb +
                        " by filter changes every job it selects: add --yes to go ahead, "
                        "or --dry-run to count them first");
    }
    if (yes && dry_run) return Validation(verb + ": --yes and --dry-run exclude each other");
    r->action = action;
    r->all = all;
    r->dry_run = dry_run;
    YM_RETURN_IF_ERROR(filter.Fill(&r->filter));
    if (limit_opt->count() > 0) r->limit = limit;
    if (cursor_opt->count() > 0) r->cursor = cursor;
    if (max_pages_opt->count() > 0) *max = max_pages;
    return Status::Ok();
  }
};

// "N/unit": a positive integer count and one of `units` (name, value); errors name `flag`.
template <typename Unit>
Result<std::pair<std::int64_t, Unit>> ParseCountPer(
    std::string_view flag, std::string_view text,
    std::initializer_list<std::pair<std::string_view, Unit>> units, std::string_view example) {
  const std::string bad =
      std::string(flag) + " '" + std::string(text) + "': expected " + std::string(example);
  const std::size_t slash = text.find('/');
  std::int64_t n = 0;
  if (slash == std::string_view::npos || !ParseInt(text.substr(0, slash), &n) || n < 1) {
    return InvalidRequest(bad);
  }
  const std::string_view unit = text.substr(slash + 1);
  for (const auto& [name, value] : units) {
    if (unit == name) return std::pair{n, value};
  }
  return InvalidRequest(bad);
}

}  // namespace

Result<client::LimitRate> ParseRateFlag(std::string_view text) {
  auto r = ParseCountPer<std::int64_t>("--rate", text,
                                       {{"second", 1000},
                                        {"s", 1000},
                                        {"minute", 60'000},
                                        {"m", 60'000},
                                        {"hour", 3'600'000},
                                        {"h", 3'600'000},
                                        {"day", 86'400'000},
                                        {"d", 86'400'000}},
                                       "N/second, N/minute, N/hour or N/day, e.g. 10/second");
  if (!r.ok()) return r.status();
  client::LimitRate rate;
  rate.count = r->first;
  rate.period_ms = r->second;
  return rate;
}

Result<client::LimitQuota> ParseQuotaFlag(std::string_view text) {
  auto r = ParseCountPer<std::string_view>("--quota", text,
                                           {{"day", "day"}, {"week", "week"}, {"month", "month"}},
                                           "N/day, N/week or N/month, e.g. 500/day");
  if (!r.ok()) return r.status();
  client::LimitQuota quota;
  quota.count = r->first;
  quota.per = std::string(r->second);
  return quota;
}

Result<std::int64_t> ParseRunAt(std::string_view text) { return ParseTimeArg("--run-at", text); }

Result<std::int64_t> ParseTimeArg(std::string_view option, std::string_view text) {
  std::int64_t ms = 0;
  if (ParseInt(text, &ms)) {
    if (ms < 0) return InvalidRequest(std::string(option) + " must not be negative");
    return ms;
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM).
  const std::string bad = std::string(option) + " '" + std::string(text) +
                          "' is neither epoch milliseconds nor a time like 2024-05-01T12:00:00Z";
  auto num = [&](std::size_t pos, std::size_t len, int* out) {
    if (pos + len > text.size()) return false;
    std::int64_t v = 0;
    if (!ParseInt(text.substr(pos, len), &v) || text[pos] == '-' || text[pos] == '+') return false;
    *out = static_cast<int>(v);
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || !num(0, 4, &year) || text[4] != '-' || !num(5, 2, &month) ||
      text[7] != '-' || !num(8, 2, &day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !num(11, 2, &hour) ||
      text[13] != ':' || !num(14, 2, &minute) || text[16] != ':' || !num(17, 2, &second)) {
    return InvalidRequest(bad);
  }
  std::size_t pos = 19;
  std::int64_t frac_ms = 0;
  if (text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 3) frac_ms = frac_ms * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return InvalidRequest(bad);
    for (int d = digits; d < 3; ++d) frac_ms *= 10;
  }
  std::int64_t offset_min = 0;
  const std::string_view zone = text.substr(pos);
  if (zone == "Z" || zone == "z") {
    offset_min = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    int oh = 0, om = 0;
    if (!num(pos + 1, 2, &oh) || !num(pos + 4, 2, &om) || oh > 23 || om > 59) {
      return InvalidRequest(bad);
    }
    offset_min = (zone[0] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return InvalidRequest(bad);
  }
  using namespace std::chrono;
  const year_month_day ymd{std::chrono::year(year), std::chrono::month(month),
                           std::chrono::day(day)};
  // 60 seconds is allowed for leap seconds, which Unix time folds into the next second.
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return InvalidRequest(bad + " (no such date or time)");
  }
  const std::int64_t days = sys_days(ymd).time_since_epoch().count();
  ms = ((days * 24 + hour) * 60 + minute - offset_min) * 60'000 + second * 1000 + frac_ms;
  if (ms < 0) return InvalidRequest(std::string(option) + " must not be before 1970");
  return ms;
}

Result<std::string> ResolvePayload(std::string_view arg, std::istream& in) {
  std::string text;
  std::string what = "--payload";
  if (arg == "-") {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return InvalidRequest("--payload -: cannot read stdin");
    what = "payload from stdin";
  } else if (!arg.empty() && arg.front() == '@') {
    const std::string path(arg.substr(1));
    std::ifstream file(path, std::ios::binary);
    if (!file) return InvalidRequest("--payload @" + path + ": cannot open file");
    text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    if (file.bad()) return InvalidRequest("--payload @" + path + ": cannot read file");
    what = "payload file " + path;
  } else {
    text = std::string(arg);
  }
  Status s = CheckJson(text, what);
  if (!s.ok()) return s;
  return text;
}

ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              const std::optional<std::string>& env_url) {
  CLI::App app{
      "Yardmaster: a durable background-job broker.\n\n"
      "Run the broker with `yardmaster server`; every other command talks to a running\n"
      "server over HTTP.",
      "yardmaster"};
  app.footer(kFooter);
  app.require_subcommand(1);
  // Unknown options of a subcommand are offered to its parents, which is how the shared
  // --server/--json options work wherever they appear on the line.
  app.fallthrough();
  app.set_help_all_flag("--help-all", "Print help for every command");
  app.set_version_flag(
      "--version", [] { return "yardmaster " + VersionLine(); },
      "Print the version (and git commit) of this yardmaster and exit");

  CommonOptions common;
  common.server = env_url.value_or(std::string(kDefaultServerUrl));
  AddCommon(&app, &common);

  Invocation inv;

  // `server` is dispatched by main() before this parser runs (the server owns its flags); it is
  // declared here only so that it appears in the help.
  app.add_subcommand("server", "Run the broker (see `yardmaster server --help` for its options)")
      ->allow_extras();
  // Likewise `worker` (src/cli/worker_main.cc), listed here for the help.
  app.add_subcommand("worker", "Run a command once per job (see `yardmaster worker --help`)")
      ->allow_extras();

  // --- enqueue ---
  CLI::App* enqueue = app.add_subcommand("enqueue", "Enqueue one job");
  AddCommon(enqueue, &common);
  enqueue->add_option("--queue,-q", inv.enqueue.queue, "Queue to put the job on")->required();
  enqueue->add_option("--kind,-k", inv.enqueue.kind, "Job kind; workers dispatch on it")
      ->required();
  enqueue
      ->add_option("--payload,-p", inv.payload_arg,
                   "Job payload: JSON text, @FILE to read a file, or - to read stdin "
                   "(default: null)")
      ->type_name("JSON|@FILE|-");
  std::int32_t priority = 0;
  CLI::Option* priority_opt =
      enqueue->add_option("--priority", priority, "Priority in -1000000..1000000; higher first")
          ->check(CLI::Range(-1'000'000, 1'000'000));
  std::int64_t delay_ms = 0;
  CLI::Option* delay_opt =
      enqueue->add_option("--delay-ms", delay_ms, "Run no earlier than this many ms from now")
          ->check(CLI::NonNegativeNumber);
  std::string run_at;
  CLI::Option* run_at_opt =
      enqueue
          ->add_option("--run-at", run_at,
                       "Run no earlier than this time: epoch milliseconds or RFC 3339 "
                       "(2024-05-01T12:00:00Z)")
          ->type_name("TIME");
  delay_opt->excludes(run_at_opt);
  std::int32_t max_attempts = 0;
  CLI::Option* max_attempts_opt =
      enqueue
          ->add_option("--max-attempts", max_attempts,
                       "Attempts before the job goes dead, 1..1000 (default: the queue's)")
          ->check(CLI::Range(1, 1000));
  std::int64_t lease_ms = 0;
  CLI::Option* lease_opt =
      enqueue
          ->add_option("--lease-ms", lease_ms,
                       "Lease length per attempt, 100..86400000 ms (default: the queue's)")
          ->check(CLI::Range(std::int64_t{100}, std::int64_t{86'400'000}));
  std::int64_t timeout_ms = 0;
  CLI::Option* timeout_opt =
      enqueue
          ->add_option("--timeout-ms", timeout_ms,
                       "Execution timeout: longest run of one attempt, 1..86400000 ms; the server "
                       "fails an attempt that runs longer with type \"timeout\" (0: none, even "
                       "if the queue has one; default: the queue's)")
          ->check(CLI::Range(std::int64_t{0}, std::int64_t{86'400'000}));
  std::string idempotency_key;
  CLI::Option* idem_opt = enqueue->add_option(
      "--idempotency-key", idempotency_key,
      "Coalesce with a live or recent job that has the same key in this namespace");
  std::string ns;
  CLI::Option* ns_opt =
      enqueue->add_option("--namespace,-n", ns, "Tenant namespace (default: \"default\")");
  std::string concurrency_key;
  CLI::Option* concurrency_opt =
      enqueue->add_option("--concurrency-key", concurrency_key, "Key for per-key concurrency caps");
  enqueue->add_option("--tag,-t", inv.enqueue.tags, "A tag for the job; repeat for several")
      ->type_name("TAG")
      ->allow_extra_args(false);

  // --- jobs ---
  CLI::App* jobs = app.add_subcommand("jobs", "Inspect and control jobs");
  jobs->require_subcommand(1);
  AddCommon(jobs, &common);
  CLI::App* jobs_get = jobs->add_subcommand("get", "Show one job with its errors and payload");
  AddCommon(jobs_get, &common);
  jobs_get->add_option("id", inv.job_id, "Job id")->required();
  CLI::App* jobs_wait = jobs->add_subcommand(
      "wait",
      "Wait until a job ends (succeeded, dead or cancelled) and show it. Exit code 0 when it "
      "succeeded, 4 when it ended dead or cancelled, 5 when --timeout passed first");
  AddCommon(jobs_wait, &common);
  jobs_wait->add_option("id", inv.job_id, "Job id")->required();
  double wait_timeout = 0;
  CLI::Option* wait_timeout_opt =
      jobs_wait
          ->add_option("--timeout", wait_timeout,
                       "Give up after SECONDS (default: wait as long as it takes)")
          ->type_name("SECONDS")
          ->check(CLI::Range(0.0, 31'536'000.0));
  CLI::App* jobs_list = jobs->add_subcommand("list", "List jobs, one page at a time");
  AddCommon(jobs_list, &common);
  FilterFlags list_filter;
  list_filter.Add(jobs_list, "every state");
  std::string list_cursor;
  std::int32_t list_limit = 0;
  CLI::Option* list_limit_opt =
      jobs_list->add_option("--limit,-l", list_limit, "Page size, 1..1000 (default: 100)")
          ->check(CLI::Range(1, 1000));
  CLI::Option* list_cursor_opt = jobs_list->add_option(
      "--cursor", list_cursor, "Start at this cursor (printed after a partial page)");
  jobs_list->add_flag("--all,-a", inv.all_pages, "Follow cursors and print every page");
  CLI::App* jobs_cancel = jobs->add_subcommand(
      "cancel",
      "Cancel a job (at once if waiting; a running one's worker is told), or every live job a "
      "filter selects (with --yes, or --dry-run to count them)");
  AddCommon(jobs_cancel, &common);
  jobs_cancel->add_option("id", inv.job_id, "Job id (or give a filter instead)");
  CLI::App* jobs_replay = jobs->add_subcommand(
      "replay",
      "Start a new run of a dead or cancelled job, or of every one a filter selects (with --yes, "
      "or --dry-run to count them)");
  AddCommon(jobs_replay, &common);
  jobs_replay->add_option("id", inv.job_id, "Job id (or give a filter instead)");
  CLI::App* jobs_delete = jobs->add_subcommand(
      "delete",
      "Delete the finished jobs (succeeded, dead, cancelled) a filter selects; live jobs are "
      "never deleted (with --yes, or --dry-run to count them)");
  AddCommon(jobs_delete, &common);
  BulkFlags cancel_flags, replay_flags, delete_flags;
  cancel_flags.Add(jobs_cancel, "cancel");
  replay_flags.Add(jobs_replay, "replay");
  delete_flags.Add(jobs_delete, "delete");

  // --- queues ---
  CLI::App* queues = app.add_subcommand(
      "queues", "List queues with counts per state, or show one queue (queues NAME)");
  queues->require_subcommand(0, 1);
  AddCommon(queues, &common);
  queues->add_option(
      "name", inv.queue_name,
      "Queue to show (write `queues -- NAME` for a queue named pause, resume, reset or set)");
  CLI::App* pause =
      queues->add_subcommand("pause", "Stop dispatching a queue's jobs (enqueues still work)");
  AddCommon(pause, &common);
  pause->add_option("name", inv.queue_name, "Queue name")->required();
  pause->add_flag("--create", inv.create_queue,
                  "Create the queue if it does not exist (else an unknown queue is an error)");
  CLI::App* resume = queues->add_subcommand("resume", "Resume dispatching a paused queue");
  AddCommon(resume, &common);
  resume->add_option("name", inv.queue_name, "Queue name")->required();
  resume->add_flag("--create", inv.create_queue,
                   "Create the queue if it does not exist (else an unknown queue is an error)");
  CLI::App* reset = queues->add_subcommand(
      "reset", "Remove a queue's configuration: it follows the server defaults again (unpaused)");
  AddCommon(reset, &common);
  reset->add_option("name", inv.queue_name, "Queue name")->required();

  CLI::App* qset = queues->add_subcommand(
      "set", "Configure a queue (today: --weight, its share of a lease naming several queues)");
  AddCommon(qset, &common);
  qset->add_option("name", inv.queue_name, "Queue name")->required();
  std::int64_t queue_weight = 0;
  qset->add_option("--weight", queue_weight,
                   "Share among the queues of a lease that names several, 1..1000 (default 1)")
      ->required();
  qset->add_flag("--create", inv.create_queue,
                 "Create the queue if it does not exist (else an unknown queue is an error)");

  // --- namespaces ---
  CLI::App* nss = app.add_subcommand(
      "namespaces",
      "Namespace (tenant) limits and weights: max live jobs, enqueue rate, share of a queue "
      "(list, get, set, delete); a namespace's jobs as JSON lines (export); erasing a "
      "namespace's data (wipe)");
  nss->require_subcommand(1);
  AddCommon(nss, &common);
  CLI::App* ns_list = nss->add_subcommand("list", "List configured namespaces with live counts");
  AddCommon(ns_list, &common);
  CLI::App* ns_get =
      nss->add_subcommand("get", "Show one namespace's configuration and live count");
  AddCommon(ns_get, &common);
  ns_get->add_option("name", inv.ns.name, "Namespace")->required();
  CLI::App* ns_set = nss->add_subcommand(
      "set", "Create or replace a namespace's configuration (give at least one option)");
  AddCommon(ns_set, &common);
  ns_set->add_option("name", inv.ns.name, "Namespace")->required();
  std::int64_t ns_max_live = 0, ns_burst = 0, ns_weight = 0;
  std::string ns_rate;
  CLI::Option* ns_max_live_opt = ns_set->add_option(
      "--max-live-jobs", ns_max_live,
      "The most live (scheduled, ready, active) jobs; past it enqueues get 429, 1..1000000000");
  CLI::Option* ns_rate_opt = ns_set->add_option(
      "--rate", ns_rate,
      "Enqueue rate COUNT/PERIOD, PERIOD one of second (s), minute (m), hour (h) or a number of "
      "ms, e.g. 100/s; past it enqueues get 429 with Retry-After");
  CLI::Option* ns_burst_opt = ns_set->add_option(
      "--burst", ns_burst, "Enqueues allowed at once from rest (with --rate; default: COUNT)");
  CLI::Option* ns_weight_opt = ns_set->add_option(
      "--weight", ns_weight, "Share among the namespaces of a queue, 1..1000 (default 1)");
  std::int64_t ns_max_active = 0;
  CLI::Option* ns_max_active_opt =
      ns_set->add_option("--max-active", ns_max_active,
                         "The most of its jobs leased at once, across its queues; the rest wait "
                         "(namespace_limit), 1..1000000");
  ns_burst_opt->needs(ns_rate_opt);
  CLI::App* ns_delete = nss->add_subcommand(
      "delete", "Delete a namespace's configuration (limits lifted, weight back to 1)");
  AddCommon(ns_delete, &common);
  ns_delete->add_option("name", inv.ns.name, "Namespace")->required();
  CLI::App* ns_export = nss->add_subcommand(
      "export",
      "Write every stored job of a namespace, live and finished, as JSON lines (one job object "
      "per line, payloads redacted by the server's redact_fields), streamed");
  AddCommon(ns_export, &common);
  ns_export->add_option("name", inv.ns.name, "Namespace")->required();
  ns_export->add_option("-o,--output", inv.output_file,
                        "Write to FILE (created or truncated) instead of standard output");
  CLI::App* ns_wipe = nss->add_subcommand(
      "wipe",
      "Erase a namespace's data for good: its jobs (live ones included: their workers are told "
      "to stop), idempotency keys and schedules; the namespace's configuration stays (delete "
      "it with `namespaces delete`). Requests of --limit items each, until done (admin)");
  AddCommon(ns_wipe, &common);
  ns_wipe->add_option("name", inv.ns.name, "Namespace")->required();
  bool wipe_yes = false;
  ns_wipe->add_flag("--yes,-y", wipe_yes, "Go ahead: required, a wipe cannot be undone");
  ns_wipe->add_option("--limit", inv.wipe_limit, "Items erased per request, 1..10000")
      ->check(CLI::Range(1, 10'000));

  // --- limits ---
  CLI::App* limits = app.add_subcommand(
      "limits",
      "Limits: at most N active jobs, N starts per second..day, N starts per day..month, a "
      "circuit breaker, per key; or one live job per key (singleton), or only the newest waiting "
      "one (debounce) (list, get, set, delete, reset-breaker)");
  limits->require_subcommand(1);
  AddCommon(limits, &common);
  CLI::App* limits_list = limits->add_subcommand("list", "List limits with their active keys");
  AddCommon(limits_list, &common);
  CLI::App* limits_get = limits->add_subcommand("get", "Show one limit and its most active keys");
  AddCommon(limits_get, &common);
  limits_get->add_option("name", inv.limit.name, "Limit name")->required();
  CLI::App* limits_set = limits->add_subcommand("set", "Create or replace a limit");
  AddCommon(limits_set, &common);
  limits_set->add_option("name", inv.limit.name, "Limit name")->required();
  std::int64_t limit_concurrency = 0;
  CLI::Option* limit_concurrency_opt = limits_set->add_option(
      "--concurrency", limit_concurrency, "The most active jobs per key, 1..1000000 (1: a mutex)");
  std::string limit_rate, limit_quota, limit_zone;
  std::int64_t limit_burst = 0;
  CLI::Option* limit_rate_opt = limits_set->add_option(
      "--rate", limit_rate, "The most starts per key: N/second, N/minute, N/hour or N/day");
  CLI::Option* limit_burst_opt = limits_set->add_option(
      "--burst", limit_burst,
      "Starts allowed at once from rest (with --rate; default: the least that reaches the rate)");
  CLI::Option* limit_quota_opt = limits_set->add_option(
      "--quota", limit_quota,
      "The most starts per key per calendar window: N/day, N/week (from Monday) or N/month");
  CLI::Option* limit_zone_opt = limits_set->add_option(
      "--time-zone", limit_zone, "IANA time zone of the quota's windows (default UTC)");
  // Key modes (docs/flow-control.md, "Singleton and debounce"); a limit needs a bound or one.
  CLI::Option* limit_singleton_opt =
      limits_set
          ->add_option("--singleton", inv.limit.singleton,
                       "While a job of the key is live, refuse a new one (409 "
                       "singleton_conflict) or skip it (answer the live job)")
          ->check(CLI::IsMember({"refuse", "skip"}));
  std::int64_t debounce_ms = 0, debounce_max_wait_ms = 0;
  CLI::Option* limit_debounce_opt = limits_set->add_option(
      "--debounce-ms", debounce_ms,
      "Keep only the newest waiting job of the key; it runs this many ms after the last "
      "enqueue (0..2592000000)");
  CLI::Option* limit_max_wait_opt = limits_set->add_option(
      "--debounce-max-wait-ms", debounce_max_wait_ms,
      "...but at most this many ms after the first enqueue of the group (default: no cap)");
  limit_max_wait_opt->needs(limit_debounce_opt);
  limit_singleton_opt->excludes(limit_debounce_opt);
  std::string limit_queue, limit_kind, limit_ns;
  CLI::Option* limit_queue_opt =
      limits_set->add_option("--queue,-q", limit_queue, "Only jobs of this queue");
  CLI::Option* limit_kind_opt =
      limits_set->add_option("--kind,-k", limit_kind, "Only jobs of this kind");
  CLI::Option* limit_ns_opt =
      limits_set->add_option("--namespace,-n", limit_ns, "Only jobs of this namespace");
  limits_set->add_option("--key", inv.limit.key,
                         "Count per concurrency_key, kind, namespace, queue or payload.PATH "
                         "(default: one count for all matched jobs)");
  // The breaker's members, each optional (the server's defaults: docs/flow-control.md).
  bool limit_breaker = false;
  CLI::Option* limit_breaker_opt = limits_set->add_flag(
      "--breaker", limit_breaker,
      "A circuit breaker per key: open after 5 failures in a row, for 1 s doubling up to 300 s "
      "(the --breaker-* options change these and imply --breaker)");
  struct BreakerFlag {
    const char* name;
    const char* help;
    std::int64_t value = 0;
    CLI::Option* opt = nullptr;
  };
  BreakerFlag breaker_flags[] = {
      {"--breaker-failures", "Open after this many failures in a row, 0 (off) or 1..1000000"},
      {"--breaker-window", "Judge the failure ratio over the last N outcomes, 0 (off) or 1..10000"},
      {"--breaker-min-samples", "Outcomes needed in the window before judging (default: window)"},
      {"--breaker-failure-percent", "Open at this failure percentage of the window, 1..100"},
      {"--breaker-open-ms", "First open interval in ms (default 1000)"},
      {"--breaker-open-max-ms", "Cap of the doubled open interval in ms (default 300000)"},
  };
  for (BreakerFlag& f : breaker_flags) f.opt = limits_set->add_option(f.name, f.value, f.help);
  CLI::App* limits_delete =
      limits->add_subcommand("delete", "Delete a limit (the jobs it held back run at once)");
  AddCommon(limits_delete, &common);
  limits_delete->add_option("name", inv.limit.name, "Limit name")->required();
  CLI::App* limits_reset_breaker = limits->add_subcommand(
      "reset-breaker",
      "Close a limit's circuit breaker now, for one key or all (the jobs it held back run)");
  AddCommon(limits_reset_breaker, &common);
  limits_reset_breaker->add_option("name", inv.limit.name, "Limit name")->required();
  std::string reset_key;
  CLI::Option* reset_key_opt = limits_reset_breaker->add_option(
      "--key", reset_key, "Only this breaker key (default: every key)");

  // --- schedules ---
  ScheduleCommands schedules;
  schedules.Add(
      &app, [&common](CLI::App* a) { AddCommon(a, &common); }, &inv);

  // --- dead ---
  CLI::App* dead = app.add_subcommand("dead", "Inspect and replay dead-letter jobs");
  dead->require_subcommand(1);
  AddCommon(dead, &common);
  CLI::App* dead_list = dead->add_subcommand("list", "List dead jobs with their last error");
  AddCommon(dead_list, &common);
  std::string dead_queue, dead_cursor;
  std::int32_t dead_limit = 0;
  CLI::Option* dead_queue_opt =
      dead_list->add_option("--queue,-q", dead_queue, "Only dead jobs of this queue");
  CLI::Option* dead_limit_opt =
      dead_list->add_option("--limit,-l", dead_limit, "Page size, 1..1000 (default: 100)")
          ->check(CLI::Range(1, 1000));
  CLI::Option* dead_cursor_opt =
      dead_list->add_option("--cursor", dead_cursor, "Start at this cursor");
  dead_list->add_flag("--all,-a", inv.all_pages, "Follow cursors and print every page");
  CLI::App* dead_replay = dead->add_subcommand(
      "replay", "Replay dead jobs: new runs with attempts reset (by queue, by id, or --all)");
  AddCommon(dead_replay, &common);
  std::string replay_queue;
  std::int64_t replay_limit = 0;
  bool replay_all = false;
  CLI::Option* replay_queue_opt =
      dead_replay->add_option("--queue,-q", replay_queue, "Replay dead jobs of this queue");
  CLI::Option* replay_ids_opt =
      dead_replay
          ->add_option("--id", inv.dead_replay.ids,
                       "Replay this job; repeat for several (up to 1000; not with --queue, "
                       "--limit or --all)")
          ->type_name("ID")
          ->allow_extra_args(false);
  CLI::Option* replay_limit_opt =
      dead_replay
          ->add_option("--limit,-l", replay_limit,
                       "With --queue or --all: replay at most this many, 1..100000 "
                       "(server default 1000)")
          ->check(CLI::Range(std::int64_t{1}, std::int64_t{100'000}));
  CLI::Option* replay_all_opt = dead_replay->add_flag(
      "--all", replay_all, "Replay dead jobs of every queue (required without --queue/--id)");
  // The API takes either a list of ids or a filter, never both (docs/api.md, dead:replay).
  replay_ids_opt->excludes(replay_queue_opt)->excludes(replay_limit_opt)->excludes(replay_all_opt);

  // --- info ---
  CLI::App* info = app.add_subcommand("info", "Show the server's version, uptime and counters");
  AddCommon(info, &common);

  // --- alerts ---
  CLI::App* alerts = app.add_subcommand(
      "alerts",
      "List the alert rules of the server's config file with the state of each (GET /v1/alerts)");
  AddCommon(alerts, &common);

  // --- tokens ---
  CLI::App* tokens = app.add_subcommand(
      "tokens",
      "API tokens (docs/security.md): create (prints the secret once), list, revoke, new-secret");
  tokens->require_subcommand(1);
  AddCommon(tokens, &common);
  CLI::App* tok_create = tokens->add_subcommand(
      "create",
      "Create a token; its secret is printed once, alone on stdout (redirect it to a file: "
      "`yardmaster tokens create ci --role producer > ci.token`)");
  AddCommon(tok_create, &common);
  tok_create->add_option("name", inv.token_create.name, "Token name, 1..64 of A-Z a-z 0-9 _ . : -")
      ->required();
  tok_create
      ->add_option("--role", inv.token_create.role,
                   "admin, operator, producer, worker or viewer (docs/security.md, \"Roles\")")
      ->required();
  tok_create->add_option("--namespace", inv.token_create.namespaces,
                         "A namespace the token may use; repeat for several (default: all)");
  std::int64_t tok_expires_in = 0;
  CLI::Option* tok_expires_opt =
      tok_create->add_option("--expires-in-ms", tok_expires_in,
                             "The token expires this many ms from now (default: never)");
  CLI::App* tok_list = tokens->add_subcommand(
      "list", "List tokens (never their secrets): role, namespaces, expiry, last use, revocation");
  AddCommon(tok_list, &common);
  CLI::App* tok_revoke = tokens->add_subcommand(
      "revoke", "Revoke a token by id: refused from the next request on (revoking twice is fine)");
  AddCommon(tok_revoke, &common);
  tok_revoke->add_option("id", inv.token_id, "Token id (from `tokens list`)")->required();
  CLI::App* tok_secret = tokens->add_subcommand(
      "new-secret",
      "Print a fresh random secret for auth_bootstrap_token_file (needs no server): "
      "`umask 077; yardmaster tokens new-secret > admin.secret`");
  AddCommon(tok_secret, &common);
  // --- audit ---
  AuditCommands audit;
  audit.Add(
      &app, [&common](CLI::App* a) { AddCommon(a, &common); }, &inv);

  // --- version ---
  CLI::App* version = app.add_subcommand(
      "version", "Print the version (and git commit) of this yardmaster; needs no server");
  AddCommon(version, &common);

  std::ostringstream out, err;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      if (std::optional<std::string> m = CommandNameMistake(app, args)) return UsageError(*m);
    }
    ParseOutcome o;
    const int code = app.exit(e, out, err);
    o.out = out.str();
    o.err = err.str();
    // Same shape as our own usage errors, so scripts and people see one format.
    if (code != 0 && !o.err.empty()) o.err = "error: " + o.err;
    // CLI11 has one exit code per kind of mistake; for scripts every mistake is "usage".
    o.exit_code = code == 0 ? kExitOk : kExitUsage;
    return o;
  }

  if (app.got_subcommand("server")) {
    return UsageError("`server` must be the first argument: yardmaster server [OPTIONS]");
  }
  // Answered here, without a server: the version of this binary, not of the server (`info`).
  if (version->parsed()) {
    ParseOutcome o;
    if (common.json) {
      o.out = R"({"version":")" + std::string(kVersion) + R"(","commit":")" +
              std::string(BuildCommit()) + "\"}\n";
    } else {
      o.out = "yardmaster " + VersionLine() + "\n";
    }
    return o;
  }

  Result<client::BaseUrl> url = client::ParseBaseUrl(common.server);
  if (!url.ok()) return UsageError(url.status().message());
  inv.server_url = common.server;
  inv.ca_file = common.ca_file;
  inv.client_cert_file = common.client_cert_file;
  inv.client_key_file = common.client_key_file;
  inv.token = common.token;
  inv.token_file = common.token_file;
  inv.json = common.json;

  if (enqueue->parsed()) {
    inv.command = Command::kEnqueue;
    if (priority_opt->count() > 0) inv.enqueue.priority = priority;
    if (delay_opt->count() > 0) inv.enqueue.delay_ms = delay_ms;
    if (run_at_opt->count() > 0) {
      Result<std::int64_t> at = ParseRunAt(run_at);
      if (!at.ok()) return UsageError(at.status().message());
      inv.enqueue.run_at_ms = *at;
    }
    if (max_attempts_opt->count() > 0) inv.enqueue.max_attempts = max_attempts;
    if (lease_opt->count() > 0) inv.enqueue.lease_ms = lease_ms;
    if (timeout_opt->count() > 0) inv.enqueue.timeout_ms = timeout_ms;
    if (idem_opt->count() > 0) inv.enqueue.idempotency_key = idempotency_key;
    if (ns_opt->count() > 0) inv.enqueue.ns = ns;
    if (concurrency_opt->count() > 0) inv.enqueue.concurrency_key = concurrency_key;
    // A literal payload is checked now, so a typo is a usage error before anything is sent.
    const std::string& p = inv.payload_arg;
    if (p != "-" && (p.empty() || p.front() != '@')) {
      Status s = CheckJson(p, "--payload");
      if (!s.ok()) {
        return UsageError(s.message() +
                          " (quote JSON strings, e.g. --payload '\"text\"', or use @FILE)");
      }
    }
  } else if (jobs->parsed()) {
    if (jobs_get->parsed()) {
      inv.command = Command::kJobsGet;
    } else if (jobs_wait->parsed()) {
      inv.command = Command::kJobsWait;
      if (wait_timeout_opt->count() > 0) inv.wait_timeout_s = wait_timeout;
    } else if (jobs_cancel->parsed() || jobs_replay->parsed() || jobs_delete->parsed()) {
      const bool cancel = jobs_cancel->parsed();
      const bool replay = jobs_replay->parsed();
      const BulkFlags& flags = cancel ? cancel_flags : replay ? replay_flags : delete_flags;
      const char* action = cancel ? "cancel" : replay ? "replay" : "delete";
      if (!inv.job_id.empty()) {
        if (flags.Given()) {
          return UsageError(std::string("jobs ") + action +
                            ": give a job id or a filter, not both");
        }
        inv.command = cancel ? Command::kJobsCancel : Command::kJobsReplay;
      } else {
        Status s = flags.ToRequest(action, &inv.bulk, &inv.bulk_max_pages);
        if (!s.ok()) return UsageError(s.message());
        inv.command = Command::kJobsBulk;
      }
    } else {
      inv.command = Command::kJobsList;
      Status s = list_filter.Fill(&inv.list_jobs.filter);
      if (!s.ok()) return UsageError(s.message());
      if (list_limit_opt->count() > 0) inv.list_jobs.limit = list_limit;
      if (list_cursor_opt->count() > 0) inv.list_jobs.cursor = list_cursor;
    }
  } else if (queues->parsed()) {
    if (pause->parsed()) {
      inv.command = Command::kQueuesPause;
    } else if (resume->parsed()) {
      inv.command = Command::kQueuesResume;
    } else if (reset->parsed()) {
      inv.command = Command::kQueuesReset;
    } else if (qset->parsed()) {
      inv.command = Command::kQueuesSet;
      inv.queue_update.weight = queue_weight;
    } else {
      inv.command = inv.queue_name.empty() ? Command::kQueuesList : Command::kQueuesGet;
    }
  } else if (nss->parsed()) {
    if (ns_list->parsed()) {
      inv.command = Command::kNamespacesList;
    } else if (ns_get->parsed()) {
      inv.command = Command::kNamespacesGet;
    } else if (ns_set->parsed()) {
      inv.command = Command::kNamespacesSet;
      if (ns_max_live_opt->count() > 0) inv.ns.max_live_jobs = ns_max_live;
      if (ns_weight_opt->count() > 0) inv.ns.weight = ns_weight;
      if (ns_max_active_opt->count() > 0) inv.ns.max_active = ns_max_active;
      if (ns_rate_opt->count() > 0) {
        Result<client::NamespaceRate> rate = ParseRateArg(ns_rate);
        if (!rate.ok()) return UsageError(rate.status().message());
        if (ns_burst_opt->count() > 0) {
          if (ns_burst < 1) return UsageError("--burst: must be 1..1000000000");
          rate->burst = ns_burst;
        }
        inv.ns.enqueue_rate = *rate;
      }
      if (!inv.ns.max_live_jobs && !inv.ns.weight && !inv.ns.enqueue_rate && !inv.ns.max_active) {
        return UsageError(
            "namespaces set: give at least one of --max-live-jobs, --rate, --weight, "
            "--max-active");
      }
    } else if (ns_export->parsed()) {
      inv.command = Command::kNamespacesExport;
    } else if (ns_wipe->parsed()) {
      if (!wipe_yes) {
        return UsageError("namespaces wipe erases every job, idempotency key and schedule of " +
                          inv.ns.name + " and cannot be undone: add --yes to go ahead");
      }
      inv.command = Command::kNamespacesWipe;
    } else {
      inv.command = Command::kNamespacesDelete;
    }
  } else if (limits->parsed()) {
    if (limits_list->parsed()) {
      inv.command = Command::kLimitsList;
    } else if (limits_get->parsed()) {
      inv.command = Command::kLimitsGet;
    } else if (limits_set->parsed()) {
      inv.command = Command::kLimitsSet;
      if (limit_concurrency_opt->count() > 0) inv.limit.concurrency = limit_concurrency;
      if (limit_rate_opt->count() > 0) {
        Result<client::LimitRate> rate = ParseRateFlag(limit_rate);
        if (!rate.ok()) return UsageError(rate.status().message());
        inv.limit.rate = *rate;
        if (limit_burst_opt->count() > 0) inv.limit.rate->burst = limit_burst;
      } else if (limit_burst_opt->count() > 0) {
        return UsageError("--burst needs --rate");
      }
      if (limit_quota_opt->count() > 0) {
        Result<client::LimitQuota> quota = ParseQuotaFlag(limit_quota);
        if (!quota.ok()) return UsageError(quota.status().message());
        inv.limit.quota = *quota;
        if (limit_zone_opt->count() > 0) inv.limit.quota->time_zone = limit_zone;
      } else if (limit_zone_opt->count() > 0) {
        return UsageError("--time-zone needs --quota");
      }
      bool any_breaker_flag = limit_breaker_opt->count() > 0;
      for (const BreakerFlag& f : breaker_flags) any_breaker_flag |= f.opt->count() > 0;
      if (any_breaker_flag) {
        client::LimitBreaker b;
        std::optional<std::int64_t>* members[] = {&b.consecutive_failures, &b.window,
                                                  &b.min_samples,          &b.failure_percent,
                                                  &b.open_base_ms,         &b.open_max_ms};
        for (std::size_t i = 0; i < std::size(breaker_flags); ++i) {
          if (breaker_flags[i].opt->count() > 0) *members[i] = breaker_flags[i].value;
        }
        inv.limit.breaker = b;
      }
      // Key modes.
      if (limit_debounce_opt->count() > 0) inv.limit.debounce_delay_ms = debounce_ms;
      if (limit_max_wait_opt->count() > 0) inv.limit.debounce_max_wait_ms = debounce_max_wait_ms;
      if (!inv.limit.concurrency && !inv.limit.rate && !inv.limit.quota && !inv.limit.breaker &&
          limit_singleton_opt->count() == 0 && limit_debounce_opt->count() == 0) {
        return UsageError(
            "limits set needs at least one of --concurrency, --rate, --quota, --breaker, "
            "--singleton and --debounce-ms");
      }
      if (limit_queue_opt->count() > 0) inv.limit.match_queue = limit_queue;
      if (limit_kind_opt->count() > 0) inv.limit.match_kind = limit_kind;
      if (limit_ns_opt->count() > 0) inv.limit.match_namespace = limit_ns;
    } else if (limits_reset_breaker->parsed()) {
      inv.command = Command::kLimitsResetBreaker;
      if (reset_key_opt->count() > 0) inv.breaker_key = reset_key;
    } else {
      inv.command = Command::kLimitsDelete;
    }
  } else if (schedules.parsed()) {
    if (Status s = schedules.Finish(&inv); !s.ok()) return UsageError(s.message());
  } else if (dead->parsed()) {
    if (dead_list->parsed()) {
      inv.command = Command::kDeadList;
      if (dead_queue_opt->count() > 0) inv.list_dead.queue = dead_queue;
      if (dead_limit_opt->count() > 0) inv.list_dead.limit = dead_limit;
      if (dead_cursor_opt->count() > 0) inv.list_dead.cursor = dead_cursor;
    } else {
      inv.command = Command::kDeadReplay;
      if (replay_queue_opt->count() > 0) inv.dead_replay.queue = replay_queue;
      if (replay_limit_opt->count() > 0) inv.dead_replay.limit = replay_limit;
      // Replaying every dead job of every queue can restart a flood of failing work, so it
      // must be asked for explicitly rather than be what a forgotten filter does.
      if (replay_queue_opt->count() == 0 && replay_ids_opt->count() == 0 && !replay_all) {
        return UsageError("dead replay needs --queue, --id or --all");
      }
      if (replay_all && replay_queue_opt->count() > 0) {
        return UsageError("dead replay: --all cannot be combined with --queue");
      }
      if (inv.dead_replay.ids.size() > 1000) {
        return UsageError("dead replay: at most 1000 --id per call");
      }
    }
  } else if (info->parsed()) {
    inv.command = Command::kInfo;
  } else if (alerts->parsed()) {
    inv.command = Command::kAlertsList;
  } else if (tokens->parsed()) {
    if (tok_create->parsed()) {
      inv.command = Command::kTokensCreate;
      if (tok_expires_opt->count() > 0) {
        if (tok_expires_in < 1) return UsageError("--expires-in-ms: must be at least 1");
        inv.token_create.expires_in_ms = tok_expires_in;
      }
    } else if (tok_list->parsed()) {
      inv.command = Command::kTokensList;
    } else if (tok_revoke->parsed()) {
      inv.command = Command::kTokensRevoke;
    } else if (tok_secret->parsed()) {
      inv.command = Command::kTokensNewSecret;
    }
  } else if (audit.parsed()) {
    if (Status s = audit.Finish(&inv); !s.ok()) return UsageError(s.message());
  }

  ParseOutcome o;
  o.invocation = std::move(inv);
  return o;
}

}  // namespace ym::cli
