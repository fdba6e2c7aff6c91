#include "core/job_origin.h"

#include <algorithm>
#include <cstring>

namespace ym {

JobOrigin::JobOrigin(std::string_view request_id, const TraceContext& trace) {
  const std::string_view parts[3] = {request_id, trace.traceparent, trace.tracestate};
  std::size_t total = 0;
  std::size_t lengths[3];
  for (int i = 0; i < 3; ++i) {
    lengths[i] = std::min(parts[i].size(), kMaxPart);
    total += lengths[i];
  }
  if (total == 0) return;
  data_ = std::make_unique<char[]>(kHeader + total);
  char* p = data_.get();
  for (int i = 0; i < 3; ++i) {
    p[2 * i] = static_cast<char>(lengths[i] & 0xff);
    p[2 * i + 1] = static_cast<char>(lengths[i] >> 8);
  }
  p += kHeader;
  for (int i = 0; i < 3; ++i) {
    if (lengths[i] != 0) std::memcpy(p, parts[i].data(), lengths[i]);
    p += lengths[i];
  }
}

std::size_t JobOrigin::Length(int i) const {
  const auto* h = reinterpret_cast<const unsigned char*>(data_.get());
  return static_cast<std::size_t>(h[2 * i]) | (static_cast<std::size_t>(h[2 * i + 1]) << 8);
}

std::string_view JobOrigin::Part(int i) const {
  if (!data_) return {};
  std::size_t offset = kHeader;
  for (int k = 0; k < i; ++k) offset += Length(k);
  return std::string_view(data_.get() + offset, Length(i));
}

std::size_t JobOrigin::HeapBytes() const {
  return data_ ? kHeader + Length(0) + Length(1) + Length(2) : 0;
}

}  // namespace ym
