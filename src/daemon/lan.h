// The LAN settings of the proxy, wired from the config (issue 13): the open-door rule, the
// TLS material for https:// listen addresses and the key file. Used by the daemon and by
// `corral serve` / `corral proxy` before they start anything.
// Thread-safety: free functions; they read files and may create the local CA.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "config/options.h"
#include "proxy/proxy.h"

namespace corral::daemon {

// The open-door rule alone: kFailedPrecondition (exit 72 from the CLI) when a routable
// listen address has no key to ask for and allow_unauthenticated_lan is off; also bad
// listen entries (kInvalidArgument).
Status CheckOpenDoor(const config::Config& config);

// Fills popts' LAN files (TLS paths, keys file) over ProxyOptionsFor(config)'s values
// (proxy_options.h: listen and the LAN switches): creates the local CA and server
// certificate when an https:// address needs one and the user gave none. `notes`: lines
// for the log (the fingerprint to pin, the open-door warning).
Status PrepareLan(const config::Config& config, proxy::ProxyOptions& popts, std::vector<std::string>* notes);

// "http://127.0.0.1:11450" for the first listen address, with the bound port.
std::string FirstProxyUrl(const std::string& listen, uint16_t port);

}  // namespace corral::daemon
