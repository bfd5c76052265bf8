// The dashboard's view, headless: a canned feed (hello, model changes, requests, gauges)
// rendered at fixed sizes and compared with golden text (tests/tui/golden/*.txt). Times are
// fixed, so nothing volatile needs masking here; the live screens are checked by
// tui_integration_test. CORRAL_UPDATE_GOLDEN=1 rewrites the files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "control/feed.h"
#include "tui/golden.h"
#include "tui/screen.h"
#include "tui/state.h"
#include "tui/view.h"

#ifndef CORRAL_TUI_GOLDEN_DIR
#error "CORRAL_TUI_GOLDEN_DIR must be defined"
#endif

namespace corral::tui {
namespace {

constexpr int64_t kNowMs = 1'780'000'000'000;

DashState Canned() {
  DashState s;
  const std::vector<std::string> lines = {
      R"({"t":"hello","v":1,"daemon":{"pid":4242,"version":"0.1.0"},"proxy":{"url":"http://127.0.0.1:11450/v1","base_url":"http://127.0.0.1:11450"},)"
      R"("memory":{"budget_bytes":8589934592,"reserved_bytes":0},"models":[],)"
      R"("catalog":[{"name":"corral-tiny-bpe","state":"ready","context":4096,"size_bytes":52428800},)"
      R"({"name":"corral-small-spm","state":"stopped","context":2048,"size_bytes":209715200},)"
      R"({"name":"qwen2.5-7b-instruct-q4_k_m","state":"stopped","context":32768,"size_bytes":4683073536}]})",
      R"({"t":"model","model":{"name":"corral-tiny-bpe","model":"corral-tiny-bpe","state":"ready","pid":31337,"port":40001,)"
      R"("url":"http://127.0.0.1:40001","argv":["llama-server","-m","/m/tiny.gguf","--host","127.0.0.1","--port","0","-c","4096"],)"
      R"("log_path":"/s/logs/corral-tiny-bpe.log","started_at":1779999990,"reserved_bytes":157286400,"rss_bytes":0,"generation":4,"ready_ms":812.5}})",
      R"({"t":"model","model":{"name":"corral-small-spm","model":"corral-small-spm","state":"loading","pid":31338,"port":0,)"
      R"("argv":["llama-server","-m","/m/small.gguf"],"started_at":1779999988,"reserved_bytes":419430400,"rss_bytes":0,"generation":2}})",
      R"({"t":"model","model":{"name":"broken","model":"broken","state":"failed","pid":-1,"port":0,"argv":[],"started_at":1779999900,)"
      R"("reserved_bytes":0,"rss_bytes":0,"generation":3,"failure":{"kind":"exited","exit_code":1,"signal":0,"message":"exited with code 1 before ready"}}})",
      R"({"t":"request","ts_ms":1779999995000,"route":"/v1/chat/completions","model":"tiny","child":"corral-tiny-bpe","status":200,"ttft_ms":4.0,"tokens":64,"tok_s":1000.0,"duration_ms":70,"proxy_added_us":35})",
      R"({"t":"request","ts_ms":1779999996000,"route":"/v1/chat/completions","model":"tiny","child":"corral-tiny-bpe","status":200,"ttft_ms":6.0,"tokens":64,"tok_s":900.0,"duration_ms":80,"proxy_added_us":30})",
      R"({"t":"request","ts_ms":1779999997000,"route":"/v1/chat/completions","model":"tiny","child":"corral-tiny-bpe","status":200,"ttft_ms":5.0,"tokens":64,"tok_s":950.0,"duration_ms":75,"proxy_added_us":33})",
      R"({"t":"gauges","ts_ms":1780000000000,"req_per_s":3.0,"streams":1,"queue":0,"memory":{"budget_bytes":8589934592,"reserved_bytes":576716800,"used_bytes":104857600},)"
      R"("dropped_total":0,"models":[{"name":"corral-tiny-bpe","in_flight":1,"rss_bytes":104857600,"pinned":true,"ttl_left_s":-1,"requests":3},)"
      R"({"name":"corral-small-spm","in_flight":0,"rss_bytes":0,"pinned":false,"ttl_left_s":-1,"requests":0}]})",
  };
  for (const auto& l : lines) {
    auto ev = control::ParseFeedLine(l);
    EXPECT_TRUE(ev.ok()) << ev.status().message() << "\n" << l;
    if (ev.ok()) s.Apply(*ev, kNowMs);
  }
  return s;
}

std::string Render(const DashState& s, UiState ui, int w, int h) {
  ui.now_ms = kNowMs;
  Screen scr(w, h);
  Draw(s, ui, scr);
  return scr.Text();
}

UiState Ascii() {
  UiState ui;
  ui.caps = Caps{false, false};
  return ui;
}

// Issue 17: the details pane names the speculative decoding a child runs with.
TEST(TuiViewTest, SpecFromArgv) {
  using nlohmann::json;
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "-m", "/m/a.gguf", "-c", "4096"})), "");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "--spec-type", "none"})), "");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "--spec-type", "draft-mtp"})), "MTP heads");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "--spec-type", "draft-simple", "--spec-draft-model", "/m/d raft.gguf",
                                      "--spec-draft-n-max", "8"})),
            "draft d raft.gguf (8 per step)");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "-md", "small.gguf"})), "draft small.gguf");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "--spec-type", "ngram-simple"})), "ngram-simple");
  EXPECT_EQ(SpecFromArgv(json::array({"ls", "--spec-type", 3})), "");
  EXPECT_EQ(SpecFromArgv(json::object()), "");
}

TEST(TuiViewTest, Table80x24) {
  Golden("table_80x24", Render(Canned(), Ascii(), 80, 24));
}

TEST(TuiViewTest, Table60x20) {
  Golden("table_60x20", Render(Canned(), Ascii(), 60, 20));
}

TEST(TuiViewTest, TableUnicode100x30) {
  UiState ui;
  Golden("table_unicode_100x30", Render(Canned(), ui, 100, 30));
}

TEST(TuiViewTest, DetailsShowTheExactArgv) {
  UiState ui = Ascii();
  ui.pane = Pane::kDetails;
  ui.selected = 0;
  const std::string text = Render(Canned(), ui, 80, 24);
  EXPECT_NE(text.find("llama-server -m /m/tiny.gguf --host 127.0.0.1 --port 0 -c 4096"), std::string::npos) << text;
  Golden("details_80x24", text);
}

TEST(TuiViewTest, LogsAndChatAndHelpAndConfirm) {
  UiState ui = Ascii();
  ui.pane = Pane::kLogs;
  ui.log_name = "corral-tiny-bpe";
  for (int i = 0; i < 40; ++i) ui.log_lines.push_back("line " + std::to_string(i) + (i == 30 ? " error: x" : ""));
  ui.log_search = "error";
  Golden("logs_60x20", Render(Canned(), ui, 60, 20));
  ui.pane = Pane::kChat;
  ui.chat_model = "corral-tiny-bpe";
  ui.chat = {{"you", "hello there"}, {"corral-tiny-bpe", "gibberish tokens from a synthetic model"}};
  ui.chat_stats = "TTFT 5 ms, 950.0 tok/s";
  Golden("chat_60x20", Render(Canned(), ui, 60, 20));
  ui.pane = Pane::kHelp;
  Golden("help_60x20", Render(Canned(), ui, 60, 20));
  ui.pane = Pane::kTable;
  ui.confirm = "stop corral-tiny-bpe (cuts 1 streams)?";
  const std::string text = Render(Canned(), ui, 60, 20);
  EXPECT_NE(text.find("stop corral-tiny-bpe (cuts 1 streams)? [y/N]"), std::string::npos) << text;
}

// What `corral bench --suite C --json` prints, trimmed to the parts the pane reads.
constexpr const char* kBenchJson = R"({"dir":"/home/u/.local/state/corral/bench/20261202-054500","ok":true,
  "suites":[{"suite":"C","status":"ran","reason":"",
  "cells":[{"target":"direct","workload":"chat_turn","requests":10,"errors":0},
           {"target":"proxy","workload":"chat_turn","requests":10,"errors":0}],
  "comparisons":[],
  "hop_summary":[{"workload":"chat_turn","target":"proxy","requests":10,"errors":0,"added_ttft_p50_ms":0.041,
    "added_ttft_p99_ms":0.213,"paired_decode_ratio":{"estimate":0.9987,"lo":0.9954,"hi":1.0011,"valid":true},"pairs":10}]}]})";

TEST(TuiViewTest, BenchResultPane) {
  UiState ui = Ascii();
  ui.pane = Pane::kBench;
  ui.bench = ParseBenchOutput("corral-tiny-bpe", kBenchJson, 0, "");
  ui.bench.runs = 10;
  ui.bench.seconds = 2.5;
  EXPECT_TRUE(ui.bench.ok);
  EXPECT_EQ(ui.bench.requests, 20);
  EXPECT_EQ(ui.bench.report, "/home/u/.local/state/corral/bench/20261202-054500/results.json");
  const std::string text = Render(Canned(), ui, 80, 24);
  EXPECT_NE(text.find("added TTFT  p50 0.041 ms   p99 0.213 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("decode      0.9987 [0.9954, 1.0011]"), std::string::npos) << text;
  EXPECT_NE(text.find("errors      0 of 20 requests"), std::string::npos) << text;
  Golden("bench_80x24", text);
  Golden("bench_60x20", Render(Canned(), ui, 60, 20));
}

TEST(TuiViewTest, BenchFailureAndRunningLine) {
  // A failed child: the exit code and the stderr tail, no numbers.
  BenchResult failed = ParseBenchOutput("m", "", 69, "bench: --direct-url: connection refused\n");
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.error, "corral bench exited with code 69: bench: --direct-url: connection refused");
  UiState ui = Ascii();
  ui.pane = Pane::kBench;
  ui.bench = failed;
  std::string text = Render(Canned(), ui, 60, 20);
  EXPECT_NE(text.find("failed"), std::string::npos) << text;
  EXPECT_NE(text.find("exited with code 69"), std::string::npos) << text;
  EXPECT_EQ(text.find("added TTFT"), std::string::npos) << text;
  // JSON that says the run failed (exit 1) keeps its numbers and says why.
  BenchResult partial = ParseBenchOutput("m", kBenchJson, 1, "bench: suite C: 10 of 20 requests failed");
  EXPECT_FALSE(partial.ok);
  EXPECT_TRUE(partial.have_ttft);
  EXPECT_NE(partial.error.find("code 1"), std::string::npos);
  // Cancelled: -1.
  EXPECT_EQ(ParseBenchOutput("m", "", -1, "").error, "cancelled");
  // While it runs the table stays, the status line counts the seconds.
  ui.pane = Pane::kTable;
  ui.bench_running = "corral-tiny-bpe";
  ui.bench_started_ms = kNowMs - 7000;
  text = Render(Canned(), ui, 60, 20);
  EXPECT_NE(text.find("benchmarking corral-tiny-bpe... 7s  (esc cancels)"), std::string::npos) << text;
  EXPECT_NE(text.find("b bench ? help q"), std::string::npos) << text;
}

TEST(TuiViewTest, DisconnectedSaysReconnecting) {
  DashState s = Canned();
  s.SetDisconnected("the daemon went away");
  const std::string text = Render(s, Ascii(), 60, 20);
  EXPECT_NE(text.find("reconnecting"), std::string::npos) << text;
}

TEST(TuiViewTest, RowsRunningFirstWithMediansFilterAndSort) {
  DashState s = Canned();
  auto rows = s.Rows(kNowMs, SortKey::kState, "");
  ASSERT_EQ(rows.size(), 4U);  // 3 children + the catalog model nobody runs
  EXPECT_EQ(rows[0].name, "corral-tiny-bpe");
  EXPECT_EQ(rows[1].name, "corral-small-spm");
  EXPECT_EQ(rows[2].name, "broken");
  EXPECT_EQ(rows[3].name, "qwen2.5-7b-instruct-q4_k_m");
  EXPECT_FALSE(rows[3].running);
  EXPECT_DOUBLE_EQ(rows[0].tok_s_p50, 950.0);
  EXPECT_DOUBLE_EQ(rows[0].ttft_p50, 5.0);
  EXPECT_EQ(rows[0].ctx, 4096U);
  EXPECT_EQ(rows[1].loading_s, 12);
  EXPECT_EQ(rows[0].requests, 3U);
  EXPECT_TRUE(rows[0].pinned);
  EXPECT_EQ(s.Rows(kNowMs, SortKey::kName, "SMALL").size(), 1U);
  // A minute later the medians are gone.
  EXPECT_LT(s.Rows(kNowMs + 61'000, SortKey::kState, "")[0].tok_s_p50, 0);
}

TEST(TuiViewTest, SanitizeKeepsEscapesOffTheTerminal) {
  EXPECT_EQ(Sanitize("a\x1b[31mb\x07"), "a?[31mb?");
  EXPECT_EQ(Sanitize("\xc2\x9b"
                     "2J"),
            "??2J");  // C1 CSI
  EXPECT_EQ(Sanitize("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(Sanitize("\xff"), "?");
  EXPECT_EQ(Fit("abcdef", 4), "abc~");
}

TEST(TuiViewTest, WideCharactersTakeTwoCells) {
  EXPECT_EQ(CellWidth("a\u5217b"), 4);
  EXPECT_EQ(Fit("\u5217\u5217\u5217", 4), "\u5217~");
  Screen scr(5, 1);
  EXPECT_EQ(scr.Put(0, 0, "\u5217\u5217\u5217"), 5);  // two wide, then a blank: half of one does not fit
  EXPECT_EQ(scr.Text(), "\u5217\u5217\n");
}

}  // namespace
}  // namespace corral::tui
