// ym_bench: load generator and measurement tool for a running Yardmaster server.
// Usage and the meaning of every number: docs/benchmarks.md.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "client/api_client.h"
#include "scenarios.h"

namespace {

using ym::bench::BenchOptions;
using ym::bench::Report;

const std::map<std::string, Report (*)(const BenchOptions&)>& Scenarios() {
  static const std::map<std::string, Report (*)(const BenchOptions&)> kScenarios = {
      {"enqueue", &ym::bench::RunEnqueue}, {"enqueue-batch", &ym::bench::RunEnqueueBatch},
      {"drain", &ym::bench::RunDrain},     {"latency", &ym::bench::RunLatency},
      {"memory", &ym::bench::RunMemory},   {"dispatch", &ym::bench::RunDispatch},
      {"spread", &ym::bench::RunSpread},
  };
  return kScenarios;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ym_bench: measures a running Yardmaster server over HTTP.\n\n"
      "Scenarios (run in the order given):\n"
      "  enqueue        single-job POST /v1/jobs from --connections threads\n"
      "  enqueue-batch  POST /v1/jobs:batch of --batch jobs from --connections threads\n"
      "  drain          pre-fill --jobs in batches, then --consumers threads lease --batch\n"
      "                 at a time and ack with acks:batch until the queue is empty\n"
      "  latency        one producer offers --rate jobs/s; --consumers long-poll leases;\n"
      "                 reports enqueue-to-lease latency percentiles\n"
      "  memory         enqueue --jobs and report the server's RSS growth per job\n"
      "                 (needs --server-pid of a server on this machine)\n"
      "  spread         pre-fill --jobs over --queues queues (a mutex per key over --keys\n"
      "                 concurrency keys), then --consumers threads lease naming\n"
      "                 --lease-queues queues at a time and ack until all are acked\n"
      "  dispatch       in process, no server: the scheduler's CPU ns per job in one queue\n"
      "                 and over 10,000 queues (leases naming 64), without limits and with\n"
      "                 a mutex per concurrency key over 1,000 keys (--jobs per shape)\n"
      "Every scenario stops at --jobs or --max-seconds, whichever comes first.",
      "ym_bench"};
  BenchOptions o;
  if (const char* u = std::getenv("YM_URL"); u != nullptr && *u != '\0') {
    o.server_url = u;
  } else {
    o.server_url = "http://127.0.0.1:7433";
  }
  std::vector<std::string> scenarios;
  bool json = false;
  long server_pid = 0;
  std::vector<std::string> names;
  for (const auto& [name, fn] : Scenarios()) names.push_back(name);

  app.add_option("scenario", scenarios,
                 "Scenarios to run: enqueue, enqueue-batch, drain, "
                 "latency, memory, spread, dispatch")
      ->required()
      ->check(CLI::IsMember(names));
  app.add_option(
         "--server", o.server_url,
         "Server base URL, http://HOST:PORT or https://HOST:PORT (default: $YM_URL, "
         "else http://127.0.0.1:7433; for https, the CA file is $YM_CA_FILE; with auth, the API "
         "token is $YM_TOKEN or the file named by $YM_TOKEN_FILE)")
      ->type_name("URL");
  app.add_option("--jobs,-n", o.jobs, "Jobs per scenario (drain: jobs pre-filled)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--connections,-c", o.connections,
                 "Producer threads, each with its own keep-alive connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  CLI::Option* consumers_opt =
      app.add_option("--consumers", o.consumers,
                     "Lease/ack threads for drain and latency (default: --connections)")
          ->check(CLI::Range(1, 1024));
  app.add_option("--batch,-b", o.batch, "Jobs per enqueue batch and per lease, 1..1000")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--rate,-r", o.rate, "latency: jobs offered per second")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--payload-bytes", o.payload_bytes, "Approximate JSON payload size per job")
      ->capture_default_str()
      ->check(CLI::Range(16, 1 << 20));
  app.add_option("--max-seconds,-t", o.max_seconds, "Time limit per scenario")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--queue-prefix", o.queue_prefix,
                 "Prefix of the per-run queue names (<prefix>-<scenario>-<pid>-<ms>)")
      ->capture_default_str();
  CLI::Option* pid_opt =
      app.add_option("--server-pid", server_pid, "memory: PID of the server process (local)")
          ->check(CLI::PositiveNumber);
  app.add_option("--queues", o.queues, "spread: queues the jobs go round-robin over")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--keys", o.keys,
                 "spread: concurrency keys, one job at a time per key (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--lease-queues", o.lease_queues, "spread: queues named by each lease, 1..64")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_flag("--json", json, "Print one JSON object per scenario instead of tables");
  app.footer(
      "Exit codes: 0 every scenario completed, 1 a scenario was cut short or had errors,\n"
      "2 usage error, 3 server unreachable. See docs/benchmarks.md.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (consumers_opt->count() == 0) o.consumers = o.connections;
  if (pid_opt->count() > 0) o.server_pid = server_pid;

  // Fail fast and clearly when the server is not there, instead of reporting a scenario full
  // of connection errors (unless every scenario runs in process).
  const bool in_process = std::all_of(scenarios.begin(), scenarios.end(),
                                      [](const std::string& n) { return n == "dispatch"; });
  if (!in_process) {
    ym::Result<ym::client::ApiClient> probe = ym::client::ApiClient::Create(o.server_url);
    if (!probe.ok()) {
      std::cerr << "error: " << probe.status().message() << '\n';
      return 2;
    }
    if (ym::Status s = probe->Healthz(); !s.ok()) {
      std::cerr << "error: server at " << o.server_url << " is not healthy: " << s.ToString()
                << '\n';
      return probe->last_http_status() == 0 ? 3 : 1;
    }
  }

  bool all_ok = true;
  for (const std::string& name : scenarios) {
    Report r = Scenarios().at(name)(o);
    all_ok = all_ok && r.completed && r.errors == 0;
    std::cout << (json ? ym::bench::ToJsonLine(r) : ym::bench::ToTable(r)) << std::flush;
  }
  return all_ok ? 0 : 1;
}
