// Fuzzes the SSE parser (split at a fuzzer-chosen point, and byte by byte) and the chat chunk
// interpretation of every event it yields. Invariants: no crash, no unbounded growth, and
// splitting the input never changes the events.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/sse.h"

namespace {

std::vector<std::string> Parse(const std::vector<std::string_view>& pieces, bool& ok) {
  corral::bench::SseParser p(4096, 16384);
  std::vector<std::string> events;
  ok = true;
  for (auto piece : pieces) {
    if (!p.Feed(piece, [&](const corral::bench::SseEvent& e) {
            events.push_back(e.event + "|" + e.data);
            (void)corral::bench::InterpretChatChunk(e.data);
          }).ok()) {
      ok = false;
      break;
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cut = data[0] % size;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool ok_whole = false, ok_split = false;
  auto whole = Parse({text}, ok_whole);
  auto split = Parse({text.substr(0, cut), text.substr(std::min(cut, text.size()))}, ok_split);
  if (ok_whole && ok_split && whole != split) std::abort();  // splitting must not change events
  (void)corral::bench::InterpretChatChunk(text);
  return 0;
}
