#include "tui/view.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace corral::tui {
namespace {

constexpr int kHeaderRows = 3;  // title, memory, gauges
constexpr int kFooterRows = 2;  // status line, key hints

std::string Fmt(const char* f, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

struct Column {
  const char* title;
  int width;
  int priority;  // lower drops first when the screen is narrow
  bool right;
};

// The memory bar: used (RSS), reserved but not used, free.
std::string Bar(uint64_t used, uint64_t reserved, uint64_t budget, int width, bool unicode) {
  if (width <= 0) return "";
  std::string out;
  if (budget == 0) return std::string(static_cast<size_t>(width), unicode ? ' ' : '.');
  auto cells = [&](uint64_t v) {
    return static_cast<int>(
        std::min<double>(width, static_cast<double>(v) * width / static_cast<double>(budget) + 0.5));
  };
  int u = cells(std::min(used, budget));
  int r = std::max(cells(std::min(reserved, budget)) - u, 0);
  r = std::min(r, width - u);
  for (int i = 0; i < width; ++i) {
    if (i < u) {
      out += unicode ? "\u2588" : "#";
    } else if (i < u + r) {
      out += unicode ? "\u2592" : "=";
    } else {
      out += unicode ? "\u2591" : ".";
    }
  }
  return out;
}

Style StateStyle(const ModelRow& r) {
  if (r.state == "ready") return {Color::kGreen, false, false, false};
  if (r.state == "failed") return {Color::kRed, true, false, false};
  if (r.state == "loading" || r.state == "starting") return {Color::kYellow, false, false, false};
  if (!r.running) return {Color::kGray, false, false, true};
  return {};
}

std::string StateText(const ModelRow& r) {
  if (!r.running) return "off";
  if (r.state == "failed") return "failed: " + r.failure;
  if (r.loading_s >= 0) return r.state + " " + HumanDuration(r.loading_s);
  if (r.state == "ready") return r.in_flight > 0 ? "ready" : "idle";
  return r.state;
}

void DrawHeader(const DashState& s, const UiState& ui, Screen& scr) {
  const int w = scr.width();
  scr.Fill(0, 0, w, {Color::kDefault, false, true, false});
  std::string title = " corral ";
  if (s.connected()) {
    title += "| daemon up (pid " + std::to_string(s.daemon_pid()) + ") | " + s.proxy_url();
    scr.Put(0, 0, Fit(title, w), {Color::kDefault, true, true, false});
  } else {
    title += "| daemon DOWN: reconnecting (" + s.disconnect_reason() + ")";
    scr.Put(0, 0, Fit(title, w), {Color::kRed, true, true, false});
  }
  const control::Gauges& g = s.gauges();
  const uint64_t budget = s.budget_bytes();
  std::string numbers = " " + HumanBytes(g.used_bytes) + " used " + HumanBytes(g.reserved_bytes) + " resv / " +
                        (budget != 0 ? HumanBytes(budget) : std::string("no budget"));
  int bar_w = std::max(w - 6 - CellWidth(numbers) - 2, 4);
  int x = scr.Put(0, 1, "mem [", {Color::kDefault, true, false, false});
  x += scr.Put(x, 1, Bar(g.used_bytes, g.reserved_bytes, budget, bar_w, ui.caps.unicode),
               {Color::kCyan, false, false, false});
  x += scr.Put(x, 1, "]");
  scr.Put(x, 1, numbers);
  std::string line = "req/s " + Fmt("%.1f", g.req_per_s) + "  streams " + std::to_string(g.streams) + "  queue " +
                     std::to_string(g.queue) + "  sort:" + std::string(to_string(ui.sort));
  if (!ui.filter.empty() || ui.filter_editing) line += "  filter:" + ui.filter + (ui.filter_editing ? "_" : "");
  if (s.lagged() > 0) line += "  lagged:" + std::to_string(s.lagged());
  scr.Put(0, 2, Fit(line, w));
}

void DrawTable(const DashState& s, const UiState& ui, Screen& scr, int top, int rows_h) {
  const int w = scr.width();
  std::vector<Column> cols = {{"STATE", 12, 10, false}, {"TOK/S", 6, 9, true}, {"TTFT", 6, 8, true},
                              {"MEM/RSS", 11, 7, true}, {"REQ", 5, 6, true},   {"FLY", 3, 5, true},
                              {"TTL", 6, 4, true},      {"PIN", 3, 3, false},  {"CTX", 6, 2, true},
                              {"PID", 7, 1, true}};
  auto used = [&] {
    int n = 0;
    for (const auto& c : cols) n += c.width + 1;
    return n;
  };
  const int kMinName = 14;
  while (w - used() < kMinName && !cols.empty()) {
    auto lowest = std::min_element(cols.begin(), cols.end(), [](auto& a, auto& b) { return a.priority < b.priority; });
    cols.erase(lowest);
  }
  int name_w = std::max(w - used(), 4);
  if (name_w > 28 && !cols.empty() && std::string(cols[0].title) == "STATE") {  // room for failure reasons
    const int extra = std::min(name_w - 28, 16);
    cols[0].width += extra;
    name_w -= extra;
  }
  // header
  scr.Put(0, top, Fit("MODEL", name_w), {Color::kDefault, true, false, false});
  int x = name_w;
  for (const auto& c : cols) {
    std::string t = c.title;
    std::string cell = c.right ? std::string(static_cast<size_t>(std::max(c.width - CellWidth(t), 0)), ' ') + t : t;
    scr.Put(x + 1, top, cell, {Color::kDefault, true, false, false}, c.width);
    x += c.width + 1;
  }
  const auto rows = s.Rows(ui.now_ms, ui.sort, ui.filter);
  if (rows.empty()) {
    scr.Put(
        1, top + 1,
        ui.filter.empty() ? "no models: add GGUF files to the catalog (corral list)" : "no model matches the filter",
        {Color::kGray, false, false, true});
    return;
  }
  const int visible = rows_h - 1;
  const int sel = std::clamp(ui.selected, 0, static_cast<int>(rows.size()) - 1);
  const int first = std::max(0, sel - visible + 1);
  for (int i = 0; i < visible && first + i < static_cast<int>(rows.size()); ++i) {
    const ModelRow& r = rows[static_cast<size_t>(first) + static_cast<size_t>(i)];
    const int y = top + 1 + i;
    const bool selected = first + i == sel;
    Style base = selected ? Style{Color::kDefault, false, true, false} : Style{};
    if (selected) scr.Fill(0, y, w, base);
    scr.Put(0, y, Fit(Sanitize(r.name), name_w), base);
    int cx = name_w;
    for (const auto& c : cols) {
      std::string v;
      Style st = base;
      const std::string t = c.title;
      if (t == "STATE") {
        v = Sanitize(StateText(r));
        if (!selected) st = StateStyle(r);
      } else if (t == "TOK/S") {
        v = r.tok_s_p50 >= 0 ? Fmt("%.0f", r.tok_s_p50) : "-";
      } else if (t == "TTFT") {
        v = r.ttft_p50 >= 0 ? Fmt(r.ttft_p50 < 100 ? "%.1f" : "%.0f", r.ttft_p50) : "-";
      } else if (t == "MEM/RSS") {
        v = r.running ? HumanBytes(r.estimate_bytes) + "/" + (r.rss_bytes != 0 ? HumanBytes(r.rss_bytes) : "-")
                      : HumanBytes(r.estimate_bytes);
      } else if (t == "REQ") {
        v = r.running ? std::to_string(r.requests) : "-";
      } else if (t == "FLY") {
        v = r.running ? std::to_string(r.in_flight) : "-";
      } else if (t == "TTL") {
        v = r.running && r.ttl_left_s >= 0 ? HumanDuration(r.ttl_left_s) : "-";
      } else if (t == "PIN") {
        v = r.running && r.pinned ? (ui.caps.unicode ? "\u25cf" : "*") : "";
      } else if (t == "CTX") {
        v = r.ctx != 0 ? std::to_string(r.ctx) : "-";
      } else if (t == "PID") {
        v = r.running && r.pid > 0 ? std::to_string(r.pid) : "-";
      }
      v = Fit(v, c.width);
      if (c.right) v = std::string(static_cast<size_t>(std::max(c.width - CellWidth(v), 0)), ' ') + v;
      scr.Put(cx + 1, y, v, st, c.width);
      cx += c.width + 1;
    }
  }
  if (static_cast<int>(rows.size()) > visible) {
    std::string more = std::to_string(sel + 1) + "/" + std::to_string(rows.size());
    scr.Put(w - CellWidth(more), top, more, {Color::kGray, false, false, true});
  }
}

void DrawBox(Screen& scr, int top, int height, const std::string& title, const Caps& caps) {
  const int w = scr.width();
  std::string rule;
  for (int i = 0; i < w; ++i) rule += caps.unicode ? "\u2500" : "-";
  scr.Put(0, top, rule, {Color::kGray, false, false, false});
  scr.Put(1, top, " " + Fit(title, w - 4) + " ", {Color::kDefault, true, false, false});
  for (int y = top + 1; y < top + height; ++y) scr.Fill(0, y, w, {});
}

// Wraps `text` at `width` cells into lines (hard wrap; explicit newlines kept).
std::vector<std::string> Wrap(const std::string& text, int width) {
  std::vector<std::string> out;
  std::string line;
  int n = 0;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    len = std::min(len, text.size() - i);
    if (c == '\n') {
      out.push_back(line);
      line.clear();
      n = 0;
      ++i;
      continue;
    }
    const int gw = CellWidth(text.substr(i, len));
    if (n + gw > width) {
      out.push_back(line);
      line.clear();
      n = 0;
    }
    line.append(text, i, len);
    n += gw;
    i += len;
  }
  out.push_back(line);
  return out;
}

void DrawDetails(const DashState& s, const UiState& ui, Screen& scr, int top, int h) {
  const auto rows = s.Rows(ui.now_ms, ui.sort, ui.filter);
  if (rows.empty()) return;
  const ModelRow& r = rows[static_cast<size_t>(std::clamp(ui.selected, 0, static_cast<int>(rows.size()) - 1))];
  DrawBox(scr, top, h, "details: " + Sanitize(r.name) + "  (esc back)", ui.caps);
  std::vector<std::string> lines;
  const nlohmann::json& d = r.detail;
  auto str = [&](const char* k) {
    auto it = d.find(k);
    if (it == d.end()) return std::string("-");
    return it->is_string() ? Sanitize(it->get<std::string>()) : Sanitize(it->dump());
  };
  lines.push_back("model    " + Sanitize(r.model) + "   state " + Sanitize(StateText(r)));
  if (r.running) {
    lines.push_back("pid      " + std::to_string(r.pid) + "   url " + str("url"));
    lines.push_back("memory   estimate " + HumanBytes(r.estimate_bytes) + "  rss " + HumanBytes(r.rss_bytes) +
                    "  ctx " + (r.ctx != 0 ? std::to_string(r.ctx) : "-"));
    lines.push_back("live     tok/s p50 " + (r.tok_s_p50 >= 0 ? Fmt("%.1f", r.tok_s_p50) : "-") + "  TTFT p50 " +
                    (r.ttft_p50 >= 0 ? Fmt("%.1f", r.ttft_p50) + " ms" : "-") + "  requests " +
                    std::to_string(r.requests) + "  in flight " + std::to_string(r.in_flight));
    lines.push_back("ttl      " +
                    (r.pinned            ? std::string("pinned")
                     : r.ttl_left_s >= 0 ? HumanDuration(r.ttl_left_s)
                                         : "-") +
                    "   ready after " + (d.contains("ready_ms") ? str("ready_ms") + " ms" : "-"));
    lines.push_back("log      " + str("log_path"));
    std::string argv;
    if (auto a = d.find("argv"); a != d.end() && a->is_array()) {
      for (const auto& v : *a) argv += (argv.empty() ? "" : " ") + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    lines.push_back("argv:");
    for (auto& l : Wrap(Sanitize(argv), scr.width() - 2)) lines.push_back("  " + l);
    if (std::string spec = SpecFromArgv(d.value("argv", nlohmann::json::array())); !spec.empty())
      lines.push_back("spec     " + Sanitize(spec));
    if (!r.failure.empty()) lines.push_back("failure  " + Sanitize(r.failure));
  } else {
    lines.push_back("file     " + HumanBytes(r.estimate_bytes) + "  " + str("family") + " " + str("quant"));
    lines.push_back("not running: press s to start it");
  }
  for (int i = 0; i < h - 1 && i < static_cast<int>(lines.size()); ++i)
    scr.Put(0, top + 1 + i, Fit(lines[static_cast<size_t>(i)], scr.width()));
}

void DrawLogs(const UiState& ui, Screen& scr, int top, int h) {
  std::string title = "log: " + Sanitize(ui.log_name) + (ui.log_follow ? "  [follow]" : "  [scroll]");
  if (!ui.log_search.empty() || ui.search_editing) title += "  /" + ui.log_search + (ui.search_editing ? "_" : "");
  DrawBox(scr, top, h, title, ui.caps);
  const int n = static_cast<int>(ui.log_lines.size());
  const int visible = h - 1;
  const int last = std::max(0, n - ui.log_scroll);
  const int first = std::max(0, last - visible);
  for (int i = first; i < last; ++i) {
    const std::string& l = ui.log_lines[static_cast<size_t>(i)];
    const bool hit = !ui.log_search.empty() && l.find(ui.log_search) != std::string::npos;
    scr.Put(0, top + 1 + (i - first), Fit(Sanitize(l), scr.width()),
            hit ? Style{Color::kYellow, true, false, false} : Style{});
  }
}

void DrawChat(const UiState& ui, Screen& scr, int top, int h) {
  DrawBox(scr, top, h,
          "chat: " + Sanitize(ui.chat_model) + " via the proxy" + (ui.chat_stats.empty() ? "" : "  " + ui.chat_stats),
          ui.caps);
  std::vector<std::pair<std::string, Style>> lines;
  for (const auto& t : ui.chat) {
    Style st = t.role == "you"     ? Style{Color::kCyan, true, false, false}
               : t.role == "error" ? Style{Color::kRed, false, false, false}
                                   : Style{};
    for (auto& l : Wrap(t.role + "> " + Sanitize(t.text), scr.width())) lines.emplace_back(l, st);
  }
  const int visible = h - 2;
  const int n = static_cast<int>(lines.size());
  for (int i = std::max(0, n - visible), y = top + 1; i < n; ++i, ++y) {
    scr.Put(0, y, lines[static_cast<size_t>(i)].first, lines[static_cast<size_t>(i)].second);
  }
  std::string prompt = ui.chat_streaming ? "(streaming... esc stops)" : "> " + ui.chat_input + "_";
  scr.Put(0, top + h - 1, Fit(prompt, scr.width()), {Color::kDefault, true, false, false});
}

void DrawHelp(const UiState& ui, Screen& scr, int top, int h) {
  DrawBox(scr, top, h, "keys  (esc back)", ui.caps);
  int y = top + 1;
  for (const auto& [k, what] : KeyHelp()) {
    if (y >= top + h) break;
    scr.Put(1, y, k, {Color::kDefault, true, false, false}, 9);
    scr.Put(11, y++, Fit(what, scr.width() - 11));
  }
}

void DrawBench(const UiState& ui, Screen& scr, int top, int h) {
  const BenchResult& b = ui.bench;
  DrawBox(scr, top, h, "bench: " + Sanitize(b.model) + "  quick suite C  (esc back)", ui.caps);
  std::vector<std::pair<std::string, Style>> lines;
  const Style plain{}, bad{Color::kRed, true, false, false}, good{Color::kGreen, false, false, false};
  if (!b.error.empty()) {
    lines.emplace_back(b.ok ? "partial" : "failed", bad);
    for (auto& l : Wrap(Sanitize(b.error), scr.width() - 2)) lines.emplace_back("  " + l, plain);
  }
  if (b.have_ttft || b.have_ratio || b.requests > 0) {
    lines.emplace_back("added TTFT  p50 " +
                           (b.have_ttft ? Fmt("%.3f", b.added_ttft_p50_ms) + " ms" : std::string("-")) + "   p99 " +
                           (b.have_ttft ? Fmt("%.3f", b.added_ttft_p99_ms) + " ms" : std::string("-")),
                       plain);
    lines.emplace_back("decode      " + (b.have_ratio ? Fmt("%.4f", b.decode_ratio) + " [" + Fmt("%.4f", b.decode_lo) +
                                                            ", " + Fmt("%.4f", b.decode_hi) + "] (proxy/direct)"
                                                      : std::string("-")),
                       plain);
    lines.emplace_back("errors      " + std::to_string(b.errors) + " of " + std::to_string(b.requests) + " requests",
                       b.errors > 0 ? bad : good);
    lines.emplace_back(
        "runs        " + std::to_string(b.runs) + " per target, alternated; took " + Fmt("%.1f", b.seconds) + " s",
        plain);
    lines.emplace_back("goal        p50 +0.1, p99 +0.5 ms at most; decode >= 0.995", plain);
  }
  if (!b.report.empty()) {
    lines.emplace_back("report", plain);
    for (auto& l : Wrap(Sanitize(b.report), scr.width() - 2)) lines.emplace_back("  " + l, plain);
  }
  for (int i = 0; i < h - 1 && i < static_cast<int>(lines.size()); ++i) {
    const auto& [text, st] = lines[static_cast<size_t>(i)];
    scr.Put(0, top + 1 + i, Fit(text, scr.width()), st);
  }
}

}  // namespace

BenchResult ParseBenchOutput(const std::string& model, const std::string& out, int exit_code,
                             const std::string& stderr_tail) {
  BenchResult r;
  r.model = model;
  const nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_object()) {
    try {
      if (j.contains("dir") && j["dir"].is_string()) r.report = j["dir"].get<std::string>() + "/results.json";
      for (const auto& s : j.value("suites", nlohmann::json::array())) {
        if (!s.is_object() || s.value("suite", std::string()) != "C") continue;
        if (s.value("status", std::string()) != "ran" && !s.value("reason", std::string()).empty()) {
          r.error = "suite C " + s.value("status", std::string()) + ": " + s.value("reason", std::string());
        }
        for (const auto& c : s.value("cells", nlohmann::json::array())) {
          if (!c.is_object()) continue;
          r.requests += c.value("requests", 0);
          r.errors += c.value("errors", 0);
        }
        for (const auto& h : s.value("hop_summary", nlohmann::json::array())) {
          if (!h.is_object() || h.value("target", std::string()) != "proxy") continue;
          if (h.contains("added_ttft_p50_ms") && h.contains("added_ttft_p99_ms")) {
            r.have_ttft = true;
            r.added_ttft_p50_ms = h.value("added_ttft_p50_ms", 0.0);
            r.added_ttft_p99_ms = h.value("added_ttft_p99_ms", 0.0);
          }
          const nlohmann::json ratio = h.value("paired_decode_ratio", nlohmann::json());
          if (ratio.is_object() && ratio.value("valid", false)) {
            r.have_ratio = true;
            r.decode_ratio = ratio.value("estimate", 0.0);
            r.decode_lo = ratio.value("lo", 0.0);
            r.decode_hi = ratio.value("hi", 0.0);
          }
          break;  // one workload: the first proxy row
        }
      }
      r.ok = exit_code == 0 && r.error.empty();
    } catch (const nlohmann::json::exception& e) {
      r.error = std::string("unreadable bench output: ") + e.what();
    }
  }
  if (exit_code != 0) {
    std::string tail = stderr_tail;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
    std::string why = exit_code < 0 ? "cancelled" : "corral bench exited with code " + std::to_string(exit_code);
    r.error = why + (tail.empty() ? "" : ": " + tail) + (r.error.empty() ? "" : "; " + r.error);
    r.ok = false;
  } else if (!j.is_object() && r.error.empty()) {
    r.error = "corral bench printed no JSON summary";
  }
  return r;
}

const std::vector<std::pair<std::string, std::string>>& KeyHelp() {
  static const std::vector<std::pair<std::string, std::string>> kKeys = {
      {"up/down", "select a model (j/k too; PgUp/PgDn, Home/End)"},
      {"s", "start the selected model (pinned, as `corral start`)"},
      {"x", "stop it now (asks first; cuts its streams)"},
      {"u", "unload once idle (asks first; waits for its streams)"},
      {"p", "pin / unpin (pinned: never evicted, no TTL)"},
      {"enter", "details: live numbers, log path, the exact argv"},
      {"l", "its log: f follow, up/down scroll, / search, n next"},
      {"c", "chat with it through the proxy (enter sends)"},
      {"b", "quick suite C: added TTFT, decode ratio (asks)"},
      {"/", "filter models by name (enter keeps, esc clears)"},
      {"o", "sort: state, name, memory, requests"},
      {"?", "this help"},
      {"esc", "back to the table"},
      {"q", "quit (ctrl-c too)"},
  };
  return kKeys;
}

int TableRows(int height) {
  return std::max(height - kHeaderRows - kFooterRows - 1, 1);
}

void Draw(const DashState& s, const UiState& ui, Screen& scr) {
  const int w = scr.width(), h = scr.height();
  DrawHeader(s, ui, scr);
  const int body_top = kHeaderRows;
  const int body_h = h - kHeaderRows - kFooterRows;
  switch (ui.pane) {
    case Pane::kTable: DrawTable(s, ui, scr, body_top, body_h); break;
    case Pane::kDetails: DrawDetails(s, ui, scr, body_top, body_h); break;
    case Pane::kLogs: DrawLogs(ui, scr, body_top, body_h); break;
    case Pane::kChat: DrawChat(ui, scr, body_top, body_h); break;
    case Pane::kHelp: DrawHelp(ui, scr, body_top, body_h); break;
    case Pane::kBench: DrawBench(ui, scr, body_top, body_h); break;
  }
  // status line: a question, else the last outcome
  if (!ui.confirm.empty()) {
    scr.Put(0, h - 2, Fit(ui.confirm + " [y/N]", w), {Color::kYellow, true, false, false});
  } else if (!ui.bench_running.empty()) {
    const int64_t secs = std::max<int64_t>((ui.now_ms - ui.bench_started_ms) / 1000, 0);
    scr.Put(0, h - 2,
            Fit("benchmarking " + Sanitize(ui.bench_running) + (ui.caps.unicode ? "\u2026 " : "... ") +
                    HumanDuration(secs) + "  (esc cancels)",
                w),
            {Color::kYellow, true, false, false});
  } else if (!ui.message.empty()) {
    scr.Put(0, h - 2, Fit(Sanitize(ui.message), w),
            ui.message_error ? Style{Color::kRed, true, false, false} : Style{Color::kGreen, false, false, false});
  }
  // The table's hints drop "enter" below 64 columns (it is in the help).
  const char* table_hints = w >= 64 ? "s start x stop u unload p pin enter l log c chat b bench ? help q"
                                    : "s start x stop u unload p pin l log c chat b bench ? help q";
  const char* hints = ui.pane == Pane::kLogs   ? "f follow  up/dn scroll  / search  n next  esc back"
                      : ui.pane == Pane::kChat ? "type, enter sends  esc back"
                                               : table_hints;
  scr.Put(0, h - 1, Fit(hints, w), {Color::kGray, false, false, true});
}

}  // namespace corral::tui
