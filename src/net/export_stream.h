// The body of GET /v1/namespaces/{ns}/export: every stored job of the namespace, live and
// finished, as JSON lines (one job object per line, the form of GET /v1/jobs/{id}, payload and
// result redacted by redact_fields like every other view, obs/redact.h).
//
// Bounded memory: the stream reads the store one page at a time (Broker::ExportNamespacePage:
// keyset pagination by job id, on a reader thread, at most kExportExaminedPerPage stored jobs
// read per page), renders it, and hands it to the transport as one piece; the next page is read
// only when the transport asks, i.e. once the previous piece was written. So the server holds at
// most one page per export, the core thread is never involved, and the store is held for one
// bounded read at a time. A client that disconnects stops the export (the transport stops
// asking).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/api.h"
#include "server/broker.h"

namespace ym::net {

inline constexpr std::uint32_t kExportJobsPerPage = 500;
inline constexpr std::uint32_t kExportExaminedPerPage = 4096;

std::shared_ptr<BodyStream> MakeNamespaceExport(Broker& broker, std::string ns);

}  // namespace ym::net
