// Fuzzes what the proxy reads from a client: the HTTP request head and body through the
// same Beast parser settings as the data plane, then routing, ?model= and the hand-written
// "model" field scanner (on the parsed body and on the raw input).
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/request_routing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)corral::proxy::ExtractModelField(input);
  (void)corral::proxy::ScanModelField(input);

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
