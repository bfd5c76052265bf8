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

// The code point of the UTF-8 sequence at `s` (len bytes); 0 for a broken one.
uint32_t CodePoint(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i])); };
  switch (s.size()) {
    case 2: return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3: return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    case 4: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
    default: return 0;
  }
}

// Terminals draw East Asian wide characters and most emoji in two cells (the usual wcwidth
// ranges, without a locale lookup).
bool IsWide(uint32_t c) {
  return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) || (c >= 0xac00 && c <= 0xd7a3) ||
         (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
         (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) || (c >= 0x1f900 && c <= 0x1f9ff) ||
         (c >= 0x20000 && c <= 0x3fffd);
}

int GlyphWidth(std::string_view seq) {
  return seq.size() >= 3 && IsWide(CodePoint(seq)) ? 2 : 1;
}

}  // namespace

int CellWidth(std::string_view text) {
  int n = 0;
  for (size_t i = 0; i < text.size();) {
    size_t len = std::min(SeqLen(static_cast<unsigned char>(text[i])), text.size() - i);
    n += GlyphWidth(text.substr(i, len));
    i += len;
  }
  return n;
}

std::string Fit(std::string_view text, int width) {
  if (width <= 0) return "";
  if (CellWidth(text) <= width) return std::string(text);
  std::string out;
  int n = 0;
  for (size_t i = 0; i < text.size();) {
    size_t len = std::min(SeqLen(static_cast<unsigned char>(text[i])), text.size() - i);
    const int gw = GlyphWidth(text.substr(i, len));
    if (n + gw > width - 1) break;
    out.append(text.substr(i, len));
    n += gw;
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
    std::string_view glyph = text.substr(i, len);
    const int gw = GlyphWidth(glyph);
    if (gw == 2 && n + 1 >= limit) glyph = " ";  // half a wide character does not fit
    if (x + n >= 0) {
      Cell& c = cells_[static_cast<size_t>(y * w_ + x + n)];
      c.glyph.assign(glyph);
      c.style = style;
      if (gw == 2 && glyph.size() > 1) {  // the next cell is covered by this one
        Cell& next = cells_[static_cast<size_t>(y * w_ + x + n + 1)];
        next.glyph.clear();
        next.style = style;
      }
    }
    i += len;
    n += glyph.size() > 1 ? gw : 1;
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
