// Corral's exit codes. Documented in README.md; extend, never renumber.
#pragma once

#include "common/status.h"

namespace corral::cli {

enum class ExitCode : int {
  kOk = 0,
  kUsage = 64,              // bad flags or arguments
  kDaemonUnreachable = 65,  // the daemon could not be reached or started
  kModelReference = 66,     // a model reference matched none or several models
  kLaunchFailed = 67,       // llama-server could not be started (includes admission refusal)
  kStopFailed = 68,         // a model could not be stopped
  kEngineMissing = 70,      // no llama-server binary found
  kOther = 71,              // anything else
  kDownloadFailed = 72,     // corral pull: network, HTTP error, stalled server, sha256 mismatch
  kAccessDenied = 73,       // corral pull: 401/403 (gated or private repo; a token is needed)
  kNoSpace = 74,            // corral pull: not enough disk space
  kOpenBindRefused = 75,    // a routable listen address with no API key (see --allow-unauthenticated-lan)
};

inline int ToInt(ExitCode c) {
  return static_cast<int>(c);
}

// The exit code a failed Status maps to when nothing more specific applies.
ExitCode ExitCodeFor(const Status& status);

}  // namespace corral::cli
