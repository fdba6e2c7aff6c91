// `yardmaster worker`: running one command per job (posix_spawn, pipes, poll, process groups).

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli/worker.h"

extern char** environ;

namespace ym::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The variables the worker sets per job; inherited values of the same names are dropped so a
// command never sees two of them. TRACEPARENT/TRACESTATE (the OpenTelemetry environment
// carrier) are dropped even for a job without trace context: the command must not join
// whatever trace the worker process itself was started in.
bool IsJobVariable(std::string_view entry) {
  for (std::string_view name : {"YM_JOB_ID=", "YM_QUEUE=", "YM_KIND=", "YM_ATTEMPT=", "YM_URL=",
                                "YM_RESULT_FILE=", "TRACEPARENT=", "TRACESTATE="}) {
    if (entry.substr(0, name.size()) == name) return true;
  }
  return false;
}

// Owns the two pipe ends the worker keeps; closes them on every path out of RunCommand().
struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Copies what the command wrote to stderr into the tail and to the worker's own stderr, so
// operators see it in the worker's log as well as in the job's error.
bool DrainStderr(int fd, TailBuffer* tail) {
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      tail->Append(std::string_view(buf, static_cast<std::size_t>(n)));
      [[maybe_unused]] const ssize_t w = write(STDERR_FILENO, buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return false;  // EOF
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

// The file a command may write its result (JSON) to, named by YM_RESULT_FILE: created empty
// and private (mode 0600, mkstemp) in the temporary directory before the command starts,
// removed when the command has ended, whatever happened.
class ResultFile {
 public:
  ResultFile() {
    std::error_code ec;
    std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
    if (ec) dir = "/tmp";
    std::string templ = (dir / "ym-result-XXXXXX").string();
    const int fd = mkstemp(templ.data());
    if (fd < 0) {
      error_ = "cannot create the result file in " + dir.string() + ": " + strerror(errno);
      return;
    }
    close(fd);
    path_ = std::move(templ);
  }
  ~ResultFile() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  ResultFile(const ResultFile&) = delete;
  ResultFile& operator=(const ResultFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }

  // What the command wrote, up to kMaxResultFileBytes (*too_big is set past that).
  std::string Read(bool* too_big) const {
    *too_big = false;
    std::ifstream in(path_, std::ios::binary);
    std::string out;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      out.append(buf, static_cast<std::size_t>(in.gcount()));
      if (out.size() > kMaxResultFileBytes) {
        *too_big = true;
        out.clear();
        break;
      }
    }
    return out;
  }

 private:
  std::string path_;
  std::string error_;
};

}  // namespace

ExecResult RunCommand(const WorkerConfig& config, const yardmaster::JobContext& job) {
  ExecResult result;
  // Everything the child needs is built before spawning: posix_spawn runs nothing of ours in
  // the child, so there is no async-signal-safety question in a multi-threaded parent.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!IsJobVariable(*e)) env_strings.emplace_back(*e);
  }
  env_strings.push_back("YM_JOB_ID=" + job.id());
  env_strings.push_back("YM_QUEUE=" + job.queue());
  env_strings.push_back("YM_KIND=" + job.kind());
  env_strings.push_back("YM_ATTEMPT=" + std::to_string(job.attempt()));
  env_strings.push_back("YM_URL=" + config.server_url);
  if (!job.traceparent().empty()) {
    env_strings.push_back("TRACEPARENT=" + job.traceparent());
    if (!job.tracestate().empty()) env_strings.push_back("TRACESTATE=" + job.tracestate());
  }
  const ResultFile result_file;
  if (!result_file.error().empty()) {
    result.ending = ExecResult::Ending::kSpawnFailed;
    result.spawn_error = result_file.error();
    return result;
  }
  env_strings.push_back("YM_RESULT_FILE=" + result_file.path());
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = config.command;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int in_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    result.ending = ExecResult::Ending::kSpawnFailed;
    result.spawn_error = std::string("pipe: ") + strerror(errno);
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    result.ending = ExecResult::Ending::kSpawnFailed;
    result.spawn_error = std::string("pipe: ") + strerror(errno);
    return result;
  }
  Fd stdin_w{in_pipe[1]}, stderr_r{err_pipe[0]};
  Fd child_in{in_pipe[0]}, child_err{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  // Sockets of the worker's own connections are not CLOEXEC; the command must not hold them.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (pgid = pid): the timeout and cancellation kill the command and every
  // process it started, which is the point of running it this way.
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  // The worker blocks SIGTERM/SIGINT (for sigwait) and ignores SIGPIPE; the command must start
  // with neither, or it could not be stopped and would not see broken pipes.
  posix_spawnattr_setsigmask(&attr, &empty);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  child_in.Close();
  child_err.Close();
  if (rc != 0) {
    result.ending = ExecResult::Ending::kSpawnFailed;
    result.spawn_error = strerror(rc);
    return result;
  }
  SetNonBlocking(stdin_w.fd);
  SetNonBlocking(stderr_r.fd);

  TailBuffer tail;
  const std::string& payload = job.payload();
  std::size_t written = 0;
  if (payload.empty()) stdin_w.Close();
  const auto started = Clock::now();
  std::optional<ExecResult::Ending> killing;  // why we are killing the group, once we are
  Clock::time_point kill_at;
  int status = 0;
  bool exited = false;

  auto begin_kill = [&](ExecResult::Ending why) {
    if (killing) return;
    killing = why;
    killpg(pid, SIGTERM);
    kill_at = Clock::now() + config.kill_grace;
  };

  while (!exited) {
    pollfd fds[2];
    nfds_t n = 0;
    if (stdin_w.fd >= 0) fds[n++] = {stdin_w.fd, POLLOUT, 0};
    if (stderr_r.fd >= 0) fds[n++] = {stderr_r.fd, POLLIN, 0};
    // A short timeout: the child's exit, the deadline and cancellation are checked between
    // polls (SIGCHLD handling in a multi-threaded worker would be more machinery than 25 ms).
    poll(fds, n, 25);
    if (stdin_w.fd >= 0) {
      const ssize_t w = write(stdin_w.fd, payload.data() + written, payload.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      // EPIPE: the command does not read its stdin, which is its right.
      if (written == payload.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        stdin_w.Close();
      }
    }
    if (stderr_r.fd >= 0 && !DrainStderr(stderr_r.fd, &tail)) stderr_r.Close();

    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) exited = true;

    const auto now = Clock::now();
    if (!exited && config.timeout && now - started >= *config.timeout) {
      result.timeout_ms = config.timeout->count();
      begin_kill(ExecResult::Ending::kTimedOut);
    }
    // The job's own execution timeout (timeout_ms) reached: the SDK stopped the context at the
    // deadline (the broker has failed the attempt with type "timeout"); the group goes as for
    // --timeout.
    if (!exited && job.cancelled() && !killing) {
      const bool timed_out = job.stop_reason() == yardmaster::StopReason::kTimeout;
      if (timed_out && job.timeout()) result.timeout_ms = job.timeout()->count();
      begin_kill(timed_out ? ExecResult::Ending::kTimedOut : ExecResult::Ending::kStopped);
    }
    if (killing && now >= kill_at) killpg(pid, SIGKILL);
  }

  if (killing) {
    // The leader is gone but the group may not be: processes it started can outlive it (and
    // ignore SIGTERM). Give them the rest of the grace, then SIGKILL whatever is left.
    while (killpg(pid, 0) == 0 && Clock::now() < kill_at) {
      if (stderr_r.fd >= 0 && !DrainStderr(stderr_r.fd, &tail)) stderr_r.Close();
      usleep(10'000);
    }
    killpg(pid, SIGKILL);
  }
  // Whatever the command wrote before exiting is in the pipe; a background process it left
  // behind may still hold the write end, so take what is there and do not wait for EOF.
  if (stderr_r.fd >= 0) DrainStderr(stderr_r.fd, &tail);

  result.stderr_tail = tail.Text();
  if (killing) {
    result.ending = *killing;
  } else if (WIFEXITED(status)) {
    result.ending = ExecResult::Ending::kExited;
    result.code = WEXITSTATUS(status);
    if (result.code == 0) {
      bool too_big = false;
      result.result_json = result_file.Read(&too_big);
      result.result_too_big = too_big;
    }
  } else {
    result.ending = ExecResult::Ending::kSignaled;
    result.code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  return result;
}

}  // namespace ym::cli
