// Fuzzes the client side of the event feed (what the TUI and the web dashboard read from the
// daemon): the line splitter over arbitrary chunks, then the strict line parser. Parsed
// request and gauge lines must encode and parse back to the same values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "control/feed.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral::control;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  LineSplitter split;
  std::vector<std::string> lines;
  // Two chunks, split at a point the input chooses, so partial lines are exercised.
  size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  if (!split.Add(in.substr(0, cut), lines).ok()) return 0;
  if (!split.Add(in.substr(cut), lines).ok()) return 0;
  lines.emplace_back(in);
  for (const auto& l : lines) {
    auto ev = ParseFeedLine(l);
    if (!ev.ok()) continue;
    if (ev->type == FeedEvent::Type::kRequest) {
      auto again = ParseFeedLine(EncodeRequest(ev->request));
      if (!again.ok() || again->request.model != ev->request.model || again->request.route != ev->request.route) {
        std::abort();
      }
    } else if (ev->type == FeedEvent::Type::kGauges) {
      auto again = ParseFeedLine(EncodeGauges(ev->gauges));
      if (!again.ok() || again->gauges.models.size() != ev->gauges.models.size()) std::abort();
    }
  }
  return 0;
}
