// Fuzzes the JSON depth pre-scan (proxy/json_guard.h): the fast path and the full scan
// must agree with a byte-by-byte reference on every input, at several limits, and never
// recurse (a 64 KiB input of '[' is 65,536 levels).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/json_guard.h"

namespace {

// Deepest nesting outside strings, the slow obvious way.
size_t ReferenceDepth(std::string_view s) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') {
      ++depth;
      if (depth > deepest) deepest = depth;
    }
    if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t want = ReferenceDepth(input);
  const corral::proxy::JsonShape full = corral::proxy::ScanJsonShape(input, SIZE_MAX);
  if (full.depth != want || full.stopped) __builtin_trap();
  for (size_t limit : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{64}, size_t{128}, size_t{1024}}) {
    if (corral::proxy::JsonDepthWithin(input, limit) != (want <= limit)) __builtin_trap();
    const corral::proxy::JsonShape bounded = corral::proxy::ScanJsonShape(input, limit);
    if (bounded.stopped != (want > limit)) __builtin_trap();
    if (bounded.stopped && bounded.depth != limit + 1) __builtin_trap();
  }
  return 0;
}
