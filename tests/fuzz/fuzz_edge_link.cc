// Fuzzes what the keeper reads from the proxy process (the untrusted side of the link):
// frames through the assembler, then the strict up-message parser; and, for robustness,
// the down-message decoder. A parsed up message must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "edge/link.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral::edge;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  FrameAssembler a(kMaxUpMessageBytes);
  auto msg = a.Add(in);
  if (msg.ok() && msg->has_value()) {
    auto up = ParseUp(**msg);
    if (up.ok() && EncodeUp(*up) != **msg) std::abort();  // one spelling per message
  }
  (void)ParseUp(in);
  (void)ParseDown(in);
  return 0;
}
