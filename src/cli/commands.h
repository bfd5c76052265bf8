// Subcommand registration. Each cmd_*.cc file adds its subcommands to the CLI11 app and
// sets `run` to the function that executes when that subcommand was chosen.
// Thread-safety: used on the main thread only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "config/options.h"

namespace CLI {
class App;
}

namespace corral::cli {

struct GlobalOptions {
  config::FlagValues flags;
  bool json = false;  // --json: machine-readable output
};

// The command chosen on the command line. Returns the process exit code.
using RunFn = std::function<int()>;

// Adds one family of subcommands to `app`; sets `run` when one of them is chosen.
using RegisterFn = void (*)(CLI::App& app, GlobalOptions& global, RunFn& run);

// Every registered family, in registration order (cmd_*.cc files register themselves).
std::vector<RegisterFn>& CommandRegistry();

struct CommandRegistrar {
  explicit CommandRegistrar(RegisterFn fn) { CommandRegistry().push_back(fn); }
};

// `corral --version` / `corral version`.
int PrintVersion(const GlobalOptions& global);

// Loads the configuration, printing a clear error on failure.
Result<config::Config> LoadConfigOrReport(const GlobalOptions& global);

// `corral` alone: the dashboard when stdin and stdout are terminals (its exit code), else -1.
int RunDashboardIfTerminal();

// Prints "corral: <message>" to stderr and returns the exit code.
int Fail(ExitCode code, const std::string& message);

}  // namespace corral::cli

// In a cmd_*.cc file: CORRAL_REGISTER_COMMAND(RegisterFoo);
#define CORRAL_REGISTER_COMMAND(fn) \
  static const ::corral::cli::CommandRegistrar CORRAL_CONCAT(corral_command_, __COUNTER__)(fn)
