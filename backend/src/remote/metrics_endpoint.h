// smimea-backend's optional Prometheus endpoint (metrics-listen): GET /metrics answers the
// core's lookup counters (lookup_metrics.h) of every connection of this process, served by the
// code base's HTTP server (smimea_http). Only with --listen: in pipe mode each pdns thread has
// its own process, and each would count only its own lookups.
#pragma once

#include <memory>
#include <string>

#include "smimea/status.h"

namespace smimea::remote {

class MetricsEndpoint {
 public:
  virtual ~MetricsEndpoint() = default;
};

// Listens on listen ("HOST:PORT" or "[IPv6]:PORT", as validated by load_config) and serves
// until the endpoint is destroyed. An error if the address cannot be bound.
Result<std::unique_ptr<MetricsEndpoint>> start_metrics_endpoint(const std::string& listen);

}  // namespace smimea::remote
