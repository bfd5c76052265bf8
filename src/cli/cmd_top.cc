// `corral top`: the terminal dashboard (src/tui). `corral` with no arguments on a terminal
// opens it too (main.cc); piped, it prints the help as before.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "daemon/daemon.h"
#include "tui/app.h"

namespace corral::cli {
namespace {

struct TopArgs {
  bool ascii = false;
  bool no_color = false;
  std::string once;  // "WxH"
};

int RunTopCommand(const TopArgs& a) {
  tui::TopOptions o;
  o.socket_path = daemon::SocketPath();
  o.ascii = a.ascii;
  o.no_color = a.no_color;
  if (!a.once.empty()) {
    int w = 0, h = 0;
    if (std::sscanf(a.once.c_str(), "%dx%d", &w, &h) != 2 || w < 20 || h < 8 || w > 1000 || h > 1000) {
      return Fail(ExitCode::kUsage, "--once: a size like 80x24 (20x8 .. 1000x1000)");
    }
    o.once_width = w;
    o.once_height = h;
    return tui::RunTop(o);
  }
  if (::isatty(0) == 0 || ::isatty(1) == 0) {
    return Fail(ExitCode::kUsage,
                "corral top needs a terminal (for a text snapshot: --once 80x24; data: corral ps --json)");
  }
  return tui::RunTop(o);
}

void RegisterTop(CLI::App& app, GlobalOptions& /*global*/, RunFn& run) {
  static TopArgs args;
  auto* cmd = app.add_subcommand("top", "Live dashboard of every model: see and drive them from the keyboard");
  cmd->add_flag("--ascii", args.ascii, "Draw with ASCII only (also when the locale is not UTF-8)");
  cmd->add_flag("--no-color", args.no_color, "No colours (also when NO_COLOR is set)");
  cmd->add_option("--once", args.once, "Print one frame of this size (e.g. 80x24) as text and exit");
  cmd->footer("Keys: ? in the dashboard lists them (start s, stop x, unload u, pin p, logs l, chat c, filter /).");
  cmd->callback([&run] { run = [] { return RunTopCommand(args); }; });
}

}  // namespace

int RunDashboardIfTerminal() {
  if (::isatty(0) == 0 || ::isatty(1) == 0) return -1;
  return RunTopCommand(TopArgs{});
}

CORRAL_REGISTER_COMMAND(RegisterTop);

}  // namespace corral::cli
