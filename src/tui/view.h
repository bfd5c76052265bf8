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

enum class Pane { kTable, kDetails, kLogs, kChat, kHelp };

struct ChatTurn {
  std::string role;  // "you", the model's name, or "error"
  std::string text;
};

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
  Caps caps;
  int64_t now_ms = 0;
};

// The table's row count for a screen height (what PgUp/PgDn move by).
int TableRows(int height);
void Draw(const DashState& state, const UiState& ui, Screen& screen);
// The help text, one line per key (also `corral top --help`'s epilogue).
const std::vector<std::pair<std::string, std::string>>& KeyHelp();

}  // namespace corral::tui
