// libFuzzer target for the CLI's value parsing (src/cli/parse.cc): --run-at times, --payload
// JSON text and whole command lines.
//
// Input layout: byte 0 picks the parser; the rest is the value (for command lines: arguments
// separated by NUL). '@' is replaced so that no input names a file to read.
// Properties: a parsed --run-at is >= 0; epoch milliseconds parse to themselves; an RFC 3339
// time printed from a parsed value parses back to the same value; a resolved payload is JSON.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "common/json.h"
#include "fuzz_check.h"

namespace {

std::string Rfc3339(std::int64_t ms) {
  using namespace std::chrono;
  sys_days days{std::chrono::days(ms / 86'400'000)};
  year_month_day ymd{days};
  std::int64_t in_day = ms % 86'400'000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long long>(in_day / 3'600'000),
                static_cast<long long>(in_day / 60'000 % 60),
                static_cast<long long>(in_day / 1000 % 60), static_cast<long long>(in_day % 1000));
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::replace(text.begin(), text.end(), '@', 'a');
  switch (data[0] % 3) {
    case 0: {
      auto ms = ym::cli::ParseRunAt(text);
      if (!ms.ok()) {
        YM_FUZZ_CHECK(!ms.status().message().empty());
        break;
      }
      YM_FUZZ_CHECK(*ms >= 0);
      if (*ms < 253'402'300'800'000) {  // before year 10000: printable as RFC 3339
        auto again = ym::cli::ParseRunAt(Rfc3339(*ms));
        YM_FUZZ_CHECK(again.ok() && *again == *ms);
      }
      auto epoch = ym::cli::ParseRunAt(std::to_string(*ms));
      YM_FUZZ_CHECK(epoch.ok() && *epoch == *ms);
      break;
    }
    case 1: {
      if (text == "-") break;  // would read stdin
      std::istringstream in;
      auto payload = ym::cli::ResolvePayload(text, in);
      if (payload.ok()) {
        // What the CLI sends is valid JSON by the server's own reader (numbers of any size and
        // exponent included: RapidJSON would refuse 1E20115, the server keeps it as text).
        YM_FUZZ_CHECK(ym::json::Document::Parse(*payload).ok());
      }
      break;
    }
    case 2: {
      std::vector<std::string> args;
      std::size_t start = 0;
      while (args.size() < 32) {
        std::size_t nul = text.find('\0', start);
        args.push_back(text.substr(start, nul - start));
        if (nul == std::string::npos) break;
        start = nul + 1;
      }
      ym::cli::ParseOutcome out = ym::cli::ParseCommandLine(args, std::nullopt);
      if (!out.invocation) YM_FUZZ_CHECK(out.exit_code != 0 || !out.out.empty());
      break;
    }
  }
  return 0;
}
