// Hand-written on purpose: nlohmann::json and simdjson (DOM) would parse and build the
// whole document to learn its depth, and simdjson on-demand does not check depth until a
// value is visited; this scan only counts brackets. The common request body (a few KiB of
// chat) is decided by the first loop alone, 16 bytes per step: bytes are compared, not
// branched on.
#include "proxy/json_guard.h"

#include <array>
#include <cstring>

namespace corral::proxy {

namespace {

enum : unsigned char { kOther = 0, kQuote, kOpen, kClose, kComma };

constexpr auto kClass = [] {
  std::array<unsigned char, 256> t{};
  t[static_cast<unsigned char>('"')] = kQuote;
  t[static_cast<unsigned char>('[')] = kOpen;
  t[static_cast<unsigned char>('{')] = kOpen;
  t[static_cast<unsigned char>(']')] = kClose;
  t[static_cast<unsigned char>('}')] = kClose;
  t[static_cast<unsigned char>(',')] = kComma;
  return t;
}();

// Counts '[' and '{': '[' is 0x5B and '{' is 0x7B, the only bytes with (c | 0x20) == 0x7B.
// 16 bytes per step with GCC/Clang vector extensions (SSE2 on x86-64, NEON on arm64): GCC
// 12 at -O2 does not vectorise the plain loop (measured: one byte per iteration). Matches
// are summed per lane (a compare yields -1, subtracted) and folded every 255 steps,
// before a lane can wrap.
size_t CountOpens(const unsigned char* p, size_t n) noexcept {
  using V16 = unsigned char __attribute__((vector_size(16)));
  constexpr size_t kLanes = 16;
  constexpr size_t kFoldSteps = 255;
  size_t count = 0;
  size_t i = 0;
  while (n - i >= kLanes) {
    V16 acc = {};
    for (size_t step = 0; step < kFoldSteps && n - i >= kLanes; ++step, i += kLanes) {
      V16 v;
      std::memcpy(&v, p + i, kLanes);
      acc -= reinterpret_cast<V16>((v | 0x20) == 0x7B);
    }
    for (size_t lane = 0; lane < kLanes; ++lane) count += acc[lane];
  }
  for (; i < n; ++i) count += static_cast<size_t>((p[i] | 0x20) == 0x7B);
  return count;
}

}  // namespace

JsonShape ScanJsonShape(std::string_view text, size_t stop_depth) noexcept {
  JsonShape out;
  const char* p = text.data();
  const char* const end = text.data() + text.size();
  size_t depth = 0;
  uint64_t separators = 0;
  while (p < end) {
    switch (kClass[static_cast<unsigned char>(*p)]) {
      case kOther: ++p; continue;
      case kComma:
        ++separators;
        ++p;
        continue;
      case kOpen:
        ++separators;
        if (++depth > out.depth) {
          out.depth = depth;
          if (depth > stop_depth) {
            out.stopped = true;
            out.values = separators + 1;
            return out;
          }
        }
        ++p;
        continue;
      case kClose:
        if (depth > 0) --depth;  // unbalanced input: the parser that comes later refuses it
        ++p;
        continue;
      case kQuote: {
        // Skip the string: the next quote not escaped by an odd run of backslashes.
        const char* start = ++p;
        for (;;) {
          const void* q = std::memchr(p, '"', static_cast<size_t>(end - p));
          if (q == nullptr) {  // unterminated: the rest is string
            p = end;
            break;
          }
          const char* quote = static_cast<const char*>(q);
          size_t backslashes = 0;
          for (const char* b = quote; b > start && b[-1] == '\\'; --b) ++backslashes;
          p = quote + 1;
          if (backslashes % 2 == 0) break;
        }
        continue;
      }
      default: ++p; continue;
    }
  }
  out.values = separators + 1;
  return out;
}

bool JsonDepthWithin(std::string_view text, size_t max_depth) noexcept {
  // Fast path: a body cannot nest deeper than the number of brackets it opens.
  if (CountOpens(reinterpret_cast<const unsigned char*>(text.data()), text.size()) <= max_depth) return true;
  return ScanJsonShape(text, max_depth).depth <= max_depth;
}

}  // namespace corral::proxy
