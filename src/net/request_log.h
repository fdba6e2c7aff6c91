// Request ids, the access log and the job lines of requests (docs/operations.md, "Logs").
//
// Request ids: a request's `X-Request-Id` is kept when it is 1..128 characters of the HTTP token
// set (RFC 9110 tchar: letters, digits and !#$%&'*+-.^_`|~); anything else (too long, a space, a
// quote, a control character, an empty value) is replaced by a generated id, never echoed. A
// generated id is a random 64-bit prefix drawn once per process and a counter, both in hex
// ("9f3c0a7be01d4c55-1a"): unique within the process and, with the random prefix, across
// restarts and replicas with overwhelming probability. Every response carries the id in
// `X-Request-Id`, errors included, and the request's log lines carry it as `request_id`.
//
// Access log: one line per request, component `access`, level info, when `access_log = on`.
// It names the route (the route table's label, e.g. "GET /v1/jobs/{id}"), never the raw path
// or query, whose ids, names, cursors and filters are unbounded and may be sensitive.
//
// Threads: every function may be called from any thread.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/types.h"
#include "net/router.h"

namespace ym::net {

inline constexpr std::size_t kMaxRequestIdBytes = 128;

bool IsValidRequestId(std::string_view id);
// A new process-unique id (see above); a relaxed atomic increment and two hex conversions.
std::string NewRequestId();
// `header` when it is a valid id, else a new one.
std::string RequestIdFor(std::string_view header);

struct AccessEntry {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  RouteId route = RouteId::kUnmatched;
  unsigned status = 0;
  std::uint64_t duration_us = 0;     // from the request's header read to the response handed over
  std::uint64_t request_bytes = 0;   // body
  std::uint64_t response_bytes = 0;  // body
  std::string_view request_id;
  std::string_view peer;  // the client's IP address
  bool delivered = true;  // false: the connection closed before the response could be written
};

// Writes the access line when the access log is on (checked first; free when off).
void LogAccess(const AccessEntry& e);

// Debug lines (component `job`) for the jobs a request touches, with the request id; payloads
// and results are redacted (obs/redact.h). Each class captures what it needs before the items
// go to the Broker and holds nothing (one level check) when `job` debug lines are off.
class EnqueueLines {
 public:
  EnqueueLines(std::string_view request_id, const std::vector<EnqueueSpec>& specs);
  // outcomes[i] is specs[i]'s.
  void Log(const std::vector<Result<EnqueueOutcome>>& outcomes) const;

 private:
  struct Item {
    std::string queue, kind, payload;
    std::string trace_id;  // of the job's traceparent; empty: none
  };
  std::string request_id_;
  std::vector<Item> items_;
};

class CompleteLines {
 public:
  CompleteLines(std::string_view request_id, const std::vector<AckItem>& acks,
                const std::vector<FailItem>& fails);
  void Log(const std::vector<Status>& acked, const std::vector<Result<JobState>>& failed) const;

 private:
  std::string request_id_;
  std::vector<std::pair<JobId, std::string>> acks_;  // id, redacted result
  std::vector<FailItem> fails_;
};

class LeaseLines {
 public:
  LeaseLines(std::string_view request_id, std::string_view worker_id);
  void Log(const std::vector<LeasedJob>& jobs) const;

 private:
  bool on_ = false;
  std::string request_id_;
  std::string worker_id_;
};

}  // namespace ym::net
