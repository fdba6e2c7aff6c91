// libFuzzer target for the C++ client's reply decoders (src/client/api_client.cc): what a
// client makes of whatever a server, a proxy or a man in the middle sends back. The decoders
// live in that file's anonymous namespace, so the file is compiled into this target whole.
//
// Input layout: byte 0 picks the decoder and the HTTP status; the rest is the reply body.
// Properties: no crash or undefined behaviour (numbers of any size, any nesting); raw JSON kept
// for the caller (payload, result, last_error, the job's own JSON) parses back as JSON; an error
// reply always becomes a non-OK Status; a page's cursor is never the empty string.
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/api_client.cc"  // NOLINT: the decoders under test are file-local
#include "fuzz_check.h"

namespace {

bool ParsesAsJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  return !d.HasParseError();
}

// Known defects, reported, not ours to patch: Debian's RapidJSON 1.1.0, parsing with
// kParseFullPrecisionFlag (as the client does) a number that takes its full-precision strtod
// path (an exponent, or more digits than an int64 holds, e.g. the payload number
// 12345678901234567890123 of issue 7): (a) calls __builtin_clzll(0) in DiyFp::Normalize and
// then overflows an int, (b) with many digits and a large exponent ("4222...2001e308") reads
// past the end of its cached-powers table (GetCachedPowerByIndex). Both were found by this
// target; inputs are in tests/fuzz/known/ and docs/testing.md lists them. Such inputs are
// skipped so that the fuzzer keeps looking for other findings.
bool TakesRapidJsonFullPrecisionPath(const std::string& s) {
  std::size_t digits = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      if (++digits > 15) return true;
    } else if (c == 'e' || c == 'E') {
      if (digits > 0 || (i > 0 && s[i - 1] == '.')) return true;
      digits = 0;
    } else if (c != '.') {
      digits = 0;
    }
  }
  return false;
}

void CheckJob(const ym::client::Job& j) {
  YM_FUZZ_CHECK(ParsesAsJson(j.payload_json));
  YM_FUZZ_CHECK(ParsesAsJson(j.json));
  if (j.result_json) YM_FUZZ_CHECK(ParsesAsJson(*j.result_json));
  if (j.last_error_json) YM_FUZZ_CHECK(ParsesAsJson(*j.last_error_json));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  using namespace ym::client;
  const std::uint8_t selector = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  static constexpr int kStatuses[] = {400, 401, 403, 404, 405, 409, 413, 415,
                                      422, 429, 500, 502, 503, 504, 302, 418};
  const int status = kStatuses[selector & 15];
  if (TakesRapidJsonFullPrecisionPath(body)) return 0;

  switch ((selector >> 4) % 5) {
    case 0: {
      ym::Status s = StatusFromErrorReply(status, body);
      YM_FUZZ_CHECK(!s.ok());
      YM_FUZZ_CHECK(CodeForHttpStatus(status) != ym::Code::kOk);
      break;
    }
    case 1: {
      auto page = ParseJobPage(body, "GET /v1/jobs");
      if (page.ok()) {
        for (const auto& j : page->items) CheckJob(j);
        if (page->next_cursor) YM_FUZZ_CHECK(!page->next_cursor->empty());
      } else {
        YM_FUZZ_CHECK(page.status().code() == ym::Code::kInternal);
      }
      break;
    }
    case 2: {
      auto doc = ParseReply(body, "GET /v1/jobs/{id}");
      if (doc.ok()) CheckJob(ParseJob(*doc));
      break;
    }
    case 3: {
      auto doc = ParseReply(body, "GET /v1/queues");
      if (doc.ok()) {
        Queue q = ParseQueue(*doc);
        YM_FUZZ_CHECK(ParsesAsJson(q.json));
        (void)ParseEnqueueResult(*doc);
        (void)ItemError(*doc);
      }
      break;
    }
    case 4: {
      // The lease reply: ApiClient::Lease decodes each job with these same helpers.
      auto doc = ParseReply(body, "POST /v1/leases");
      if (!doc.ok()) break;
      const rapidjson::Value* jobs = Member(*doc, "jobs");
      if (jobs == nullptr || !jobs->IsArray()) break;
      for (const auto& v : jobs->GetArray()) {
        auto payload = OptRaw(v, "payload").value_or("null");
        YM_FUZZ_CHECK(ParsesAsJson(payload));
        (void)String(v, "id");
        (void)Int(v, "attempt");
        (void)Strings(v, "tags");
        if (const rapidjson::Value* l = Member(v, "lease"); l != nullptr) {
          (void)String(*l, "token");
          (void)Int(*l, "expires_at");
        }
      }
      break;
    }
  }
  return 0;
}
