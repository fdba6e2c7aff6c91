// libFuzzer target for API-token authentication (docs/security.md, "Tokens"): the
// Authorization header as the server reads it (net/auth_token.h ParseBearer, then the
// Authenticator against a book holding one known token), the stored namespaces column, and the
// body of POST /v1/tokens (net/token_codec.h).
//
// Input layout: byte 0 picks how many Authorization headers the request carries (0..2); the rest
// is the header value (also fed to the other decoders).
//
// Properties: parsing never crashes; a parsed bearer credential is a well-formed secret and a
// suffix of the header; only the known secret authenticates, and only as its token; every
// refusal is one 401 with the same message and a WWW-Authenticate header, or a 429 from the
// throttle; a namespaces column that decodes re-encodes to a column that decodes to the same;
// an accepted token spec has a valid name and namespaces sorted and unique.
#include <algorithm>
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "core/job.h"
#include "fuzz_check.h"
#include "net/auth_token.h"
#include "net/authenticator.h"
#include "net/token_book.h"
#include "net/token_codec.h"
#include "obs/logging.h"

namespace {

using namespace ym::net;

// A fixed, well-formed secret (not from RAND_bytes, so runs reproduce).
constexpr std::string_view kKnown = "ym_q2xW8vTn0pLk3HcZ7rYb1MdFg5JsE9uA4oNiR6tKxVw";

struct World {
  World() : clock(1'700'000'000'000) {
    // The refusal's warning line is the transport's business; here it would only flood stderr.
    ym::obs::SetComponentLevel(ym::obs::Component::kHttp, spdlog::level::off);
    ym::ApiTokenRow row;
    row.id = "00000000000000aa";
    row.name = "known";
    row.hash = HashSecret(kKnown);
    row.role = "worker";
    row.namespaces_json = R"(["a","b"])";
    row.created_at_ms = 1;
    if (!book.Load(row).ok()) __builtin_trap();
  }
  ym::ManualClock clock;
  TokenBook book;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  if (size == 0) return 0;
  const std::size_t count = data[0] % 3;
  const std::string_view header(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto secret = ParseBearer(header);
  if (secret) {
    YM_FUZZ_CHECK(IsWellFormedSecret(*secret));
    YM_FUZZ_CHECK(header.size() >= secret->size());
    YM_FUZZ_CHECK(header.substr(header.size() - secret->size()) == *secret);
  }

  // A throttle that never blocks, so every input is judged on its token alone.
  HttpStats stats;
  Authenticator auth(world.book, world.clock, {0, 60'000, 60'000, 16}, &stats);
  std::optional<std::string_view> value;
  if (count > 0) value = header;
  auto d = auth.Check(boost::beast::http::verb::get, "/v1/jobs", value, count, "10.0.0.1");
  if (!d.principal) auth.OnRefused(d, "10.0.0.1", "r");
  const bool known = count == 1 && secret && *secret == kKnown;
  if (d.principal) {
    YM_FUZZ_CHECK(known);
    YM_FUZZ_CHECK(d.principal->authenticated);
    YM_FUZZ_CHECK(d.principal->token_name == "known");
    YM_FUZZ_CHECK(d.principal->role == Role::kWorker);
  } else {
    YM_FUZZ_CHECK(!known);
    YM_FUZZ_CHECK(d.error.code() == ym::Code::kUnauthenticated);
    YM_FUZZ_CHECK(d.error.message() == kUnauthenticatedMessage);
    YM_FUZZ_CHECK(d.headers.size() == 1 && d.headers[0].first == "WWW-Authenticate");
  }

  bool all = false;
  std::vector<std::string> names;
  if (NamespacesFromJson(header, &all, &names).ok()) {
    YM_FUZZ_CHECK(std::is_sorted(names.begin(), names.end()));
    bool all2 = false;
    std::vector<std::string> names2;
    YM_FUZZ_CHECK(NamespacesFromJson(NamespacesToJson(all, names), &all2, &names2).ok());
    YM_FUZZ_CHECK(all2 == all && names2 == names);
  }

  auto spec = ParseTokenSpec(header);
  if (spec.ok()) {
    YM_FUZZ_CHECK(IsValidTokenName(spec->name));
    YM_FUZZ_CHECK(std::is_sorted(spec->namespaces.begin(), spec->namespaces.end()));
    YM_FUZZ_CHECK(std::adjacent_find(spec->namespaces.begin(), spec->namespaces.end()) ==
                  spec->namespaces.end());
    YM_FUZZ_CHECK(!(spec->all_namespaces && !spec->namespaces.empty()));
    for (const auto& n : spec->namespaces) YM_FUZZ_CHECK(ym::IsValidName(n));
    YM_FUZZ_CHECK(!(spec->expires_in_ms && spec->expires_at_ms));
  } else {
    const ym::Code c = spec.status().code();
    YM_FUZZ_CHECK(c == ym::Code::kInvalidJson || c == ym::Code::kValidation);
  }
  return 0;
}
