// `corral top` (and `corral` alone on a terminal): the live dashboard. It talks only to the
// control API: the event feed for everything it shows, plain control calls for actions and
// logs, and the proxy (as any client would) for the chat pane.
//
// Thread-safety: RunTop owns the terminal and runs on the calling thread.
#pragma once

#include <string>

namespace corral::tui {

struct TopOptions {
  std::string socket_path;  // the daemon's control socket
  bool ascii = false;       // no Unicode (also when the locale is not UTF-8)
  bool no_color = false;    // also when NO_COLOR is set
  // Headless: render one frame of this size as text to stdout (after the first gauges,
  // or `once_wait_ms`) and exit; for tests and screenshots. 0 = interactive.
  int once_width = 0, once_height = 0;
  int once_wait_ms = 3000;
};

// Returns the process exit code: 0, or 65 when `--once` found no daemon.
int RunTop(const TopOptions& options);

}  // namespace corral::tui
