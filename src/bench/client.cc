#include "bench/client.h"

// GCC 12 reports a false -Wmismatched-new-delete on every Asio coroutine frame (Asio's
// awaitable_frame_base has matching class-level operator new/delete; GCC bug 104657-like).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <openssl/ssl.h>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <memory>
#include <type_traits>

#include "bench/sse.h"
#include "bench/stats.h"
#include "common/thread_annotations.h"
#include "common/url.h"

namespace corral::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunkBytes = size_t{16} * 1024;
constexpr uint64_t kMaxErrorBodyBytes = uint64_t{64} * 1024;
constexpr uint64_t kMaxReplyBodyBytes = 4 << 20;
constexpr uint64_t kMaxStreamBytes = 256ULL << 20;  // a stream longer than this is an error
constexpr auto kTlsCloseTimeout = std::chrono::seconds(1);

double MsSince(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string JoinPath(const Endpoint& ep, std::string_view path) {
  std::string p = ep.prefix;
  p.append(path);
  return p.empty() ? "/" : p;
}

// The client TLS contexts, one per CA file, and the last resumable session per server
// (host:port) under each. Process-wide so that consecutive RunStreams calls (one per run of
// the alternation) reconnect with a ticket, as a client library with a session cache does.
class TlsClientState {
 public:
  // The context verifying against `ca_file` ("" = the system's roots), made on first use.
  Result<std::shared_ptr<ssl::context>> Context(const std::string& ca_file) CORRAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto it = contexts_.find(ca_file);
    if (it != contexts_.end()) return it->second;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    beast::error_code ec;
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
      if (ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
      } else {
        ctx->load_verify_file(ca_file, ec);
      }
    }
    if (ec) return InvalidArgument("TLS: loading the CA file '" + ca_file + "': " + ec.message());
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    // The client keeps its own sessions (Save/Restore below), so OpenSSL's cache stays off.
    SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
    contexts_.emplace(ca_file, ctx);
    return ctx;
  }

  // The last session saved for `server` under `ca_file` set on `ssl` (nothing when none).
  void Restore(const std::string& ca_file, const std::string& server, SSL* ssl) CORRAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto it = sessions_.find(ca_file + '\n' + server);
    if (it != sessions_.end()) (void)SSL_set_session(ssl, it->second.get());
  }

  // Keeps the session of a finished exchange (with the tickets read during it) when the
  // server made it resumable.
  void Save(const std::string& ca_file, const std::string& server, SSL* ssl) CORRAL_EXCLUDES(mu_) {
    SessionPtr session(SSL_get1_session(ssl));
    if (session == nullptr || SSL_SESSION_is_resumable(session.get()) == 0) return;
    MutexLock lock(mu_);
    if (sessions_.size() >= kMaxSessions) sessions_.clear();
    sessions_[ca_file + '\n' + server] = std::move(session);
  }

  void Forget() CORRAL_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    sessions_.clear();
  }

 private:
  struct SessionFree {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
  };
  using SessionPtr = std::unique_ptr<SSL_SESSION, SessionFree>;
  static constexpr size_t kMaxSessions = 256;

  Mutex mu_;
  std::map<std::string, std::shared_ptr<ssl::context>> contexts_ CORRAL_GUARDED_BY(mu_);
  std::map<std::string, SessionPtr> sessions_ CORRAL_GUARDED_BY(mu_);
};

TlsClientState& TlsState() {
  static TlsClientState* state = new TlsClientState();  // never destroyed: used until exit
  return *state;
}

std::string ServerKey(const Endpoint& ep) {
  return ep.host + ":" + ep.port;
}

// The plain and TLS streams differ only here: the TCP layer under the stream, the
// handshake (SNI, name check, resumption; TLS only) and the close. Resolving and connecting are the same code.
beast::tcp_stream& Tcp(beast::tcp_stream& s) {
  return s;
}
beast::tcp_stream& Tcp(TlsStream& s) {
  return beast::get_lowest_layer(s);
}

asio::awaitable<std::string> Handshake(TlsStream& s, const Endpoint& ep, StreamTrace* trace) {
  SSL* native = s.native_handle();
  beast::error_code ip_ec;
  (void)asio::ip::make_address(ep.host, ip_ec);
  // SNI carries names only, never addresses (SSL_set_tlsext_host_name without its C cast).
  if (ip_ec && SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                        const_cast<char*>(ep.host.c_str())) != 1) {
    co_return "TLS: setting the server name '" + ep.host + "' failed";
  }
  // Checks the name or address (X509_check_host / X509_check_ip) against the certificate.
  beast::error_code vec;
  s.set_verify_callback(ssl::host_name_verification(ep.host), vec);
  if (vec) co_return "TLS: setting the name check for '" + ep.host + "': " + vec.message();
  TlsState().Restore(ep.ca_file, ServerKey(ep), native);
  const auto t0 = Clock::now();
  auto [ec] = co_await s.async_handshake(ssl::stream_base::client, kTuple);
  if (ec) co_return "TLS handshake with " + ServerKey(ep) + ": " + ec.message();
  if (trace != nullptr) {
    trace->handshake_ms = MsSince(t0, Clock::now());
    trace->tls_resumed = SSL_session_reused(native) == 1;
  }
  co_return std::string();
}

// After an exchange: close. Over TLS, keep the session for the next connection first, then
// send close_notify and wait (at most kTlsCloseTimeout) for the server's: without a clean
// close, Corral's proxy (OpenSSL 3) did not resume that session's ticket on the next
// connection. Both happen after the response is timed.
asio::awaitable<void> Finish(beast::tcp_stream& s, const Endpoint& /*ep*/) {
  beast::error_code ignored;
  s.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return;
}
asio::awaitable<void> Finish(TlsStream& s, const Endpoint& ep) {
  TlsState().Save(ep.ca_file, ServerKey(ep), s.native_handle());
  Tcp(s).expires_after(kTlsCloseTimeout);
  auto [ec] = co_await s.async_shutdown(kTuple);
  (void)ec;
  beast::error_code ignored;
  Tcp(s).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

template <class Request>
void SetCommonHeaders(const Endpoint& ep, Request& request) {
  request.set(http::field::host, BracketHost(ep.host) + ":" + ep.port);
  request.set(http::field::user_agent, "corral-bench");
  if (!ep.api_key.empty()) request.set(http::field::authorization, "Bearer " + ep.api_key);
}

// One streamed request over `stream` (a beast::tcp_stream or a TlsStream) with a fixed deadline.
template <class Stream>
asio::awaitable<void> StreamOver(Stream& stream, const Endpoint& ep, const StreamRequest& req,
                                 Clock::time_point deadline, StreamTrace& trace) {
  // Resolve and connect, as in RequestOver (written out, and on the stream's executor: a
  // nested coroutine or this_coro::executor here trips clang-analyzer inside Asio's awaitable).
  asio::ip::tcp::resolver resolver(stream.get_executor());
  auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kTuple);
  if (rec) {
    trace.error = "resolving " + ep.host + ": " + rec.message();
    co_return;
  }
  Tcp(stream).expires_at(deadline);
  const auto t_connect = Clock::now();
  auto [cec, endpoint] = co_await Tcp(stream).async_connect(results, kTuple);
  (void)endpoint;
  if (cec) {
    trace.error = "connecting to " + ep.host + ":" + ep.port + ": " + cec.message();
    co_return;
  }
  beast::error_code nodelay_ec;
  Tcp(stream).socket().set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    if (std::string err = co_await Handshake(stream, ep, &trace); !err.empty()) {
      trace.error = err;
      co_return;
    }
  }

  http::request<http::string_body> request{http::verb::post, JoinPath(ep, req.path), 11};
  SetCommonHeaders(ep, request);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "text/event-stream");
  request.body() = req.body;
  request.prepare_payload();

  const auto t_send = Clock::now();
  trace.sent_at = t_send;
  trace.connect_ms = MsSince(t_connect, t_send);
  auto [wec, wn] = co_await http::async_write(stream, request, kTuple);
  (void)wn;
  if (wec) {
    trace.error = "sending the request: " + wec.message();
    co_return;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(kMaxStreamBytes);
  auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
  (void)hn;
  if (hec) {
    trace.error = "reading the response header: " + hec.message();
    co_return;
  }
  trace.http_status = static_cast<int>(parser.get().result_int());

  SseParser sse;
  std::string error_body;
  std::vector<char> chunk(kReadChunkBytes);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kTuple);
    (void)n;
    const auto now = Clock::now();
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      trace.error = "reading the response: " + ec.message();
      break;
    }
    const size_t got = chunk.size() - parser.get().body().size;
    trace.response_bytes += static_cast<int64_t>(got);
    if (trace.http_status != 200) {
      if (error_body.size() < kMaxErrorBodyBytes)
        error_body.append(chunk.data(), std::min<size_t>(got, kMaxErrorBodyBytes));
      continue;
    }
    const double at = MsSince(t_send, now);
    Status st =
        sse.Feed(std::string_view(chunk.data(), got), [&](const SseEvent& ev) { ApplyEventData(ev.data, at, trace); });
    if (!st.ok()) {
      trace.error = "event stream: " + st.message();
      break;
    }
  }
  trace.end_ms = MsSince(t_send, Clock::now());
  if (trace.http_status != 200 && trace.error.empty()) {
    trace.error = "HTTP " + std::to_string(trace.http_status) + ": " + error_body.substr(0, 500);
  }
  co_await Finish(stream, ep);
}

asio::awaitable<void> StreamOne(const Endpoint& ep, const StreamRequest& req, Clock::time_point deadline,
                                StreamTrace& trace) {
  auto ex = co_await asio::this_coro::executor;
  if (!ep.tls) {
    beast::tcp_stream stream(ex);
    co_await StreamOver(stream, ep, req, deadline, trace);
    co_return;
  }
  auto ctx = TlsState().Context(ep.ca_file);
  if (!ctx.ok()) {
    trace.error = ctx.status().message();
    co_return;
  }
  TlsStream stream(ex, **ctx);
  co_await StreamOver(stream, ep, req, deadline, trace);
}

template <class Stream>
asio::awaitable<void> RequestOver(Stream& stream, const Endpoint& ep, const std::string& path, const std::string& body,
                                  Clock::time_point deadline, Result<HttpReply>& out) {
  asio::ip::tcp::resolver resolver(stream.get_executor());
  auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kTuple);
  if (rec) {
    out = Unavailable("resolving " + ep.host + ": " + rec.message());
    co_return;
  }
  Tcp(stream).expires_at(deadline);
  auto [cec, endpoint] = co_await Tcp(stream).async_connect(results, kTuple);
  (void)endpoint;
  if (cec) {
    out = Unavailable("connecting to " + ep.host + ":" + ep.port + ": " + cec.message());
    co_return;
  }
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    if (std::string err = co_await Handshake(stream, ep, nullptr); !err.empty()) {
      out = Unavailable(err);
      co_return;
    }
  }
  http::request<http::string_body> request{body.empty() ? http::verb::get : http::verb::post, JoinPath(ep, path), 11};
  SetCommonHeaders(ep, request);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, request, kTuple);
  (void)wn;
  if (wec) {
    out = Unavailable("sending the request: " + wec.message());
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBodyBytes);
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
  (void)n;
  if (ec) {
    out = Unavailable("reading the response: " + ec.message());
    co_return;
  }
  HttpReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  reply.body = std::move(parser.get().body());
  out = std::move(reply);
  co_await Finish(stream, ep);
}

asio::awaitable<void> RequestOne(const Endpoint& ep, std::string path, std::string body, Clock::time_point deadline,
                                 Result<HttpReply>& out) {
  auto ex = co_await asio::this_coro::executor;
  if (!ep.tls) {
    beast::tcp_stream stream(ex);
    co_await RequestOver(stream, ep, path, body, deadline, out);
  } else if (auto ctx = TlsState().Context(ep.ca_file); !ctx.ok()) {
    out = ctx.status();
  } else {
    TlsStream stream(ex, **ctx);
    co_await RequestOver(stream, ep, path, body, deadline, out);
  }
}

}  // namespace

Result<Endpoint> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kHttp = "http://", kHttps = "https://";
  Endpoint ep;
  std::string_view rest;
  if (url.substr(0, kHttp.size()) == kHttp) {
    rest = url.substr(kHttp.size());
  } else if (url.substr(0, kHttps.size()) == kHttps) {
    rest = url.substr(kHttps.size());
    ep.tls = true;
    ep.port = "443";
  } else {
    return InvalidArgument("'" + std::string(url) + "' is not an http:// or https:// URL");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    ep.prefix = std::string(prefix);
  }
  if (authority.empty()) return InvalidArgument("'" + std::string(url) + "' has no host");
  auto split = SplitAuthority(authority);  // the host may be a name here
  if (!split.ok()) return InvalidArgument("'" + std::string(url) + "': " + split.status().message());
  ep.host = split->host;
  if (split->port) {
    if (*split->port == 0) return InvalidArgument("'" + std::string(url) + "': bad port");
    ep.port = std::to_string(*split->port);
  }
  return ep;
}

Result<Endpoint> EndpointOf(const Target& target) {
  CORRAL_ASSIGN_OR_RETURN(Endpoint ep, ParseHttpUrl(target.url));
  ep.ca_file = target.ca_file;
  ep.api_key = target.api_key;
  return ep;
}

void ForgetTlsSessions() {
  TlsState().Forget();
}

void ApplyEventData(std::string_view data, double at_ms, StreamTrace& trace) {
  ChatChunk c = InterpretChatChunk(data);
  switch (c.kind) {
    case ChatChunk::Kind::kDone: trace.saw_done = true; return;
    case ChatChunk::Kind::kMalformed: ++trace.malformed_events; return;
    case ChatChunk::Kind::kJson: break;
  }
  if (!c.error.empty() && trace.error.empty()) trace.error = "server error: " + c.error;
  if (!c.content.empty()) trace.content_ms.push_back(at_ms);
  if (c.has_finish_reason) trace.saw_done = true;
  if (c.prompt_tokens) trace.prompt_tokens = *c.prompt_tokens;
  if (c.completion_tokens) trace.completion_tokens = *c.completion_tokens;
  if (c.has_timings) {
    trace.has_timings = true;
    trace.prompt_n = c.timings_prompt_n;
    trace.prompt_ms = c.timings_prompt_ms;
    trace.predicted_n = c.timings_predicted_n;
    trace.predicted_ms = c.timings_predicted_ms;
    trace.draft_n = c.timings_draft_n;
    trace.draft_accepted = c.timings_draft_accepted;
    trace.cache_n = c.timings_cache_n;
  }
}

void FinishRecord(const StreamTrace& t, int expected_tokens, RequestRecord& rec) {
  rec.http_status = t.http_status;
  rec.connect_ms = t.connect_ms;
  rec.handshake_ms = t.handshake_ms;
  rec.tls_resumed = t.tls_resumed;
  rec.e2e_ms = t.end_ms;
  rec.prompt_tokens = t.prompt_tokens;
  rec.completion_tokens = t.completion_tokens;
  rec.content_events = static_cast<int>(t.content_ms.size());
  rec.response_bytes = t.response_bytes;
  rec.has_server_timings = t.has_timings;
  rec.server_prompt_n = t.prompt_n;
  rec.server_prompt_ms = t.prompt_ms;
  rec.server_predicted_n = t.predicted_n;
  rec.server_predicted_ms = t.predicted_ms;
  rec.server_draft_n = t.draft_n;
  rec.server_draft_accepted = t.draft_accepted;
  rec.server_cache_n = t.cache_n;
  if (!t.content_ms.empty()) {
    rec.ttft_ms = t.content_ms.front();
    rec.decode_ms = t.content_ms.back() - t.content_ms.front();
    std::vector<double> gaps;
    for (size_t i = 1; i < t.content_ms.size(); ++i) gaps.push_back(t.content_ms[i] - t.content_ms[i - 1]);
    if (!gaps.empty()) {
      std::sort(gaps.begin(), gaps.end());
      rec.itl_p50_ms = Percentile(gaps, 0.5);
      rec.itl_p99_ms = Percentile(gaps, 0.99);
    }
    if (t.completion_tokens > 1 && rec.decode_ms > 0) {
      rec.decode_tps = static_cast<double>(t.completion_tokens - 1) / (rec.decode_ms / 1000.0);
    }
    if (t.prompt_tokens > 0 && rec.ttft_ms > 0) {
      rec.prompt_tps = static_cast<double>(t.prompt_tokens) / (rec.ttft_ms / 1000.0);
    }
  }
  rec.error = t.error;
  if (rec.error.empty() && t.http_status != 200) rec.error = "HTTP " + std::to_string(t.http_status);
  if (rec.error.empty() && !t.saw_done) rec.error = "the stream ended without [DONE] or a finish_reason";
  if (rec.error.empty() && t.content_ms.empty()) rec.error = "no content event";
  if (rec.error.empty() && t.completion_tokens < 0) {
    rec.error = "no usage in the final chunk (stream_options.include_usage not honoured)";
  }
  if (rec.error.empty() && expected_tokens > 0 && t.completion_tokens != expected_tokens) {
    rec.error = "decoded " + std::to_string(t.completion_tokens) + " tokens, expected " +
                std::to_string(expected_tokens) + " (ignore_eos not honoured?)";
  }
  rec.ok = rec.error.empty();
}

std::vector<StreamTrace> RunStreams(const Endpoint& endpoint, const std::vector<StreamRequest>& requests,
                                    std::chrono::milliseconds timeout) {
  std::vector<StreamTrace> traces(requests.size());
  const auto deadline = Clock::now() + timeout;
  try {
    asio::io_context ioc(1);
    for (size_t i = 0; i < requests.size(); ++i) {
      asio::co_spawn(ioc, StreamOne(endpoint, requests[i], deadline, traces[i]), asio::detached);
    }
    ioc.run();
  } catch (const std::exception& e) {  // module edge
    for (auto& t : traces) {
      if (t.error.empty()) t.error = std::string("client failure: ") + e.what();
    }
  }
  return traces;
}

Result<HttpReply> HttpRequest(const Endpoint& endpoint, std::string_view path, std::string_view body,
                              std::chrono::milliseconds timeout) {
  Result<HttpReply> out = Internal("request did not run");
  try {
    asio::io_context ioc(1);
    asio::co_spawn(ioc, RequestOne(endpoint, std::string(path), std::string(body), Clock::now() + timeout, out),
                   asio::detached);
    ioc.run();
  } catch (const std::exception& e) {  // module edge
    return Internal(std::string("client failure: ") + e.what());
  }
  return out;
}

}  // namespace corral::bench
