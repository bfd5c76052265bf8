// A bounded structural pre-scan of JSON request bodies: how deep do arrays and objects
// nest, and about how many values are there. Run on every body the proxy forwards or
// translates, before anything parses it: a body nested 100,000 deep overflowed the stack
// of the Ollama translation (nlohmann copies and dumps recursively), and one nested
// 1,000,000 deep crashed llama-server itself.
//
// Not a validator: brackets are counted outside strings (with escapes honoured) and
// nothing else is checked; invalid JSON is left to whoever parses it later. Every loop is a
// single forward pass over the bytes; no recursion, no allocation.
//
// Thread-safety: pure functions over bytes, safe from any thread. Fuzzed by
// tests/fuzz/fuzz_json_guard.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corral::proxy {

// Default and bounds of the `max_json_depth` option (levels of arrays/objects; the
// top-level object of a request body is level 1). JSON schemas in `tools` and
// `response_format` nest two levels per schema level, so 128 leaves room for ~60.
inline constexpr size_t kDefaultMaxJsonDepth = 128;
inline constexpr size_t kMaxJsonDepthLimit = 1024;  // the option's upper bound (stack use stays small)

// True when no array or object in `text` nests deeper than `max_depth` levels.
// Cost: one vectorisable pass counting '[' and '{'; only when that count exceeds
// `max_depth` (a large or bracket-heavy body) does the string-aware scan run.
bool JsonDepthWithin(std::string_view text, size_t max_depth) noexcept;

struct JsonShape {
  size_t depth = 0;      // deepest nesting seen (the scan stops once it passes stop_depth)
  uint64_t values = 0;   // an upper bound on the number of values: containers + separators + 1
  bool stopped = false;  // depth passed stop_depth; `values` counts only what was scanned
};

// The string-aware scan alone (what JsonDepthWithin falls back to). Stops as soon as the
// depth passes `stop_depth`.
JsonShape ScanJsonShape(std::string_view text, size_t stop_depth) noexcept;

}  // namespace corral::proxy
