// The proxy data plane. See proxy.h for the contract and docs/proxy.md for the walk-through.
//
// Error policy: socket and parse errors from clients or upstreams are expected; they are
// answered in the API's error shape when nothing of the response was sent yet, and cut
// (connection closed) otherwise. Boost exceptions never cross this file's boundary: every
// operation uses the error_code overloads; Start() catches the few that may throw.
#include "proxy/proxy.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/keys.h"
#include "auth/throttle.h"
#include "common/rlimit.h"
#include "proxy/api_errors.h"
#include "proxy/json_guard.h"
#include "proxy/key_metrics.h"
#include "proxy/listen.h"
#include "proxy/llama_ui.h"
#include "proxy/metrics.h"
#include "proxy/ollama.h"
#include "proxy/ollama_pull.h"
#include "proxy/request_guard.h"
#include "proxy/request_routing.h"
#include "proxy/response_head.h"
#include "proxy/router_mode.h"
#include "proxy/translation.h"
#include "proxy/ui.h"
#include "proxy/upstream_errors.h"
#include "tls/tls.h"

namespace corral::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

// A body type that counts and drops bytes: the response parser only tracks framing (where
// the message ends); the bytes themselves are relayed raw, never copied into a body.
struct DiscardBody {
  struct value_type {
    uint64_t bytes = 0;
    std::string* sink = nullptr;  // when set (Ollama translation), de-chunked body bytes land here
  };
  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& v) : v_(v) {}
    void init(const boost::optional<std::uint64_t>&, error_code& ec) { ec = {}; }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, error_code& ec) {
      ec = {};
      size_t n = asio::buffer_size(buffers);
      v_.bytes += n;
      if (v_.sink != nullptr) {
        for (auto b : beast::buffers_range_ref(buffers)) v_.sink->append(static_cast<const char*>(b.data()), b.size());
      }
      return n;
    }
    void finish(error_code& ec) { ec = {}; }

   private:
    value_type& v_;
  };
};

using RequestParser = http::request_parser<http::string_body>;
using ResponseParser = http::response_parser<DiscardBody>;

// RFC 9110 7.6.1: connection-specific fields a proxy must not forward. Transfer-Encoding
// and Content-Length are handled apart (the request is re-framed, the response is not).
bool IsHopByHop(http::field f) {
  switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::upgrade:
    case http::field::trailer: return true;
    default: return false;
  }
}

// Field names listed in a Connection header are hop-by-hop too.
bool ListedInConnection(std::string_view connection, std::string_view name) {
  if (connection.empty()) return false;
  for (auto token : http::token_list(connection)) {
    if (beast::iequals(token, name)) return true;
  }
  return false;
}

// ---- the transport seam (issue 13) ----
// A client connection is a BasicConnection<Stream>: Stream is the plain socket or a TLS
// stream over it; everything that differs between the two is in these few overloads, so
// the request path has no `if (tls)`. Both are AsyncReadStream/AsyncWriteStream for Beast.
using TlsStream = asio::ssl::stream<tcp::socket>;
tcp::socket& Socket(tcp::socket& s) {
  return s;
}
tcp::socket& Socket(TlsStream& s) {
  return s.next_layer();
}
// Writes what the socket takes now, without blocking (plain only: on loopback a relayed
// chunk nearly always goes out at once, see WriteClient). A TLS write goes through
// async_write: one SSL_write, so one record, per relayed chunk.
size_t TryWriteNow(tcp::socket& s, const std::array<asio::const_buffer, 2>& bufs, error_code& ec) {
  return s.write_some(bufs, ec);
}
size_t TryWriteNow(TlsStream&, const std::array<asio::const_buffer, 2>&, error_code& ec) {
  ec = asio::error::would_block;
  return 0;
}
// A TLS handshake must finish within this (or the client timeout when shorter): a client
// that opens a connection and stalls mid-handshake holds a descriptor, nothing more.
constexpr std::chrono::seconds kHandshakeTimeout{10};

// A keep-alive connection to one upstream, owned by exactly one worker.
struct UpstreamConn {
  explicit UpstreamConn(asio::io_context& ioc) : sock(ioc) {}
  tcp::socket sock;
  Clock::time_point idle_since{};
};

}  // namespace

// What Stop() needs of a client connection, whatever its stream type.
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void Close() = 0;
};

// One listen address: its acceptor (on worker 0) and the policy of connections it accepts.
// Fixed after Start; read by every worker.
struct Listener {
  ListenSpec spec;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_pause;  // on the acceptor's worker
  uint16_t port = 0;
  std::string listen_host;  // as configured; IPv6 without brackets
  OriginPolicy origins;
  bool auth_required = false;  // routable, or require_key_on_loopback
};

// One event loop, its thread, its upstream pool and its metrics cache. Everything here is
// touched only from `thread` (the pool and cache need no lock).
struct Worker {
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConn>>> pool;  // key: endpoint
  std::unordered_set<std::string> preconnecting;  // endpoints with a spare connect in flight
  std::unordered_map<std::string, ModelMetrics*> metrics_cache;
  asio::steady_timer sweep{ioc};
  std::vector<std::weak_ptr<ConnectionBase>> connections;  // for Stop()
  std::optional<RouteReader> routes;                       // this thread's routing view
};

class Proxy::Impl {
 public:
  Impl(ProxyOptions o, ModelProvider& p, RoutingTable& r) : options(std::move(o)), provider(p), routes(r) {
    SetLimits(options.max_body_bytes, options.client_timeout, options.upstream_timeout);
  }

  // The limits a config reload may change while connections run: read per request (body)
  // or per deadline update (timeouts), relaxed: a request sees the old or the new value.
  void SetLimits(uint64_t body, std::chrono::milliseconds client, std::chrono::milliseconds upstream) {
    max_body_bytes_.store(body, std::memory_order_relaxed);
    client_timeout_ms_.store(client.count(), std::memory_order_relaxed);
    upstream_timeout_ms_.store(upstream.count(), std::memory_order_relaxed);
  }
  uint64_t max_body_bytes() const { return max_body_bytes_.load(std::memory_order_relaxed); }
  std::chrono::milliseconds client_timeout() const {
    return std::chrono::milliseconds(client_timeout_ms_.load(std::memory_order_relaxed));
  }
  std::chrono::milliseconds upstream_timeout() const {
    return std::chrono::milliseconds(upstream_timeout_ms_.load(std::memory_order_relaxed));
  }

  ProxyOptions options;
  ModelProvider& provider;
  RoutingTable& routes;
  Metrics metrics;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::atomic<size_t> next_worker{0};
  std::atomic<bool> stopping{false};
  uint16_t bound_port = 0;
  bool started = false;
  std::atomic<uint64_t> max_body_bytes_{0};
  std::atomic<int64_t> client_timeout_ms_{0};
  std::atomic<int64_t> upstream_timeout_ms_{0};

  // LAN (issue 13): the TLS context (when a listener is https://), the key store and the
  // failed-auth throttle (shared by every worker; each is thread-safe).
  std::optional<asio::ssl::context> ssl_ctx;
  std::unique_ptr<auth::KeyStore> keys;
  auth::FailureThrottle throttle;
  KeyMetrics key_metrics;
  std::unique_ptr<PullJobs> pulls;          // POST /api/pull (issue 14); null without options.pull_command
  std::shared_ptr<const LlamaUi> llama_ui;  // the stock llama.cpp web UI; null without options.llama_ui_dir

  // Hostile-input policy, fixed at Start (read-only afterwards, any worker).
  size_t max_connections = 0;                                 // options.max_connections, held below the open-file limit
  std::string refuse_total_response, refuse_client_response;  // canned 503s for the connection caps

  // Connection caps. `admitted` and `per_client` change on accept (worker 0) and when a
  // connection ends (its worker): per_client under clients_mu, which is never held while
  // anything else is done.
  std::atomic<size_t> admitted{0};
  std::mutex clients_mu;
  std::unordered_map<std::string, size_t> per_client;  // guarded by clients_mu; key: client IP

  void Accept(Listener& l);
  template <class Stream, class... StreamArgs>
  void StartConnection(Worker& w, Listener& l, std::string key, StreamArgs&&... args);
  void SetUpGuards(const OpenFileLimits& fds);
  // True (and counted) when a new connection from `key` fits both connection caps;
  // otherwise `why` says which one it does not fit.
  bool AdmitConnection(const std::string& key, Refusal* why) {
    if (admitted.fetch_add(1, std::memory_order_relaxed) >= max_connections) {
      admitted.fetch_sub(1, std::memory_order_relaxed);
      *why = Refusal::kConnections;
      return false;
    }
    std::lock_guard<std::mutex> lock(clients_mu);
    size_t& n = per_client[key];
    if (n >= options.max_connections_per_client) {
      if (n == 0) per_client.erase(key);
      admitted.fetch_sub(1, std::memory_order_relaxed);
      *why = Refusal::kClientConnections;
      return false;
    }
    ++n;
    return true;
  }
  void ReleaseConnection(const std::string& key) {
    admitted.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(clients_mu);
    auto it = per_client.find(key);
    if (it != per_client.end() && --it->second == 0) per_client.erase(it);
  }
  // Answers a connection over a cap with a canned 503 and closes it, without blocking: a
  // fresh socket's send buffer takes the few hundred bytes; what the client already sent is
  // drained first so the close does not turn into a reset that could eat the answer.
  void RefuseConnection(tcp::socket& sock, Refusal why) {
    metrics.CountRefusal(why);
    const std::string& answer = why == Refusal::kConnections ? refuse_total_response : refuse_client_response;
    int fd = sock.native_handle();
    (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    char drain[4096];
    for (int i = 0; i < 16 && ::recv(fd, drain, sizeof drain, MSG_DONTWAIT) > 0; ++i) {
    }
    error_code ec;
    sock.close(ec);
  }
  // The body budget: `n` more bytes for a connection that holds `mine` already. Admitted
  // when it fits under max_buffered_body_bytes, or when nobody else holds any (so one
  // request of max_body_bytes always gets through).
  bool ChargeBody(uint64_t n, uint64_t mine) {
    auto& total = metrics.buffered_body_bytes;
    int64_t cur = total.load(std::memory_order_relaxed);
    for (;;) {
      uint64_t after = static_cast<uint64_t>(cur) + n;
      if (after > options.max_buffered_body_bytes && static_cast<uint64_t>(cur) != mine) return false;
      if (total.compare_exchange_weak(cur, static_cast<int64_t>(after), std::memory_order_relaxed)) return true;
    }
  }
  void ReleaseBody(uint64_t n) {
    metrics.buffered_body_bytes.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
  }
  void SweepPool(Worker& w);

  // Pool operations; called on `w`'s thread only.
  std::unique_ptr<UpstreamConn> TakeIdle(Worker& w, const std::string& key) {
    auto it = w.pool.find(key);
    if (it == w.pool.end()) return nullptr;
    auto& v = it->second;
    auto now = Clock::now();
    while (!v.empty()) {
      std::unique_ptr<UpstreamConn> c = std::move(v.back());
      v.pop_back();
      if (now - c->idle_since > options.pool_idle_timeout) continue;  // too old: drop
      // A peer that closed shows as readable with 0 bytes; any byte is unexpected too.
      char probe;
      ssize_t n = ::recv(c->sock.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
    }
    return nullptr;
  }
  void GiveBack(Worker& w, const std::string& key, std::unique_ptr<UpstreamConn> c) {
    if (stopping.load(std::memory_order_relaxed)) return;
    auto& v = w.pool[key];
    if (v.size() >= options.pool_max_idle_per_upstream) return;
    c->idle_since = Clock::now();
    v.push_back(std::move(c));
  }
  // llama-server closes the connection after every streamed response, so the next request
  // to it would pay a TCP connect and one more event-loop round before its bytes leave.
  // When a response leaves its connection unusable and the pool for that upstream is
  // empty, one spare is connected in the background and pooled for the next request
  // (at most one in flight per upstream and worker; it ages out like any pooled one).
  // Called on `w`'s thread only.
  void PreConnect(Worker& w, const std::string& key, const Endpoint& ep) {
    if (!options.preconnect || stopping.load(std::memory_order_relaxed)) return;
    auto it = w.pool.find(key);
    if (it != w.pool.end() && !it->second.empty()) return;
    error_code ec;
    auto addr = asio::ip::make_address(ep.host, ec);
    if (ec || !w.preconnecting.insert(key).second) return;
    auto c = std::make_unique<UpstreamConn>(w.ioc);
    UpstreamConn* raw = c.get();
    raw->sock.async_connect(tcp::endpoint(addr, ep.port),
                            [this, &w, key, c = std::move(c)](const error_code& cec) mutable {
                              w.preconnecting.erase(key);
                              if (cec || stopping.load(std::memory_order_relaxed)) return;
                              error_code oec;
                              c->sock.set_option(tcp::no_delay(true), oec);
                              GiveBack(w, key, std::move(c));
                            });
  }
  ModelMetrics& MetricsFor(Worker& w, const std::string& model) {
    auto it = w.metrics_cache.find(model);
    if (it != w.metrics_cache.end()) return *it->second;
    // Names come from clients (only routed ones get here, but any unique substring routes):
    // the cache is bounded like the series it points to.
    ModelMetrics& m = metrics.For(model);
    if (w.metrics_cache.size() < Metrics::kMaxModelSeries) w.metrics_cache.emplace(model, &m);
    return m;
  }
};

namespace {

// ---- the exchange: everything one request and its response own ----
// A BasicConnection's `ex_`, reset by one assignment when the next request is read
// (ReadRequest), so nothing of one keep-alive request can leak into the next. What outlives
// a request stays in the connection. Not a member type of the template on purpose: one
// definition for both stream types, and its members are not dependent names.
struct Exchange {
  Route route;
  std::string model;
  bool keep_alive = true;  // the connection stays open after this answer
  bool http10 = false;     // the request said HTTP/1.0
  bool is_head = false;
  Clock::time_point read_at{};  // the request was read whole
  bool no_autoload = false;     // ?autoload=false: a model that is not loaded is not started
  // The API key (issue 13): `key` points into `key_set`, held for the request.
  std::shared_ptr<const auth::KeySet> key_set;
  const auth::KeyRecord* key = nullptr;
  KeyCounters* key_counters = nullptr;
  std::string cors_origin;   // the request's Origin when it is in the CORS allow-list
  std::string extra_fields;  // extra head fields for a local answer (preflight, UI, 401)
  std::string local_body;    // a local answer's body, or a reshaped error's
  int retry_after_s = 0;

  // Upstream: where it goes, and the outcome.
  Endpoint endpoint;
  Endpoint in_flight_endpoint;  // where OnRequestStart was charged
  std::string pool_key;
  bool in_flight = false;  // OnRequestStart was charged; EndInFlight ends it
  bool from_snapshot = false, ensured_after_connect = false;
  bool up_reused = false, retried = false, up_reusable = false;
  std::string up_body;  // a translated request body (owned); pass-through sends the parser's
  std::string_view up_body_view;
  bool added_latency_recorded = false;
  bool response_started = false, client_gone = false, parse_error = false, counted_error = false;
  unsigned status = 0;      // the upstream's
  int sent_status = 0;      // the status the client got (upstream's or a local answer)
  int64_t added_us = -1;    // proxy-added time of this request (event feed)
  UpstreamTimings timings;  // read from the response's tail (event feed)
  ModelMetrics* model_metrics = nullptr;
  // The one relay buffer (the upstream read high watermark): allocated when a response
  // body is relayed, freed with the exchange, so idle keep-alive connections cost a few
  // hundred bytes, not relay_buffer_bytes. Reads reuse it: no allocation per chunk.
  std::unique_ptr<char[]> relay;
  std::string pending;  // response bytes the framing parser has not consumed yet
  std::string tail;     // the last bytes of an inference response (for timings)
  bool track_tail = false;
  bool dechunk = false;  // relaying a chunked response de-chunked (HTTP/1.0 client)
  bool reshape = false;  // buffering an upstream error body to answer it in the route's shape
  std::string decoded;   // de-chunked upstream body bytes not yet translated or written
  // Another API's answer (translation.h): null on the pass-through path.
  std::unique_ptr<ResponseTranslation> translation;
  std::string translated_out;                          // a translated or reshaped answer being written
  std::optional<std::chrono::seconds> set_keep_alive;  // Ollama keep_alive, applied at the end

  // POST /api/pull: the job, and the NDJSON written (pull_out) or waiting (pull_pending).
  std::shared_ptr<PullJobs::Job> pull;
  bool pull_stream = false, pull_writing = false, pull_done = false;
  std::string pull_out, pull_pending;

  // Event streams (the dashboard's, GET /models/sse): at most the head and one relayed
  // chunk queued (the bridge reads on only after Resume()). They end the connection.
  std::shared_ptr<UiEventBridge> ui_events;
  std::string ui_out, ui_wbuf;
  bool ui_writing = false, ui_resume = false, ui_end = false;
  std::map<std::string, std::string> sse_statuses;  // model -> the status value last sent
  int sse_quiet_ticks = 0;
  const LlamaUiFile* llama_ui_file = nullptr;  // kLlamaUi: the file; null: the redirect
};

}  // namespace

// One client connection, from accept to close, on one worker. Requests are handled one at
// a time (HTTP/1.1 pipelining: later requests wait in the read buffer, bounded).
// Stream: tcp::socket or TlsStream (the transport seam above).
template <class Stream>
class BasicConnection : public ConnectionBase, public std::enable_shared_from_this<BasicConnection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  // `client_key`: the client's IP address, as charged by Impl::AdmitConnection (released
  // when the connection ends). `stream_args` construct the Stream.
  template <class... StreamArgs>
  BasicConnection(Proxy::Impl& px, Worker& w, const Listener& listener, std::string client_key,
                  StreamArgs&&... stream_args)
      : px_(px),
        w_(w),
        listener_(listener),
        client_(std::forward<StreamArgs>(stream_args)...),
        timer_(w.ioc),
        client_key_(std::move(client_key)) {}

  void Start() {
    error_code ec;
    Socket(client_).set_option(tcp::no_delay(true), ec);
    Socket(client_).non_blocking(true, ec);  // WriteClient tries writes synchronously first
    px_.metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
    px_.metrics.connections_open.fetch_add(1, std::memory_order_relaxed);
    if constexpr (kTls) {
      // Garbage, a truncated or a stalled handshake ends this connection only.
      SetClientDeadline(std::min<Clock::duration>(px_.client_timeout(), kHandshakeTimeout));
      client_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](const error_code& hec) {
        if (self->closed_) return;
        self->client_deadline_ = Clock::time_point::max();
        if (hec) return self->Close();
        self->ReadRequest();
      });
    } else {
      ReadRequest();
    }
  }

  ~BasicConnection() override {
    ReleaseBody();
    px_.ReleaseConnection(client_key_);
    px_.metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  // Closes everything now. Idempotent; pending handlers see closed_ and return.
  void Close() override {
    if (closed_) return;
    closed_ = true;
    EndInFlight();
    ReleaseBody();
    if (ex_.pull) PullJobs::Cancel(*ex_.pull);  // the client left: SIGINT to `corral pull` (resumable)
    ex_.pull.reset();
    error_code ec;
    Socket(client_).shutdown(tcp::socket::shutdown_both, ec);
    Socket(client_).close(ec);
    if (up_) up_->sock.close(ec);
    up_.reset();
    timer_.cancel();
    if (ex_.ui_events) {
      ex_.ui_events->Close();  // also drops its callbacks (and their hold on this connection)
      ex_.ui_events.reset();
    }
  }

 private:
  // ---- timers: one timer per connection, re-armed lazily (no syscall per token) ----
  void SetClientDeadline(Clock::duration d) {
    client_deadline_ = Clock::now() + d;
    ArmTimer();
  }
  void SetUpstreamDeadline(Clock::duration d) {
    up_deadline_ = Clock::now() + d;
    ArmTimer();
  }
  void ArmTimer() {
    Clock::time_point due = std::min(client_deadline_, up_deadline_);
    if (due == Clock::time_point::max()) return;
    if (timer_armed_ && timer_expiry_ <= due) return;  // fires earlier and re-checks then
    timer_armed_ = true;
    timer_expiry_ = due;
    timer_.expires_at(due);
    uint64_t gen = ++timer_gen_;
    timer_.async_wait([self = this->shared_from_this(), gen](const error_code&) {
      if (gen != self->timer_gen_ || self->closed_) return;
      self->timer_armed_ = false;
      self->OnTimer();
    });
  }
  void OnTimer() {
    auto now = Clock::now();
    if (client_deadline_ <= now) {
      OnClientTimeout();
    } else if (up_deadline_ <= now) {
      OnUpstreamTimeout();
    } else {
      ArmTimer();
    }
  }
  void OnClientTimeout() {
    client_deadline_ = Clock::time_point::max();
    if (state_ == State::kReadingRequest && parser_ && parser_->got_some()) {
      SendError(408, "request not received in time", /*close=*/true);
    } else {
      Close();  // idle keep-alive, or a client that stopped reading its response
    }
  }
  void OnUpstreamTimeout() {
    up_deadline_ = Clock::time_point::max();
    if (!ex_.response_started) {
      DropUpstream();
      CountError();
      SendError(504, "upstream for model '" + ex_.model + "' did not answer in time", /*close=*/false);
    } else {
      CountError();
      Close();  // cut: the client sees an incomplete chunked body / short Content-Length
    }
  }

  // ---- reading a request ----
  void ReadRequest() {
    if (closed_) return;
    state_ = State::kReadingRequest;
    ex_ = Exchange{};  // the previous request's state, all of it, in one assignment
    if (rbuf_.capacity() > kIdleReadBufferBytes) rbuf_.shrink_to_fit();  // after a big body
    parser_.emplace();                                                   // frees the previous request's body
    ReleaseBody();
    parser_->header_limit(px_.options.max_header_bytes);
    parser_->body_limit(px_.max_body_bytes());
    up_deadline_ = Clock::time_point::max();
    SetClientDeadline(px_.client_timeout());
    http::async_read_header(client_, rbuf_, *parser_,
                            [self = this->shared_from_this()](const error_code& ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(const error_code& ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    ex_.route = ClassifyRoute(req.method_string(), req.target());
    if (px_.llama_ui != nullptr) ClassifyLlamaUiRequest();
    if (!CheckHead()) return;
    if (parser_->is_done()) return OnRequest({});  // no body
    auto expect = req[http::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue") && !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(client_, asio::buffer(kContinue),
                        [self = this->shared_from_this()](const error_code& wec, size_t) {
                          if (self->closed_) return;
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  // The checks a request head must pass before its body is read (issue 11). A refused
  // request is answered in its API's error shape and the connection is closed: its body
  // is never read, so the stream cannot be trusted to find the next request. Returns false
  // when refused. Cheap: a few field lookups and compares per request.
  bool CheckHead() {
    auto& req = parser_->get();
    // Smuggling (RFC 9112 §6.1, §6.3): the only framing a proxy may trust besides
    // Content-Length is exactly "chunked"; Beast would treat "xchunked" or "chunked,
    // identity" as no body at all and parse the body as the next request.
    if (size_t te = req.count(http::field::transfer_encoding); te != 0) {
      std::string_view err = RequestFramingError(te, req[http::field::transfer_encoding],
                                                 req.count(http::field::content_length) != 0, req.version());
      if (!err.empty()) return Refuse(Refusal::kFraming, 400, "bad request framing: " + std::string(err));
    }
    // Host (RFC 9112 §3.2), and DNS rebinding: on a loopback listener only loopback names.
    size_t hosts = req.count(http::field::host);
    if (hosts > 1) return Refuse(Refusal::kFraming, 400, "more than one Host field");
    if (hosts == 0 && req.version() >= 11)
      return Refuse(Refusal::kFraming, 400, "an HTTP/1.1 request needs a Host field");
    if (hosts == 1 && listener_.spec.loopback &&
        !HostAllowedOnLoopback(req[http::field::host], listener_.listen_host)) {
      return Refuse(Refusal::kHost, 421,
                    "Host '" + std::string(req[http::field::host].substr(0, 200)) +
                        "' is not served here: on a loopback address the proxy answers only localhost names "
                        "and loopback addresses (DNS rebinding protection)");
    }
    // Browsers: a web page's requests carry its Origin (always on a cross-origin POST).
    if (auto it = req.find(http::field::origin); it != req.end()) {
      std::string_view origin = it->value();
      if (!listener_.origins.Allowed(origin)) {
        return Refuse(Refusal::kOrigin, 403,
                      "requests from the web origin '" + std::string(origin.substr(0, 200)) +
                          "' are not allowed (option cors_origins)");
      }
      if (listener_.origins.InAllowList(origin) && IsSafeHeaderValue(origin)) ex_.cors_origin.assign(origin);
    }
    // API keys (issue 13): before the body is read or anything is started.
    if (!CheckKey()) return false;
    // The global body budget, charged up front (Beast reserves the whole Content-Length).
    if (auto length = parser_->content_length(); length && *length > 0 && !ChargeBody(*length)) {
      ex_.retry_after_s = 1;
      return Refuse(Refusal::kBodyBudget, 503,
                    "too many request bodies in flight; try again (option max_buffered_body_bytes)");
    }
    return true;
  }

  // ---- API keys (issue 13) ----
  // The scope a route needs. Health and the Ollama banner are open (no data, and probes
  // must work); listing and /metrics need read; inference routes inference; the forwarded
  // routes that change a llama-server's state (POST /props, POST /slots) admin.
  static std::optional<auth::Scope> NeededScope(const Route& r) {
    switch (r.kind) {
      case RouteKind::kHealth:
      case RouteKind::kOllamaRoot:
      case RouteKind::kLlamaUi: return std::nullopt;  // the page must load to ask for a key
      case RouteKind::kForward: return r.replay_safe ? auth::Scope::kInference : auth::Scope::kAdmin;
      case RouteKind::kOllamaChat:
      case RouteKind::kOllamaGenerate:
      case RouteKind::kOllamaEmbed: return auth::Scope::kInference;
      case RouteKind::kOllamaPull:  // writes to the disk
      case RouteKind::kRouterLoad:
      case RouteKind::kRouterUnload: return auth::Scope::kAdmin;
      default: return auth::Scope::kRead;
    }
  }

  // Authenticates the request on a listener that asks for keys and checks the route's
  // scope. Answers 401 (missing or invalid: held back after repeated failures from this
  // address) or 403 (scope) in the route's API shape and returns false. On success ex_.key
  // points into ex_.key_set, held for this request. A CORS preflight carries no credentials
  // by design: it passes (it only learns which methods are allowed).
  bool CheckKey() {
    ex_.key = nullptr;
    ex_.key_set.reset();
    if (!listener_.auth_required || px_.keys == nullptr) return true;
    auto& req = parser_->get();
    if (req.method() == http::verb::options && req.find(http::field::access_control_request_method) != req.end()) {
      return true;
    }
    std::optional<auth::Scope> need =
        ex_.route.kind == RouteKind::kUi ? UiScope(req.method_string(), req.target()) : NeededScope(ex_.route);
    if (!need) return true;
    ex_.key_set = px_.keys->Current();
    if (ex_.key_set->keys.empty() && px_.options.allow_unauthenticated_lan) return true;
    auth::Credential cred = auth::ParseCredential(req[http::field::authorization], req["x-api-key"]);
    if (cred.source == auth::CredentialSource::kNone) {
      return FailAuth(
          "an API key is required: send it as Authorization: Bearer <key> or x-api-key: <key> "
          "(create one with `corral keys create`)");
    }
    const auth::KeyRecord* key = cred.malformed ? nullptr : auth::Authenticate(*ex_.key_set, cred.token);
    if (key == nullptr) return FailAuth("invalid API key (unknown, revoked or malformed)");
    px_.throttle.OnSuccess(client_key_);
    ex_.key = key;
    ex_.key_counters = &px_.key_metrics.For(key->name);
    if (key->scope < *need) {
      ex_.key_counters->refused.fetch_add(1, std::memory_order_relaxed);
      return Refuse(Refusal::kAuth, 403,
                    "this API key ('" + key->name + "', scope " + std::string(auth::to_string(key->scope)) +
                        ") may not use this route; it needs scope " + std::string(auth::to_string(*need)));
    }
    ex_.key_counters->requests.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  bool FailAuth(std::string message) {
    px_.key_metrics.auth_failures.fetch_add(1, std::memory_order_relaxed);
    px_.metrics.CountRefusal(Refusal::kAuth);
    ex_.extra_fields = "WWW-Authenticate: Bearer realm=\"corral\", Basic realm=\"corral\"\r\n";
    auto delay = px_.throttle.OnFailure(client_key_, Clock::now());
    if (delay.count() == 0) {
      SendError(401, message, /*close=*/true);
      return false;
    }
    // Repeated failures from this address: the answer waits (the connection holds a timer,
    // nothing else; the client timeout still bounds it).
    px_.key_metrics.auth_delayed.fetch_add(1, std::memory_order_relaxed);
    state_ = State::kWaitingModel;
    auto t = std::make_shared<asio::steady_timer>(w_.ioc, delay);
    t->async_wait([self = this->shared_from_this(), t, message = std::move(message)](const error_code&) {
      if (self->closed_) return;
      self->SendError(401, message, /*close=*/true);
    });
    return false;
  }

  // A key limited to some models may use (and see) only those. False when refused (answered).
  bool CheckKeyModel(const std::string& model) {
    if (ex_.key == nullptr || ex_.key->AllowsModel(model)) return true;
    if (ex_.key_counters != nullptr) ex_.key_counters->refused.fetch_add(1, std::memory_order_relaxed);
    px_.metrics.CountRefusal(Refusal::kAuth);
    SendError(403, "this API key ('" + ex_.key->name + "') may not use model '" + model + "'", false);
    return false;
  }
  std::vector<ModelInfo> VisibleModels() {
    std::vector<ModelInfo> models = px_.provider.ListModels();
    if (ex_.key != nullptr && !ex_.key->models.empty()) {
      std::erase_if(models, [&](const ModelInfo& m) { return !ex_.key->AllowsModel(m.name); });
    }
    return models;
  }

  // Counts and answers a refused request; the connection closes after the answer.
  bool Refuse(Refusal why, int status, const std::string& message) {
    px_.metrics.CountRefusal(why);
    SendError(status, message, /*close=*/true);
    return false;
  }

  bool ChargeBody(uint64_t n) {
    if (!px_.ChargeBody(n, body_charged_)) return false;
    body_charged_ += n;
    return true;
  }
  void ReleaseBody() {
    if (body_charged_ == 0) return;
    px_.ReleaseBody(body_charged_);
    body_charged_ = 0;
  }

  // The body is read a piece at a time so that a chunked body (no Content-Length) is
  // charged against the budget as it grows.
  void ReadBody() {
    http::async_read_some(client_, rbuf_, *parser_,
                          [self = this->shared_from_this()](const error_code& ec, size_t) { self->OnBodyRead(ec); });
  }

  void OnBodyRead(const error_code& ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    if (!parser_->content_length()) {
      uint64_t have = parser_->get().body().size();
      if (have > body_charged_ && !ChargeBody(have - body_charged_)) {
        ex_.retry_after_s = 1;
        Refuse(Refusal::kBodyBudget, 503,
               "too many request bodies in flight; try again (option max_buffered_body_bytes)");
        return;
      }
    }
    if (parser_->is_done()) return OnRequest({});
    ReadBody();
  }

  void OnReadError(const error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || !parser_->got_some()) {
      return Close();
    }
    if (ec == http::error::header_limit) return SendError(431, "request header fields too large", true);
    if (ec == http::error::body_limit) {
      return SendError(413,
                       "request body larger than the limit of " + std::to_string(px_.max_body_bytes()) +
                           " bytes (option max_body_bytes)",
                       true);
    }
    if (ec == http::error::partial_message) return Close();
    if (ec == http::error::bad_transfer_encoding || ec == http::error::bad_content_length ||
        ec == http::error::multiple_content_length) {
      Refuse(Refusal::kFraming, 400, "bad request framing: " + ec.message());  // Beast's own smuggling checks
      return;
    }
    SendError(400, "malformed HTTP request: " + ec.message(), true);
  }

  void OnRequest(const error_code& ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    ex_.read_at = Clock::now();
    client_deadline_ = Clock::time_point::max();
    auto& req = parser_->get();
    ex_.keep_alive = req.keep_alive();
    ex_.http10 = req.version() < 11;
    ex_.is_head = req.method() == http::verb::head;
    if (req.method() == http::verb::options && !ex_.cors_origin.empty() &&
        req.find(http::field::access_control_request_method) != req.end()) {
      return SendPreflight();
    }
    if (TakesJsonBody(ex_.route.kind) && !req.body().empty() &&
        !JsonDepthWithin(req.body(), px_.options.max_json_depth)) {
      px_.metrics.CountRefusal(Refusal::kJsonDepth);
      return SendError(400,
                       "the request body nests arrays/objects deeper than " +
                           std::to_string(px_.options.max_json_depth) + " levels (option max_json_depth)",
                       false);
    }
    switch (ex_.route.kind) {
      case RouteKind::kForward: return RouteForward();
      case RouteKind::kHealth: return SendLocal(200, "application/json", R"({"status":"ok"})");
      case RouteKind::kMetrics:
        return SendLocal(200, "text/plain; version=0.0.4; charset=utf-8",
                         px_.metrics.Render() + px_.key_metrics.Render());
      case RouteKind::kModels: return SendLocal(200, "application/json", OpenAIModelList(VisibleModels()));
      case RouteKind::kOllamaRoot: return SendLocal(200, "text/plain; charset=utf-8", "Ollama is running");
      case RouteKind::kModel: return ModelRoute();
      case RouteKind::kOllamaVersion:
        ex_.extra_fields = "x-corral-version: " + CorralVersionField() + "\r\n";
        return SendLocal(200, "application/json", OllamaVersion(std::string(kOllamaApiVersion)));
      case RouteKind::kOllamaTags: return SendLocal(200, "application/json", OllamaTags(VisibleModels()));
      case RouteKind::kOllamaPs: return SendLocal(200, "application/json", OllamaPs(VisibleModels()));
      case RouteKind::kOllamaShow: return OllamaShowRoute();
      case RouteKind::kOllamaChat:
      case RouteKind::kOllamaGenerate:
      case RouteKind::kOllamaEmbed: return OllamaInferenceRoute();
      case RouteKind::kOllamaPull: return OllamaPullRoute();
      case RouteKind::kRouterModels: return SendLocal(200, "application/json", RouterModelList(VisibleModels()));
      case RouteKind::kRouterLoad:
      case RouteKind::kRouterUnload: return RouterLoadRoute(ex_.route.kind == RouteKind::kRouterLoad);
      case RouteKind::kUi: return UiRoute();
      case RouteKind::kLlamaUi: return LlamaUiRoute();
      case RouteKind::kRouterSse: return RouterModelsSse();
      case RouteKind::kRouterTools:
        // llama-server without --tools answers 403, which its web UI reads as "no server tools".
        return SendError(403, "server tools are not enabled (Corral starts llama-server without --tools)", false);
      case RouteKind::kStreamsLookup:
        // The web UI asks, before a chat, which of its conversations have a stream to resume
        // (llama-server's resumable streams); Corral keeps none, so: none.
        return SendLocal(200, "application/json", "[]");
      case RouteKind::kBadMethod:
        return SendError(405, "method " + std::string(req.method_string()) + " not allowed on this route", false);
      case RouteKind::kNotFound: return SendError(404, "no route for " + std::string(req.target()), false);
    }
  }

  // Routes whose body is JSON that the proxy or llama-server parses: checked for depth
  // before anything reads more than the "model" field.
  static bool TakesJsonBody(RouteKind kind) {
    switch (kind) {
      case RouteKind::kForward:
      case RouteKind::kOllamaShow:
      case RouteKind::kOllamaChat:
      case RouteKind::kOllamaGenerate:
      case RouteKind::kOllamaEmbed:
      case RouteKind::kOllamaPull:
      case RouteKind::kRouterLoad:
      case RouteKind::kRouterUnload: return true;
      default: return false;
    }
  }

  // A model name from a request goes into routing, error messages, logs and the
  // x-corral-model response field: control characters (CR LF: response splitting) and
  // absurd lengths are refused here, before routing. False when refused (answered).
  bool CheckModelName(std::string_view name) {
    if (HasControlChars(name)) {
      px_.metrics.CountRefusal(Refusal::kModelName);
      SendError(400, "the model name contains control characters", false);
      return false;
    }
    if (name.size() > kMaxModelNameBytes) {
      px_.metrics.CountRefusal(Refusal::kModelName);
      SendError(400, "the model name is longer than " + std::to_string(kMaxModelNameBytes) + " bytes", false);
      return false;
    }
    return true;
  }

  // ---- routing ----
  void RouteForward() {
    auto& req = parser_->get();
    ex_.model.clear();
    if (ex_.route.model_source != ModelSource::kQuery) {
      ModelField f = ExtractModelField(req.body());
      if (f.status == ModelFieldStatus::kBadJson && !req.body().empty()) {
        return SendError(400, "the request body is not valid JSON (reading \"model\")", false);
      }
      if (f.status == ModelFieldStatus::kNotString) {
        return SendError(400, "\"model\" must be a string", false);
      }
      if (f.status == ModelFieldStatus::kFound) ex_.model = std::move(f.value);
    }
    if (ex_.model.empty() && ex_.route.model_source != ModelSource::kBody)
      ex_.model = QueryParam(req.target(), "model");
    // llama-server router mode (router_mode.h): GET /props without a model is the router's
    // own; ?autoload=false never starts a model.
    if (ex_.model.empty() && req.method() == http::verb::get && RequestPath() == "/props") {
      return SendLocal(200, "application/json", RouterProps(CorralVersionField()));
    }
    ex_.no_autoload = QueryParam(req.target(), "autoload") == "false";
    if (ex_.model.empty()) {
      return SendError(400,
                       ex_.route.model_source == ModelSource::kQuery
                           ? "missing ?model= (this route needs to know which model to ask)"
                           : "missing \"model\" (this route needs to know which model to ask)",
                       false);
    }
    if (!CheckModelName(ex_.model)) return;
    RouteToModel();
  }

  // Finds the upstream for ex_.model and continues with Forward(). Shared by pass-through and
  // translated requests (which set up up_head_ and ex_.up_body first).
  void RouteToModel() {
    if (!CheckKeyModel(ex_.model)) return;
    ex_.track_tail = ex_.route.inference || ex_.key_counters != nullptr;
    const RouteMap& snapshot = w_.routes->Get();  // no lock unless the table changed
    auto it = snapshot.routes.find(std::string_view(ex_.model));
    if (it != snapshot.routes.end()) {
      ex_.from_snapshot = true;
      return Forward(it->second);
    }
    if (ex_.no_autoload && !LoadedOrAnswered()) return;
    EnsureThenForward();
  }

  void EnsureThenForward() {
    ex_.from_snapshot = false;
    WaitForModel(&BasicConnection::Forward);
  }

  // The one wait-and-resume path: asks the provider for ex_.model (EnsureReady answers on
  // any thread), hops back to this connection's worker and resumes with `ready` and the
  // endpoint, or answers the error. The wait counts in queue_depth (Stop() drains it).
  void WaitForModel(void (BasicConnection::*ready)(const Endpoint&)) {
    state_ = State::kWaitingModel;
    px_.metrics.queue_depth.fetch_add(1, std::memory_order_relaxed);
    auto deadline = Clock::now() + px_.options.ready_timeout;
    px_.provider.EnsureReady(ex_.model, deadline, [self = this->shared_from_this(), ready](EnsureResult result) {
      asio::post(self->w_.ioc, [self, ready, result = std::move(result)]() mutable {
        self->px_.metrics.queue_depth.fetch_sub(1, std::memory_order_relaxed);
        if (self->closed_) return;
        if (auto* ep = std::get_if<Endpoint>(&result)) return ((*self).*ready)(*ep);
        self->OnEnsureError(std::get<EnsureError>(result));
      });
    });
  }

  void OnEnsureError(const EnsureError& e) {
    int status = 503;
    std::string msg = e.message;
    switch (e.code) {
      case EnsureErrorCode::kNotFound: {
        status = 404;
        if (msg.empty()) msg = "model '" + ex_.model + "' not found";
        if (!e.close_matches.empty()) {
          msg += "; did you mean ";
          for (size_t i = 0; i < e.close_matches.size(); ++i) {
            msg += (i == 0 ? "'" : ", '") + e.close_matches[i] + "'";
          }
          msg += "?";
        }
        break;
      }
      case EnsureErrorCode::kQueueFull: status = 429; break;
      case EnsureErrorCode::kStartFailed:
      case EnsureErrorCode::kTimeout:
      case EnsureErrorCode::kUnavailable: status = 503; break;
    }
    ex_.retry_after_s = e.retry_after_s;
    SendError(status, msg, false);
  }

  // ---- forwarding ----
  void Forward(const Endpoint& ep) {
    if (closed_) return;
    state_ = State::kUpstream;
    ex_.endpoint = ep;
    ex_.pool_key = ep.ToString();
    if (!ex_.in_flight) {
      ex_.in_flight = true;
      ex_.in_flight_endpoint = ep;
      px_.provider.OnRequestStart(ex_.model, ep);
      ex_.model_metrics = &px_.MetricsFor(w_, ex_.model);
      ex_.model_metrics->requests.fetch_add(1, std::memory_order_relaxed);
      ex_.model_metrics->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    if (!ex_.translation) BuildUpstreamHead();
    if (auto c = px_.TakeIdle(w_, ex_.pool_key)) {
      up_ = std::move(c);
      ex_.up_reused = true;
      return SendUpstream();
    }
    Connect();
  }

  void Connect() {
    ex_.up_reused = false;
    error_code ec;
    auto addr = asio::ip::make_address(ex_.endpoint.host, ec);
    if (ec) return UpstreamFailed("bad upstream address " + ex_.endpoint.host);
    ++up_gen_;
    up_ = std::make_unique<UpstreamConn>(w_.ioc);
    SetUpstreamDeadline(px_.options.connect_timeout);
    up_->sock.async_connect(tcp::endpoint(addr, ex_.endpoint.port), [self = this->shared_from_this(),
                                                                     gen = up_gen_](const error_code& cec) {
      if (self->closed_ || gen != self->up_gen_) return;
      if (cec) {
        // The snapshot may be stale (model stopped or moved): ask the provider once.
        if (self->ex_.from_snapshot && !self->ex_.ensured_after_connect) {
          self->ex_.ensured_after_connect = true;
          self->DropUpstream();
          return self->EnsureThenForward();
        }
        return self->UpstreamFailed("cannot connect to the upstream of model '" + self->ex_.model + "' at " +
                                    self->ex_.endpoint.ToString() + ": " + cec.message());
      }
      error_code oec;
      self->up_->sock.set_option(tcp::no_delay(true), oec);
      self->SendUpstream();
    });
  }

  // The request head as sent upstream: the original request line and fields, without
  // hop-by-hop fields, Expect (we already have the body) and the client's framing; the
  // body is re-framed with Content-Length (a chunked request body arrives de-chunked).
  void BuildUpstreamHead() {
    auto& req = parser_->get();
    up_head_.clear();
    up_head_.reserve(512);
    up_head_.append(req.method_string()).append(" ").append(req.target()).append(" HTTP/1.1\r\n");
    std::string_view connection = req[http::field::connection];
    for (const auto& f : req) {
      http::field name = f.name();
      if (IsHopByHop(name) || name == http::field::expect || name == http::field::content_length ||
          name == http::field::transfer_encoding || ListedInConnection(connection, f.name_string())) {
        continue;
      }
      up_head_.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
    }
    const std::string& body = req.body();
    if (!body.empty() || req.method() == http::verb::post || req.method() == http::verb::put) {
      up_head_.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    }
    up_head_.append("\r\n");
    ex_.up_body_view = body;
  }

  void SendUpstream() {
    SetUpstreamDeadline(px_.upstream_timeout());
    std::array<asio::const_buffer, 2> bufs{asio::buffer(up_head_), asio::buffer(ex_.up_body_view)};
    asio::async_write(up_->sock, bufs, [self = this->shared_from_this(), gen = up_gen_](const error_code& ec, size_t) {
      if (self->closed_ || gen != self->up_gen_) return;
      if (ec) return self->OnUpstreamEarlyFailure(ec);
      if (!self->ex_.added_latency_recorded) {
        self->ex_.added_latency_recorded = true;
        auto us = std::chrono::duration<double, std::micro>(Clock::now() - self->ex_.read_at).count();
        self->px_.metrics.ObserveProxyAdded(us);
        self->ex_.added_us = static_cast<int64_t>(us);
      }
      self->ReadUpstreamHead();
    });
    StartWatch();
  }

  // A failure before any response byte arrived. A reused pooled connection may simply have
  // been closed by the upstream while idle: replay once on a fresh connection when the
  // route is safe to replay. Anything else is a 502.
  void OnUpstreamEarlyFailure(const error_code& ec) {
    if (ex_.client_gone) return Close();
    if (ex_.up_reused && !ex_.retried && ex_.route.replay_safe && upbuf_.size() == 0) {
      ex_.retried = true;
      px_.metrics.upstream_retries.fetch_add(1, std::memory_order_relaxed);
      DropUpstream();
      return Connect();
    }
    UpstreamFailed("upstream of model '" + ex_.model + "' failed: " + ec.message());
  }

  void UpstreamFailed(const std::string& msg) {
    DropUpstream();
    CountError();
    if (ex_.client_gone) return Close();
    SendError(502, msg, false);
  }

  void ReadUpstreamHead() {
    rparser_.emplace();
    rparser_->header_limit(64U << 10);
    rparser_->body_limit(boost::none);
    if (ex_.is_head) rparser_->skip(true);
    upbuf_.clear();
    http::async_read_header(up_->sock, upbuf_, *rparser_,
                            [self = this->shared_from_this(), gen = up_gen_](const error_code& ec, size_t) {
                              if (self->closed_ || gen != self->up_gen_) return;
                              if (ec) {
                                if (!self->rparser_->got_some() && ec != asio::error::operation_aborted) {
                                  return self->OnUpstreamEarlyFailure(ec);
                                }
                                return self->UpstreamFailed("upstream of model '" + self->ex_.model +
                                                            "' sent a bad response: " + ec.message());
                              }
                              self->OnUpstreamHead();
                            });
  }

  void OnUpstreamHead() {
    SetUpstreamDeadline(px_.upstream_timeout());
    auto& res = rparser_->get();
    ex_.status = res.result_int();
    ex_.sent_status = static_cast<int>(ex_.status);
    // llama-server (cpp-httplib) closes the connection after every chunked (streamed)
    // response although it advertises keep-alive, and its FIN often arrives after we would
    // have pooled it: measured, 19 of 105 streamed requests then met a dead pooled
    // connection and needed the replay. So a connection that carried a chunked response is
    // not pooled; the next request connects (as a direct client of llama-server must too).
    ex_.up_reusable = res.keep_alive() && !res.chunked();
    if (!ex_.up_reusable && ex_.status < 500) px_.PreConnect(w_, ex_.pool_key, ex_.endpoint);
    if (ex_.status >= 400) CountError();
    if (ex_.translation) return OnTranslatedHead();
    if (!ex_.is_head && ReshapesUpstreamError(ex_.route.api, RequestPath(), static_cast<int>(ex_.status)) &&
        (!res.has_content_length() || rparser_->content_length().value_or(0) <= kMaxReshapedErrorBytes)) {
      return OnReshapeHead();
    }
    BuildClientHead(res);
    rparser_->eager(true);
    if (ex_.dechunk) res.body().sink = &ex_.decoded;
    // Body bytes that arrived with the head.
    size_t n = upbuf_.size();
    size_t mine = n == 0 ? 0 : Track(static_cast<const char*>(upbuf_.data().data()), n);
    if (ex_.track_tail) AppendTail(static_cast<const char*>(upbuf_.data().data()), mine);
    ex_.response_started = true;
    asio::const_buffer body = ex_.dechunk ? asio::buffer(ex_.decoded) : asio::buffer(upbuf_.data().data(), mine);
    WriteClient({asio::buffer(out_head_), body});
  }

  // The pass-through response head: the upstream's status line and fields, without
  // hop-by-hop fields, plus the proxy's own.
  void BuildClientHead(const http::response<DiscardBody>& res) {
    out_head_.reserve(512);
    ResponseHead head(out_head_, static_cast<int>(ex_.status),
                      std::string_view(res.reason().data(), res.reason().size()));
    // An HTTP/1.0 client cannot take chunked framing (RFC 9112 7.1): the body is relayed
    // de-chunked and its end is the end of the connection.
    ex_.dechunk = ex_.http10 && res.chunked();
    if (ex_.dechunk) ex_.keep_alive = false;
    std::string_view connection = res[http::field::connection];
    for (const auto& f : res) {
      if (IsHopByHop(f.name()) || ListedInConnection(connection, f.name_string())) continue;
      if (ex_.dechunk && f.name() == http::field::transfer_encoding) continue;
      // llama-server echoes any Origin in Access-Control-Allow-Origin: never passed on;
      // the proxy answers CORS itself, for the configured origins only.
      if (IsAccessControlField(f.name_string())) continue;
      head.Field(f.name_string(), f.value());
    }
    head.Own(Own(/*with_model=*/true));
    // A response without framing ends at upstream EOF: the client connection must close too.
    if (!rparser_->is_done() && !res.chunked() && !res.has_content_length() && !ex_.is_head && ex_.status != 204 &&
        ex_.status != 304) {
      ex_.keep_alive = false;
    }
    head.End(ex_.keep_alive);
  }

  // Feeds raw response bytes to the framing parser. Returns how many of them belong to
  // this response (all of them unless the message ended inside this read).
  size_t Track(const char* data, size_t n) {
    if (ex_.pending.empty()) {
      size_t used = PutAll(data, n);
      if (rparser_->is_done() || ex_.parse_error) {
        if (used < n) ex_.up_reusable = false;
        return ex_.parse_error ? n : used;
      }
      if (used < n) ex_.pending.assign(data + used, n - used);
      return n;
    }
    size_t before = ex_.pending.size();
    ex_.pending.append(data, n);
    size_t used = PutAll(ex_.pending.data(), ex_.pending.size());
    if (rparser_->is_done() || ex_.parse_error) {
      if (used < ex_.pending.size()) ex_.up_reusable = false;
      ex_.pending.clear();
      return ex_.parse_error ? n : (used > before ? used - before : 0);
    }
    ex_.pending.erase(0, used);
    if (ex_.pending.size() > kMaxPendingFraming) {  // a chunk-size line that never ends
      ex_.parse_error = true;
      ex_.pending.clear();
    }
    return n;
  }

  size_t PutAll(const char* d, size_t n) {
    size_t total = 0;
    while (total < n && !rparser_->is_done()) {
      error_code ec;
      size_t used = rparser_->put(asio::buffer(d + total, n - total), ec);
      total += used;
      if (ec == http::error::need_more) break;
      if (ec) {
        ex_.parse_error = true;
        break;
      }
      if (used == 0) break;
    }
    return total;
  }

  void AppendTail(const char* d, size_t n) {
    ex_.tail.append(d, n);
    if (ex_.tail.size() > 2 * kTailBytes) ex_.tail.erase(0, ex_.tail.size() - kTailBytes);
  }

  // Relays response bytes to the client. The write is tried at once on the non-blocking
  // socket: on loopback it nearly always completes, and then the next upstream read starts
  // without a posted completion and the extra epoll round it costs (measured with strace on
  // a 512-token stream: 5 -> 4 syscalls per token). A partial write falls back to
  // async_write for the rest, so a slow reader still pauses the upstream reads.
  void WriteClient(std::array<asio::const_buffer, 2> bufs) {
    error_code ec;
    size_t total = bufs[0].size() + bufs[1].size();
    size_t done = total == 0 ? 0 : TryWriteNow(client_, bufs, ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return OnClientWriteError();
    if (done == total) return RelayNext();
    for (auto& b : bufs) {
      size_t used = std::min(done, b.size());
      b += used;
      done -= used;
    }
    SetClientDeadline(px_.client_timeout());
    asio::async_write(client_, bufs, [self = this->shared_from_this()](const error_code& wec, size_t) {
      if (self->closed_) return;
      self->client_deadline_ = Clock::time_point::max();
      if (wec) return self->OnClientWriteError();
      self->RelayNext();
    });
  }

  void OnClientWriteError() {
    ex_.client_gone = true;
    CountError();
    Close();  // the upstream socket closes with it: generation stops
  }

  void RelayNext() {
    if (ex_.parse_error) {
      CountError();
      return Close();  // malformed framing from upstream: relayed what we had, now cut
    }
    if (rparser_->is_done()) return FinishExchange();
    if (!ex_.relay) ex_.relay = std::make_unique_for_overwrite<char[]>(px_.options.relay_buffer_bytes);
    up_->sock.async_read_some(asio::buffer(ex_.relay.get(), px_.options.relay_buffer_bytes),
                              [self = this->shared_from_this(), gen = up_gen_](const error_code& ec, size_t n) {
                                if (gen != self->up_gen_) return;
                                self->OnRelayRead(ec, n);
                              });
  }

  void OnRelayRead(const error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) {
      if (ex_.client_gone) return Close();
      if (ec == asio::error::eof) {
        error_code eec;
        rparser_->put_eof(eec);
        if (!eec && rparser_->is_done()) {  // a close-delimited body ended
          ex_.up_reusable = false;
          return FinishExchange();
        }
      }
      // Upstream reset or truncated mid-response: nothing can be said in-band; cut.
      CountError();
      return Close();
    }
    up_deadline_ = Clock::now() + px_.upstream_timeout();
    if (ex_.dechunk) ex_.decoded.clear();  // the previous write has completed
    size_t mine = Track(ex_.relay.get(), n);
    if (ex_.track_tail) AppendTail(ex_.relay.get(), mine);
    if (ex_.translation) return Translate();
    if (ex_.reshape) return ReshapeMore();
    if (ex_.dechunk) return WriteClient({asio::buffer(ex_.decoded), asio::const_buffer()});
    WriteClient({asio::buffer(ex_.relay.get(), mine), asio::const_buffer()});
  }

  void FinishExchange() {
    up_deadline_ = Clock::time_point::max();
    if (ex_.track_tail && ex_.model_metrics != nullptr && ex_.status < 400) {
      UpstreamTimings t = ParseTimingsTail(ex_.tail);
      ex_.timings = t;
      if (t.prompt_ms >= 0) ex_.model_metrics->ttft_ms.Observe(t.prompt_ms);
      if (t.predicted_per_second > 0) ex_.model_metrics->tokens_per_s.Observe(t.predicted_per_second);
      if (t.draft_n > 0) {
        ex_.model_metrics->draft_tokens.fetch_add(static_cast<uint64_t>(t.draft_n), std::memory_order_relaxed);
        ex_.model_metrics->draft_accepted.fetch_add(static_cast<uint64_t>(t.draft_accepted), std::memory_order_relaxed);
      }
    }
    if (ex_.key_counters != nullptr && ex_.status < 400 && !ex_.tail.empty()) {
      TokenCounts tc = ParseTokenCounts(ex_.tail);
      if (tc.prompt > 0) ex_.key_counters->prompt_tokens.fetch_add(static_cast<uint64_t>(tc.prompt));
      if (tc.completion > 0) ex_.key_counters->completion_tokens.fetch_add(static_cast<uint64_t>(tc.completion));
    }
    if (up_ && ex_.up_reusable && rparser_->is_done() && ex_.pending.empty()) {
      px_.GiveBack(w_, ex_.pool_key, std::move(up_));
    }
    DropUpstream();
    EndInFlight();
    NextRequestAfterWatch();
  }

  // ---- watching the client while a response streams ----
  // A read stays posted on the client socket during the exchange: EOF or an error means the
  // client left, and the upstream connection is closed at once (llama-server stops
  // generating when its next write fails). Bytes that arrive are pipelined requests: kept,
  // up to max_pipelined_bytes (beyond that the socket is left unread: TCP backpressure).
  void StartWatch() {
    if (watch_pending_ || closed_ || rbuf_.size() >= px_.options.max_pipelined_bytes) return;
    watch_pending_ = true;
    asio::mutable_buffer space;
    try {
      space = rbuf_.prepare(4096);
    } catch (const std::length_error&) {
      watch_pending_ = false;
      return;
    }
    client_.async_read_some(space, [self = this->shared_from_this()](const error_code& ec, size_t n) {
      self->watch_pending_ = false;
      if (self->closed_) return;
      if (!ec) self->rbuf_.commit(n);
      if (ec && ec != asio::error::operation_aborted) {
        self->ex_.client_gone = true;
        if (self->state_ == State::kUpstream || self->state_ == State::kWaitingModel) {
          if (self->ex_.model_metrics != nullptr) self->CountError();
          return self->Close();
        }
      }
      if (self->resume_after_watch_) {
        self->resume_after_watch_ = false;
        if (self->ex_.client_gone) return self->Close();
        return self->NextRequest();
      }
      if (!ec) self->StartWatch();
    });
  }

  void NextRequestAfterWatch() {
    state_ = State::kIdle;
    if (watch_pending_) {
      resume_after_watch_ = true;
      error_code ec;
      Socket(client_).cancel(ec);
      return;
    }
    NextRequest();
  }

  void NextRequest() {
    if (closed_) return;
    if (!ex_.keep_alive || ex_.client_gone) {
      error_code ec;
      Socket(client_).shutdown(tcp::socket::shutdown_send, ec);
      return Close();
    }
    ReadRequest();
  }

  // ---- response heads (response_head.h) ----
  // The fields the proxy adds to every answer: CORS for an allowed origin (local answers
  // included); `with_model` adds x-corral-model.
  OwnFields Own(bool with_model) const {
    bool model = with_model && px_.options.add_model_header;
    return {model ? std::string_view(ex_.model) : std::string_view(), ex_.cors_origin};
  }
  // The head of an event stream (server-sent events), which ends with the connection.
  std::string EventStreamHead(std::string_view extra_fields) const {
    std::string head;
    ResponseHead(head, 200)
        .ContentType("text/event-stream")
        .Fields("Cache-Control: no-store\r\n")
        .Fields(extra_fields)
        .Own(Own(/*with_model=*/false))
        .End(/*keep_alive=*/false);
    return head;
  }

  // A CORS preflight from an allowed origin: 204 with what it may send.
  void SendPreflight() {
    auto& req = parser_->get();
    ex_.extra_fields = "Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\nAccess-Control-Max-Age: 600\r\n";
    std::string_view asked = req[http::field::access_control_request_headers];
    if (!asked.empty() && asked.size() <= 1024 && IsTokenList(asked)) {
      ex_.extra_fields.append("Access-Control-Allow-Headers: ").append(asked).append("\r\n");
    }
    SendLocal(204, "", "");
  }

  // ---- local answers ----
  void SendLocal(int status, std::string_view content_type, std::string body) {
    ex_.sent_status = status;
    ex_.local_body = std::move(body);
    ResponseHead head(out_head_, status);
    if (status != 204) {  // RFC 9110 §8.6: no Content-Length on a 204
      head.ContentType(content_type).ContentLength(ex_.local_body.size());
    }
    if (ex_.retry_after_s > 0) head.Field("Retry-After", std::to_string(ex_.retry_after_s));
    head.Fields(ex_.extra_fields).Own(Own(/*with_model=*/false)).End(ex_.keep_alive);
    if (ex_.is_head) ex_.local_body.clear();
    state_ = State::kWritingLocal;
    SetClientDeadline(px_.client_timeout());
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out_head_), asio::buffer(ex_.local_body)};
    asio::async_write(client_, bufs, [self = this->shared_from_this()](const error_code& ec, size_t) {
      if (self->closed_) return;
      self->client_deadline_ = Clock::time_point::max();
      if (ec) return self->Close();
      self->EndInFlight();
      self->NextRequestAfterWatch();
    });
  }

  void SendError(int status, const std::string& message, bool close) {
    if (close) ex_.keep_alive = false;
    if (ex_.model_metrics == nullptr) px_.metrics.requests_unrouted.fetch_add(1, std::memory_order_relaxed);
    SendLocal(status, "application/json", ErrorBody(ex_.route.api, status, message));
  }

  void CountError() {
    if (ex_.counted_error) return;
    ex_.counted_error = true;
    if (ex_.model_metrics != nullptr) ex_.model_metrics->errors.fetch_add(1, std::memory_order_relaxed);
  }

  void EndInFlight() {
    if (!ex_.in_flight) return;
    ex_.in_flight = false;
    // One record per finished request for the event feed: numbers only, read once here.
    RequestRecord r;
    std::string_view target = parser_ ? std::string_view(parser_->get().target()) : std::string_view();
    r.route = target.substr(0, target.find('?'));
    // 499 (nginx's "client closed request"): cut mid-response, by the client or the upstream.
    r.status = ex_.counted_error && ex_.sent_status < 400 ? 499 : ex_.sent_status;
    auto to_int = [](double v, double scale) { return v >= 0 ? static_cast<int64_t>(v * scale) : int64_t{-1}; };
    r.ttft_us = to_int(ex_.timings.prompt_ms, 1000);
    r.tokens = to_int(ex_.timings.predicted_n, 1);
    r.tok_per_s_milli = to_int(ex_.timings.predicted_per_second, 1000);
    r.draft_tokens = ex_.timings.draft_n;
    r.draft_accepted = ex_.timings.draft_accepted;
    r.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ex_.read_at).count();
    r.proxy_added_us = ex_.added_us;
    r.client = client_key_;
    px_.provider.OnRequestFinished(ex_.model, ex_.in_flight_endpoint, r);
    if (ex_.model_metrics != nullptr) ex_.model_metrics->in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (ex_.set_keep_alive) {
      px_.provider.SetKeepAlive(ex_.model, *ex_.set_keep_alive);
      ex_.set_keep_alive.reset();
    }
  }

  // Also invalidates every pending handler of the old upstream connection (up_gen_).
  void DropUpstream() {
    ++up_gen_;
    if (up_) {
      error_code ec;
      up_->sock.close(ec);
      up_.reset();
    }
  }

  // ---- upstream errors reshaped (upstream_errors.h) ----
  std::string_view RequestPath() {
    std::string_view t = parser_->get().target();
    return t.substr(0, t.find('?'));
  }
  void OnReshapeHead() {
    ex_.reshape = true;
    rparser_->eager(true);
    rparser_->get().body().sink = &ex_.decoded;
    if (upbuf_.size() != 0) Track(static_cast<const char*>(upbuf_.data().data()), upbuf_.size());
    ReshapeMore();
  }
  void ReshapeMore() {
    if (ex_.decoded.size() > kMaxReshapedErrorBytes) {
      return UpstreamFailed("upstream of model '" + ex_.model + "' sent an error body over " +
                            std::to_string(kMaxReshapedErrorBytes) + " bytes");
    }
    if (!rparser_->is_done()) return RelayNext();
    ReshapedError r =
        ReshapeUpstreamError(ex_.route.api, RequestPath(), static_cast<int>(ex_.status), ex_.decoded, ex_.model);
    ex_.decoded.clear();
    ResponseHead(ex_.translated_out, r.status)
        .ContentType("application/json")
        .ContentLength(r.body.size())
        .Own(Own(/*with_model=*/true))
        .End(ex_.keep_alive)
        .append(r.body);
    ex_.response_started = true;
    WriteTranslatedOut();
  }

  // Writes a whole answer built in translated_out (a reshaped error, or a translation's
  // bytes), then reads on: the next upstream bytes, or the end of the exchange.
  void WriteTranslatedOut() {
    SetClientDeadline(px_.client_timeout());
    asio::async_write(client_, asio::buffer(ex_.translated_out),
                      [self = this->shared_from_this()](const error_code& ec, size_t) {
                        if (self->closed_) return;
                        self->client_deadline_ = Clock::time_point::max();
                        self->ex_.translated_out.clear();
                        if (ec) {
                          self->ex_.client_gone = true;
                          return self->Close();
                        }
                        self->RelayNext();  // a finished message ends the exchange there
                      });
  }

  // ---- translated responses (translation.h) ----
  void OnTranslatedHead() {
    ClientFraming framing{ex_.http10, ex_.keep_alive, Own(/*with_model=*/true)};
    ex_.translation->Begin(static_cast<int>(ex_.status), framing);
    if (!ex_.translation->keep_alive()) ex_.keep_alive = false;
    rparser_->eager(true);
    rparser_->get().body().sink = &ex_.decoded;
    if (upbuf_.size() != 0) Track(static_cast<const char*>(upbuf_.data().data()), upbuf_.size());
    Translate();
  }
  // Track() has pushed the de-chunked body bytes into `decoded` through the body sink.
  void Translate() {
    ex_.translation->Translate(ex_.decoded, rparser_->is_done(), ex_.translated_out);
    ex_.decoded.clear();
    if (ex_.translation->started()) ex_.response_started = true;
    if (ex_.translated_out.empty()) return RelayNext();
    WriteTranslatedOut();
  }

  // ---- Ollama ----
  void OllamaShowRoute();
  void ModelRoute();  // GET /v1/models/{id}
  void UnknownModel(const std::string& name, const std::vector<ModelInfo>& models, const std::string& why);
  // Corral's own version for the x-corral-version field (printable ASCII only).
  std::string CorralVersionField() const {
    std::string v;
    for (char c : px_.options.version) {
      if (c > 0x20 && c < 0x7f) v += c;
    }
    return v.empty() ? "unknown" : v;
  }
  void OllamaInferenceRoute();
  void OllamaLoaded(const Endpoint& ready);
  // llama-server router mode (router_mode.h) and POST /api/pull (ollama_pull.h).
  void RouterLoadRoute(bool load);
  void RouterLoaded(const Endpoint& ready);
  bool LoadedOrAnswered();
  void OllamaPullRoute();
  void OnPullLines(const std::string& lines);
  void OnPullDone(const PullOutcome& outcome);
  void WritePull();
  // ---- GET /models/sse (router_mode.h) ----
  void RouterModelsSse();
  void RouterModelsSseTick();
  // ---- the stock llama.cpp web UI (proxy/llama_ui.h) ----
  void ClassifyLlamaUiRequest();
  void LlamaUiRoute();
  // ---- the web dashboard (proxy/ui.h) ----
  void UiRoute();
  void UiEvents(const std::string& target);
  void UiSend(std::string_view bytes, bool resume_after);
  void UiFlush();

  enum class State { kIdle, kReadingRequest, kWaitingModel, kUpstream, kWritingLocal };
  static constexpr size_t kMaxPendingFraming = 64U << 10;
  static constexpr size_t kTailBytes = 4096;
  static constexpr size_t kIdleReadBufferBytes = 16U << 10;
  static constexpr size_t kMaxModelNameBytes = 4096;
  static constexpr size_t kMaxPullPendingBytes = 1U << 20;

  // ---- the connection ----
  Proxy::Impl& px_;
  Worker& w_;
  const Listener& listener_;
  Stream client_;
  asio::steady_timer timer_;
  beast::flat_buffer rbuf_;  // client bytes: the current request + pipelined ones
  // The request parser, re-created per request (ReadRequest; Beast parsers cannot be
  // assigned). It holds the body, charged to the global budget as body_charged_.
  std::optional<RequestParser> parser_;
  uint64_t body_charged_ = 0;
  State state_ = State::kIdle;
  bool closed_ = false;
  std::string client_key_;  // the client's IP address (connection caps)

  // One timer, re-armed lazily (SetClientDeadline, SetUpstreamDeadline).
  Clock::time_point client_deadline_ = Clock::time_point::max();
  Clock::time_point up_deadline_ = Clock::time_point::max();
  Clock::time_point timer_expiry_{};
  bool timer_armed_ = false;
  uint64_t timer_gen_ = 0;
  // The read posted on the client while a response streams (StartWatch).
  bool watch_pending_ = false, resume_after_watch_ = false;

  // The upstream leg: the socket (given back to the worker's pool when reusable), its
  // generation (bumped whenever up_ is dropped or replaced; stale handlers compare it, so it
  // must never restart), the response parser (re-created per response head) and its buffer.
  std::unique_ptr<UpstreamConn> up_;
  uint64_t up_gen_ = 0;
  std::optional<ResponseParser> rparser_;
  beast::flat_buffer upbuf_;  // upstream response head (+ the body bytes that came with it)
  // The two heads of an exchange, rewritten whole for each request: outside Exchange on
  // purpose, so their capacity is kept and a keep-alive request builds them without allocating.
  std::string up_head_;   // the request head sent upstream
  std::string out_head_;  // the response head sent to the client

  Exchange ex_;
};

// ---- GET /models/sse: llama-server router mode's status feed (router_mode.h) ----

// Every model's status once ("model_status"), then a "status_change" record whenever one
// changes, checked every kSseTick against the provider's list (what GET /models answers), and
// a comment line when nothing was sent for kSseKeepAlive. Ends with the connection (the
// watch sees a browser leave; a write stalled for kUiStallTimeout drops it).
inline constexpr std::chrono::milliseconds kSseTick{250};
inline constexpr int kSseKeepAliveTicks = 60;  // 15 s

template <class Stream>
void BasicConnection<Stream>::RouterModelsSse() {
  state_ = State::kWaitingModel;
  ex_.keep_alive = false;
  ex_.sent_status = 200;
  UiSend(EventStreamHead("") + RouterStatusEvents(ex_.sse_statuses, VisibleModels(), "model_status"), false);
  StartWatch();
  RouterModelsSseTick();
}

template <class Stream>
void BasicConnection<Stream>::RouterModelsSseTick() {
  auto t = std::make_shared<asio::steady_timer>(w_.ioc, kSseTick);
  t->async_wait([self = this->shared_from_this(), t](const error_code&) {
    if (self->closed_) return;
    std::string events = RouterStatusEvents(self->ex_.sse_statuses, self->VisibleModels(), "status_change");
    if (events.empty() && ++self->ex_.sse_quiet_ticks >= kSseKeepAliveTicks) events = ": keep-alive\n\n";
    if (!events.empty()) {
      self->ex_.sse_quiet_ticks = 0;
      self->UiSend(events, false);
    }
    self->RouterModelsSseTick();
  });
}

// ---- the stock llama.cpp web UI (issue 16, proxy/llama_ui.h) ----

// Under /llama/: a file of the UI is served from memory (kLlamaUi); any other path is one of
// the UI's API requests (relative to its page: /llama/props, /llama/v1/chat/completions, ...)
// and is routed, and forwarded, as the path without the prefix.
template <class Stream>
void BasicConnection<Stream>::ClassifyLlamaUiRequest() {
  auto& req = parser_->get();
  LlamaUiTarget t = ClassifyLlamaUi(*px_.llama_ui, req.target());
  switch (t.kind) {
    case LlamaUiTarget::Kind::kNone: return;
    case LlamaUiTarget::Kind::kRedirect:
    case LlamaUiTarget::Kind::kFile: {
      const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
      ex_.route = Route{};
      ex_.route.kind = get ? RouteKind::kLlamaUi : RouteKind::kBadMethod;
      ex_.llama_ui_file = t.file;
      return;
    }
    case LlamaUiTarget::Kind::kApi:
      req.target(t.api_target);
      ex_.route = ClassifyRoute(req.method_string(), req.target());
      return;
  }
}

template <class Stream>
void BasicConnection<Stream>::LlamaUiRoute() {
  ex_.extra_fields.assign(px_.llama_ui->security_fields());
  if (ex_.llama_ui_file == nullptr) {
    ex_.extra_fields.append("Location: /llama/\r\n");
    return SendLocal(308, "text/plain; charset=utf-8", "");
  }
  auto& req = parser_->get();
  // SvelteKit's content-hashed files never change; the rest (index.html, sw.js) is checked.
  const bool immutable = req.target().starts_with("/llama/_app/immutable/");
  ex_.extra_fields.append(immutable ? "Cache-Control: public, max-age=31536000, immutable\r\n"
                                    : "Cache-Control: no-cache\r\n");
  ex_.extra_fields.append("ETag: ").append(ex_.llama_ui_file->etag).append("\r\n");
  SendLocal(200, ex_.llama_ui_file->content_type, ex_.llama_ui_file->bytes);
}

// ---- the web dashboard (issue 16, proxy/ui.h) ----

template <class Stream>
void BasicConnection<Stream>::UiRoute() {
  auto& req = parser_->get();
  UiRequest ui = ClassifyUi(req.method_string(), req.target(), req[kUiActionHeader]);
  ex_.extra_fields.append(UiSecurityFields());
  if (UiScope(req.method_string(), req.target())) {  // the API, not the page
    std::string why =
        UiCrossOriginRefusal(req[http::field::origin], req["sec-fetch-site"], req[http::field::host], kTls);
    if (!why.empty()) {
      Refuse(Refusal::kOrigin, 403, why);
      return;
    }
  }
  switch (ui.kind) {
    case UiRequest::Kind::kRedirect:
      ex_.extra_fields.append("Location: /ui/\r\n");
      return SendLocal(308, "text/plain; charset=utf-8", "");
    case UiRequest::Kind::kAsset:
      ex_.extra_fields.append("Cache-Control: no-cache\r\n");
      return SendLocal(200, ui.asset->content_type, std::string(ui.asset->bytes));
    case UiRequest::Kind::kEvents: return UiEvents(ui.target);
    case UiRequest::Kind::kControl: {
      state_ = State::kWaitingModel;
      CallControl(w_.ioc, px_.options.control_socket, ui,
                  [self = this->shared_from_this()](int status, std::string body) {
                    if (self->closed_) return;
                    self->ex_.extra_fields.assign(UiSecurityFields()).append("Cache-Control: no-store\r\n");
                    self->SendLocal(status, "application/json", std::move(body));
                  });
      return;
    }
    case UiRequest::Kind::kBadMethod:
      return SendError(405, "method " + std::string(req.method_string()) + " not allowed on this route", false);
    case UiRequest::Kind::kNoActionHeader:
      return SendError(403, "dashboard actions need the header X-Corral-UI: 1 (CSRF protection)", false);
    case UiRequest::Kind::kNotFound: return SendError(404, ui.body, false);
  }
}

// GET /ui/api/events (the daemon's feed) and /ui/api/logs/stream (a log followed): NDJSON from
// the control socket as server-sent events until either side ends it. The
// connection is not reused afterwards (no length: the body ends with the connection).
template <class Stream>
void BasicConnection<Stream>::UiEvents(const std::string& target) {
  if (px_.options.control_socket.empty()) {
    return SendError(503, "this proxy does not know the daemon's control socket (run it under `corral serve`)", false);
  }
  state_ = State::kWaitingModel;
  ex_.keep_alive = false;
  ex_.ui_events = UiEventBridge::Create(w_.ioc, px_.options.control_socket, target);
  auto self = this->shared_from_this();
  UiEventBridge::Callbacks cb;
  cb.on_head = [self](int status, std::string body) {
    if (self->closed_) return;
    if (status != 200) {
      self->ex_.ui_events.reset();
      self->ex_.extra_fields.assign(UiSecurityFields());
      return self->SendLocal(status, "application/json", std::move(body));
    }
    self->ex_.sent_status = 200;
    self->UiSend(self->EventStreamHead(UiSecurityFields()), false);
  };
  cb.on_data = [self](const std::string& bytes) {
    if (!self->closed_) self->UiSend(bytes, true);
  };
  cb.on_end = [self] {
    if (self->closed_) return;
    self->ex_.ui_end = true;
    if (!self->ex_.ui_writing) self->Close();
  };
  ex_.ui_events->Start(std::move(cb));
  StartWatch();  // a browser that goes away ends the stream at once (its read fails)
}

template <class Stream>
void BasicConnection<Stream>::UiSend(std::string_view bytes, bool resume_after) {
  ex_.ui_out.append(bytes);
  ex_.ui_resume = ex_.ui_resume || resume_after;
  if (!ex_.ui_writing) UiFlush();
}

// One write at a time; a browser that leaves it pending for kUiStallTimeout is dropped.
template <class Stream>
void BasicConnection<Stream>::UiFlush() {
  ex_.ui_writing = true;
  ex_.ui_wbuf.swap(ex_.ui_out);
  ex_.ui_out.clear();
  SetClientDeadline(kUiStallTimeout);
  asio::async_write(client_, asio::buffer(ex_.ui_wbuf),
                    [self = this->shared_from_this()](const error_code& ec, size_t) {
                      if (self->closed_) return;
                      self->client_deadline_ = Clock::time_point::max();
                      self->ex_.ui_writing = false;
                      self->ex_.ui_wbuf.clear();
                      if (ec) return self->Close();
                      if (!self->ex_.ui_out.empty()) return self->UiFlush();
                      if (self->ex_.ui_end) return self->Close();
                      if (self->ex_.ui_resume && self->ex_.ui_events) {
                        self->ex_.ui_resume = false;
                        self->ex_.ui_events->Resume();
                      }
                    });
}

// ---- Ollama routes ----

template <class Stream>
void BasicConnection<Stream>::OllamaShowRoute() {
  auto& req = parser_->get();
  std::string name = OllamaRequestModel(req.body());
  if (name.empty()) return SendError(400, "missing \"model\"", false);
  if (!CheckModelName(name)) return;
  if (!CheckKeyModel(name)) return;
  auto models = VisibleModels();
  // Every name /api/chat accepts (the catalog's rules), never a path; only models the key may see.
  std::string why;
  if (const ModelInfo* m = FindModel(name, models, &why)) return SendLocal(200, "application/json", OllamaShow(*m));
  UnknownModel(name, models, why);
}

template <class Stream>
void BasicConnection<Stream>::ModelRoute() {
  const std::string id = ModelIdFromTarget(parser_->get().target());
  if (id.empty()) return SendError(400, "missing model id", false);
  if (!CheckModelName(id)) return;
  if (!CheckKeyModel(id)) return;
  auto models = VisibleModels();
  std::string why;
  if (const ModelInfo* m = FindModel(id, models, &why)) return SendLocal(200, "application/json", OpenAIModel(*m));
  UnknownModel(id, models, why);
}

template <class Stream>
void BasicConnection<Stream>::UnknownModel(const std::string& name, const std::vector<ModelInfo>& models,
                                           const std::string& why) {
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  EnsureError e;
  e.code = EnsureErrorCode::kNotFound;
  // An ambiguous name says which models it matches; an unknown one gets close matches.
  e.message = why.find(" matches ") != std::string::npos ? why : "model '" + name + "' not found";
  e.close_matches = CloseMatches(name, names);
  OnEnsureError(e);
}

template <class Stream>
void BasicConnection<Stream>::OllamaInferenceRoute() {
  auto& req = parser_->get();
  OllamaLimits limits;
  limits.max_depth = px_.options.max_json_depth;
  limits.max_upstream_bytes = std::max<uint64_t>(px_.max_body_bytes(), req.body().size());
  auto plan = PlanOllamaRequest(ex_.route.kind, req.body(), limits);
  if (!plan.ok()) return SendError(400, plan.status().message(), false);
  if (!CheckModelName(plan->model)) return;
  ex_.model = plan->model;
  if (plan->keep_alive) ex_.set_keep_alive = plan->keep_alive;
  if (plan->load_only) {
    // Empty request: load (or, with keep_alive 0, unload) and answer at once. Management:
    // a key needs the admin scope for it.
    if (!CheckKeyModel(ex_.model)) return;
    if (ex_.key != nullptr && ex_.key->scope < auth::Scope::kAdmin) {
      if (ex_.key_counters != nullptr) ex_.key_counters->refused.fetch_add(1, std::memory_order_relaxed);
      px_.metrics.CountRefusal(Refusal::kAuth);
      return SendError(403, "loading or unloading a model needs an API key with scope admin", false);
    }
    if (plan->keep_alive && plan->keep_alive->count() == 0) {
      bool known = px_.provider.SetKeepAlive(ex_.model, std::chrono::seconds(0));
      ex_.set_keep_alive.reset();
      if (!known) {
        EnsureError e;
        e.message = "model '" + ex_.model + "' not found";
        return OnEnsureError(e);
      }
      return SendLocal(200, "application/json", OllamaLoadAnswer(ex_.route.kind, ex_.model, /*unloaded=*/true));
    }
    return WaitForModel(&BasicConnection::OllamaLoaded);
  }
  ex_.up_body = std::move(plan->upstream_body);
  up_head_ = TranslatedRequestHead(plan->upstream_target, ex_.up_body.size());
  ex_.up_body_view = ex_.up_body;
  ex_.translation = NewOllamaTranslation(ex_.route.kind, ex_.model, plan->stream);
  RouteToModel();
}

// A load-only Ollama request: the model is ready.
template <class Stream>
void BasicConnection<Stream>::OllamaLoaded(const Endpoint& /*ready*/) {
  if (ex_.set_keep_alive) px_.provider.SetKeepAlive(ex_.model, *ex_.set_keep_alive);
  ex_.set_keep_alive.reset();
  SendLocal(200, "application/json", OllamaLoadAnswer(ex_.route.kind, ex_.model, false));
}

// ---- llama-server router mode (router_mode.h) ----

// POST /models/load, /models/unload {"model":ID}. A load answers once the model is ready (or
// with the reason it cannot be: admission, start failure), so a refusal reaches the client;
// llama-server answers before loading and its web UI polls GET /v1/models either way. Both
// are idempotent. An unload waits for the model's requests in flight (it never cuts one).
template <class Stream>
void BasicConnection<Stream>::RouterLoadRoute(bool load) {
  auto name = RouterRequestModel(parser_->get().body());
  if (!name.ok()) return SendError(400, name.status().message(), false);
  if (!CheckModelName(*name) || !CheckKeyModel(*name)) return;
  auto models = VisibleModels();
  std::string why;
  const ModelInfo* m = FindModel(*name, models, &why);
  if (m == nullptr) return UnknownModel(*name, models, why);
  if (!load) {
    if (!px_.provider.Unload(m->name)) return UnknownModel(*name, models, why);
    return SendLocal(200, "application/json", R"({"success":true})");
  }
  ex_.model = m->name;
  WaitForModel(&BasicConnection::RouterLoaded);
}

template <class Stream>
void BasicConnection<Stream>::RouterLoaded(const Endpoint& /*ready*/) {
  SendLocal(200, "application/json", R"({"success":true})");
}

// ?autoload=false and the routing snapshot has no entry for ex_.model: true when the model is
// loaded after all (under another of its names); otherwise answered (404 unknown, 400 not
// loaded, as llama-server's router says "model is not loaded").
template <class Stream>
bool BasicConnection<Stream>::LoadedOrAnswered() {
  auto models = VisibleModels();
  std::string why;
  const ModelInfo* m = FindModel(ex_.model, models, &why);
  if (m == nullptr) {
    UnknownModel(ex_.model, models, why);
    return false;
  }
  if (m->state == ModelState::kReady) return true;
  SendError(400, "model '" + m->name + "' is not loaded (autoload=false); load it with POST /models/load", false);
  return false;
}

// ---- POST /api/pull (ollama_pull.h) ----

template <class Stream>
void BasicConnection<Stream>::OllamaPullRoute() {
  if (!px_.pulls) {
    return SendError(501, "pulling is not available on this proxy (POST /api/pull needs `corral daemon`)", false);
  }
  auto req = ParseOllamaPullRequest(parser_->get().body());
  if (!req.ok()) return SendError(400, req.status().message(), false);
  ex_.pull_stream = req->stream;
  auto self = this->shared_from_this();
  PullJobs::Callbacks cb;
  cb.on_lines = [self](std::string lines) {
    asio::post(self->w_.ioc, [self, lines = std::move(lines)] { self->OnPullLines(lines); });
  };
  cb.on_done = [self](const PullOutcome& outcome) {
    asio::post(self->w_.ioc, [self, outcome] { self->OnPullDone(outcome); });
  };
  Status why;
  ex_.pull = px_.pulls->Start(req->model, std::move(cb), &why);
  if (!ex_.pull) {
    if (why.code() != StatusCode::kResourceExhausted) return SendError(503, why.message(), false);
    ex_.retry_after_s = 5;
    return SendError(429, why.message(), false);
  }
  // While it runs, the watch notices a client that leaves: Close() then cancels the pull.
  state_ = State::kWaitingModel;
  StartWatch();
}

template <class Stream>
void BasicConnection<Stream>::OnPullLines(const std::string& lines) {
  if (closed_ || !ex_.pull_stream || lines.empty()) return;  // stream:false answers only the outcome
  if (!ex_.response_started) {
    if (ex_.http10) ex_.keep_alive = false;  // NDJSON unframed, ended by the close
    ResponseHead head(ex_.pull_pending, 200);
    head.ContentType("application/x-ndjson");
    if (!ex_.http10) head.Chunked();
    head.Own(Own(/*with_model=*/false)).End(ex_.keep_alive);
    ex_.response_started = true;
    ex_.sent_status = 200;
  }
  if (ex_.http10) {
    ex_.pull_pending += lines;
  } else {
    AppendChunk(ex_.pull_pending, lines);
  }
  // A client that stops reading: progress comes a few lines a second, so this is minutes.
  if (ex_.pull_pending.size() > kMaxPullPendingBytes) return Close();
  WritePull();
}

template <class Stream>
void BasicConnection<Stream>::OnPullDone(const PullOutcome& outcome) {
  ex_.pull.reset();
  if (closed_) return;
  if (!ex_.pull_stream) {
    if (outcome.ok) return SendLocal(200, "application/json", R"({"status":"success"})");
    return SendError(PullErrorStatus(outcome), outcome.message, false);
  }
  if (!outcome.ok) OnPullLines(ErrorBody(Api::kOllama, 500, outcome.message) + "\n");
  if (closed_) return;
  if (!ex_.response_started)
    OnPullLines(R"({"status":"success"})"
                "\n");  // nothing was said (cannot happen)
  if (!ex_.http10) ex_.pull_pending += "0\r\n\r\n";
  ex_.pull_done = true;
  WritePull();
}

template <class Stream>
void BasicConnection<Stream>::WritePull() {
  if (ex_.pull_writing || closed_) return;
  if (ex_.pull_pending.empty()) {
    if (ex_.pull_done) NextRequestAfterWatch();
    return;
  }
  ex_.pull_out.swap(ex_.pull_pending);
  ex_.pull_pending.clear();
  ex_.pull_writing = true;
  SetClientDeadline(px_.client_timeout());
  asio::async_write(client_, asio::buffer(ex_.pull_out),
                    [self = this->shared_from_this()](const error_code& ec, size_t) {
                      self->ex_.pull_writing = false;
                      if (self->closed_) return;
                      self->client_deadline_ = Clock::time_point::max();
                      self->ex_.pull_out.clear();
                      if (ec) {
                        self->ex_.client_gone = true;
                        return self->Close();
                      }
                      self->WritePull();
                    });
}

// ---- Proxy ----

template <class Stream, class... StreamArgs>
void Proxy::Impl::StartConnection(Worker& w, Listener& l, std::string key, StreamArgs&&... args) {
  auto c = std::make_shared<BasicConnection<Stream>>(*this, w, l, std::move(key), std::forward<StreamArgs>(args)...);
  // A weak list for Stop(); dead entries are pruned by the pool sweep.
  w.connections.push_back(c);
  c->Start();
}

void Proxy::Impl::Accept(Listener& l) {
  Worker& w = *workers[next_worker.fetch_add(1, std::memory_order_relaxed) % workers.size()];
  // The accepted socket belongs to the chosen worker's io_context from the start.
  l.acceptor->async_accept(w.ioc, [this, &w, &l](const error_code& ec, tcp::socket sock) {
    if (stopping.load()) return;
    if (!ec) {
      error_code rec;
      std::string key = sock.remote_endpoint(rec).address().to_string();
      Refusal why{};
      if (rec) {
        error_code cec;
        sock.close(cec);  // gone already
      } else if (!AdmitConnection(key, &why)) {
        RefuseConnection(sock, why);
      } else {
        asio::post(w.ioc, [this, &w, &l, s = std::move(sock), key = std::move(key)]() mutable {
          if (stopping.load()) {
            ReleaseConnection(key);
            return;
          }
          if (l.spec.tls) {
            StartConnection<TlsStream>(w, l, std::move(key), std::move(s), *ssl_ctx);
          } else {
            StartConnection<tcp::socket>(w, l, std::move(key), std::move(s));
          }
        });
      }
    } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
               ec == asio::error::no_memory || ec.value() == ENFILE) {
      // Out of file descriptors or memory: the pending connection stays in the backlog and
      // accepting again at once would spin. Pause, then try again (connections that close
      // meanwhile free descriptors).
      metrics.accept_pauses.fetch_add(1, std::memory_order_relaxed);
      l.accept_pause->expires_after(std::chrono::milliseconds(50));
      l.accept_pause->async_wait([this, &l](const error_code& tec) {
        if (!tec && !stopping.load()) Accept(l);
      });
      return;
    }
    Accept(l);
  });
}

// The hostile-input policy, once the ports are known: own origins, the Host check, the
// key rule per listener, the effective connection cap and the canned answers of the caps.
void Proxy::Impl::SetUpGuards(const OpenFileLimits& fds) {
  for (auto& l : listeners) {
    l->listen_host = l->spec.host;
    l->origins = OriginPolicy(options.cors_origins, l->listen_host, l->port);
    l->auth_required = !l->spec.loopback || options.require_key_on_loopback;
  }
  // Each client connection may need an upstream one too; keep a reserve for the pools,
  // the listener, logs and the daemon.
  constexpr uint64_t kReservedFds = 256;
  uint64_t fd_room = fds.now > 2 * kReservedFds ? (fds.now - kReservedFds) / 2 : kReservedFds / 2;
  max_connections = static_cast<size_t>(std::min<uint64_t>(options.max_connections, fd_room));
  auto canned = [](const std::string& message) {
    std::string body = ErrorBody(Api::kOpenAI, 503, message);
    std::string answer;
    ResponseHead(answer, 503)
        .ContentType("application/json")
        .ContentLength(body.size())
        .Field("Retry-After", "1")
        .End(/*keep_alive=*/false)
        .append(body);
    return answer;
  };
  refuse_total_response =
      canned("too many connections (" + std::to_string(max_connections) + ", option max_connections); try again");
  refuse_client_response =
      canned("too many connections from this address (" + std::to_string(options.max_connections_per_client) +
             ", option max_connections_per_client); try again");
}

void Proxy::Impl::SweepPool(Worker& w) {
  w.sweep.expires_after(options.pool_idle_timeout);
  w.sweep.async_wait([this, &w](const error_code& ec) {
    if (ec || stopping.load()) return;
    auto now = Clock::now();
    for (auto& [key, v] : w.pool) {
      std::erase_if(v, [&](const auto& c) { return now - c->idle_since > options.pool_idle_timeout; });
    }
    std::erase_if(w.connections, [](const auto& p) { return p.expired(); });
    SweepPool(w);
  });
}

Proxy::Proxy(ProxyOptions options, ModelProvider& provider, RoutingTable& routes)
    : impl_(std::make_unique<Impl>(std::move(options), provider, routes)) {}

Proxy::~Proxy() {
  // Stop() joins threads (std::system_error in theory) and posts to the loops (bad_alloc);
  // a destructor must not throw, and nothing better than finishing is left to do here.
  try {
    Stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the process is tearing the proxy down anyway
  }
}

uint16_t Proxy::port() const {
  return impl_->listeners.empty() ? 0 : impl_->listeners.front()->port;
}

std::vector<uint16_t> Proxy::ports() const {
  std::vector<uint16_t> out;
  for (const auto& l : impl_->listeners) out.push_back(l->port);
  return out;
}

void Proxy::SetLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                      std::chrono::milliseconds upstream_timeout) {
  impl_->SetLimits(max_body_bytes, client_timeout, upstream_timeout);
}

std::string Proxy::MetricsText() const {
  return impl_->metrics.Render() + impl_->key_metrics.Render();
}

Status Proxy::Start() {
  Impl& px = *impl_;
  if (px.started) return Status(StatusCode::kFailedPrecondition, "proxy already started");
  auto specs = ParseListenList(px.options.listen);
  if (!specs.ok()) return specs.status();
  if (!px.options.listen_fds.empty() && px.options.listen_fds.size() != specs->size()) {
    return InvalidArgument("listen has " + std::to_string(specs->size()) + " entries but " +
                           std::to_string(px.options.listen_fds.size()) + " sockets were passed");
  }
  bool any_tls = std::any_of(specs->begin(), specs->end(), [](const ListenSpec& l) { return l.tls; });
  if (any_tls) {
    if (px.options.tls_cert.empty() || px.options.tls_key.empty()) {
      return InvalidArgument("an https:// listen address needs a certificate and key (tls_cert, tls_key)");
    }
    px.ssl_ctx.emplace(asio::ssl::context::tls_server);
    if (Status s = tls::ConfigureServerContext(px.ssl_ctx->native_handle(), px.options.tls_cert, px.options.tls_key);
        !s.ok()) {
      px.ssl_ctx.reset();
      return s;
    }
  }
  if (!px.options.keys_file.empty()) px.keys = std::make_unique<auth::KeyStore>(px.options.keys_file);
  if (!px.options.llama_ui_dir.empty()) {
    auto ui = LlamaUi::Load(px.options.llama_ui_dir);
    if (!ui.ok()) return ui.status();
    px.llama_ui = *std::move(ui);
  }
  if (!px.options.pull_command.empty()) {
    px.pulls = std::make_unique<PullJobs>(px.options.pull_command, std::max<size_t>(px.options.max_pulls, 1),
                                          /*on_models_changed=*/nullptr);
  }

  int n = px.options.threads;
  if (n <= 0) n = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 4U));
  for (int i = 0; i < n; ++i) {
    px.workers.push_back(std::make_unique<Worker>());
    px.workers.back()->routes.emplace(px.routes);
  }
  // 1000 idle keep-alive clients plus their upstreams do not fit Debian's default soft
  // limit of 1024 descriptors; children get the original limit back (supervisor).
  OpenFileLimits fds = RaiseOpenFileLimit();
  px.metrics.max_open_files.store(static_cast<uint64_t>(fds.now), std::memory_order_relaxed);
  error_code ec;
  std::string failed;
  for (size_t i = 0; i < specs->size() && !ec; ++i) {
    auto l = std::make_unique<Listener>();
    l->spec = (*specs)[i];
    l->acceptor.emplace(px.workers[0]->ioc);
    l->accept_pause.emplace(px.workers[0]->ioc);
    failed = l->spec.text;
    if (!px.options.listen_fds.empty()) {
      // Adopt the keeper's socket: it stays bound (and queues clients) across our restarts.
      int fd = px.options.listen_fds[i];
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        ec = error_code(errno, boost::system::system_category());
      } else {
        l->acceptor->assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
      }
    } else {
      auto addr = asio::ip::make_address(l->spec.host, ec);
      tcp::endpoint ep(addr, l->spec.port);
      if (!ec) l->acceptor->open(ep.protocol(), ec);
      if (!ec) l->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) l->acceptor->bind(ep, ec);
      if (!ec) l->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (!ec) l->port = l->acceptor->local_endpoint(ec).port();
    px.listeners.push_back(std::move(l));
  }
  if (ec) {
    px.listeners.clear();
    px.workers.clear();
    px.ssl_ctx.reset();
    return Unavailable("cannot listen on " + failed + ": " + ec.message());
  }
  px.SetUpGuards(fds);
  for (auto& l : px.listeners) px.Accept(*l);
  for (auto& w : px.workers) {
    w->guard.emplace(w->ioc.get_executor());
    px.SweepPool(*w);
    Worker* wp = w.get();
    w->thread = std::thread([wp] { wp->ioc.run(); });
  }
  px.started = true;
  return Status::Ok();
}

void Proxy::Stop() {
  Impl& px = *impl_;
  if (!px.started) return;
  px.started = false;
  px.stopping.store(true);
  // Close the listener and every connection on its own thread, then let the loops drain.
  asio::post(px.workers[0]->ioc, [&px] {
    error_code ec;
    for (auto& l : px.listeners) {
      l->acceptor->close(ec);
      l->accept_pause->cancel();
    }
  });
  for (auto& w : px.workers) {
    Worker* wp = w.get();
    asio::post(w->ioc, [wp] {
      for (auto& weak : wp->connections) {
        if (auto c = weak.lock()) c->Close();
      }
      wp->pool.clear();
      wp->sweep.cancel();
    });
  }
  // EnsureReady callbacks still owed by the provider post into these loops: keep them
  // running until every one has arrived (the provider answers waiters promptly on shutdown).
  while (px.metrics.queue_depth.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Pulls: every child stopped and every reader thread joined while the loops still run
  // (their last callbacks post into them).
  if (px.pulls) px.pulls->StopAll();
  for (auto& w : px.workers) w->guard.reset();
  for (auto& w : px.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  px.listeners.clear();  // timers and sockets go before the io_contexts they live on
  px.workers.clear();
}

}  // namespace corral::proxy
