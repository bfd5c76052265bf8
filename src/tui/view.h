// The terminal dashboard's view: draws a DashState and the UI's own state onto a Screen.
// Pure (no I/O, the clock passed in), so tests render golden text at fixed sizes.
//
// Thread-safety: plain values; one thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tui/screen.h"
#include "tui/state.h"

namespace corral::tui {

enum class Pane { kTable, kDetails, kLogs, kChat, kHelp, kBench };

struct ChatTurn {
  std::string role;  // "you", the model's name, or "error"
  std::string text;
};

// What a quick suite C (`b`) found: parsed from `corral bench --json`'s output, or why it failed.
struct BenchResult {
  std::string model;
  bool ok = false;
  double added_ttft_p50_ms = 0, added_ttft_p99_ms = 0;  // proxy minus direct
  bool have_ttft = false;
  double decode_ratio = 0, decode_lo = 0, decode_hi = 0;  // paired, with its 95 % interval
  bool have_ratio = false;
  int requests = 0, errors = 0;  // measured requests over both targets
  int runs = 0;
  double seconds = 0;
  std::string report;  // the results.json it wrote
  std::string error;   // exit code and the stderr tail, when it failed or was cancelled
};

// Parses the child's stdout (the --json summary); `exit_code` and `stderr_tail` describe a failure.
BenchResult ParseBenchOutput(const std::string& model, const std::string& out, int exit_code,
                             const std::string& stderr_tail);

struct UiState {
  Pane pane = Pane::kTable;
  int selected = 0;  // index into DashState::Rows()
  SortKey sort = SortKey::kState;
  std::string filter;
  bool filter_editing = false;
  std::string message;  // the last action's outcome, on the status line
  bool message_error = false;
  std::string confirm;  // non-empty: a y/n question on the status line
  // logs
  std::string log_name;
  std::vector<std::string> log_lines;
  bool log_follow = true;
  int log_scroll = 0;  // lines scrolled up from the bottom (follow: 0)
  std::string log_search;
  bool search_editing = false;
  // chat
  std::string chat_model;
  std::vector<ChatTurn> chat;
  std::string chat_input;
  bool chat_streaming = false;
  std::string chat_stats;  // "TTFT 12 ms, 95 tok/s" of the last answer
  // bench (b): running in the background (the status line shows it), then the result pane
  std::string bench_running;  // the model being measured; empty = none
  int64_t bench_started_ms = 0;
  BenchResult bench;
  Caps caps;
  int64_t now_ms = 0;
};

// The table's row count for a screen height (what PgUp/PgDn move by).
int TableRows(int height);
void Draw(const DashState& state, const UiState& ui, Screen& screen);
// The help text, one line per key (also `corral top --help`'s epilogue).
const std::vector<std::pair<std::string, std::string>>& KeyHelp();

}  // namespace corral::tui
