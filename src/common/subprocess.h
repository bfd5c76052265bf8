// Run a short-lived helper program and capture its output (e.g. `llama-server --version`).
// Not for supervised children: those belong to the supervisor.
// Thread-safety: thread-safe; each call owns its child.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral {

struct CaptureResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string output;  // stdout and stderr interleaved, truncated at max_output_bytes
};

// Runs argv[0] (searched on PATH when it has no '/') with stdin from /dev/null. Kills the
// child after `timeout`. Output beyond max_output_bytes is read and dropped.
Result<CaptureResult> RunCapture(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                 size_t max_output_bytes = 1 << 20);

// Starts a long-running program in the background with this process's environment: stdin
// from /dev/null, stdout and stderr into `log_path` (created; truncated unless `append`),
// in a process group of its own when `own_group` (so the caller can kill the group).
// argv[0] must be a path. Returns the pid; the caller reaps it.
Result<int> SpawnToLog(const std::vector<std::string>& argv, const std::string& log_path, bool append, bool own_group);

// Stops a child started with own_group: SIGTERM to its process group, up to `grace` for it
// to exit, then SIGKILL to the group; reaps the child. Leaves nothing of the group running.
void StopProcessGroup(int pid, std::chrono::milliseconds grace);

// The absolute path of `name` on $PATH, or "" when absent or not executable.
std::string FindOnPath(const std::string& name);

}  // namespace corral
