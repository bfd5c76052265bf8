// `corral config`: show the effective configuration and where each value came from.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"

namespace corral::cli {

static void RegisterConfig(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* cmd = app.add_subcommand("config", "Show the effective configuration, or the table of options");
  auto* show = cmd->add_subcommand("show", "The effective configuration with the source of each value");
  auto* options = cmd->add_subcommand("options", "Every option: config key, flag, env var, default, help (Markdown)");
  cmd->require_subcommand(0, 1);
  auto show_fn = [&global] {
    auto c = LoadConfigOrReport(global);
    if (!c.ok()) return ToInt(ExitCode::kUsage);
    std::cout << config::Describe(*c);
    return 0;
  };
  cmd->callback([&run, show_fn] {
    if (!run) run = show_fn;
  });
  show->callback([&run, show_fn] { run = show_fn; });
  options->callback([&run] {
    run = [] {
      std::cout << config::OptionsMarkdown();
      return 0;
    };
  });
}

CORRAL_REGISTER_COMMAND(RegisterConfig);

}  // namespace corral::cli
