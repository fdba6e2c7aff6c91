// `yardmaster worker`: the exec worker. It leases jobs through the C++ SDK's worker runtime
// (include/yardmaster/worker.h) and runs one command per job (docs/cli.md, "worker").
//
// Per job: the command runs in its own process group with the payload (JSON text) on stdin and
// YM_JOB_ID, YM_QUEUE, YM_KIND, YM_ATTEMPT, YM_URL and YM_RESULT_FILE added to the worker's
// environment; stdout is the worker's stdout, stderr is copied to the worker's stderr and its
// tail kept. YM_RESULT_FILE names an empty private file the command may write the job's result
// to (JSON text); it is removed after the command ends.
//   exit 0                       -> ack, with the result file's text as the result (none when
//                                   the file is left empty or holds only whitespace)
//   exit 75 (EX_TEMPFAIL)        -> retryable failure, type "tempfail"
//   exit N in --permanent-exit   -> permanent failure (dead at once), type "exit_N"
//   any other exit N             -> failed attempt (retried by the queue's policy), type "exit_N"
//   killed by a signal           -> failed attempt, type "signal"
//   --timeout elapsed            -> the whole group gets SIGTERM, then SIGKILL after
//                                   --kill-grace; failed attempt, type "timeout"
//   the job's timeout_ms reached -> the group is killed the same way; the broker has already
//                                   failed the attempt with type "timeout" (nothing reported)
//   cancelled on the server      -> the group is killed the same way; reported as cancelled
//                                   (type "cancelled"), so the job ends `cancelled`
// The failure message is the last stderr lines (at most kTailLines / kTailBytes).
//
// The pure parts (argument parsing, the stderr tail, the outcome mapping) are separate from
// process handling so that tests/unit/sdk_exec_worker_test.cc covers them without a server.
//
// Threads: RunCommand() is called from the runtime's slot threads, one command per slot; it
// touches no shared state except reading the environment snapshot taken at start.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "yardmaster/worker.h"

namespace ym::cli {

inline constexpr std::size_t kTailLines = 20;
inline constexpr std::size_t kTailBytes = 4000;
// The most of a result file the worker reads; the server's own limit on a result
// (max_payload_bytes, 1 MiB by default, at most 64 MiB) refuses a large one with a clear error.
inline constexpr std::size_t kMaxResultFileBytes = 64u << 20;

struct WorkerConfig {
  std::string server_url;
  std::string ca_file;  // https:// only; empty: $YM_CA_FILE, else the system's CAs
  // https:// only: a client certificate (mTLS); empty: $YM_CLIENT_CERT_FILE/_KEY_FILE.
  std::string client_cert_file;
  std::string client_key_file;
  // An API token, or a file holding one; empty: $YM_TOKEN, then $YM_TOKEN_FILE.
  std::string token;
  std::string token_file;
  std::vector<std::string> queues;
  int concurrency = 1;
  std::optional<std::chrono::milliseconds> lease;
  std::optional<std::chrono::milliseconds> timeout;  // unset: no per-job timeout
  std::chrono::milliseconds grace{30'000};
  std::chrono::milliseconds kill_grace{5'000};
  std::chrono::milliseconds poll_wait{10'000};
  std::optional<int> prefetch;  // unset: automatic
  std::set<int> permanent_exit_codes;
  std::string worker_id;
  std::vector<std::string> command;  // argv of the command; never run through a shell
};

struct WorkerParseOutcome {
  std::optional<WorkerConfig> config;
  int exit_code = 0;
  std::string out;  // help
  std::string err;  // usage errors
};

// Parses the arguments after `worker` (args[0] is the first option). `env_url` is $YM_URL.
WorkerParseOutcome ParseWorkerArgs(const std::vector<std::string>& args,
                                   const std::optional<std::string>& env_url);

// A duration: an integer with a unit (`500ms`, `30s`, `5m`, `1h`); a bare integer is seconds.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Keeps the last lines of a stream that arrives in arbitrary chunks, bounded in lines and bytes
// so that a chatty command cannot grow the worker's memory.
class TailBuffer {
 public:
  TailBuffer(std::size_t max_lines = kTailLines, std::size_t max_bytes = kTailBytes)
      : max_lines_(max_lines), max_bytes_(max_bytes) {}
  void Append(std::string_view chunk);
  // The kept lines joined by '\n', without a trailing newline; a partial last line included.
  std::string Text() const;

 private:
  void Trim();
  std::size_t max_lines_, max_bytes_;
  std::deque<std::string> lines_;  // complete lines
  std::string partial_;
  std::size_t bytes_ = 0;
};

struct ExecResult {
  enum class Ending { kExited, kSignaled, kTimedOut, kStopped, kSpawnFailed };
  Ending ending = Ending::kExited;
  int code = 0;  // exit status, or the signal number for kSignaled
  std::string stderr_tail;
  std::string spawn_error;  // kSpawnFailed
  // kTimedOut: the limit that was reached (--timeout, or the job's timeout_ms); 0: --timeout.
  std::int64_t timeout_ms = 0;
  // kExited with code 0: what the command wrote to $YM_RESULT_FILE (empty: nothing), or that
  // it wrote more than kMaxResultFileBytes.
  std::string result_json;
  bool result_too_big = false;
};

// How a finished command is reported (pure).
yardmaster::Outcome OutcomeFor(const ExecResult& r, const WorkerConfig& config);

// Runs `config.command` for one job and waits for it (see the header comment).
ExecResult RunCommand(const WorkerConfig& config, const yardmaster::JobContext& job);

// The whole `yardmaster worker` command; argv[0] is "worker". Returns the exit code.
int WorkerMain(int argc, char** argv);

}  // namespace ym::cli
