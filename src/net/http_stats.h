// HttpStats: access counters of the HTTP layer, for the metrics registry to read.
//
// Owned by HttpServer (one per server, alive as long as the server). Written by every I/O thread,
// read by whoever renders /metrics, all without a lock.
//
// Why relaxed ordering is enough: every counter is independent and monotonic (or, for the
// gauges, a plain running sum); no reader uses one counter's value to decide whether another
// counter's or any other memory is up to date. A scrape may see one request counted in
// `requests` but its bytes not yet in `response_bytes`: that skew lasts microseconds and is
// invisible at Prometheus resolution, so paying for ordering would buy nothing.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "net/router.h"
#include "obs/histogram.h"

namespace ym::net {

struct HttpStats {
  // Status classes 1xx..5xx map to 0..4.
  static constexpr std::size_t kStatusClasses = 5;
  static std::size_t StatusClass(unsigned status) {
    return status < 100 || status >= 600 ? 4 : status / 100 - 1;
  }

  // requests[route][status class]: completed requests (a response was written or failed).
  std::array<std::array<std::atomic<std::uint64_t>, kStatusClasses>, kRouteCount> requests{};
  std::atomic<std::int64_t> in_flight{0};         // requests read and not yet answered
  std::atomic<std::uint64_t> request_bytes{0};    // request bodies received
  std::atomic<std::uint64_t> response_bytes{0};   // response bodies sent
  std::atomic<std::int64_t> open_connections{0};  // gauge
  std::atomic<std::uint64_t> accepted_connections{0};
  // Leases whose response could not be written and were handed back with Broker::Release.
  std::atomic<std::uint64_t> released_leases{0};
  // Connections closed at accept, by reason: the total cap, the per-client cap, or no file
  // descriptor left (accepted on the reserve descriptor and closed).
  std::atomic<std::uint64_t> rejected_total_cap{0};
  std::atomic<std::uint64_t> rejected_client_cap{0};
  std::atomic<std::uint64_t> rejected_no_fd{0};
  // Reply bytes handed to a socket and not yet fully written (gauge), and large replies refused
  // with 503 because that server-wide budget was spent.
  std::atomic<std::int64_t> queued_reply_bytes{0};
  std::atomic<std::uint64_t> refused_replies{0};
  // Request bodies over 64 KiB being read (gauge, their declared or maximum size), and requests
  // refused with 503 because that server-wide budget was spent.
  std::atomic<std::int64_t> reserved_request_bytes{0};
  std::atomic<std::uint64_t> refused_requests{0};
  // Requests refused at their header for bad framing (Transfer-Encoding, Content-Length, Host).
  std::atomic<std::uint64_t> bad_framing{0};
  // TLS (zero while TLS is off): handshakes by outcome, indexed by net::TlsHandshakeResult
  // (net/tls.h; its size is checked there); the served certificate's notAfter in seconds since
  // the epoch (a gauge, 0 before the first load); reloads that swapped the context and reloads
  // refused (the old context kept).
  static constexpr std::size_t kTlsResults = 6;
  std::array<std::atomic<std::uint64_t>, kTlsResults> tls_handshakes{};
  std::atomic<std::int64_t> tls_cert_not_after{0};
  std::atomic<std::uint64_t> tls_reloads{0};
  std::atomic<std::uint64_t> tls_reload_failures{0};

  // duration[route][status class]: from the request read to its response handed to the
  // socket (or dropped), in microseconds (ym_http_request_duration_seconds).
  std::array<std::array<obs::Histogram, kStatusClasses>, kRouteCount> duration{};

  void CountRequest(RouteId route, unsigned status, std::uint64_t duration_us) {
    const std::size_t r = static_cast<std::size_t>(route);
    const std::size_t c = StatusClass(status);
    requests[r][c].fetch_add(1, std::memory_order_relaxed);
    duration[r][c].Observe(duration_us);
  }
  std::uint64_t Requests(RouteId route, std::size_t status_class) const {
    return requests[static_cast<std::size_t>(route)][status_class].load(std::memory_order_relaxed);
  }
};

}  // namespace ym::net
