// JobOrigin: core's compact in-memory form of where a live job came from, its enqueue
// request's id and its W3C trace context (JobRecord::request_id and trace; docs/api.md, "Trace
// context").
//
// Nearly every job has a request id (the server gives each request one), so this is paid per
// live job and kept small: one pointer in LiveJob, null when the job has neither, else one heap
// block holding the three strings back to back behind a 6-byte header of their lengths:
//
//   [u16 request_id length][u16 traceparent length][u16 tracestate length][bytes ...]
//
// A job with a 19-byte generated request id and no trace context costs a 32-byte block; with a
// trace context about 112 bytes (docs/architecture.md, "Memory layout of a live job"). Three
// std::strings in a struct would cost a 112-byte block plus one more per string that does not
// fit inline.
//
// Plain value, move-only; core thread only like LiveJob.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/trace_context.h"

namespace ym {

class JobOrigin {
 public:
  // Longest string kept (a length must fit the 16-bit header; the API bounds all three far
  // below it: request ids 128 bytes, traceparent 55, tracestate 512).
  static constexpr std::size_t kMaxPart = 0xffff;

  JobOrigin() = default;
  // Empty (no allocation) when all three are empty; a longer part is cut at kMaxPart.
  JobOrigin(std::string_view request_id, const TraceContext& trace);

  bool empty() const { return data_ == nullptr; }
  std::string_view request_id() const { return Part(0); }
  std::string_view traceparent() const { return Part(1); }
  std::string_view tracestate() const { return Part(2); }
  TraceContext trace() const {
    return TraceContext{std::string(traceparent()), std::string(tracestate())};
  }
  // Bytes of the heap block (0 when empty), for footprint accounting.
  std::size_t HeapBytes() const;

 private:
  static constexpr std::size_t kHeader = 6;
  std::size_t Length(int i) const;
  std::string_view Part(int i) const;

  std::unique_ptr<char[]> data_;
};

}  // namespace ym
