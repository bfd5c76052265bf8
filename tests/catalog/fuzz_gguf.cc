// libFuzzer target: the GGUF header reader, the summary extraction, the names and the
// memory estimate over arbitrary bytes. Small limits keep each run fast; the real limits are
// checked by the unit tests. Seeds: tests/fuzz/corpus/fuzz_gguf (make_gguf_corpus).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "catalog/catalog.h"
#include "catalog/gguf_reader.h"
#include "catalog/model_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral::catalog;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  GgufReadOptions opt;
  opt.keep_array_items = 16;
  auto f = ParseGguf(bytes, "fuzz.gguf", opt);
  if (f.ok()) {
    Model m;
    m.info = ExtractModelInfo(*f);
    m.name = BaseName(m.info, "fuzz.gguf");
    auto e = EstimateMemory(m, 0);
    auto e2 = EstimateMemory(m, 4096, "q8_0", "q4_0");
    (void)e;
    (void)e2;
    auto round = ModelInfoFromJson(ToJson(m.info));
    (void)round;
  }
  (void)ParseSplitName(bytes);
  return 0;
}
