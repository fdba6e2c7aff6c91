// The CLI's answers to mistyped or missing command names, and its own version (src/cli/suggest.h,
// src/cli/parse.cc). No server is needed: all of it is decided while parsing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/suggest.h"
#include "common/build_info.h"

namespace ym::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

ParseOutcome Parse(const std::vector<std::string>& args) {
  return ParseCommandLine(args, std::nullopt);
}

TEST(CliSuggestTest, EditDistanceCountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(EditDistance("queues", "queues"), 0u);
  EXPECT_EQ(EditDistance("queue", "queues"), 1u);    // insertion
  EXPECT_EQ(EditDistance("queuess", "queues"), 1u);  // deletion
  EXPECT_EQ(EditDistance("lust", "list"), 1u);       // substitution
  EXPECT_EQ(EditDistance("lsit", "list"), 1u);       // adjacent swap
  EXPECT_EQ(EditDistance("JOBS", "jobs"), 0u);       // case is ignored
  EXPECT_EQ(EditDistance("", "info"), 4u);
  EXPECT_EQ(EditDistance("dead", ""), 4u);
  EXPECT_EQ(EditDistance("info", "dead"), 4u);
  EXPECT_EQ(EditDistance("enque", "enqueue"), 2u);
}

TEST(CliSuggestTest, ClosestMatchGuessesOnlyWhenClose) {
  const std::vector<std::string> commands = {"server", "worker", "enqueue", "jobs",
                                             "queues", "dead",   "info",    "version"};
  EXPECT_EQ(ClosestMatch("queue", commands), "queues");
  EXPECT_EQ(ClosestMatch("job", commands), "jobs");
  EXPECT_EQ(ClosestMatch("enque", commands), "enqueue");
  EXPECT_EQ(ClosestMatch("enq", commands), "enqueue");  // a prefix of three letters
  EXPECT_EQ(ClosestMatch("Info", commands), "info");
  EXPECT_EQ(ClosestMatch("sever", commands), "server");
  EXPECT_EQ(ClosestMatch("verison", commands), "version");
  EXPECT_EQ(ClosestMatch("frobnicate", commands), std::nullopt);
  EXPECT_EQ(ClosestMatch("x", commands), std::nullopt);
  EXPECT_EQ(ClosestMatch("de", commands), std::nullopt);  // too short to be a prefix guess
  // The fewest edits win, and the first listed among equals.
  EXPECT_EQ(ClosestMatch("lst", {"get", "list", "cancel", "replay"}), "list");
  EXPECT_EQ(ClosestMatch("deal", {"dear", "dead"}), "dear");
  EXPECT_EQ(ClosestMatch("pase", {"pause", "resume"}), "pause");
}

TEST(CliSuggestTest, UnknownCommandNamesTheClosestOne) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"queue"}, "unknown command 'queue'; did you mean 'queues'?"},
      {{"--json", "queue"}, "unknown command 'queue'; did you mean 'queues'?"},
      {{"--server", "http://h:1", "jbos", "list"}, "unknown command 'jbos'; did you mean 'jobs'?"},
      {{"enque", "-q", "q", "-k", "k"}, "unknown command 'enque'; did you mean 'enqueue'?"},
      {{"jobs", "lst"}, "unknown command 'jobs lst'; did you mean 'jobs list'?"},
      {{"jobs", "--json", "cancle", "5"},
       "unknown command 'jobs cancle'; did you mean 'jobs cancel'?"},
      {{"dead", "replya", "--all"}, "unknown command 'dead replya'; did you mean 'dead replay'?"},
      // `queues NAME` shows a queue, so a word there is a queue name unless the line fails and
      // the word is close to a command.
      {{"queues", "pase", "emails"}, "unknown command 'queues pase'; did you mean 'queues pause'?"},
      {{"frobnicate"},
       "unknown command 'frobnicate'; the commands are: server, worker, enqueue, jobs, queues, "
       "namespaces, limits, schedules, dead, info, alerts, audit, version"},
      {{"jobs", "zap", "5"},
       "unknown command 'jobs zap'; the commands of 'jobs' are: get, wait, list, cancel, replay, "
       "delete"},
      {{},
       "a command is required: server, worker, enqueue, jobs, queues, namespaces, limits, "
       "schedules, dead, info, alerts, audit, version"},
      {{"--json"},
       "a command is required: server, worker, enqueue, jobs, queues, namespaces, limits, "
       "schedules, dead, info, alerts, audit, version"},
      {{"jobs"}, "'jobs' needs a command: get, wait, list, cancel, replay, delete"},
      {{"dead", "--json"}, "'dead' needs a command: list, replay"},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    ParseOutcome o = Parse(c.args);
    EXPECT_FALSE(o.invocation.has_value()) << joined;
    EXPECT_EQ(o.exit_code, kExitUsage) << joined;
    EXPECT_EQ(o.err, "error: " + c.message + "\nRun with --help for more information.\n") << joined;
  }
}

TEST(CliSuggestTest, OtherMistakesKeepCliElevensMessage) {
  // The command names are right; the mistake is elsewhere.
  ParseOutcome o = Parse({"jobs", "list", "--limit", "0"});
  EXPECT_EQ(o.exit_code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("--limit"));
  EXPECT_THAT(o.err, Not(HasSubstr("unknown command")));
  o = Parse({"info", "extra"});
  EXPECT_EQ(o.exit_code, kExitUsage);
  EXPECT_THAT(o.err, HasSubstr("extra"));
  EXPECT_THAT(o.err, Not(HasSubstr("unknown command")));
  // An option's value is not taken for a command name.
  o = Parse({"--server", "queue", "info"});
  EXPECT_THAT(o.err, Not(HasSubstr("unknown command")));
  // A queue name that only looks like a typo still works when the line is otherwise right.
  o = Parse({"queues", "pase"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kQueuesGet);
  EXPECT_EQ(o.invocation->queue_name, "pase");
}

TEST(CliVersionTest, VersionFlagAndCommandPrintTheBuildWithoutAServer) {
  const std::string line = "yardmaster " + VersionLine() + "\n";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--version"},
                                               {"version"},
                                               {"version", "--server", "http://h:1"}}) {
    ParseOutcome o = Parse(args);
    EXPECT_FALSE(o.invocation.has_value());
    EXPECT_EQ(o.exit_code, kExitOk);
    EXPECT_EQ(o.out, line);
    EXPECT_EQ(o.err, "");
  }
  EXPECT_THAT(line, StartsWith("yardmaster " YARDMASTER_VERSION));
  ParseOutcome o = Parse({"version", "--json"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_EQ(o.out, std::string(R"({"version":")") + YARDMASTER_VERSION + R"(","commit":")" +
                       std::string(BuildCommit()) + "\"}\n");
}

TEST(CliVersionTest, VersionComesFromTheProjectVersion) {
  // Three dot-separated numbers, the form project(VERSION) takes; the macros agree with it.
  const std::string v = YARDMASTER_VERSION;
  EXPECT_EQ(v, std::to_string(YARDMASTER_VERSION_MAJOR) + "." +
                   std::to_string(YARDMASTER_VERSION_MINOR) + "." +
                   std::to_string(YARDMASTER_VERSION_PATCH));
  EXPECT_EQ(std::string(kVersion), v);
  EXPECT_EQ(std::string(yardmaster::kVersion), v);
  const std::string commit(BuildCommit());
  EXPECT_TRUE(commit == "unknown" || commit.size() == 12 || commit.size() == 18) << commit;
}

}  // namespace
TEST(CliBulkTest, AFilterNeedsYesOrDryRunAndNeverAnIdToo) {
  struct Case {
    std::vector<std::string> args;
    std::string words;
  };
  const std::vector<Case> refused = {
      {{"jobs", "cancel", "--queue", "q"}, "add --yes to go ahead, or --dry-run"},
      {{"jobs", "delete"}, "needs a job id a filter"},
      {{"jobs", "replay"}, "needs a job id, a filter"},
      {{"jobs", "cancel", "5", "--queue", "q"}, "give a job id or a filter, not both"},
      {{"jobs", "cancel", "--all", "--queue", "q", "--yes"}, "--all cannot be combined"},
      {{"jobs", "cancel", "--queue", "q", "--yes", "--dry-run"}, "exclude each other"},
      {{"jobs", "replay", "--state", "dead,bogus", "--yes"}, "\"bogus\" is not a state"},
      {{"jobs", "list", "--state", "dead", "--state", "bogus"}, "\"bogus\" is not a state"},
      {{"jobs", "list", "--created-after", "yesterday"}, "--created-after"},
      {{"jobs", "delete", "--finished-before", "yesterday", "--yes"}, "--finished-before"},
      {{"jobs", "delete", "--queue", "q", "--limit", "10001", "--yes"}, "--limit"},
  };
  for (const Case& c : refused) {
    ParseOutcome o = Parse(c.args);
    EXPECT_FALSE(o.invocation.has_value()) << c.words;
    EXPECT_EQ(o.exit_code, kExitUsage) << c.words;
    EXPECT_THAT(o.err, HasSubstr(c.words));
  }
}

TEST(CliBulkTest, FilterFlagsBecomeTheRequest) {
  ParseOutcome o = Parse({"jobs",
                          "replay",
                          "-q",
                          "emails",
                          "--kind",
                          "send",
                          "--state",
                          "dead,cancelled",
                          "--tag",
                          "t1",
                          "--finished-after",
                          "2024-05-01T00:00:00Z",
                          "--created-before",
                          "17",
                          "--limit",
                          "50",
                          "--cursor",
                          "abc",
                          "--max-pages",
                          "2",
                          "--yes"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  const Invocation& inv = *o.invocation;
  EXPECT_EQ(inv.command, Command::kJobsBulk);
  EXPECT_EQ(inv.bulk.action, "replay");
  EXPECT_EQ(inv.bulk.filter.queue, "emails");
  EXPECT_EQ(inv.bulk.filter.kind, "send");
  EXPECT_EQ(inv.bulk.filter.states, (std::vector<std::string>{"dead", "cancelled"}));
  EXPECT_EQ(inv.bulk.filter.tag, "t1");
  EXPECT_EQ(inv.bulk.filter.finished_after_ms, 1714521600000);
  EXPECT_EQ(inv.bulk.filter.created_before_ms, 17);
  EXPECT_FALSE(inv.bulk.filter.ns.has_value());
  EXPECT_EQ(inv.bulk.limit, 50);
  EXPECT_EQ(inv.bulk.cursor, "abc");
  EXPECT_EQ(inv.bulk_max_pages, 2);
  EXPECT_FALSE(inv.bulk.dry_run);
  EXPECT_FALSE(inv.bulk.all);

  o = Parse({"jobs", "delete", "--all", "--dry-run"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_TRUE(o.invocation->bulk.all);
  EXPECT_TRUE(o.invocation->bulk.dry_run);
  // An id keeps the single-job commands.
  o = Parse({"jobs", "cancel", "42"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kJobsCancel);
  EXPECT_EQ(o.invocation->job_id, "42");
}

}  // namespace ym::cli

namespace ym::cli {
namespace {

ParseOutcome ParseNs(std::vector<std::string> args) {
  args.insert(args.begin(), {"namespaces", "set", "acme"});
  return ParseCommandLine(args, std::nullopt);
}

TEST(CliNamespacesTest, SetFlagsBecomeTheRequest) {
  ParseOutcome o =
      ParseNs({"--max-live-jobs", "5", "--rate", "100/s", "--burst", "7", "--weight", "3"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  const client::Namespace& ns = o.invocation->ns;
  EXPECT_EQ(o.invocation->command, Command::kNamespacesSet);
  EXPECT_EQ(ns.name, "acme");
  EXPECT_EQ(ns.max_live_jobs, 5);
  EXPECT_EQ(ns.weight, 3);
  ASSERT_TRUE(ns.enqueue_rate.has_value());
  EXPECT_EQ(ns.enqueue_rate->count, 100);
  EXPECT_EQ(ns.enqueue_rate->period_ms, 1000);
  EXPECT_EQ(ns.enqueue_rate->burst, 7);
  for (const auto& [text, period] :
       std::vector<std::pair<std::string, std::int64_t>>{{"1/second", 1000},
                                                         {"2/m", 60'000},
                                                         {"3/minute", 60'000},
                                                         {"4/h", 3'600'000},
                                                         {"5/hour", 3'600'000},
                                                         {"6/250", 250}}) {
    o = ParseNs({"--rate", text});
    ASSERT_TRUE(o.invocation.has_value()) << text << ": " << o.err;
    EXPECT_EQ(o.invocation->ns.enqueue_rate->period_ms, period) << text;
    EXPECT_EQ(o.invocation->ns.enqueue_rate->burst, 0) << text;  // the server's default
  }
}

TEST(CliNamespacesTest, BadFlagsAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{}, "at least one of --max-live-jobs, --rate, --weight"},
      {{"--rate", "100"}, "--rate: must be COUNT/PERIOD"},
      {{"--rate", "x/s"}, "--rate: must be COUNT/PERIOD"},
      {{"--rate", "5/day"}, "--rate: must be COUNT/PERIOD"},
      {{"--rate", "5/s", "--burst", "0"}, "--burst: must be 1.."},
      {{"--burst", "3"}, "--burst"},
      {{"--weight", "abc"}, "--weight"},
  };
  for (const auto& [args, message] : bad) {
    ParseOutcome o = ParseNs(args);
    EXPECT_FALSE(o.invocation.has_value()) << message;
    EXPECT_EQ(o.exit_code, kExitUsage) << message;
    EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
  }
  ParseOutcome o = ParseCommandLine({"queues", "set", "q"}, std::nullopt);
  EXPECT_EQ(o.exit_code, kExitUsage);
  EXPECT_NE(o.err.find("--weight"), std::string::npos) << o.err;
  o = ParseCommandLine({"queues", "set", "q", "--weight", "4", "--create"}, std::nullopt);
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kQueuesSet);
  EXPECT_EQ(o.invocation->queue_update.weight, 4);
  EXPECT_TRUE(o.invocation->create_queue);
}

TEST(CliSchedulesTest, CreateFlagsBecomeTheSpec) {
  ParseOutcome o = Parse({"schedules",
                          "create",
                          "nightly",
                          "--cron",
                          "0 3 * * *",
                          "--time-zone",
                          "Europe/Paris",
                          "--queue",
                          "reports",
                          "--kind",
                          "nightly",
                          "--payload",
                          R"({"scope":"all"})",
                          "--missed",
                          "catch_up",
                          "--max-missed",
                          "7",
                          "--max-age-ms",
                          "604800000",
                          "--grace-ms",
                          "1000",
                          "--overlap",
                          "buffer_one",
                          "--jitter-ms",
                          "250",
                          "--start-at",
                          "2026-01-01T00:00:00Z",
                          "--end-at",
                          "1800000000000",
                          "--tag",
                          "cron",
                          "--priority",
                          "5",
                          "--paused"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  const Invocation& inv = *o.invocation;
  EXPECT_EQ(inv.command, Command::kSchedulesCreate);
  const client::ScheduleSpec& s = inv.schedule;
  EXPECT_EQ(s.id, "nightly");
  EXPECT_EQ(s.cron, "0 3 * * *");
  EXPECT_EQ(s.time_zone, "Europe/Paris");
  EXPECT_EQ(s.missed_policy, "catch_up");
  EXPECT_EQ(s.missed_max_count, 7);
  EXPECT_EQ(s.missed_max_age_ms, 604'800'000);
  EXPECT_EQ(s.missed_grace_ms, 1000);
  EXPECT_EQ(s.overlap, "buffer_one");
  EXPECT_EQ(s.jitter_ms, 250);
  EXPECT_EQ(s.start_at_ms, 1'767'225'600'000);
  EXPECT_EQ(s.end_at_ms, 1'800'000'000'000);
  EXPECT_EQ(s.paused, true);
  ASSERT_TRUE(s.job.has_value());
  EXPECT_EQ(s.job->queue, "reports");
  EXPECT_EQ(s.job->kind, "nightly");
  EXPECT_EQ(s.job->priority, 5);
  EXPECT_EQ(s.job->tags, std::vector<std::string>{"cron"});
  EXPECT_EQ(inv.payload_arg, R"({"scope":"all"})");

  // The least: the defaults are the server's (nothing else is sent).
  o = Parse({"schedules", "create", "t", "-c", "every 1m", "-q", "q", "-k", "k"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_FALSE(o.invocation->schedule.time_zone.has_value());
  EXPECT_FALSE(o.invocation->schedule.missed_policy.has_value());
  EXPECT_FALSE(o.invocation->schedule.paused.has_value());
  EXPECT_EQ(o.invocation->payload_arg, "null");
}

TEST(CliSchedulesTest, UpdateSendsOnlyWhatIsGivenAndTheTemplateWhole) {
  ParseOutcome o = Parse({"schedules", "update", "t", "--overlap", "allow", "--active"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  const client::ScheduleSpec& s = o.invocation->schedule;
  EXPECT_EQ(o.invocation->command, Command::kSchedulesUpdate);
  EXPECT_EQ(s.overlap, "allow");
  EXPECT_EQ(s.paused, false);
  EXPECT_FALSE(s.cron.has_value());
  EXPECT_FALSE(s.job.has_value());
  o = Parse({"schedules", "update", "t", "-q", "q2", "-k", "k2"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  ASSERT_TRUE(o.invocation->schedule.job.has_value());
  EXPECT_EQ(o.invocation->schedule.job->queue, "q2");
}

TEST(CliSchedulesTest, OtherCommandsAndTheirArguments) {
  ParseOutcome o = Parse({"schedules", "get", "t", "--next", "12"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kSchedulesGet);
  EXPECT_EQ(o.invocation->schedule_next, 12);
  o = Parse({"schedules", "backfill", "t", "--from", "1000", "--to", "2026-01-01T00:00:01Z"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kSchedulesBackfill);
  EXPECT_EQ(o.invocation->backfill_from_ms, 1000);
  EXPECT_EQ(o.invocation->backfill_to_ms, 1'767'225'601'000);
  const std::vector<std::pair<std::string, Command>> simple = {
      {"delete", Command::kSchedulesDelete},
      {"pause", Command::kSchedulesPause},
      {"resume", Command::kSchedulesResume},
      {"trigger", Command::kSchedulesTrigger}};
  for (const auto& [verb, command] : simple) {
    o = Parse({"schedules", verb, "t"});
    ASSERT_TRUE(o.invocation.has_value()) << verb << ": " << o.err;
    EXPECT_EQ(o.invocation->command, command) << verb;
    EXPECT_EQ(o.invocation->schedule.id, "t") << verb;
  }
  o = Parse({"schedules", "list"});
  ASSERT_TRUE(o.invocation.has_value()) << o.err;
  EXPECT_EQ(o.invocation->command, Command::kSchedulesList);
}

TEST(CliSchedulesTest, BadFlagsAreUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"create", "t", "-q", "q", "-k", "k"}, "--cron"},
      {{"create", "t", "-c", "@daily", "-k", "k"}, "--queue"},
      {{"create", "t", "-c", "@daily", "-q", "q", "-k", "k", "-p", "{nope"}, "--payload"},
      {{"create", "t", "-c", "@daily", "-q", "q", "-k", "k", "--missed", "all"}, "--missed"},
      {{"create", "t", "-c", "@daily", "-q", "q", "-k", "k", "--overlap", "x"}, "--overlap"},
      {{"create", "t", "-c", "@daily", "-q", "q", "-k", "k", "--start-at", "soon"}, "--start-at"},
      {{"update", "t"}, "give at least one change"},
      {{"update", "t", "-p", "1"}, "give --queue and --kind"},
      {{"get", "t", "--next", "101"}, "--next"},
      {{"backfill", "t", "--from", "1"}, "--to"},
      {{"backfill", "t", "--from", "yesterday", "--to", "1"}, "--from"},
      {{"pause"}, "id"},
  };
  for (const auto& [args, message] : bad) {
    std::vector<std::string> line = {"schedules"};
    line.insert(line.end(), args.begin(), args.end());
    ParseOutcome o = Parse(line);
    EXPECT_FALSE(o.invocation.has_value()) << message;
    EXPECT_EQ(o.exit_code, kExitUsage) << message;
    EXPECT_NE(o.err.find(message), std::string::npos) << message << " not in: " << o.err;
  }
}

}  // namespace
}  // namespace ym::cli
