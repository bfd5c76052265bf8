// The proxy data plane. See proxy.h for the contract and docs/proxy.md for the walk-through.
//
// Error policy: socket and parse errors from clients or upstreams are expected; they are
// answered in the API's error shape when nothing of the response was sent yet, and cut
// (connection closed) otherwise. Boost exceptions never cross this file's boundary: every
// operation uses the error_code overloads; Start() catches the few that may throw.
#include "proxy/proxy.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/rlimit.h"
#include "proxy/api_errors.h"
#include "proxy/metrics.h"
#include "proxy/ollama.h"
#include "proxy/request_routing.h"

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

const char* ReasonFor(int status) {
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  return r.empty() ? "Unknown" : r.data();
}

// A keep-alive connection to one upstream, owned by exactly one worker.
struct UpstreamConn {
  explicit UpstreamConn(asio::io_context& ioc) : sock(ioc) {}
  tcp::socket sock;
  Clock::time_point idle_since{};
};

}  // namespace

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
  std::vector<std::weak_ptr<class Connection>> connections;  // for Stop()
  std::optional<RouteReader> routes;                         // this thread's routing view
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
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_pause;  // on the acceptor's worker
  std::atomic<size_t> next_worker{0};
  std::atomic<bool> stopping{false};
  uint16_t bound_port = 0;
  bool started = false;
  std::atomic<uint64_t> max_body_bytes_{0};
  std::atomic<int64_t> client_timeout_ms_{0};
  std::atomic<int64_t> upstream_timeout_ms_{0};

  void Accept();
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
    // Bound the cache: model names come from clients, but only routed (known) ones get here.
    ModelMetrics& m = metrics.For(model);
    w.metrics_cache.emplace(model, &m);
    return m;
  }
};

// One client connection, from accept to close, on one worker. Requests are handled one at
// a time (HTTP/1.1 pipelining: later requests wait in the read buffer, bounded).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Proxy::Impl& px, Worker& w, tcp::socket sock) : px_(px), w_(w), client_(std::move(sock)), timer_(w.ioc) {}

  void Start() {
    error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
    client_.non_blocking(true, ec);  // WriteClient tries writes synchronously first
    px_.metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
    px_.metrics.connections_open.fetch_add(1, std::memory_order_relaxed);
    ReadRequest();
  }

  ~Connection() { px_.metrics.connections_open.fetch_sub(1, std::memory_order_relaxed); }

  // Closes everything now. Idempotent; pending handlers see closed_ and return.
  void Close() {
    if (closed_) return;
    closed_ = true;
    EndInFlight();
    error_code ec;
    client_.shutdown(tcp::socket::shutdown_both, ec);
    client_.close(ec);
    if (up_) up_->sock.close(ec);
    up_.reset();
    timer_.cancel();
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
    timer_.async_wait([self = shared_from_this(), gen](const error_code&) {
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
    if (!response_started_) {
      DropUpstream();
      CountError();
      SendError(504, "upstream for model '" + model_ + "' did not answer in time", /*close=*/false);
    } else {
      CountError();
      Close();  // cut: the client sees an incomplete chunked body / short Content-Length
    }
  }

  // ---- reading a request ----
  void ReadRequest() {
    if (closed_) return;
    state_ = State::kReadingRequest;
    ResetExchange();
    relay_.reset();
    if (rbuf_.capacity() > kIdleReadBufferBytes) rbuf_.shrink_to_fit();  // after a big body
    parser_.emplace();
    parser_->header_limit(px_.options.max_header_bytes);
    parser_->body_limit(px_.max_body_bytes());
    up_deadline_ = Clock::time_point::max();
    SetClientDeadline(px_.client_timeout());
    http::async_read_header(client_, rbuf_, *parser_,
                            [self = shared_from_this()](const error_code& ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(const error_code& ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    route_ = ClassifyRoute(req.method_string(), req.target());
    auto expect = req[http::field::expect];
    if (!expect.empty() && beast::iequals(expect, "100-continue") && !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(client_, asio::buffer(kContinue), [self = shared_from_this()](const error_code& wec, size_t) {
        if (self->closed_) return;
        if (wec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(client_, rbuf_, *parser_,
                     [self = shared_from_this()](const error_code& ec, size_t) { self->OnRequest(ec); });
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
    SendError(400, "malformed HTTP request: " + ec.message(), true);
  }

  void OnRequest(const error_code& ec) {
    if (closed_) return;
    if (ec) return OnReadError(ec);
    request_read_at_ = Clock::now();
    client_deadline_ = Clock::time_point::max();
    auto& req = parser_->get();
    client_keep_alive_ = req.keep_alive();
    client_http10_ = req.version() < 11;
    is_head_ = req.method() == http::verb::head;
    switch (route_.kind) {
      case RouteKind::kForward: return RouteForward();
      case RouteKind::kHealth: return SendLocal(200, "application/json", R"({"status":"ok"})");
      case RouteKind::kMetrics: return SendLocal(200, "text/plain; version=0.0.4; charset=utf-8", px_.metrics.Render());
      case RouteKind::kModels: return SendLocal(200, "application/json", OpenAIModelList(px_.provider.ListModels()));
      case RouteKind::kOllamaRoot: return SendLocal(200, "text/plain; charset=utf-8", "Ollama is running");
      case RouteKind::kOllamaVersion: return SendLocal(200, "application/json", OllamaVersion(px_.options.version));
      case RouteKind::kOllamaTags: return SendLocal(200, "application/json", OllamaTags(px_.provider.ListModels()));
      case RouteKind::kOllamaPs: return SendLocal(200, "application/json", OllamaPs(px_.provider.ListModels()));
      case RouteKind::kOllamaShow: return OllamaShowRoute();
      case RouteKind::kOllamaChat:
      case RouteKind::kOllamaGenerate:
      case RouteKind::kOllamaEmbed: return OllamaInferenceRoute();
      case RouteKind::kBadMethod:
        return SendError(405, "method " + std::string(req.method_string()) + " not allowed on this route", false);
      case RouteKind::kNotFound: return SendError(404, "no route for " + std::string(req.target()), false);
    }
  }

  // ---- routing ----
  void RouteForward() {
    auto& req = parser_->get();
    model_.clear();
    if (route_.model_source != ModelSource::kQuery) {
      ModelField f = ExtractModelField(req.body());
      if (f.status == ModelFieldStatus::kBadJson && !req.body().empty()) {
        return SendError(400, "the request body is not valid JSON (reading \"model\")", false);
      }
      if (f.status == ModelFieldStatus::kNotString) {
        return SendError(400, "\"model\" must be a string", false);
      }
      if (f.status == ModelFieldStatus::kFound) model_ = std::move(f.value);
    }
    if (model_.empty() && route_.model_source != ModelSource::kBody) model_ = QueryParam(req.target(), "model");
    if (model_.empty()) {
      return SendError(400,
                       route_.model_source == ModelSource::kQuery
                           ? "missing ?model= (this route needs to know which model to ask)"
                           : "missing \"model\" (this route needs to know which model to ask)",
                       false);
    }
    RouteToModel();
  }

  // Finds the upstream for model_ and continues with Forward(). Shared by pass-through and
  // the Ollama translation (which sets up up_target_/up_body_ first).
  void RouteToModel() {
    track_tail_ = route_.inference;
    const RouteMap& snapshot = w_.routes->Get();  // no lock unless the table changed
    auto it = snapshot.routes.find(std::string_view(model_));
    if (it != snapshot.routes.end()) {
      from_snapshot_ = true;
      return Forward(it->second);
    }
    EnsureThenForward();
  }

  void EnsureThenForward() {
    state_ = State::kWaitingModel;
    from_snapshot_ = false;
    px_.metrics.queue_depth.fetch_add(1, std::memory_order_relaxed);
    auto deadline = Clock::now() + px_.options.ready_timeout;
    auto self = shared_from_this();
    px_.provider.EnsureReady(model_, deadline, [self](EnsureResult result) {
      // Any thread: hop back to this connection's worker.
      asio::post(self->w_.ioc, [self, result = std::move(result)]() mutable {
        self->px_.metrics.queue_depth.fetch_sub(1, std::memory_order_relaxed);
        if (self->closed_) return;
        if (auto* ep = std::get_if<Endpoint>(&result)) return self->Forward(*ep);
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
        if (msg.empty()) msg = "model '" + model_ + "' not found";
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
    retry_after_s_ = e.retry_after_s;
    SendError(status, msg, false);
  }

  // ---- forwarding ----
  void Forward(const Endpoint& ep) {
    if (closed_) return;
    state_ = State::kUpstream;
    endpoint_ = ep;
    pool_key_ = ep.ToString();
    if (!in_flight_) {
      in_flight_ = true;
      in_flight_endpoint_ = ep;
      px_.provider.OnRequestStart(model_, ep);
      model_metrics_ = &px_.MetricsFor(w_, model_);
      model_metrics_->requests.fetch_add(1, std::memory_order_relaxed);
      model_metrics_->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    if (!translated_) BuildUpstreamHead();
    if (auto c = px_.TakeIdle(w_, pool_key_)) {
      up_ = std::move(c);
      up_reused_ = true;
      return SendUpstream();
    }
    Connect();
  }

  void Connect() {
    up_reused_ = false;
    error_code ec;
    auto addr = asio::ip::make_address(endpoint_.host, ec);
    if (ec) return UpstreamFailed("bad upstream address " + endpoint_.host);
    ++up_gen_;
    up_ = std::make_unique<UpstreamConn>(w_.ioc);
    SetUpstreamDeadline(px_.options.connect_timeout);
    up_->sock.async_connect(
        tcp::endpoint(addr, endpoint_.port), [self = shared_from_this(), gen = up_gen_](const error_code& cec) {
          if (self->closed_ || gen != self->up_gen_) return;
          if (cec) {
            // The snapshot may be stale (model stopped or moved): ask the provider once.
            if (self->from_snapshot_ && !self->ensured_after_connect_) {
              self->ensured_after_connect_ = true;
              self->DropUpstream();
              return self->EnsureThenForward();
            }
            return self->UpstreamFailed("cannot connect to the upstream of model '" + self->model_ + "' at " +
                                        self->endpoint_.ToString() + ": " + cec.message());
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
    up_body_view_ = body;
  }

  void SendUpstream() {
    SetUpstreamDeadline(px_.upstream_timeout());
    std::array<asio::const_buffer, 2> bufs{asio::buffer(up_head_), asio::buffer(up_body_view_)};
    asio::async_write(up_->sock, bufs, [self = shared_from_this(), gen = up_gen_](const error_code& ec, size_t) {
      if (self->closed_ || gen != self->up_gen_) return;
      if (ec) return self->OnUpstreamEarlyFailure(ec);
      if (!self->added_latency_recorded_) {
        self->added_latency_recorded_ = true;
        auto us = std::chrono::duration<double, std::micro>(Clock::now() - self->request_read_at_).count();
        self->px_.metrics.ObserveProxyAdded(us);
      }
      self->ReadUpstreamHead();
    });
    StartWatch();
  }

  // A failure before any response byte arrived. A reused pooled connection may simply have
  // been closed by the upstream while idle: replay once on a fresh connection when the
  // route is safe to replay. Anything else is a 502.
  void OnUpstreamEarlyFailure(const error_code& ec) {
    if (client_gone_) return Close();
    if (up_reused_ && !retried_ && route_.replay_safe && upbuf_.size() == 0) {
      retried_ = true;
      px_.metrics.upstream_retries.fetch_add(1, std::memory_order_relaxed);
      DropUpstream();
      return Connect();
    }
    UpstreamFailed("upstream of model '" + model_ + "' failed: " + ec.message());
  }

  void UpstreamFailed(const std::string& msg) {
    DropUpstream();
    CountError();
    if (client_gone_) return Close();
    SendError(502, msg, false);
  }

  void ReadUpstreamHead() {
    rparser_.emplace();
    rparser_->header_limit(64U << 10);
    rparser_->body_limit(boost::none);
    if (is_head_) rparser_->skip(true);
    upbuf_.clear();
    http::async_read_header(up_->sock, upbuf_, *rparser_,
                            [self = shared_from_this(), gen = up_gen_](const error_code& ec, size_t) {
                              if (self->closed_ || gen != self->up_gen_) return;
                              if (ec) {
                                if (!self->rparser_->got_some() && ec != asio::error::operation_aborted) {
                                  return self->OnUpstreamEarlyFailure(ec);
                                }
                                return self->UpstreamFailed("upstream of model '" + self->model_ +
                                                            "' sent a bad response: " + ec.message());
                              }
                              self->OnUpstreamHead();
                            });
  }

  void OnUpstreamHead() {
    SetUpstreamDeadline(px_.upstream_timeout());
    auto& res = rparser_->get();
    status_ = res.result_int();
    // llama-server (cpp-httplib) closes the connection after every chunked (streamed)
    // response although it advertises keep-alive, and its FIN often arrives after we would
    // have pooled it: measured, 19 of 105 streamed requests then met a dead pooled
    // connection and needed the replay. So a connection that carried a chunked response is
    // not pooled; the next request connects (as a direct client of llama-server must too).
    up_reusable_ = res.keep_alive() && !res.chunked();
    if (!up_reusable_ && status_ < 500) px_.PreConnect(w_, pool_key_, endpoint_);
    if (status_ >= 400) CountError();
    if (translated_) return OnTranslatedHead();
    out_head_.clear();
    out_head_.reserve(512);
    out_head_.append("HTTP/1.1 ").append(std::to_string(status_)).append(" ");
    if (res.reason().empty()) {
      out_head_.append(ReasonFor(static_cast<int>(status_)));
    } else {
      out_head_.append(res.reason().data(), res.reason().size());
    }
    out_head_.append("\r\n");
    // An HTTP/1.0 client cannot take chunked framing (RFC 9112 7.1): the body is relayed
    // de-chunked and its end is the end of the connection.
    dechunk_ = client_http10_ && res.chunked();
    if (dechunk_) client_keep_alive_ = false;
    std::string_view connection = res[http::field::connection];
    for (const auto& f : res) {
      if (IsHopByHop(f.name()) || ListedInConnection(connection, f.name_string())) continue;
      if (dechunk_ && f.name() == http::field::transfer_encoding) continue;
      out_head_.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
    }
    if (px_.options.add_model_header) out_head_.append("x-corral-model: ").append(model_).append("\r\n");
    // A response without framing ends at upstream EOF: the client connection must close too.
    if (!rparser_->is_done() && !res.chunked() && !res.has_content_length() && !is_head_ && status_ != 204 &&
        status_ != 304) {
      client_keep_alive_ = false;
    }
    if (!client_keep_alive_) out_head_.append("Connection: close\r\n");
    out_head_.append("\r\n");
    rparser_->eager(true);
    if (dechunk_) res.body().sink = &decoded_;
    // Body bytes that arrived with the head.
    size_t n = upbuf_.size();
    size_t mine = n == 0 ? 0 : Track(static_cast<const char*>(upbuf_.data().data()), n);
    if (track_tail_) AppendTail(static_cast<const char*>(upbuf_.data().data()), mine);
    response_started_ = true;
    asio::const_buffer body = dechunk_ ? asio::buffer(decoded_) : asio::buffer(upbuf_.data().data(), mine);
    WriteClient({asio::buffer(out_head_), body});
  }

  // Feeds raw response bytes to the framing parser. Returns how many of them belong to
  // this response (all of them unless the message ended inside this read).
  size_t Track(const char* data, size_t n) {
    if (pending_.empty()) {
      size_t used = PutAll(data, n);
      if (rparser_->is_done() || parse_error_) {
        if (used < n) up_reusable_ = false;
        return parse_error_ ? n : used;
      }
      if (used < n) pending_.assign(data + used, n - used);
      return n;
    }
    size_t before = pending_.size();
    pending_.append(data, n);
    size_t used = PutAll(pending_.data(), pending_.size());
    if (rparser_->is_done() || parse_error_) {
      if (used < pending_.size()) up_reusable_ = false;
      pending_.clear();
      return parse_error_ ? n : (used > before ? used - before : 0);
    }
    pending_.erase(0, used);
    if (pending_.size() > kMaxPendingFraming) {  // a chunk-size line that never ends
      parse_error_ = true;
      pending_.clear();
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
        parse_error_ = true;
        break;
      }
      if (used == 0) break;
    }
    return total;
  }

  void AppendTail(const char* d, size_t n) {
    tail_.append(d, n);
    if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }

  // Relays response bytes to the client. The write is tried at once on the non-blocking
  // socket: on loopback it nearly always completes, and then the next upstream read starts
  // without a posted completion and the extra epoll round it costs (measured with strace on
  // a 512-token stream: 5 -> 4 syscalls per token). A partial write falls back to
  // async_write for the rest, so a slow reader still pauses the upstream reads.
  void WriteClient(std::array<asio::const_buffer, 2> bufs) {
    error_code ec;
    size_t total = bufs[0].size() + bufs[1].size();
    size_t done = total == 0 ? 0 : client_.write_some(bufs, ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return OnClientWriteError();
    if (done == total) return RelayNext();
    for (auto& b : bufs) {
      size_t used = std::min(done, b.size());
      b += used;
      done -= used;
    }
    SetClientDeadline(px_.client_timeout());
    asio::async_write(client_, bufs, [self = shared_from_this()](const error_code& wec, size_t) {
      if (self->closed_) return;
      self->client_deadline_ = Clock::time_point::max();
      if (wec) return self->OnClientWriteError();
      self->RelayNext();
    });
  }

  void OnClientWriteError() {
    client_gone_ = true;
    CountError();
    Close();  // the upstream socket closes with it: generation stops
  }

  void RelayNext() {
    if (parse_error_) {
      CountError();
      return Close();  // malformed framing from upstream: relayed what we had, now cut
    }
    if (rparser_->is_done()) return FinishExchange();
    if (!relay_) relay_ = std::make_unique_for_overwrite<char[]>(px_.options.relay_buffer_bytes);
    up_->sock.async_read_some(asio::buffer(relay_.get(), px_.options.relay_buffer_bytes),
                              [self = shared_from_this(), gen = up_gen_](const error_code& ec, size_t n) {
                                if (gen != self->up_gen_) return;
                                self->OnRelayRead(ec, n);
                              });
  }

  void OnRelayRead(const error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) {
      if (client_gone_) return Close();
      if (ec == asio::error::eof) {
        error_code eec;
        rparser_->put_eof(eec);
        if (!eec && rparser_->is_done()) {  // a close-delimited body ended
          up_reusable_ = false;
          return FinishExchange();
        }
      }
      // Upstream reset or truncated mid-response: nothing can be said in-band; cut.
      CountError();
      return Close();
    }
    up_deadline_ = Clock::now() + px_.upstream_timeout();
    if (dechunk_) decoded_.clear();  // the previous write has completed
    size_t mine = Track(relay_.get(), n);
    if (track_tail_) AppendTail(relay_.get(), mine);
    if (translated_) return OnTranslatedBytes(mine);
    if (dechunk_) return WriteClient({asio::buffer(decoded_), asio::const_buffer()});
    WriteClient({asio::buffer(relay_.get(), mine), asio::const_buffer()});
  }

  void FinishExchange() {
    up_deadline_ = Clock::time_point::max();
    if (track_tail_ && model_metrics_ != nullptr && status_ < 400) {
      UpstreamTimings t = ParseTimingsTail(tail_);
      if (t.prompt_ms >= 0) model_metrics_->ttft_ms.Observe(t.prompt_ms);
      if (t.predicted_per_second > 0) model_metrics_->tokens_per_s.Observe(t.predicted_per_second);
    }
    if (up_ && up_reusable_ && rparser_->is_done() && pending_.empty()) {
      px_.GiveBack(w_, pool_key_, std::move(up_));
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
    client_.async_read_some(space, [self = shared_from_this()](const error_code& ec, size_t n) {
      self->watch_pending_ = false;
      if (self->closed_) return;
      if (!ec) self->rbuf_.commit(n);
      if (ec && ec != asio::error::operation_aborted) {
        self->client_gone_ = true;
        if (self->state_ == State::kUpstream || self->state_ == State::kWaitingModel) {
          if (self->model_metrics_ != nullptr) self->CountError();
          return self->Close();
        }
      }
      if (self->resume_after_watch_) {
        self->resume_after_watch_ = false;
        if (self->client_gone_) return self->Close();
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
      client_.cancel(ec);
      return;
    }
    NextRequest();
  }

  void NextRequest() {
    if (closed_) return;
    if (!client_keep_alive_ || client_gone_) {
      error_code ec;
      client_.shutdown(tcp::socket::shutdown_send, ec);
      return Close();
    }
    ReadRequest();
  }

  // ---- local answers ----
  void SendLocal(int status, std::string_view content_type, std::string body) {
    local_body_ = std::move(body);
    out_head_.clear();
    out_head_.append("HTTP/1.1 ").append(std::to_string(status)).append(" ").append(ReasonFor(status));
    out_head_.append("\r\nContent-Type: ").append(content_type);
    out_head_.append("\r\nContent-Length: ").append(std::to_string(local_body_.size())).append("\r\n");
    if (retry_after_s_ > 0) out_head_.append("Retry-After: ").append(std::to_string(retry_after_s_)).append("\r\n");
    if (!client_keep_alive_) out_head_.append("Connection: close\r\n");
    out_head_.append("\r\n");
    if (is_head_) local_body_.clear();
    state_ = State::kWritingLocal;
    SetClientDeadline(px_.client_timeout());
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out_head_), asio::buffer(local_body_)};
    asio::async_write(client_, bufs, [self = shared_from_this()](const error_code& ec, size_t) {
      if (self->closed_) return;
      self->client_deadline_ = Clock::time_point::max();
      if (ec) return self->Close();
      self->EndInFlight();
      self->NextRequestAfterWatch();
    });
  }

  void SendError(int status, const std::string& message, bool close) {
    if (close) client_keep_alive_ = false;
    if (model_metrics_ == nullptr) px_.metrics.requests_unrouted.fetch_add(1, std::memory_order_relaxed);
    SendLocal(status, "application/json", ErrorBody(route_.api, status, message));
  }

  void CountError() {
    if (counted_error_) return;
    counted_error_ = true;
    if (model_metrics_ != nullptr) model_metrics_->errors.fetch_add(1, std::memory_order_relaxed);
  }

  void EndInFlight() {
    if (!in_flight_) return;
    in_flight_ = false;
    px_.provider.OnRequestEnd(model_, in_flight_endpoint_);
    if (model_metrics_ != nullptr) model_metrics_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (ollama_keep_alive_) {
      px_.provider.SetKeepAlive(model_, *ollama_keep_alive_);
      ollama_keep_alive_.reset();
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

  void ResetExchange() {
    model_.clear();
    up_reused_ = retried_ = from_snapshot_ = ensured_after_connect_ = false;
    response_started_ = client_gone_ = parse_error_ = counted_error_ = added_latency_recorded_ = false;
    up_reusable_ = false;
    translated_ = false;
    dechunk_ = false;
    status_ = 0;
    retry_after_s_ = 0;
    model_metrics_ = nullptr;
    pending_.clear();
    tail_.clear();
    track_tail_ = false;
    ollama_.reset();
    ollama_keep_alive_.reset();
    decoded_.clear();
  }

  // ---- Ollama ----
  void OllamaShowRoute();
  void OllamaInferenceRoute();
  void OnTranslatedHead();
  void OnTranslatedBytes(size_t n);
  void WriteTranslated(std::string bytes, bool last);

  enum class State { kIdle, kReadingRequest, kWaitingModel, kUpstream, kWritingLocal };
  static constexpr size_t kMaxPendingFraming = 64U << 10;
  static constexpr size_t kTailBytes = 4096;
  static constexpr size_t kIdleReadBufferBytes = 16U << 10;

  Proxy::Impl& px_;
  Worker& w_;
  tcp::socket client_;
  asio::steady_timer timer_;
  beast::flat_buffer rbuf_;  // client bytes: the current request + pipelined ones
  std::optional<RequestParser> parser_;
  State state_ = State::kIdle;
  bool closed_ = false;

  Clock::time_point client_deadline_ = Clock::time_point::max();
  Clock::time_point up_deadline_ = Clock::time_point::max();
  Clock::time_point timer_expiry_{};
  bool timer_armed_ = false;
  uint64_t timer_gen_ = 0;

  // The current exchange.
  Route route_;
  std::string model_;
  bool client_keep_alive_ = true;
  bool is_head_ = false;
  Clock::time_point request_read_at_{};
  Endpoint endpoint_;
  Endpoint in_flight_endpoint_;  // where OnRequestStart was charged
  std::string pool_key_;
  std::unique_ptr<UpstreamConn> up_;
  bool up_reused_ = false, retried_ = false, from_snapshot_ = false, ensured_after_connect_ = false;
  bool in_flight_ = false;
  uint64_t up_gen_ = 0;  // bumped whenever up_ is dropped or replaced; stale handlers return
  bool response_started_ = false, client_gone_ = false, parse_error_ = false, up_reusable_ = false;
  bool counted_error_ = false, added_latency_recorded_ = false;
  bool watch_pending_ = false, resume_after_watch_ = false;
  unsigned status_ = 0;
  int retry_after_s_ = 0;
  ModelMetrics* model_metrics_ = nullptr;
  std::string up_head_;
  std::string_view up_body_view_;
  std::string out_head_;
  std::string local_body_;
  std::optional<ResponseParser> rparser_;
  beast::flat_buffer upbuf_;  // upstream response head (+ the body bytes that came with it)
  // The one relay buffer (the upstream read high watermark): allocated when a response body
  // is relayed, released when the connection goes idle, so idle keep-alive connections
  // cost a few hundred bytes, not relay_buffer_bytes.
  std::unique_ptr<char[]> relay_;
  std::string pending_;  // response bytes the framing parser has not consumed yet
  std::string tail_;     // the last bytes of an inference response (for timings)
  bool track_tail_ = false;

  // Ollama translation state.
  bool translated_ = false;
  std::string up_body_;  // the translated request body (owned)
  std::unique_ptr<OllamaResponseTranslator> ollama_;
  std::optional<std::chrono::seconds> ollama_keep_alive_;
  std::string translated_out_;
  std::string decoded_;         // de-chunked upstream body bytes not yet translated or written
  bool client_http10_ = false;  // the request said HTTP/1.0
  bool dechunk_ = false;        // relaying a chunked response de-chunked (HTTP/1.0 client)
};

// ---- Ollama routes ----

void Connection::OllamaShowRoute() {
  auto& req = parser_->get();
  std::string name = OllamaRequestModel(req.body());
  if (name.empty()) return SendError(400, "missing \"model\"", false);
  auto models = px_.provider.ListModels();
  for (const auto& m : models) {
    if (m.name == name) return SendLocal(200, "application/json", OllamaShow(m));
  }
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.name);
  EnsureError e;
  e.code = EnsureErrorCode::kNotFound;
  e.message = "model '" + name + "' not found";
  e.close_matches = CloseMatches(name, names);
  OnEnsureError(e);
}

void Connection::OllamaInferenceRoute() {
  auto& req = parser_->get();
  auto plan = PlanOllamaRequest(route_.kind, req.body());
  if (!plan.ok()) return SendError(400, plan.status().message(), false);
  model_ = plan->model;
  if (plan->keep_alive) ollama_keep_alive_ = plan->keep_alive;
  if (plan->load_only) {
    // Empty request: load (or, with keep_alive 0, unload) and answer at once.
    auto self = shared_from_this();
    if (plan->keep_alive && plan->keep_alive->count() == 0) {
      bool known = px_.provider.SetKeepAlive(model_, std::chrono::seconds(0));
      ollama_keep_alive_.reset();
      if (!known) {
        EnsureError e;
        e.message = "model '" + model_ + "' not found";
        return OnEnsureError(e);
      }
      return SendLocal(200, "application/json", OllamaLoadAnswer(route_.kind, model_, /*unloaded=*/true));
    }
    state_ = State::kWaitingModel;
    px_.metrics.queue_depth.fetch_add(1, std::memory_order_relaxed);
    px_.provider.EnsureReady(model_, Clock::now() + px_.options.ready_timeout, [self](EnsureResult result) {
      asio::post(self->w_.ioc, [self, result = std::move(result)]() mutable {
        self->px_.metrics.queue_depth.fetch_sub(1, std::memory_order_relaxed);
        if (self->closed_) return;
        if (auto* err = std::get_if<EnsureError>(&result)) return self->OnEnsureError(*err);
        if (self->ollama_keep_alive_) self->px_.provider.SetKeepAlive(self->model_, *self->ollama_keep_alive_);
        self->ollama_keep_alive_.reset();
        self->SendLocal(200, "application/json", OllamaLoadAnswer(self->route_.kind, self->model_, false));
      });
    });
    return;
  }
  translated_ = true;
  up_body_ = std::move(plan->upstream_body);
  up_head_ = "POST " + plan->upstream_target + " HTTP/1.1\r\nHost: " + "llama-server" +
             "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(up_body_.size()) + "\r\n\r\n";
  up_body_view_ = up_body_;
  ollama_ = std::make_unique<OllamaResponseTranslator>(route_.kind, model_, plan->stream);
  RouteToModel();
}

void Connection::OnTranslatedHead() {
  auto& res = rparser_->get();
  ollama_->SetUpstreamStatus(static_cast<int>(status_));
  rparser_->eager(true);
  res.body().sink = &decoded_;
  size_t n = upbuf_.size();
  if (n != 0) Track(static_cast<const char*>(upbuf_.data().data()), n);
  std::string out = ollama_->Feed(decoded_);
  decoded_.clear();
  // Status line and head: chunked NDJSON when streaming; otherwise written once at the end.
  if (ollama_->streaming() && status_ < 400) {
    // HTTP/1.0 clients get the NDJSON unframed, ended by closing the connection.
    if (client_http10_) client_keep_alive_ = false;
    std::string head = client_http10_
                           ? "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                           : "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n";
    if (px_.options.add_model_header) head += "x-corral-model: " + model_ + "\r\n";
    if (!client_keep_alive_) head += "Connection: close\r\n";
    head += "\r\n";
    response_started_ = true;
    translated_out_ = std::move(head);
  } else {
    translated_out_.clear();
  }
  WriteTranslated(std::move(out), rparser_->is_done());
}

void Connection::OnTranslatedBytes(size_t /*n*/) {
  // Track() already pushed the de-chunked bytes into decoded_ through the body sink.
  std::string out = ollama_->Feed(decoded_);
  decoded_.clear();
  WriteTranslated(std::move(out), rparser_->is_done());
}

// Writes translated bytes (chunk-framed when streaming); on the last piece, the whole
// response (non-streaming) or the terminating chunk.
void Connection::WriteTranslated(std::string bytes, bool last) {
  if (last) bytes += ollama_->Finish();
  if (!ollama_->streaming() || status_ >= 400) {
    if (!last) {
      // Still accumulating a non-streaming body (the translator keeps it).
      return RelayNext();
    }
    int status = ollama_->final_status();
    local_body_ = std::move(bytes);
    out_head_ = "HTTP/1.1 " + std::to_string(status) + " " + ReasonFor(status) +
                "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(local_body_.size()) + "\r\n";
    if (px_.options.add_model_header) out_head_ += "x-corral-model: " + model_ + "\r\n";
    if (!client_keep_alive_) out_head_ += "Connection: close\r\n";
    out_head_ += "\r\n";
    response_started_ = true;
    translated_out_ = out_head_ + local_body_;
  } else {
    if (client_http10_) {
      translated_out_.append(bytes);
    } else if (!bytes.empty()) {
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", bytes.size());
      translated_out_.append(size_line).append(bytes).append("\r\n");
    }
    if (last && !client_http10_) translated_out_.append("0\r\n\r\n");
  }
  if (translated_out_.empty()) return RelayNext();
  auto self = shared_from_this();
  SetClientDeadline(px_.client_timeout());
  asio::async_write(client_, asio::buffer(translated_out_), [self](const error_code& ec, size_t) {
    if (self->closed_) return;
    self->client_deadline_ = Clock::time_point::max();
    self->translated_out_.clear();
    if (ec) {
      self->client_gone_ = true;
      return self->Close();
    }
    self->RelayNext();
  });
}

// ---- Proxy ----

void Proxy::Impl::Accept() {
  Worker& w = *workers[next_worker.fetch_add(1, std::memory_order_relaxed) % workers.size()];
  // The accepted socket belongs to the chosen worker's io_context from the start.
  acceptor->async_accept(w.ioc, [this, &w](const error_code& ec, tcp::socket sock) {
    if (stopping.load()) return;
    if (!ec) {
      asio::post(w.ioc, [this, &w, s = std::move(sock)]() mutable {
        if (stopping.load()) return;
        auto c = std::make_shared<Connection>(*this, w, std::move(s));
        // A weak list for Stop(); dead entries are pruned by the pool sweep.
        w.connections.push_back(c);
        c->Start();
      });
    } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
               ec == asio::error::no_memory || ec.value() == ENFILE) {
      // Out of file descriptors or memory: the pending connection stays in the backlog and
      // accepting again at once would spin. Pause, then try again (connections that close
      // meanwhile free descriptors).
      metrics.accept_pauses.fetch_add(1, std::memory_order_relaxed);
      accept_pause->expires_after(std::chrono::milliseconds(50));
      accept_pause->async_wait([this](const error_code& tec) {
        if (!tec && !stopping.load()) Accept();
      });
      return;
    }
    Accept();
  });
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
  Stop();
}

uint16_t Proxy::port() const {
  return impl_->bound_port;
}

void Proxy::SetLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                      std::chrono::milliseconds upstream_timeout) {
  impl_->SetLimits(max_body_bytes, client_timeout, upstream_timeout);
}

std::string Proxy::MetricsText() const {
  return impl_->metrics.Render();
}

Status Proxy::Start() {
  Impl& px = *impl_;
  if (px.started) return Status(StatusCode::kFailedPrecondition, "proxy already started");
  const std::string& listen = px.options.listen;
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("listen must be HOST:PORT, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return InvalidArgument("listen must be HOST:PORT, got '" + listen + "'");
  }
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return InvalidArgument("listen host '" + host + "' must be an IP address or localhost");

  int n = px.options.threads;
  if (n <= 0) n = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 4U));
  for (int i = 0; i < n; ++i) {
    px.workers.push_back(std::make_unique<Worker>());
    px.workers.back()->routes.emplace(px.routes);
  }

  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  px.acceptor.emplace(px.workers[0]->ioc);
  px.accept_pause.emplace(px.workers[0]->ioc);
  // 1000 idle keep-alive clients plus their upstreams do not fit Debian's default soft
  // limit of 1024 descriptors; children get the original limit back (supervisor).
  OpenFileLimits fds = RaiseOpenFileLimit();
  px.metrics.max_open_files.store(static_cast<uint64_t>(fds.now), std::memory_order_relaxed);
  if (px.options.listen_fd >= 0) {
    // Adopt the keeper's socket: it stays bound (and queues clients) across our restarts.
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(px.options.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      ec = error_code(errno, boost::system::system_category());
    } else {
      px.acceptor->assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), px.options.listen_fd, ec);
    }
  } else {
    px.acceptor->open(ep.protocol(), ec);
    if (!ec) px.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) px.acceptor->bind(ep, ec);
    if (!ec) px.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    px.acceptor.reset();
    px.workers.clear();
    return Unavailable("cannot listen on " + listen + ": " + ec.message());
  }
  px.bound_port = px.acceptor->local_endpoint(ec).port();
  px.Accept();
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
    px.acceptor->close(ec);
    px.accept_pause->cancel();
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
  for (auto& w : px.workers) w->guard.reset();
  for (auto& w : px.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  px.accept_pause.reset();  // timers and sockets go before the io_contexts they live on
  px.acceptor.reset();
  px.workers.clear();
}

}  // namespace corral::proxy
