// The terminal dashboard's drawing surface: a grid of cells the view fills each frame, turned
// into ANSI escapes for a terminal or into plain text for golden tests. Hand-written instead
// of ncurses: docs/tui.md says why (headless snapshots, NO_COLOR, no terminfo at run time).
//
// Thread-safety: a plain value; one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace corral::tui {

enum class Color : uint8_t { kDefault, kRed, kGreen, kYellow, kBlue, kMagenta, kCyan, kGray };

struct Style {
  Color fg = Color::kDefault;
  bool bold = false;
  bool reverse = false;
  bool dim = false;
  bool operator==(const Style&) const = default;
};

// How the terminal can draw: colours (off with NO_COLOR) and Unicode (off: ASCII only).
struct Caps {
  bool color = true;
  bool unicode = true;
};

class Screen {
 public:
  Screen(int width, int height);
  int width() const { return w_; }
  int height() const { return h_; }
  // Writes `text` at (x, y), clipped to the row and to `max_width` cells (-1: to the edge).
  // One cell per byte of ASCII or UTF-8 sequence, two for East Asian wide characters (the
  // covered cell is left empty). Returns the cells written.
  int Put(int x, int y, std::string_view text, Style style = {}, int max_width = -1);
  // Fills a row span with `style` (selection bars, headers).
  void Fill(int x, int y, int width, Style style);
  // The screen as plain text: one line per row, trailing spaces trimmed.
  std::string Text() const;
  // The screen as ANSI for a terminal (home, each row, erase to end of line).
  std::string Ansi(const Caps& caps) const;

 private:
  struct Cell {
    std::string glyph = " ";
    Style style;
  };
  int w_, h_;
  std::vector<Cell> cells_;
};

// Cells `text` takes (UTF-8 sequences count once, wide characters twice).
int CellWidth(std::string_view text);
// `text` cut to `width` cells, with "~" (ASCII) marking a cut.
std::string Fit(std::string_view text, int width);
// `text` made safe to draw: control bytes and escapes become '?' (log lines, names, answers).
std::string Sanitize(std::string_view text);

}  // namespace corral::tui
