// The proxy's options and the supervisor's limits from the config: the one place a
// config::Config becomes a proxy::ProxyOptions (the daemon at start and on reload, `corral
// proxy`) or a Supervisor::Limits (the daemon at start and on reload). Lives in daemon because
// it is the lowest module that sees config, proxy and supervisor. Pure; thread-safety: stateless.
#pragma once

#include "config/options.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

namespace corral::daemon {

// Every ProxyOptions field that an option sets: listen, threads, preconnect, the body,
// timeout, JSON-depth, CORS and connection limits, and the LAN switches. What the caller
// wires itself stays at ProxyOptions' defaults: TLS files and the key file (PrepareLan), the
// llama.cpp web UI folder, the pull command, the control socket, the version.
proxy::ProxyOptions ProxyOptionsFor(const config::Config& config);

// The limits a reload may change: the memory budget (already resolved from memory_budget,
// which may be "auto"), the health timeouts and the stop grace.
supervisor::Supervisor::Limits SupervisorLimitsFor(const config::Config& config, uint64_t budget_bytes);

}  // namespace corral::daemon
