// Shared by the lifecycle commands (cmd_lifecycle.cc, cmd_daemon.cc, cmd_run.cc): connect to
// the daemon, starting one in the background on demand with the same global flags.
// Header-only because cli/CMakeLists.txt compiles cmd_*.cc files only.
// Thread-safety: main thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "config/options.h"
#include "control/transport.h"
#include "daemon/daemon.h"

namespace corral::cli {

// The global flags given on this command line, as arguments for `corral serve`, so a daemon
// started on demand sees the same --config, --llama-server, --memory-budget, ...
inline std::vector<std::string> ServeArgsFor(const GlobalOptions& global) {
  std::vector<std::string> args;
  if (!global.flags.config_file.empty()) {
    args.push_back("--config");
    args.push_back(global.flags.config_file);
  }
  for (const auto& def : config::Options()) {
    if (def.flag == nullptr) continue;
    auto it = global.flags.by_key.find(def.key);
    if (it == global.flags.by_key.end()) continue;
    for (const auto& v : it->second) {
      args.push_back(def.flag);
      args.push_back(v);
    }
  }
  return args;
}

// Another user's socket is "permission denied" (kFailedPrecondition), never "no daemon",
// and never a reason to start one.
inline Result<std::unique_ptr<control::ControlClient>> ConnectDaemon(const GlobalOptions& global, bool no_spawn) {
  CORRAL_RETURN_IF_ERROR(control::CheckSocketAccess(daemon::SocketPath()));
  return daemon::Connect(!no_spawn, ServeArgsFor(global));
}

}  // namespace corral::cli
