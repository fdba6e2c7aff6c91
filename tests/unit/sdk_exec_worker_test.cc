// `yardmaster worker`'s pure parts (src/cli/worker.h): arguments, durations, stderr tail and
// how a command's ending becomes an outcome.

#include <gtest/gtest.h>

#include "cli/worker.h"

namespace ym::cli {
namespace {

using std::chrono::milliseconds;
using yardmaster::Outcome;

WorkerParseOutcome Parse(std::vector<std::string> args,
                         std::optional<std::string> env = std::nullopt) {
  return ParseWorkerArgs(args, env);
}

TEST(ExecWorkerArgs, CommandAfterDashDashIsKeptVerbatim) {
  WorkerParseOutcome o = Parse({"--queue", "a", "-q", "b", "-c", "4", "--timeout", "90s", "--",
                                "./h.sh", "--queue", "z", "--"});
  ASSERT_TRUE(o.config) << o.err;
  EXPECT_EQ(o.config->queues, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.config->concurrency, 4);
  EXPECT_EQ(o.config->timeout, milliseconds(90'000));
  EXPECT_EQ(o.config->command, (std::vector<std::string>{"./h.sh", "--queue", "z", "--"}));
  EXPECT_EQ(o.config->server_url, "http://127.0.0.1:7433");
  EXPECT_FALSE(o.config->lease.has_value());
  EXPECT_EQ(o.config->grace, milliseconds(30'000));
  EXPECT_FALSE(o.config->prefetch.has_value());  // automatic
  EXPECT_EQ(o.config->poll_wait, milliseconds(10'000));
}

TEST(ExecWorkerArgs, PrefetchIsAutoOrANumberAndPollWaitADuration) {
  auto o = Parse({"-q", "a", "-c", "4", "--prefetch", "12", "--poll-wait", "2s", "--", "x"});
  ASSERT_TRUE(o.config) << o.err;
  EXPECT_EQ(o.config->prefetch, 12);
  EXPECT_EQ(o.config->poll_wait, milliseconds(2000));
  EXPECT_FALSE(Parse({"-q", "a", "--prefetch", "auto", "--", "x"}).config->prefetch.has_value());
  EXPECT_EQ(Parse({"-q", "a", "--prefetch", "0", "--", "x"}).config->prefetch, 0);
  for (const char* bad : {"-1", "many", "12x", "1000"}) {
    WorkerParseOutcome e = Parse({"-q", "a", "--prefetch", bad, "--", "x"});
    EXPECT_EQ(e.exit_code, 2) << bad;
    EXPECT_NE(e.err.find("--prefetch"), std::string::npos) << e.err;
  }
  EXPECT_EQ(Parse({"-q", "a", "--poll-wait", "31s", "--", "x"}).exit_code, 2);
  EXPECT_EQ(Parse({"-q", "a", "--poll-wait", "soon", "--", "x"}).exit_code, 2);
}

TEST(ExecWorkerArgs, ServerComesFromFlagThenEnvironment) {
  EXPECT_EQ(Parse({"-q", "a", "--", "x"}, "http://h:1").config->server_url, "http://h:1");
  auto o = Parse({"-q", "a", "--server", "http://h:2", "--", "x"}, "http://h:1");
  EXPECT_EQ(o.config->server_url, "http://h:2");
}

TEST(ExecWorkerArgs, UsageErrors) {
  EXPECT_EQ(Parse({"-q", "a"}).exit_code, 2);                        // no command
  EXPECT_EQ(Parse({"--", "x"}).exit_code, 2);                        // no queue
  EXPECT_EQ(Parse({"-q", "a", "-c", "0", "--", "x"}).exit_code, 2);  // concurrency
  EXPECT_EQ(Parse({"-q", "a", "--timeout", "soon", "--", "x"}).exit_code, 2);
  EXPECT_EQ(Parse({"-q", "a", "--timeout", "0", "--", "x"}).exit_code, 2);
  EXPECT_EQ(Parse({"-q", "a", "--lease-ms", "10", "--", "x"}).exit_code, 2);
  EXPECT_EQ(Parse({"-q", "a", "--server", "https://h", "--", "x"}).exit_code, 2);
  EXPECT_EQ(Parse({"-q", "a", "--permanent-exit-code", "75", "--", "x"}).exit_code, 2);
  WorkerParseOutcome help = Parse({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--timeout"), std::string::npos);
}

TEST(ExecWorkerArgs, Durations) {
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("3"), milliseconds(3000));
  EXPECT_EQ(ParseDuration("2m"), milliseconds(120'000));
  EXPECT_EQ(ParseDuration("1h"), milliseconds(3'600'000));
  EXPECT_FALSE(ParseDuration("").has_value());
  EXPECT_FALSE(ParseDuration("-1s").has_value());
  EXPECT_FALSE(ParseDuration("5d").has_value());
  EXPECT_FALSE(ParseDuration("99999999999h").has_value());
}

TEST(ExecWorkerTail, KeepsTheLastLinesWithinBudget) {
  TailBuffer t(3, 100);
  t.Append("one\ntw");
  t.Append("o\nthree\nfour\nfi");
  EXPECT_EQ(t.Text(), "three\nfour\nfi");
  t.Append("ve\n");
  EXPECT_EQ(t.Text(), "three\nfour\nfive");
  TailBuffer small(10, 7);  // bytes of line content; newlines are not counted
  small.Append("aaaa\nbbbb\ncccc\n");
  EXPECT_EQ(small.Text(), "cccc");
  TailBuffer endless(10, 5);
  endless.Append(std::string(1000, 'x'));
  EXPECT_EQ(endless.Text(), "xxxxx");
}

TEST(ExecWorkerOutcome, TheResultFileIsTheResultOfAnExitZero) {
  WorkerConfig c;
  c.command = {"./h"};
  ExecResult r;
  EXPECT_EQ(OutcomeFor(r, c).result_json(), "null");  // nothing written: no result
  r.result_json = " \n\t";
  EXPECT_EQ(OutcomeFor(r, c).result_json(), "null");  // only whitespace: no result
  r.result_json = "{\"n\":1E2}\n";
  EXPECT_EQ(OutcomeFor(r, c).kind(), Outcome::Kind::kOk);
  EXPECT_EQ(OutcomeFor(r, c).result_json(), "{\"n\":1E2}\n");  // as written; the server checks it
  r.result_json.clear();
  r.result_too_big = true;
  const Outcome o = OutcomeFor(r, c);
  EXPECT_EQ(o.kind(), Outcome::Kind::kPermanent);
  EXPECT_EQ(o.type(), "invalid_result");
}

TEST(ExecWorkerOutcome, ExitCodesMapToOutcomes) {
  WorkerConfig c;
  c.command = {"./h"};
  c.permanent_exit_codes = {65};
  ExecResult r;
  EXPECT_EQ(OutcomeFor(r, c).kind(), Outcome::Kind::kOk);

  r.code = 75;
  r.stderr_tail = "busy";
  Outcome o = OutcomeFor(r, c);
  EXPECT_EQ(o.kind(), Outcome::Kind::kRetry);
  EXPECT_EQ(o.type(), "tempfail");
  EXPECT_EQ(o.message(), "busy");

  r.code = 3;
  r.stderr_tail = "";
  o = OutcomeFor(r, c);
  EXPECT_EQ(o.kind(), Outcome::Kind::kRetry);
  EXPECT_EQ(o.type(), "exit_3");
  EXPECT_EQ(o.message(), "command exited with status 3");

  r.code = 65;
  EXPECT_EQ(OutcomeFor(r, c).kind(), Outcome::Kind::kPermanent);

  r.ending = ExecResult::Ending::kTimedOut;
  c.timeout = milliseconds(1500);
  o = OutcomeFor(r, c);
  EXPECT_EQ(o.type(), "timeout");
  EXPECT_NE(o.message().find("1500 ms"), std::string::npos);

  r.ending = ExecResult::Ending::kSignaled;
  r.code = 9;
  EXPECT_EQ(OutcomeFor(r, c).type(), "signal");

  // Stopped: only a cancel's outcome is ever reported, and it ends the job cancelled.
  r.ending = ExecResult::Ending::kStopped;
  o = OutcomeFor(r, c);
  EXPECT_EQ(o.kind(), Outcome::Kind::kCancelled);
  EXPECT_EQ(o.type(), "cancelled");

  r.ending = ExecResult::Ending::kSpawnFailed;
  r.spawn_error = "No such file or directory";
  o = OutcomeFor(r, c);
  EXPECT_EQ(o.type(), "spawn_failed");
  EXPECT_NE(o.message().find("./h"), std::string::npos);
}

}  // namespace
}  // namespace ym::cli
