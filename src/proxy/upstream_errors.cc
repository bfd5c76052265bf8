#include "proxy/upstream_errors.h"

#include <nlohmann/json.hpp>

#include "proxy/api_errors.h"
#include "proxy/json_guard.h"

namespace corral::proxy {
namespace {

bool IsEmbeddings(std::string_view path) {
  return path == "/v1/embeddings" || path == "/embedding" || path == "/embeddings";
}

// The message inside llama-server's error body ({"error":{"message":...}} or
// {"error":"..."}), or the body itself when it is not JSON (bounded).
std::string UpstreamMessage(std::string_view body, int status) {
  constexpr size_t kMaxDepth = 32;  // llama-server's error bodies nest two levels
  nlohmann::json j;
  if (JsonDepthWithin(body, kMaxDepth)) j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    auto e = j.find("error");
    if (e != j.end() && e->is_string()) return e->get<std::string>();
    if (e != j.end() && e->is_object()) {
      auto m = e->find("message");
      if (m != e->end() && m->is_string()) return m->get<std::string>();
    }
    auto m = j.find("message");
    if (m != j.end() && m->is_string()) return m->get<std::string>();
  }
  std::string text(body.substr(0, 512));
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return text.empty() ? "upstream error " + std::to_string(status) : text;
}

}  // namespace

std::string EmbeddingsHint(std::string_view model) {
  const std::string m(model);
  return "model '" + m +
         "' runs without embeddings (llama-server needs --embeddings); to embed with it: `corral stop " + m +
         " && corral start " + m +
         " -- --embeddings`, or for every start put `args: [--embeddings]` under `models: " + m + ":` in config.yaml";
}

bool ReshapesUpstreamError(Api api, std::string_view path, int status) {
  if (status < 400) return false;
  if (api == Api::kAnthropic) return true;
  return IsEmbeddings(path) && status == 501;
}

ReshapedError ReshapeUpstreamError(Api api, std::string_view path, int status, std::string_view body,
                                   std::string_view model) {
  ReshapedError out;
  out.status = status;
  std::string message = UpstreamMessage(body, status);
  if (IsEmbeddings(path) && status == 501) {
    out.status = 400;  // a request error: not retried by the SDKs
    message = EmbeddingsHint(model) + " (llama-server: " + message + ")";
  }
  out.body = ErrorBody(api, out.status, message);
  return out;
}

}  // namespace corral::proxy
