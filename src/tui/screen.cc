#include "tui/screen.h"

#include <algorithm>

namespace corral::tui {
namespace {

// The byte length of the UTF-8 sequence starting with `c` (1 for anything unexpected).
size_t SeqLen(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0) return c < 0xf0 ? 3 : 1;
  if (c >= 0xc0) return 2;
  return 1;
}

}  // namespace

int CellWidth(std::string_view text) {
  int n = 0;
  for (size_t i = 0; i < text.size(); i += SeqLen(static_cast<unsigned char>(text[i]))) ++n;
  return n;
}

std::string Fit(std::string_view text, int width) {
  if (width <= 0) return "";
  if (CellWidth(text) <= width) return std::string(text);
  std::string out;
  int n = 0;
  for (size_t i = 0; i < text.size() && n < width - 1; ++n) {
    size_t len = std::min(SeqLen(static_cast<unsigned char>(text[i])), text.size() - i);
    out.append(text.substr(i, len));
    i += len;
  }
  out += '~';
  return out;
}

std::string Sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\t') {
      out += "  ";
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += '?';
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      size_t len = SeqLen(c);
      bool ok = len > 1 && i + len <= text.size();
      for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
      // C1 controls (U+0080..U+009F, e.g. CSI) are escapes on some terminals: refused too.
      if (ok && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) ok = false;
      out += ok ? std::string(text.substr(i, len)) : std::string("?");
      i += ok ? len : 1;
    }
  }
  return out;
}

Screen::Screen(int width, int height)
    : w_(std::max(width, 1)), h_(std::max(height, 1)), cells_(static_cast<size_t>(w_ * h_)) {}

int Screen::Put(int x, int y, std::string_view text, Style style, int max_width) {
  if (y < 0 || y >= h_ || x >= w_) return 0;
  int limit = max_width < 0 ? w_ - x : std::min(max_width, w_ - x);
  int n = 0;
  for (size_t i = 0; i < text.size() && n < limit;) {
    size_t len = std::min(SeqLen(static_cast<unsigned char>(text[i])), text.size() - i);
    if (x + n >= 0) {
      Cell& c = cells_[static_cast<size_t>(y * w_ + x + n)];
      c.glyph.assign(text.substr(i, len));
      c.style = style;
    }
    i += len;
    ++n;
  }
  return n;
}

void Screen::Fill(int x, int y, int width, Style style) {
  if (y < 0 || y >= h_) return;
  for (int i = std::max(x, 0); i < std::min(x + width, w_); ++i) cells_[static_cast<size_t>(y * w_ + i)].style = style;
}

std::string Screen::Text() const {
  std::string out;
  for (int y = 0; y < h_; ++y) {
    std::string line;
    for (int x = 0; x < w_; ++x) line += cells_[static_cast<size_t>(y * w_ + x)].glyph;
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  }
  return out;
}

namespace {
std::string Sgr(const Style& s, const Caps& caps) {
  std::string out = "\x1b[0";
  if (s.bold) out += ";1";
  if (s.dim) out += ";2";
  if (s.reverse) out += ";7";
  if (caps.color && s.fg != Color::kDefault) {
    static const char* kCodes[] = {"39", "31", "32", "33", "34", "35", "36", "90"};
    out += ";";
    out += kCodes[static_cast<int>(s.fg)];
  }
  return out + "m";
}
}  // namespace

std::string Screen::Ansi(const Caps& caps) const {
  std::string out = "\x1b[H";
  for (int y = 0; y < h_; ++y) {
    out += "\x1b[" + std::to_string(y + 1) + ";1H";
    Style cur;
    out += Sgr(cur, caps);
    for (int x = 0; x < w_; ++x) {
      const Cell& c = cells_[static_cast<size_t>(y * w_ + x)];
      if (!(c.style == cur)) {
        cur = c.style;
        out += Sgr(cur, caps);
      }
      out += c.glyph;
    }
    out += "\x1b[0m";
  }
  return out;
}

}  // namespace corral::tui
