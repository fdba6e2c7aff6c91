// Probes: registers every server metric family in one place (STYLE.md rule 14).
// docs/operations.md lists them; keep the two in step.
//
// The registered probes read the Broker's counters and gauges, the HTTP layer's stats and the
// store's file sizes; all of those must outlive the registry's use.
#pragma once

#include "net/http_stats.h"
#include "obs/metrics.h"
#include "server/broker.h"
#include "store/store.h"

namespace ym {

void RegisterServerMetrics(obs::Registry& registry, const Broker& broker, Store& store,
                           const net::HttpStats* http);

}  // namespace ym
