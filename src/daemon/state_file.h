// The daemon's state file (StateDir()/state.json): the children that were running, written
// after every change, so the next daemon can say what a crash or a SIGKILL left behind.
//
// Reading is strict and bounded: at most kMaxStateFileBytes, JSON nested at most
// kMaxStateDepth deep, and every field typed (numbers in range, strings without NUL,
// arrays of strings). A file that fails any check is not an error for the daemon: it is
// moved aside (state.json.corrupt-UNIXTIME) with a notice saying why, and the daemon
// starts as if there were none. Writing is atomic (WriteFileAtomic, mode 0600).
//
// Thread-safety: stateless functions over plain values; the daemon serialises writes.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::daemon {

inline constexpr uint64_t kMaxStateFileBytes = uint64_t{4} << 20;
inline constexpr size_t kMaxStateDepth = 8;
inline constexpr size_t kMaxStateModels = 4096;
inline constexpr size_t kMaxStateArgv = 4096;

// One child as the state file records it. Plain value.
struct StateModel {
  std::string name;
  std::string model;
  std::string model_path;
  int pid = 0;   // 0 = none yet
  int port = 0;  // 0 = not known yet
  std::string state;
  std::vector<std::string> argv;
};

// The whole file. Plain value.
struct StateFile {
  int version = 1;
  int daemon_pid = 0;
  std::vector<StateModel> models;
};

// Parses and validates a state file's text. kCorrupt (or kResourceExhausted for size and
// depth) with a message naming the first bad field ("models[2].pid must be a whole number
// 0..4194304"). Unknown fields are ignored (a newer daemon may add some).
Result<StateFile> ParseStateFile(std::string_view text);

// The file's text (JSON, pretty-printed, newline at the end).
std::string FormatStateFile(const StateFile& state);

// Writes `state` to `path` atomically with mode 0600.
Status WriteStateFile(const std::string& path, const StateFile& state);

// The outcome of reading the state file at start-up. Plain value.
struct StateRead {
  std::optional<StateFile> state;  // none: no file, or a bad one (moved aside)
  std::string notice;              // for the log and `corral status`: what was wrong, where it went
};

// Reads `path`. No file: neither state nor notice. A file that cannot be read or fails
// ParseStateFile is renamed to PATH.corrupt-`now` and the notice says why and where;
// never fails.
StateRead ReadStateFile(const std::string& path, std::time_t now);

}  // namespace corral::daemon
