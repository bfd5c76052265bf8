// Fuzzes the names a client sends (issue 14): the catalog's name rules over a fixed list
// (FindModel, MatchReference, NormalizeReference, ModelFileStem), GET /v1/models/{id}
// decoding, and the reshaping of an upstream error body (any bytes) into each API's shape.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/names.h"
#include "proxy/model_provider.h"
#include "proxy/request_routing.h"
#include "proxy/upstream_errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  static const std::vector<proxy::ModelInfo> models = [] {
    std::vector<proxy::ModelInfo> m(3);
    m[0].name = "qwen3-8b-q4_k_m";
    m[0].stem = "Qwen3-8B-Q4_K_M";
    m[0].origin = "Qwen/Qwen3-8B-GGUF";
    m[0].quantization = "Q4_K_M";
    m[1].name = "llama-3.2-3b-q4_k_m";
    m[1].origin = "llama3.2:3b";
    m[1].aliases = {"chat"};
    m[2].name = "bar-tiny-25m-q8_0";
    m[2].stem = "bar-tiny";
    return m;
  }();
  std::string why;
  (void)proxy::FindModel(input, models, &why);
  (void)catalog::NormalizeReference(input);
  (void)catalog::ModelFileStem(std::string(input));
  (void)proxy::ModelIdFromTarget(input);
  for (proxy::Api api : {proxy::Api::kAnthropic, proxy::Api::kOpenAI}) {
    (void)proxy::ReshapeUpstreamError(api, "/v1/embeddings", 501, input, input.substr(0, 64));
  }
  return 0;
}
