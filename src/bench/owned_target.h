// A llama-server the bench starts and owns, as a target: suite B's raw and router-mode
// targets and suite S's baseline and draft targets are started one way (suites.cc).
// Thread-safety: call from the suite's thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/system.h"
#include "bench/types.h"
#include "common/status.h"

namespace corral::bench {

struct OwnedTargetSetup {
  std::vector<std::string> knob_args;        // the normalized knobs' flags (NormalizedArgs); empty in "defaults"
  std::map<std::string, std::string> knobs;  // their record for the report
  std::string mode;                          // "defaults" or "normalized"
  std::chrono::seconds timeout{120};         // until /health answers
};

// Starts `argv`, then setup.knob_args, then `after_knobs` (LocalServer: port 0, ready when
// /health answers) as target `name`, kept in `owned` (stopped when the suite ends); fills
// url, pid, mode and knobs, then asks it what it is (DetectTarget).
Result<Target> StartOwnedTarget(const std::string& name, std::vector<std::string> argv,
                                const std::vector<std::string>& after_knobs, const OwnedTargetSetup& setup,
                                std::vector<std::unique_ptr<LocalServer>>& owned);

}  // namespace corral::bench
