// libFuzzer target for the C++ client's reply decoders (src/client/api_client.cc): what a
// client makes of whatever a server, a proxy or a man in the middle sends back. The decoders
// live in that file's anonymous namespace, so the file is compiled into this target whole.
//
// Input layout: byte 0 picks the decoder and the HTTP status; the rest is the reply body.
// Properties: no crash or undefined behaviour (numbers of any size, any nesting); a reply that
// parses is kept exactly, minus insignificant whitespace (the text parses again to itself); raw
// JSON handed to the caller (payload, result, last_error, the job's own JSON) parses as JSON;
// an error reply always becomes a non-OK Status; a page's cursor is never the empty string.
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/api_client.cc"  // NOLINT: the decoders under test are file-local
#include "fuzz_check.h"

namespace {

bool ParsesAsJson(std::string_view text) { return ym::json::Document::Parse(text).ok(); }

// Removes whitespace outside strings and a leading byte-order mark (common/json.h): what "equal
// modulo insignificant whitespace" compares.
std::string Squeeze(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::string out;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      out.push_back(c);
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
      out.push_back(c);
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out.push_back(c);
    }
  }
  return out;
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

  // The reader itself: a document is kept as sent, minus insignificant whitespace.
  if (auto doc = ym::json::Document::Parse(body); doc.ok()) {
    YM_FUZZ_CHECK(doc->text() == Squeeze(body));
    auto again = ym::json::Document::Parse(doc->text());
    YM_FUZZ_CHECK(again.ok() && again->text() == doc->text());
  }

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
      if (doc.ok()) CheckJob(ParseJob(doc->root()));
      break;
    }
    case 3: {
      auto doc = ParseReply(body, "GET /v1/queues");
      if (doc.ok()) {
        Queue q = ParseQueue(doc->root());
        YM_FUZZ_CHECK(ParsesAsJson(q.json));
        (void)ParseEnqueueResult(doc->root());
        YM_FUZZ_CHECK(!ItemError(doc->root()).ok());
      }
      break;
    }
    case 4: {
      // The lease reply: ApiClient::Lease decodes each job with these same helpers.
      auto doc = ParseReply(body, "POST /v1/leases");
      if (!doc.ok()) break;
      auto jobs = Member(doc->root(), "jobs");
      if (!jobs || !jobs->IsArray()) break;
      for (const auto& m : *jobs) {
        const ym::json::Value& v = m.value;
        YM_FUZZ_CHECK(ParsesAsJson(OptRaw(v, "payload").value_or("null")));
        (void)String(v, "id");
        (void)Int(v, "attempt");
        (void)Strings(v, "tags");
        if (auto l = Member(v, "lease"); l) {
          (void)String(*l, "token");
          (void)Int(*l, "expires_at");
        }
      }
      break;
    }
  }
  return 0;
}
