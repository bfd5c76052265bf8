// Fuzzes the Ollama translation (proxy/ollama.h): PlanOllamaRequest on request bodies and
// OllamaResponseTranslator on upstream bodies (SSE streams or whole JSON answers) fed in
// pieces. Seeded with deep nesting: neither may recurse on attacker-chosen depth, and a
// plan that succeeds must be a JSON object within the limits it was given.
//
// Input layout: byte 0 = mode bits, byte 1 = feed stride, the rest = the body.
//   bits 0-1: route (chat, generate, embed, chat)   bit 2: stream
//   bit 3: 0 = plan a request, 1 = translate a response   bit 4: upstream status 500
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/json_guard.h"
#include "proxy/ollama.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using corral::proxy::RouteKind;
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const size_t stride = data[1] == 0 ? SIZE_MAX : data[1];
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  static constexpr RouteKind kKinds[] = {RouteKind::kOllamaChat, RouteKind::kOllamaGenerate, RouteKind::kOllamaEmbed,
                                         RouteKind::kOllamaChat};
  const RouteKind kind = kKinds[mode & 3];
  const bool stream = (mode & 4) != 0;

  if ((mode & 8) == 0) {
    corral::proxy::OllamaLimits limits;
    limits.max_depth = 16;
    limits.max_values = 4096;
    limits.max_upstream_bytes = 1 << 16;
    auto plan = corral::proxy::PlanOllamaRequest(kind, body, limits);
    if (plan.ok() && !plan->load_only) {
      if (plan->upstream_body.size() > limits.max_upstream_bytes) __builtin_trap();
      // What goes upstream is one JSON object, no deeper than the input allowed (+2 for
      // the messages/parts wrapping the translation adds).
      if (!corral::proxy::JsonDepthWithin(plan->upstream_body, limits.max_depth + 2)) __builtin_trap();
      auto j = nlohmann::json::parse(plan->upstream_body, nullptr, false);
      if (!j.is_object()) __builtin_trap();
    }
    return 0;
  }

  corral::proxy::OllamaResponseTranslator t(kind, "m", stream);
  if ((mode & 16) != 0) t.SetUpstreamStatus(500);
  std::string out;
  for (size_t at = 0; at < body.size(); at += stride) out += t.Feed(body.substr(at, stride));
  out += t.Finish();
  (void)out;
  return 0;
}
