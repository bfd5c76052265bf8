// Wall-clock time as Unix milliseconds: the timestamps the daemon's feeds and records carry
// (activity events, bench runs) and the TUI compares them with.
#pragma once

#include <chrono>
#include <cstdint>

namespace corral {

inline int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace corral
