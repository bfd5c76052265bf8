// The dashboard against a real daemon with synthetic models: headless frames at 80x24 and
// 60x20 (golden text, volatile numbers masked), then the real thing in tmux driven by keys:
// start a model, see it turn ready, read its log, chat one answer through the proxy, watch
// a client's request land in the table, stop it (with the confirmation), survive a daemon
// restart ("reconnecting", then recovered), quit.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"
#include "tui/golden.h"

#ifndef CORRAL_TUI_GOLDEN_DIR
#error "CORRAL_TUI_GOLDEN_DIR must be defined"
#endif

namespace corral {
namespace {

using namespace std::chrono_literals;
using tui::Golden;

// Numbers move (pids, ports, bytes, times): every run of digits becomes N, runs of spaces
// one space (right-aligned columns shift with the numbers), the memory bar [..] is masked.
std::string Mask(const std::string& text) {
  std::string out = std::regex_replace(text, std::regex("[0-9]+(\\.[0-9]+)?"), "N");
  out = std::regex_replace(out, std::regex("mem \\[[^\\]]*\\]"), "mem [bar]");
  out = std::regex_replace(out, std::regex(" +"), " ");
  return out;
}

class TuiIntegrationTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    const std::string models = dir_.File("data/corral/models");
    ASSERT_TRUE(testing::MakeAlphaBravo(models));
    tmux_ = "tmux -S " + dir_.File("tmux.sock");
  }
  void TearDown() override {
    Sh(tmux_ + " kill-server");
    PrivateDaemonTest::TearDown();
  }
  static std::string Sh(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
  }
  std::string EnvPrefix() const {
    std::string s = "env";
    for (const auto& [k, v] : env_) s += " " + k + "='" + v + "'";
    return s + " LANG=C.UTF-8 TERM=xterm-256color";
  }
  std::string Screen() { return Sh(tmux_ + " capture-pane -p -t t"); }
  void Keys(const std::string& keys) { Sh(tmux_ + " send-keys -t t " + keys); }
  // Polls the screen (no fixed sleep) until `pred` holds or `limit` passes.
  bool WaitFor(const std::function<bool(const std::string&)>& pred, std::chrono::seconds limit = 20s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred(Screen())) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  bool WaitText(const std::string& text, std::chrono::seconds limit = 20s) {
    return WaitFor([&](const std::string& s) { return s.find(text) != std::string::npos; }, limit);
  }
  // The table row of the model whose name starts with `prefix`.
  static std::string Row(const std::string& screen, const std::string& prefix) {
    std::istringstream in(screen);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(prefix)) return line;
    }
    return "";
  }
  std::string tmux_;
};

TEST_F(TuiIntegrationTest, HeadlessFramesAt80x24And60x20) {
  ASSERT_GT(StartDaemon(), 0);
  for (const auto& [size, name] :
       std::vector<std::pair<std::string, std::string>>{{"80x24", "live_80x24"}, {"60x20", "live_60x20"}}) {
    testing::RunResult r = Corral({"top", "--once", size, "--ascii", "--no-color"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("daemon up"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no escapes in a text frame";
    Golden(name, Mask(r.out));
  }
  // No daemon: the frame says so and the exit code is 65.
  Corral({"daemon", "stop"});
  testing::RunResult down = Corral({"top", "--once", "60x20", "--ascii"});
  EXPECT_EQ(down.exit_code, 65);
  EXPECT_NE(down.out.find("reconnecting"), std::string::npos) << down.out;
}

TEST_F(TuiIntegrationTest, DriveAModelFromTheKeyboard) {
  if (Sh("command -v tmux").empty()) GTEST_SKIP() << "tmux is not installed (deps/test-packages.txt)";
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  // `corral` with no arguments on a terminal opens the dashboard.
  Sh(tmux_ + " new-session -d -s t -x 80 -y 24 \"" + EnvPrefix() + " " + testing::CorralBinary() + "\"");
  ASSERT_TRUE(WaitText("daemon up")) << Screen();
  ASSERT_TRUE(WaitFor([](const std::string& s) { return Row(s, "alpha").find("off") != std::string::npos; }))
      << Screen();

  // s: start the selected model (alpha sorts first); it loads, then turns ready (idle).
  Keys("s");
  ASSERT_TRUE(WaitFor([](const std::string& s) { return Row(s, "alpha").find("idle") != std::string::npos; }, 60s))
      << Screen();
  const std::string alpha = NameOf("alpha");

  // A client streams through the proxy: the request shows up (REQ 1, tok/s measured).
  auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha, 16));
  ASSERT_TRUE(r.ok() && r->status == 200);
  ASSERT_TRUE(WaitFor([](const std::string& s) {
    std::string row = Row(s, "alpha");
    std::smatch m;  // TOK/S is a number, REQ is 1
    return std::regex_search(row, m, std::regex("idle +[0-9]+ +[0-9.]+ +\\S+ +1 +0"));
  })) << Screen();

  // enter: details with the exact argv.
  Keys("Enter");
  ASSERT_TRUE(WaitText("argv:")) << Screen();
  EXPECT_NE(Screen().find("llama-server"), std::string::npos);
  Keys("Escape");

  // l: its log, following.
  Keys("l");
  ASSERT_TRUE(WaitText("[follow]")) << Screen();
  ASSERT_TRUE(WaitText("slot")) << Screen();  // llama-server's own lines
  Keys("Escape");

  // c: chat one answer through the proxy.
  Keys("c");
  ASSERT_TRUE(WaitText("via the proxy")) << Screen();
  Keys("-l hello");
  Keys("Enter");
  ASSERT_TRUE(WaitText("tok/s", 60s)) << Screen();  // the answer's TTFT and tok/s in the title
  EXPECT_NE(Screen().find("\n> _"), std::string::npos) << "the prompt is back after the answer";
  Keys("Escape");

  // x: stop, after the confirmation; "n" first cancels.
  Keys("x");
  ASSERT_TRUE(WaitText("[y/N]")) << Screen();
  Keys("n");
  ASSERT_TRUE(WaitText("cancelled")) << Screen();
  Keys("x");
  ASSERT_TRUE(WaitText("[y/N]")) << Screen();
  Keys("y");
  ASSERT_TRUE(WaitText("stopped")) << Screen();
  ASSERT_TRUE(WaitFor([](const std::string& s) { return Row(s, "alpha").find("off") != std::string::npos; }))
      << Screen();

  // The daemon restarts: "reconnecting", then back.
  Corral({"daemon", "stop"});
  ASSERT_TRUE(WaitText("reconnecting")) << Screen();
  ASSERT_GT(StartDaemon(), 0);
  ASSERT_TRUE(WaitText("daemon up")) << Screen();

  // A resize to 60x20 redraws at the new size.
  Sh(tmux_ + " resize-window -t t -x 60 -y 20");
  ASSERT_TRUE(WaitFor([](const std::string& s) {
    std::istringstream in(s);
    std::string first;
    std::getline(in, first);
    return first.size() <= 60 && s.find("? help") != std::string::npos;
  })) << Screen();

  Keys("q");
  ASSERT_TRUE(WaitFor(
      [&](const std::string&) {
        return Sh(tmux_ + " has-session -t t").find("can't find") != std::string::npos ||
               Sh(tmux_ + " list-sessions").find("t:") == std::string::npos;
      },
      10s));
}

// b: a quick suite C on a ready model, from the keyboard: refused on a model that is not
// running, asked first, cancelled with esc (the child's group killed and reaped), then run
// to the result pane (added TTFT, decode ratio, errors, the report's path).
TEST_F(TuiIntegrationTest, QuickSuiteCFromTheKeyboard) {
  if (Sh("command -v tmux").empty()) GTEST_SKIP() << "tmux is not installed (deps/test-packages.txt)";
  ASSERT_GT(StartDaemon(), 0);
  Sh(tmux_ + " new-session -d -s t -x 80 -y 24 \"" + EnvPrefix() + " " + testing::CorralBinary() + " top\"");
  ASSERT_TRUE(WaitFor([](const std::string& s) { return Row(s, "alpha").find("off") != std::string::npos; }))
      << Screen();
  // Not running: a clear message, nothing asked, nothing run.
  Keys("b");
  ASSERT_TRUE(WaitText("is not ready: start it first")) << Screen();
  EXPECT_EQ(Screen().find("[y/N]"), std::string::npos);

  Keys("s");
  ASSERT_TRUE(WaitFor([](const std::string& s) { return Row(s, "alpha").find("idle") != std::string::npos; }, 60s))
      << Screen();
  const std::string alpha = NameOf("alpha");

  // Asked, then cancelled while it runs: no bench process is left.
  Keys("b");
  ASSERT_TRUE(WaitText("[y/N]")) << Screen();
  Keys("y");
  ASSERT_TRUE(WaitText("benchmarking " + alpha)) << Screen();
  Keys("Escape");
  ASSERT_TRUE(WaitText("bench cancelled")) << Screen();
  // "[-]-model": the pattern does not match pgrep's own shell
  const std::string mine = "[-]-model " + alpha + " --workload";
  EXPECT_EQ(Sh("pgrep -f -- '" + mine + "' || true"), "") << "an orphaned bench";

  // Run to the end: the result pane.
  Keys("b");
  ASSERT_TRUE(WaitText("[y/N]")) << Screen();
  Keys("y");
  ASSERT_TRUE(WaitText("added TTFT", 90s)) << Screen();
  const std::string pane = Screen();
  EXPECT_NE(pane.find("bench: " + alpha), std::string::npos) << pane;
  EXPECT_TRUE(std::regex_search(pane, std::regex("p50 -?[0-9]+\\.[0-9]{3} ms +p99 -?[0-9]+\\.[0-9]{3} ms"))) << pane;
  EXPECT_TRUE(std::regex_search(pane, std::regex("decode +[0-9]\\.[0-9]{4} \\["))) << pane;
  EXPECT_NE(pane.find("errors      0 of 20 requests"), std::string::npos) << pane;
  const std::string unwrapped = std::regex_replace(pane, std::regex(" *\\n  "), "");  // the path wraps
  EXPECT_NE(unwrapped.find("/corral/bench/"), std::string::npos) << pane;
  EXPECT_NE(unwrapped.find("results.json"), std::string::npos) << pane;
  EXPECT_EQ(pane.find("failed"), std::string::npos) << pane;
  Keys("Escape");
  ASSERT_TRUE(WaitText("MODEL")) << Screen();
  Keys("q");
}

}  // namespace
}  // namespace corral
