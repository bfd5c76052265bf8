// Fuzzes what the proxy reads from a client: the HTTP request head and body through the
// same Beast parser settings as the data plane, then routing, ?model= and the hand-written
// "model" field scanner (on the parsed body and on the raw input); and the one HOST:PORT
// parser and percent-decoder (common/url.h) on the raw input and on the request target.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/url.h"
#include "proxy/request_routing.h"

namespace {

// The URL pieces' own invariants: a parsed authority formats back to one that parses the
// same; a decoded string is never longer than its source; strict decoding agrees with
// lenient decoding when it succeeds.
void CheckUrlPieces(std::string_view text) {
  if (auto a = corral::SplitAuthority(text); a.ok()) {
    if (a->host.empty()) __builtin_trap();
    if (a->port) {
      auto again = corral::SplitAuthority(corral::BracketHost(a->host) + ":" + std::to_string(*a->port));
      if (a->host.find(']') == std::string::npos && (!again.ok() || again->host != a->host || again->port != a->port)) {
        __builtin_trap();
      }
    }
  }
  if (auto hp = corral::ParseHostPort(text); hp.ok()) {
    auto again = corral::ParseHostPort(hp->ToString());
    if (!again.ok() || again->host != hp->host || again->port != hp->port || again->v6 != hp->v6) __builtin_trap();
  }
  for (bool plus : {false, true}) {
    const std::string lenient = corral::PercentDecode(text, plus);
    if (lenient.size() > text.size()) __builtin_trap();
    if (auto strict = corral::PercentDecodeStrict(text, plus); strict && *strict != lenient) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)corral::proxy::ExtractModelField(input);
  (void)corral::proxy::ScanModelField(input);
  CheckUrlPieces(input);

  http::request_parser<http::string_body> parser;
  parser.header_limit(8192);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    used += n;
    if (ec || n == 0) break;
  }
  if (!parser.is_header_done()) return 0;
  auto& req = parser.get();
  CheckUrlPieces(req.target());
  auto route = corral::proxy::ClassifyRoute(req.method_string(), req.target());
  (void)corral::proxy::QueryParam(req.target(), "model");
  if (parser.is_done()) {
    auto field = corral::proxy::ScanModelField(req.body());
    (void)corral::proxy::ExtractModelField(req.body());
    if (field.status == corral::proxy::ModelFieldStatus::kFound && field.value.size() > req.body().size()) {
      __builtin_trap();  // a decoded string is never longer than its source
    }
  }
  (void)route;
  return 0;
}
