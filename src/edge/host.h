// ProxyHost: the keeper's side of crash isolation. The daemon (keeper) owns the llama-server
// children, the router and the control plane; every byte from the network is parsed in a
// separate proxy process (`corral __proxy-process`) that ProxyHost spawns, feeds and
// restarts. A hostile request that crashes the parser costs the streams of that process,
// never a loaded model: the children belong to the keeper, and the listening socket too,
// so clients that connect while the proxy process restarts wait in the accept backlog.
//
//   keeper (daemon)                                 proxy process
//   ┌─────────────────────────────┐  SEQPACKET     ┌──────────────────────────┐
//   │ router (ModelProvider)  ◄───┼── E/S/D/K ─────┤ RemoteProvider           │
//   │ RoutingTable ── publish ────┼── routes ─────►│ RoutingTable (mirror)    │
//   │ ProxyHost thread            │── models,answer│ proxy::Proxy (workers)   │
//   │ listening socket (bound) ───┼── fd 3 ───────►│ accepts on fd 3          │
//   └─────────────────────────────┘                └──────────────────────────┘
//
// Lifecycle of the proxy process: spawned → ready ('R') → running → exited → (backoff) →
// spawned again; Stop() ends it (SIGTERM, grace, SIGKILL) and never restarts it. Restart
// backoff: none after a process that ran >= 10 s, else 100 ms doubling to 5 s.
// Requests in flight on a dead process are ended in the router's accounting (OnRequestEnd),
// so a crash never leaves a model looking busy forever.
//
// No orphans: the process is forked by the host's own thread, which lives as long as the
// host, with PR_SET_PDEATHSIG=SIGKILL; a SIGKILL of the whole daemon kills it too.
//
// Thread-safety: Start/Stop from one controlling thread; SetLimits and info() from any
// thread. Everything else runs on the host's thread. Ownership: the provider and the routing
// table are the daemon's and outlive the host.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "proxy/model_provider.h"
#include "proxy/proxy.h"
#include "proxy/routing_table.h"

namespace corral::edge {

struct ProxyHostOptions {
  std::string exe;                                  // the corral binary to run as `EXE __proxy-process`
  proxy::ProxyOptions proxy;                        // listen is bound here; the rest is sent to the process
  std::chrono::milliseconds ready_timeout{20'000};  // spawn -> 'R'
  std::chrono::milliseconds stop_grace{5'000};      // SIGTERM -> SIGKILL
  std::chrono::milliseconds restart_min{100};
  std::chrono::milliseconds restart_max{5'000};
  std::chrono::milliseconds models_refresh{1'000};  // model list (states, expiry) pushed this often if changed
};

// What `corral status` shows about the proxy process.
struct ProxyProcessInfo {
  int pid = 0;            // 0 while none runs
  uint64_t restarts = 0;  // processes started after the first
  std::string last_exit;  // "killed by SIGSEGV", "exit code 1"; empty when none died yet
};

class ProxyHost {
 public:
  ProxyHost(ProxyHostOptions options, proxy::ModelProvider& provider, proxy::RoutingTable& routes);
  ~ProxyHost();  // Stop()
  ProxyHost(const ProxyHost&) = delete;
  ProxyHost& operator=(const ProxyHost&) = delete;

  // Binds the listener, spawns the proxy process and waits until it serves. Errors: bad
  // listen address, bind failure, the process did not come up (its exit status).
  Status Start();
  uint16_t port() const;
  std::vector<uint16_t> ports() const;  // every listen address's port, in order
  // Ends the proxy process and the host's thread. Idempotent.
  void Stop();
  // Config reload: forwarded to the running process and to every later one.
  void SetLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                 std::chrono::milliseconds upstream_timeout);
  ProxyProcessInfo info() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Binds a listening TCP socket for "HOST:PORT" (HOST an IP literal, [v6] or localhost;
// port 0 = any). Returns the fd (close-on-exec) and sets `*port` to the bound port.
Result<int> BindListener(const std::string& listen, uint16_t* port);

}  // namespace corral::edge
