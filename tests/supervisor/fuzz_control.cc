// Fuzzes the control plane's hand-written and JSON request parsing: ParseTarget (request
// targets, %-decoding, query splitting), ParseJsonBounded (the depth/size scan every
// control-plane JSON goes through), ParseStartRequest and ParseError (JSON bodies), and the
// raw-arg check on whatever the JSON yields.
#include <cstddef>
#include <cstdint>
#include <string>

#include "control/api.h"
#include "supervisor/launch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)corral::control::ParseTarget(text);
  // Whatever passes the scan is shallow: dumping it (recursive) must be safe.
  auto bounded = corral::control::ParseJsonBounded(text, corral::control::kRequestJsonLimits);
  if (bounded.ok()) (void)bounded->dump();
  auto start = corral::control::ParseStartRequest(text);
  if (start.ok()) {
    (void)corral::supervisor::CheckRawArgs(start->raw_args);
    (void)corral::control::ToJson(*start).dump();
  }
  (void)corral::control::ParseError(text);
  (void)corral::supervisor::ParseListeningPort(text);
  (void)corral::supervisor::ParseByteSize(text);
  return 0;
}
