#include "proxy/api_errors.h"

#include <nlohmann/json.hpp>

namespace corral::proxy {

std::string_view ErrorType(Api api, int status) {
  if (api == Api::kAnthropic) {
    switch (status) {
      case 400: return "invalid_request_error";
      case 401: return "authentication_error";
      case 404: return "not_found_error";
      case 413: return "request_too_large";
      case 429: return "rate_limit_error";
      case 503: return "overloaded_error";
      default: return status < 500 ? "invalid_request_error" : "api_error";
    }
  }
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return status < 500 ? "invalid_request_error" : "server_error";
  }
}

std::string ErrorBody(Api api, int status, std::string_view message) {
  // Invalid UTF-8 from a client-supplied model name must not make dump() throw.
  const auto kReplace = nlohmann::json::error_handler_t::replace;
  std::string msg(message);
  switch (api) {
    case Api::kOllama: return nlohmann::json{{"error", msg}}.dump(-1, ' ', false, kReplace);
    case Api::kAnthropic:
      return nlohmann::json{{"type", "error"}, {"error", {{"type", ErrorType(api, status)}, {"message", msg}}}}.dump(
          -1, ' ', false, kReplace);
    case Api::kOpenAI:
    case Api::kNative:
      return nlohmann::json{{"error", {{"code", status}, {"message", msg}, {"type", ErrorType(api, status)}}}}.dump(
          -1, ' ', false, kReplace);
  }
  return "{}";
}

}  // namespace corral::proxy
