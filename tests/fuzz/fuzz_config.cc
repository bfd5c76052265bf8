// Fuzzes config.yaml parsing (ApplyConfigText) and llama-server version parsing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/options.h"
#include "engine/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  corral::config::Config c;
  (void)corral::config::ApplyConfigText(c, text, "fuzz.yaml");
  (void)corral::engine::ParseCommit(text);
  return 0;
}
