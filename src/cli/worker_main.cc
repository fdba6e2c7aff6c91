// `yardmaster worker`: argument parsing, the outcome mapping and the stderr tail (pure), and
// WorkerMain() which wires them to the SDK's worker runtime.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>

#include "cli/cli.h"
#include "cli/worker.h"
#include "client/http_client.h"
#include "common/build_info.h"

namespace ym::cli {
namespace {

constexpr int kExTempFail = 75;  // sysexits.h EX_TEMPFAIL

const char* const kWorkerDescription =
    "Run a command once per job.\n\n"
    "  yardmaster worker --queue NAME [OPTIONS] -- COMMAND [ARGS...]\n\n"
    "Leases jobs from the given queues and runs COMMAND for each, in its own process group, with\n"
    "the job's payload (JSON) on stdin and YM_JOB_ID, YM_QUEUE, YM_KIND, YM_ATTEMPT, YM_URL and\n"
    "YM_RESULT_FILE in its environment, and the job's W3C trace context as TRACEPARENT and\n"
    "TRACESTATE when it has one (never the worker's own). COMMAND is executed directly (no\n"
    "shell), found on PATH\n"
    "like execvp. To give the job a result, write it (JSON) to the file $YM_RESULT_FILE names.\n\n"
    "Exit status of COMMAND:\n"
    "  0          the job succeeded (acked, with the result file's JSON as its result)\n"
    "  75         temporary failure (EX_TEMPFAIL): retried with the queue's backoff\n"
    "  other      the attempt failed with the last stderr lines as its error; retried until\n"
    "             the job's max_attempts, or dead at once for a --permanent-exit-code\n"
    "A job that runs past --timeout or past its own timeout_ms (the job's or its queue's\n"
    "execution timeout, enforced by the server), or is cancelled, has its whole process group\n"
    "sent SIGTERM, then SIGKILL after --kill-grace. A job's timeout_ms is failed by the server\n"
    "with type \"timeout\" and retried by its backoff.\n\n"
    "SIGTERM or SIGINT: stop leasing, hand back jobs not started, let running commands finish\n"
    "for up to --grace, then kill them and hand their jobs back for immediate re-delivery.\n"
    "A second signal skips the rest of the grace.";

const char* const kWorkerFooter =
    "Exit codes: 0 stopped by a signal after a clean shutdown, 1 the server refused the lease\n"
    "requests for good (any 4xx but 408/429, e.g. a worker id over 128 bytes), 2 usage error.\n"
    "Example: yardmaster worker --queue emails --concurrency 4 -- ./send_email.sh\n"
    "See docs/cli.md (worker) and docs/workers.md (how every worker behaves).";

WorkerParseOutcome UsageError(const std::string& message) {
  WorkerParseOutcome o;
  o.exit_code = kExitUsage;
  o.err = "error: " + message + "\nRun `yardmaster worker --help` for more information.\n";
  return o;
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  std::int64_t n = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(begin, end, n);
  if (ec != std::errc() || p == begin || n < 0) return std::nullopt;
  const std::string_view unit(p, static_cast<std::size_t>(end - p));
  std::int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    return std::nullopt;
  }
  // Anything beyond 30 days is a typo, and the bound keeps the multiplication from overflowing.
  if (n > 30LL * 86'400'000 / scale) return std::nullopt;
  return std::chrono::milliseconds(n * scale);
}

void TailBuffer::Append(std::string_view chunk) {
  for (char c : chunk) {
    if (c == '\n') {
      bytes_ += partial_.size();
      lines_.push_back(std::move(partial_));
      partial_.clear();
    } else if (partial_.size() < max_bytes_) {
      // A single endless line is cut rather than kept whole: only its start fits the budget.
      partial_.push_back(c);
    }
  }
  Trim();
}

void TailBuffer::Trim() {
  while (!lines_.empty() && (lines_.size() + (partial_.empty() ? 0 : 1) > max_lines_ ||
                             bytes_ + partial_.size() > max_bytes_)) {
    bytes_ -= lines_.front().size();
    lines_.pop_front();
  }
}

std::string TailBuffer::Text() const {
  std::string out;
  for (const std::string& l : lines_) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  if (!partial_.empty()) {
    if (!out.empty()) out += '\n';
    out += partial_;
  }
  return out;
}

yardmaster::Outcome OutcomeFor(const ExecResult& r, const WorkerConfig& config) {
  using yardmaster::Outcome;
  auto with_tail = [&](std::string what) { return r.stderr_tail.empty() ? what : r.stderr_tail; };
  switch (r.ending) {
    case ExecResult::Ending::kExited: {
      if (r.code == 0) {
        if (r.result_too_big) {
          return Outcome::Permanent("the command wrote more than " +
                                    std::to_string(kMaxResultFileBytes) +
                                    " bytes to $YM_RESULT_FILE")
              .WithType("invalid_result");
        }
        const auto blank = r.result_json.find_first_not_of(" \t\r\n") == std::string::npos;
        return blank ? Outcome::Ok() : Outcome::Ok(r.result_json);
      }
      const std::string msg = with_tail("command exited with status " + std::to_string(r.code));
      if (r.code == kExTempFail) return Outcome::Retry(msg).WithType("tempfail");
      const std::string type = "exit_" + std::to_string(r.code);
      if (config.permanent_exit_codes.count(r.code) > 0) {
        return Outcome::Permanent(msg).WithType(type);
      }
      return Outcome::Retry(msg).WithType(type);
    }
    case ExecResult::Ending::kSignaled:
      return Outcome::Retry("command killed by signal " + std::to_string(r.code) +
                            (r.stderr_tail.empty() ? "" : ":\n" + r.stderr_tail))
          .WithType("signal");
    case ExecResult::Ending::kTimedOut:
      return Outcome::Retry("command timed out after " +
                            std::to_string(r.timeout_ms != 0 ? r.timeout_ms
                                           : config.timeout  ? config.timeout->count()
                                                             : 0) +
                            " ms; its process group was killed" +
                            (r.stderr_tail.empty() ? "" : ":\n" + r.stderr_tail))
          .WithType("timeout");
    case ExecResult::Ending::kStopped:
      // Only a cancel's outcome is reported: after a shutdown or a lost lease the runtime
      // ignores what the handler returns.
      return Outcome::Cancelled(
          "command stopped: the job was cancelled; its process group was "
          "killed");
    case ExecResult::Ending::kSpawnFailed:
      return Outcome::Retry("cannot run '" + config.command.front() + "': " + r.spawn_error)
          .WithType("spawn_failed");
  }
  return Outcome::Retry("unknown command ending");
}

WorkerParseOutcome ParseWorkerArgs(const std::vector<std::string>& args,
                                   const std::optional<std::string>& env_url) {
  // Everything after the first `--` is the command, untouched: its own options must not be
  // read as the worker's.
  const auto dashdash = std::find(args.begin(), args.end(), "--");
  std::vector<std::string> own(args.begin(), dashdash);
  WorkerConfig config;
  if (dashdash != args.end()) config.command.assign(dashdash + 1, args.end());

  CLI::App app{kWorkerDescription, "yardmaster worker"};
  app.footer(kWorkerFooter);
  config.server_url = env_url.value_or(std::string(kDefaultServerUrl));
  app.add_option("--server", config.server_url,
                 "Server base URL, http://HOST:PORT or https://HOST:PORT (default: $YM_URL, "
                 "else " +
                     std::string(kDefaultServerUrl) + ")")
      ->type_name("URL");
  app.add_option("--ca-file", config.ca_file,
                 "For https://: PEM file of the CAs the server's certificate must chain to "
                 "(default: $YM_CA_FILE, else the system's CAs)")
      ->type_name("FILE");
  app.add_option("--client-cert-file", config.client_cert_file,
                 "For https:// to a server that requires client certificates: this client's PEM "
                 "certificate (default: $YM_CLIENT_CERT_FILE)")
      ->type_name("FILE");
  app.add_option("--client-key-file", config.client_key_file,
                 "The key of --client-cert-file (default: $YM_CLIENT_KEY_FILE)")
      ->type_name("FILE");
  app.add_option("--token", config.token,
                 "API token sent as `Authorization: Bearer` (default: $YM_TOKEN; prefer "
                 "--token-file or $YM_TOKEN_FILE: a command line is visible to other local users)")
      ->type_name("TOKEN");
  app.add_option("--token-file", config.token_file,
                 "File whose first line is the API token (default: $YM_TOKEN_FILE). Precedence: "
                 "--token, --token-file, $YM_TOKEN, $YM_TOKEN_FILE")
      ->type_name("FILE");
  app.add_option("--queue,-q", config.queues, "Queue to lease from; repeat for several")
      ->required()
      ->type_name("NAME")
      ->allow_extra_args(false);
  app.add_option("--concurrency,-c", config.concurrency, "Commands run at once (default 1)")
      ->check(CLI::Range(1, 1000));
  std::int64_t lease_ms = 0;
  CLI::Option* lease_opt =
      app.add_option("--lease-ms", lease_ms,
                     "Lease length asked per job, 100..86400000 ms; heartbeats renew it while "
                     "the command runs (default: the queue's lease_ms)")
          ->check(CLI::Range(std::int64_t{100}, std::int64_t{86'400'000}));
  std::string timeout, grace = "30s", kill_grace = "5s";
  CLI::Option* timeout_opt =
      app.add_option("--timeout", timeout,
                     "Kill a job's process group when its command runs longer than this "
                     "(e.g. 90s, 5m; a bare number is seconds; default: no limit beyond the "
                     "job's own timeout_ms, which always applies)")
          ->type_name("DURATION");
  app.add_option("--grace", grace,
                 "On SIGTERM/SIGINT, how long running commands may take to finish (default 30s)")
      ->type_name("DURATION");
  app.add_option("--kill-grace", kill_grace,
                 "Between SIGTERM and SIGKILL to a process group (default 5s)")
      ->type_name("DURATION");
  std::vector<int> permanent;
  app.add_option("--permanent-exit-code", permanent,
                 "An exit status that means the job can never succeed: it goes dead at once "
                 "instead of being retried; repeat for several")
      ->type_name("N")
      ->check(CLI::Range(1, 255))
      ->allow_extra_args(false);
  std::string prefetch = "auto";
  app.add_option("--prefetch", prefetch,
                 "Jobs leased ahead of free slots: 'auto' (default: just enough to cover a "
                 "lease round trip, none for long jobs) or a number (0 = none)")
      ->type_name("N|auto");
  std::string poll_wait = "10s";
  app.add_option("--poll-wait", poll_wait,
                 "How long one lease request waits on the server when nothing is ready "
                 "(0..30s, default 10s)")
      ->type_name("DURATION");
  app.add_option("--worker-id", config.worker_id,
                 "Name shown in each job's lease (default: HOSTNAME-PID)");
  app.set_version_flag("--version", std::string(), "Print the version and git commit and exit");

  try {
    std::vector<std::string> reversed(own.rbegin(), own.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    WorkerParseOutcome o;
    o.out = app.help();
    return o;
  } catch (const CLI::CallForVersion&) {
    WorkerParseOutcome o;
    o.out = "yardmaster " + VersionLine() + "\n";
    return o;
  } catch (const CLI::ParseError& e) {
    return UsageError(e.what());
  }
  if (auto url = client::ParseBaseUrl(config.server_url); !url.ok()) {
    return UsageError("--server: " + url.status().message());
  }
  if (config.command.empty()) {
    return UsageError("no command: put it after --, e.g. yardmaster worker -q jobs -- ./run.sh");
  }
  if (lease_opt->count() > 0) config.lease = std::chrono::milliseconds(lease_ms);
  if (timeout_opt->count() > 0) {
    config.timeout = ParseDuration(timeout);
    if (!config.timeout || config.timeout->count() == 0) {
      return UsageError("--timeout '" + timeout + "' is not a positive duration like 90s or 5m");
    }
  }
  auto g = ParseDuration(grace);
  if (!g) return UsageError("--grace '" + grace + "' is not a duration like 30s");
  config.grace = *g;
  auto k = ParseDuration(kill_grace);
  if (!k) return UsageError("--kill-grace '" + kill_grace + "' is not a duration like 5s");
  config.kill_grace = *k;
  if (prefetch != "auto") {
    int n = -1;
    const auto [p, ec] = std::from_chars(prefetch.data(), prefetch.data() + prefetch.size(), n);
    if (ec != std::errc() || p != prefetch.data() + prefetch.size() || n < 0 ||
        n + config.concurrency > 1000) {
      return UsageError("--prefetch '" + prefetch +
                        "' must be 'auto' or a number >= 0 with concurrency + prefetch <= 1000");
    }
    config.prefetch = n;
  }
  auto pw = ParseDuration(poll_wait);
  if (!pw || pw->count() > 30'000) {
    return UsageError("--poll-wait '" + poll_wait + "' is not a duration of 0..30s like 10s");
  }
  config.poll_wait = *pw;
  config.permanent_exit_codes.insert(permanent.begin(), permanent.end());
  if (config.permanent_exit_codes.count(kExTempFail) > 0) {
    return UsageError("--permanent-exit-code 75 contradicts EX_TEMPFAIL, which means retry");
  }
  WorkerParseOutcome o;
  o.config = std::move(config);
  return o;
}

int WorkerMain(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::string> env_url;
  if (const char* u = std::getenv("YM_URL"); u != nullptr && *u != '\0') env_url = u;
  WorkerParseOutcome parsed = ParseWorkerArgs(args, env_url);
  std::cout << parsed.out;
  std::cerr << parsed.err;
  if (!parsed.config) return parsed.exit_code;
  const WorkerConfig config = std::move(*parsed.config);

  // Writing a payload to a command that exits without reading stdin must be an EPIPE error
  // for that job, not a signal that kills the worker. Children get the default back.
  signal(SIGPIPE, SIG_IGN);

  yardmaster::WorkerOptions options;
  options.server_url = config.server_url;
  options.ca_file = config.ca_file;
  options.client_cert_file = config.client_cert_file;
  options.client_key_file = config.client_key_file;
  options.token = config.token;
  options.token_file = config.token_file;
  options.queues = config.queues;
  options.concurrency = config.concurrency;
  options.lease = config.lease;
  options.poll_wait = config.poll_wait;
  options.prefetch = config.prefetch;
  options.shutdown_grace = config.grace;
  options.worker_id = config.worker_id;
  yardmaster::Worker worker(options);
  worker.HandleAll([&config](yardmaster::JobContext& job) {
    return OutcomeFor(RunCommand(config, job), config);
  });
  yardmaster::Status s = worker.RunUntilSignal();
  if (!s.ok()) {
    std::cerr << "error: " << s.ToString() << '\n';
    // http_status 0: options the runtime refused before contacting the server (usage); else
    // the server's final refusal of the lease requests.
    return s.http_status() == 0 ? kExitUsage : kExitServerError;
  }
  const yardmaster::WorkerStats st = worker.Stats();
  std::cerr << "yardmaster worker: stopped; leased " << st.leased << ", succeeded " << st.succeeded
            << ", failed " << st.failed << ", handed back " << st.handed_back << ", leases lost "
            << st.leases_lost << '\n';
  return kExitOk;
}

}  // namespace ym::cli
