// corral: the CLI entry point. Parses the command line with CLI11 and runs one subcommand.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "supervisor/launch.h"

namespace {

int Main(int argc, char** argv) {
  using corral::cli::ExitCode;
  CLI::App app{"corral: a zero-overhead manager for local LLMs served by llama.cpp", "corral"};
  app.require_subcommand(0, 1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  corral::cli::GlobalOptions global;
  corral::config::AddFlags(app, global.flags);
  bool show_version = false;
  app.add_flag("-V,--version", show_version, "Print Corral's version and the llama.cpp commit it found");

  corral::cli::RunFn run;
  for (auto fn : corral::cli::CommandRegistry()) fn(app, global, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return corral::cli::ToInt(ExitCode::kUsage);
  }
  // Values the config module stores as text are checked here, so a bad one is a usage
  // error of this command, not a daemon that fails to start (or ignores it) later.
  if (auto it = global.flags.by_key.find("memory_budget"); it != global.flags.by_key.end()) {
    for (const auto& v : it->second) {
      if (v == "auto") continue;
      auto bytes = corral::supervisor::ParseByteSize(v);
      if (!bytes.ok()) {
        return corral::cli::Fail(ExitCode::kUsage,
                                 "--memory-budget: " + bytes.status().message() + " (a size like 12GiB, or auto)");
      }
    }
  }
  if (show_version && !run) return corral::cli::PrintVersion(global);
  if (!run && argc == 1) {
    if (int rc = corral::cli::RunDashboardIfTerminal(); rc >= 0) return rc;  // `corral` on a terminal
  }
  if (!run) {
    std::cout << app.help();
    return corral::cli::ToInt(ExitCode::kUsage);
  }
  return run();
}

}  // namespace

int main(int argc, char** argv) {
  // Our code returns errors as values; this catches what a library might still throw
  // (std::bad_alloc, a CLI11 or JSON exception we failed to anticipate) so the user sees
  // a message and exit code 71 instead of std::terminate.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "corral: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "corral: internal error: unknown exception\n";
  }
  return corral::cli::ToInt(corral::cli::ExitCode::kOther);
}
