#include "daemon/proxy_options.h"

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace corral::daemon {

proxy::ProxyOptions ProxyOptionsFor(const config::Config& config) {
  proxy::ProxyOptions p;
  p.listen = config.listen;
  p.threads = static_cast<int>(config.proxy_threads);
  p.preconnect = config.proxy_preconnect;
  p.max_body_bytes = static_cast<uint64_t>(config.max_body_bytes);
  p.client_timeout = std::chrono::seconds(config.proxy_client_timeout_s);
  p.upstream_timeout = std::chrono::seconds(config.proxy_upstream_timeout_s);
  p.max_json_depth = static_cast<size_t>(config.max_json_depth);
  p.cors_origins = config.cors_origins;
  p.max_connections = static_cast<size_t>(config.max_connections);
  p.max_connections_per_client = static_cast<size_t>(config.max_connections_per_client);
  p.max_buffered_body_bytes = static_cast<uint64_t>(config.max_buffered_body_bytes);
  p.allow_unauthenticated_lan = config.allow_unauthenticated_lan;
  p.require_key_on_loopback = config.require_key_on_loopback;
  return p;
}

supervisor::Supervisor::Limits SupervisorLimitsFor(const config::Config& config, uint64_t budget_bytes) {
  supervisor::Supervisor::Limits l;
  l.memory_budget_bytes = budget_bytes;
  l.health_timeout_base = std::chrono::seconds(config.health_timeout_s);
  l.health_timeout_per_gib = std::chrono::seconds(config.health_timeout_per_gib_s);
  l.stop_grace = std::chrono::seconds(config.stop_timeout_s);
  return l;
}

}  // namespace corral::daemon
