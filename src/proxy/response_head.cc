#include "proxy/response_head.h"

#include <ostream>

#include <boost/beast/http/status.hpp>  // after <ostream>: Boost's string_view needs it complete

#include "proxy/request_guard.h"

namespace corral::proxy {

std::string_view ReasonPhrase(int status) {
  auto r = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  return r.empty() ? std::string_view("Unknown") : std::string_view(r.data(), r.size());
}

ResponseHead::ResponseHead(std::string& out, int status, std::string_view reason) : out_(out) {
  out_.clear();
  out_.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
  out_.append(reason.empty() || !IsSafeHeaderValue(reason) ? ReasonPhrase(status) : reason).append("\r\n");
}

ResponseHead& ResponseHead::ContentType(std::string_view type) {
  out_.append("Content-Type: ").append(type).append("\r\n");
  return *this;
}

ResponseHead& ResponseHead::ContentLength(uint64_t bytes) {
  out_.append("Content-Length: ").append(std::to_string(bytes)).append("\r\n");
  return *this;
}

ResponseHead& ResponseHead::Chunked() {
  out_.append("Transfer-Encoding: chunked\r\n");
  return *this;
}

ResponseHead& ResponseHead::Fields(std::string_view lines) {
  out_.append(lines);
  return *this;
}

ResponseHead& ResponseHead::Field(std::string_view name, std::string_view value) {
  if (IsSafeHeaderValue(value)) out_.append(name).append(": ").append(value).append("\r\n");
  return *this;
}

ResponseHead& ResponseHead::Own(const OwnFields& own) {
  if (!own.model.empty()) Field("x-corral-model", own.model);
  if (!own.cors_origin.empty()) {
    Field("Access-Control-Allow-Origin", own.cors_origin);
    out_.append("Access-Control-Expose-Headers: x-corral-model\r\nVary: Origin\r\n");
  }
  return *this;
}

std::string& ResponseHead::End(bool keep_alive) {
  if (!keep_alive) out_.append("Connection: close\r\n");
  out_.append("\r\n");
  return out_;
}

}  // namespace corral::proxy
