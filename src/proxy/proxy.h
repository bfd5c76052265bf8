// The proxy data plane: one HTTP/1.1 listener, N event-loop threads, every model behind it.
//
// Threading: `threads` workers, each an io_context run by one thread. The acceptor hands
// each new client connection to the next worker round-robin; the connection, its upstream
// connection and its upstream pool live on that worker for their whole life, so no
// connection state is ever shared between threads and nothing on the path blocks.
// Routing reads the RoutingTable snapshot lock-free; on a miss it asks the ModelProvider
// (EnsureReady) and resumes on its own worker when the answer comes.
//
// Bytes: request heads are parsed (Beast), hop-by-hop headers dropped (RFC 9110 7.6.1),
// the body is read whole (bounded by max_body_bytes: the model may be its last member) and
// forwarded unchanged. Response heads are re-written the same way; response bodies are
// relayed byte for byte as they arrive (chunked framing and SSE untouched), one bounded
// buffer per stream: upstream reads pause while a client write is pending (backpressure).
// See docs/proxy.md for the traced request path and the watermarks.
//
// Thread-safety: Start/Stop/port from one controlling thread; MetricsText and SetLimits from
// any thread.
// Ownership: the Proxy references a ModelProvider and a RoutingTable it does not own;
// both must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/proxy_defaults.h"
#include "common/status.h"
#include "proxy/model_provider.h"
#include "proxy/routing_table.h"

namespace corral::proxy {

// Every tunable of the data plane in one place.
struct ProxyOptions {
  // [http://|https://]HOST:PORT[,...] (proxy/listen.h); port 0 = any (see Proxy::ports())
  std::string listen = defaults::kListen;
  // Non-empty: serve on these already-listening sockets, one per listen entry in order (the
  // keeper's; see edge/host.h) instead of binding.
  std::vector<int> listen_fds;
  int threads = defaults::kProxyThreads;              // event-loop threads; 0 = min(hardware threads, 4)
  uint64_t max_body_bytes = defaults::kMaxBodyBytes;  // request body limit -> 413
  uint32_t max_header_bytes = 64U << 10;              // request head limit -> 431
  std::chrono::milliseconds client_timeout{
      std::chrono::seconds(defaults::kClientTimeoutS)};  // idle keep-alive, slow request, stalled reader
  std::chrono::milliseconds upstream_timeout{
      std::chrono::seconds(defaults::kUpstreamTimeoutS)};  // no upstream byte this long -> 504 / cut
  std::chrono::milliseconds connect_timeout{5'000};        // upstream TCP connect
  std::chrono::milliseconds ready_timeout{120'000};        // EnsureReady deadline (on-demand start)
  // Pooled upstream connections idle longer than this are dropped; keep it below
  // llama-server's own keep-alive timeout (cpp-httplib: 5 s) so we rarely meet a stale one.
  std::chrono::milliseconds pool_idle_timeout{4'000};
  // Idle pooled connections per upstream, per worker. Kept small on purpose: llama-server
  // (cpp-httplib) parks one of its HTTP threads (default max(n_parallel + 2, cores - 1)) on
  // every idle keep-alive connection, so a large pool would starve it of threads.
  size_t pool_max_idle_per_upstream = 1;
  // Connect a spare upstream connection in the background when a response leaves its
  // connection unusable (llama-server closes it after every stream), so the next request
  // does not wait for a connect. Costs one parked llama-server HTTP thread per upstream and
  // worker while idle (the pinned llama-server grows its pool on demand).
  bool preconnect = defaults::kProxyPreconnect;
  size_t relay_buffer_bytes = 16U << 10;   // per stream; the upstream read high watermark
  size_t max_pipelined_bytes = 64U << 10;  // client bytes read ahead while a response streams
  bool add_model_header = true;            // x-corral-model on forwarded responses
  std::string version = "0.1.0";           // Corral's, for the x-corral-version field of /api/version

  // Hostile input (issue 11). Bodies nested deeper than this many levels of arrays/objects
  // are refused with 400 before anything parses or forwards them (json_guard.h).
  size_t max_json_depth = defaults::kMaxJsonDepth;
  // Browser origins (scheme://host[:port]) whose requests are served and get CORS headers
  // ("*" = any). Requests with any other Origin (but the proxy's own) are refused with 403;
  // upstream Access-Control-* fields are never passed through. Empty: no CORS at all.
  std::vector<std::string> cors_origins;
  // Client connections open at once, in total and per client IP address: beyond them a new
  // connection gets a 503 (Retry-After) and is closed at once. The total is also held below
  // half the open-file limit (every client may need an upstream connection too).
  size_t max_connections = defaults::kMaxConnections;
  size_t max_connections_per_client =
      defaults::kMaxConnectionsPerClient;  // 1000 idle keep-alive clients + 64 streams from one host fit
  // Request body bytes buffered across all connections (a body is charged its
  // Content-Length when its head arrives, a chunked one as it grows). Beyond it: 503 with
  // Retry-After and close. A body is always admitted when no other one is buffered, so a
  // single max_body_bytes request always fits.
  uint64_t max_buffered_body_bytes = defaults::kMaxBufferedBodyBytes;

  // LAN (issue 13). TLS material for the https:// entries (tls/tls.h) and the API keys
  // (auth/keys.h: the file is re-checked on every request, so a revocation holds from the
  // next request on). Routable listeners ask for a key; loopback ones only when
  // require_key_on_loopback. allow_unauthenticated_lan: a routable listener with no key in
  // the file serves everyone (the daemon warns loudly; without it the bind is refused).
  std::string tls_cert, tls_key;
  std::string keys_file;
  bool allow_unauthenticated_lan = false;
  bool require_key_on_loopback = false;

  // POST /api/pull (issue 14, ollama_pull.h): argv of `corral [--config FILE] pull --json`
  // (argv[0] a path); empty: the route answers 501. At most max_pulls run at once (429
  // beyond). The pull itself tells the daemon to rescan its catalog (cmd_pull.cc).
  std::vector<std::string> pull_command;
  size_t max_pulls = 2;
  // The web dashboard (issue 16, proxy/ui.h): the daemon's control socket, which /ui/api/
  // bridges to (the event feed, logs, load/unload/pin). Empty: /ui/api answers 503.
  std::string control_socket;
  // The stock llama.cpp web UI (llama_ui.h): a built tools/ui folder, read into memory at
  // Start and served under /llama/. Empty: none (/llama/... is routed like any path).
  std::string llama_ui_dir;
};

class Proxy {
 public:
  Proxy(ProxyOptions options, ModelProvider& provider, RoutingTable& routes);
  ~Proxy();  // Stop()
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds the listener and starts the workers. Errors: bad listen address, bind failure.
  Status Start();
  // The bound port of the first listen address (after Start); ports(): every one, in order.
  uint16_t port() const;
  std::vector<uint16_t> ports() const;
  // Closes the listener and every connection, joins the workers. Idempotent.
  void Stop();
  // GET /metrics body.
  std::string MetricsText() const;
  // Changes the body limit and the client/upstream timeouts while running (config reload).
  // Any thread. New requests and the next deadline update of running ones use them; a
  // stream in flight is never cut by the change itself.
  void SetLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                 std::chrono::milliseconds upstream_timeout);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace corral::proxy
