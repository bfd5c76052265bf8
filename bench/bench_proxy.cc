// Micro-benchmarks for the proxy's per-request work. The scanner is used on the hot path
// only if it beats simdjson on-demand here (see request_routing.h).
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <string>

#include "proxy/json_guard.h"
#include "proxy/request_routing.h"

namespace {

std::string ChatBody(size_t history_bytes, bool model_first) {
  std::string messages = R"([{"role":"system","content":"You are a helpful assistant."})";
  while (messages.size() < history_bytes) {
    messages += R"(,{"role":"user","content":"Explain the \"difference\" between TCP and UDP in detail, please."})";
    messages += R"(,{"role":"assistant","content":"TCP is connection-oriented\n- reliable\n- ordered; UDP is not."})";
  }
  messages += "]";
  std::string tail = R"("temperature":0.7,"max_tokens":256,"stream":true)";
  if (model_first) return R"({"model":"qwen2.5-7b-instruct","messages":)" + messages + "," + tail + "}";
  return R"({"messages":)" + messages + "," + tail + R"(,"model":"qwen2.5-7b-instruct"})";
}

void Scanner(benchmark::State& state, size_t history, bool first) {
  std::string body = ChatBody(history, first);
  for (auto _ : state) {
    auto f = corral::proxy::ScanModelField(body);
    benchmark::DoNotOptimize(f);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

// simdjson needs SIMDJSON_PADDING readable bytes after the input; the proxy would have to
// copy the body into a padded buffer (counted here: that is what it would cost us).
void Simdjson(benchmark::State& state, size_t history, bool first, bool count_copy) {
  std::string body = ChatBody(history, first);
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  for (auto _ : state) {
    if (count_copy) padded = simdjson::padded_string(body);
    auto doc = parser.iterate(padded);
    std::string_view model;
    auto err = doc["model"].get_string().get(model);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(model);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

BENCHMARK_CAPTURE(Scanner, small_model_first, 200, true);
BENCHMARK_CAPTURE(Scanner, small_model_last, 200, false);
BENCHMARK_CAPTURE(Scanner, 64KiB_model_last, 64 << 10, false);
BENCHMARK_CAPTURE(Scanner, 4MiB_model_last, 4 << 20, false);
BENCHMARK_CAPTURE(Simdjson, small_model_first, 200, true, true);
BENCHMARK_CAPTURE(Simdjson, small_model_last, 200, false, true);
BENCHMARK_CAPTURE(Simdjson, 64KiB_model_last, 64 << 10, false, true);
BENCHMARK_CAPTURE(Simdjson, 4MiB_model_last, 4 << 20, false, true);
BENCHMARK_CAPTURE(Simdjson, 64KiB_model_last_no_copy, 64 << 10, false, false);

// Parsing a typical request head (Beast) and routing it.
void HeadParseAndRoute(benchmark::State& state) {
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:11450\r\nUser-Agent: OpenAI/Python 1.52.0\r\n"
      "Accept: application/json\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-no-key\r\n"
      "X-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.52.0\r\nConnection: keep-alive\r\n"
      "Content-Length: 2\r\n\r\n{}";
  namespace http = boost::beast::http;
  for (auto _ : state) {
    http::request_parser<http::string_body> p;
    p.header_limit(65536);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(head), ec);
    p.put(boost::asio::buffer(head.data() + head.size() - 2, 2), ec);
    auto r = corral::proxy::ClassifyRoute(p.get().method_string(), p.get().target());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(HeadParseAndRoute);

// What the proxy runs: simdjson up to kSimdjsonMaxBytes (per-thread buffers), scanner above.
void Extract(benchmark::State& state, size_t history, bool first) {
  std::string body = ChatBody(history, first);
  for (auto _ : state) {
    auto f = corral::proxy::ExtractModelField(body);
    benchmark::DoNotOptimize(f);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK_CAPTURE(Extract, small_model_first, 200, true);
BENCHMARK_CAPTURE(Extract, small_model_last, 200, false);
BENCHMARK_CAPTURE(Extract, 60KiB_model_last, 60 << 10, false);
BENCHMARK_CAPTURE(Extract, 4MiB_model_last, 4 << 20, false);

// The JSON depth pre-scan every forwarded body goes through (issue 11): the fast path
// (count '[' and '{') decides bodies with few brackets; bracket-rich ones get the
// string-aware scan. "Scan" is that scan alone, for comparison.
std::string SizedChatBody(size_t bytes) {
  size_t history = bytes;
  std::string body = ChatBody(history, false);
  while (body.size() > bytes && history > 64) body = ChatBody(history -= 64, false);
  return body;
}
void DepthPrescan(benchmark::State& state, size_t bytes) {
  std::string body = SizedChatBody(bytes);
  for (auto _ : state) {
    bool ok = corral::proxy::JsonDepthWithin(body, corral::proxy::kDefaultMaxJsonDepth);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetLabel(std::to_string(body.size()) + " B");
}
void DepthFullScan(benchmark::State& state, size_t bytes) {
  std::string body = SizedChatBody(bytes);
  for (auto _ : state) {
    auto shape = corral::proxy::ScanJsonShape(body, corral::proxy::kDefaultMaxJsonDepth);
    benchmark::DoNotOptimize(shape);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetLabel(std::to_string(body.size()) + " B");
}
BENCHMARK_CAPTURE(DepthPrescan, 1KiB_chat, 1 << 10);
BENCHMARK_CAPTURE(DepthPrescan, 32KiB_chat, 32 << 10);
BENCHMARK_CAPTURE(DepthFullScan, 1KiB_chat, 1 << 10);
BENCHMARK_CAPTURE(DepthFullScan, 32KiB_chat, 32 << 10);
BENCHMARK_CAPTURE(Extract, 1KiB_model_last, 800, false);
BENCHMARK_CAPTURE(Extract, 32KiB_model_last, 32 << 10, false);

}  // namespace

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr, "WARNING: built with assertions on; numbers are not representative\n");
#endif
#if !defined(__OPTIMIZE__)
  std::fprintf(stderr, "WARNING: built without optimisation; numbers are not representative\n");
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
