#include "bench/client.h"

// GCC 12 reports a false -Wmismatched-new-delete on every Asio coroutine frame (Asio's
// awaitable_frame_base has matching class-level operator new/delete; GCC bug 104657-like).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>

#include "bench/sse.h"
#include "bench/stats.h"

namespace corral::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunkBytes = size_t{16} * 1024;
constexpr uint64_t kMaxErrorBodyBytes = uint64_t{64} * 1024;
constexpr uint64_t kMaxReplyBodyBytes = 4 << 20;
constexpr uint64_t kMaxStreamBytes = 256ULL << 20;  // a stream longer than this is an error

double MsSince(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string JoinPath(const Endpoint& ep, std::string_view path) {
  std::string p = ep.prefix;
  p.append(path);
  return p.empty() ? "/" : p;
}

// One streamed request, written as a coroutine over a tcp_stream with a fixed deadline.
asio::awaitable<void> StreamOne(const Endpoint& ep, const StreamRequest& req, Clock::time_point deadline,
                                StreamTrace& trace) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kTuple);
  if (rec) {
    trace.error = "resolving " + ep.host + ": " + rec.message();
    co_return;
  }
  beast::tcp_stream stream(ex);
  stream.expires_at(deadline);
  const auto t_connect = Clock::now();
  auto [cec, endpoint] = co_await stream.async_connect(results, kTuple);
  (void)endpoint;
  if (cec) {
    trace.error = "connecting to " + ep.host + ":" + ep.port + ": " + cec.message();
    co_return;
  }
  stream.socket().set_option(asio::ip::tcp::no_delay(true));

  http::request<http::string_body> request{http::verb::post, JoinPath(ep, req.path), 11};
  request.set(http::field::host, ep.host + ":" + ep.port);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "text/event-stream");
  request.set(http::field::user_agent, "corral-bench");
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
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> RequestOne(const Endpoint& ep, std::string path, std::string body, Clock::time_point deadline,
                                 Result<HttpReply>& out) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, kTuple);
  if (rec) {
    out = Unavailable("resolving " + ep.host + ": " + rec.message());
    co_return;
  }
  beast::tcp_stream stream(ex);
  stream.expires_at(deadline);
  auto [cec, endpoint] = co_await stream.async_connect(results, kTuple);
  (void)endpoint;
  if (cec) {
    out = Unavailable("connecting to " + ep.host + ":" + ep.port + ": " + cec.message());
    co_return;
  }
  http::request<http::string_body> request{body.empty() ? http::verb::get : http::verb::post, JoinPath(ep, path), 11};
  request.set(http::field::host, ep.host + ":" + ep.port);
  request.set(http::field::user_agent, "corral-bench");
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
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
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

}  // namespace

Result<Endpoint> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("'" + std::string(url) + "' is not an http:// URL (https is not supported by the bench)");
  }
  std::string_view rest = url.substr(kScheme.size());
  Endpoint ep;
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    ep.prefix = std::string(prefix);
  }
  if (authority.empty()) return InvalidArgument("'" + std::string(url) + "' has no host");
  if (authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("'" + std::string(url) + "': unclosed '['");
    ep.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return InvalidArgument("'" + std::string(url) + "': junk after ']'");
      ep.port = std::string(authority.substr(1));
    }
  } else {
    const size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) ep.port = std::string(authority.substr(colon + 1));
  }
  if (ep.host.empty()) return InvalidArgument("'" + std::string(url) + "' has no host");
  if (ep.port.empty() || ep.port.size() > 5 ||
      !std::all_of(ep.port.begin(), ep.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(ep.port) == 0 || std::stoi(ep.port) > 65535) {
    return InvalidArgument("'" + std::string(url) + "' has a bad port");
  }
  return ep;
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
  }
}

void FinishRecord(const StreamTrace& t, int expected_tokens, RequestRecord& rec) {
  rec.http_status = t.http_status;
  rec.connect_ms = t.connect_ms;
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
