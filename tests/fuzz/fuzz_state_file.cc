// Fuzzes the daemon's state file reader (ParseStateFile: bounded JSON, typed fields) and the
// round trip of whatever it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto state = corral::daemon::ParseStateFile(text);
  if (state.ok()) {
    auto again = corral::daemon::ParseStateFile(corral::daemon::FormatStateFile(*state));
    if (!again.ok() || again->models.size() != state->models.size()) __builtin_trap();
  }
  return 0;
}
