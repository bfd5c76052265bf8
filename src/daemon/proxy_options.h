// The proxy's options from the config: the one place a config::Config becomes a
// proxy::ProxyOptions (the daemon at start and on reload, `corral proxy`). Lives in daemon
// because it is the lowest module that sees both config and proxy. Pure; thread-safety: stateless.
#pragma once

#include "config/options.h"
#include "proxy/proxy.h"

namespace corral::daemon {

// Every ProxyOptions field that an option sets: listen, threads, preconnect, the body,
// timeout, JSON-depth, CORS and connection limits, and the LAN switches. What the caller
// wires itself stays at ProxyOptions' defaults: TLS files and the key file (PrepareLan), the
// llama.cpp web UI folder, the pull command, the control socket, the version.
proxy::ProxyOptions ProxyOptionsFor(const config::Config& config);

}  // namespace corral::daemon
