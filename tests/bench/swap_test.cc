// Suite W's pure parts (issue 17): the conversation text, the request bodies, the per-cell
// rows (TTFT and llama-server's prompt_n / cache_n) and their report table.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/report.h"
#include "bench/runner.h"
#include "bench/sse.h"
#include "bench/suites.h"

namespace corral::bench {
namespace {

using nlohmann::json;

RequestRecord Turn(const std::string& target, int run, double ttft, double prompt_n, int64_t cache_n,
                   const std::string& workload = "swap_next_turn") {
  RequestRecord r;
  r.target = target;
  r.workload = workload;
  r.run = run;
  r.ok = true;
  r.ttft_ms = ttft;
  r.e2e_ms = ttft + 1;
  r.completion_tokens = 2;
  r.has_server_timings = true;
  r.server_prompt_n = prompt_n;
  r.server_prompt_ms = prompt_n / 2;
  r.server_cache_n = cache_n;
  return r;
}

TEST(SwapConversation, DeterministicWordsAndNumbers) {
  const std::string text = SwapConversation(100);
  EXPECT_EQ(text, SwapConversation(100));
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  ASSERT_EQ(words.size(), 100u);
  EXPECT_EQ(words[0], "0");
  EXPECT_EQ(words[5], "5");
  EXPECT_EQ(words[1], "harbor");  // (1 * 7 + 1 / 13) % 20: the same text as scripts/bench-swap.py made
  EXPECT_EQ(words[2], "kettle");
}

TEST(SwapBody, FirstTurnAndNextTurn) {
  const json first = json::parse(SwapBody("swapa", "hello there", false, 2, 42));
  EXPECT_EQ(first["model"], "swapa");
  ASSERT_EQ(first["messages"].size(), 1u);
  EXPECT_EQ(first["messages"][0]["content"], "hello there");
  EXPECT_EQ(first["stream"], true);
  EXPECT_EQ(first["max_tokens"], 2);
  EXPECT_EQ(first["n_predict"], 2);
  EXPECT_EQ(first["ignore_eos"], true);
  EXPECT_EQ(first["cache_prompt"], true);
  EXPECT_EQ(first["stream_options"]["include_usage"], true);
  const json next = json::parse(SwapBody("swapa", "hello there", true, 2, 42));
  ASSERT_EQ(next["messages"].size(), 3u);
  // The next turn starts with the first turn, so a kept cache covers its prefix.
  EXPECT_EQ(next["messages"][0], first["messages"][0]);
  EXPECT_EQ(next["messages"][1]["role"], "assistant");
  EXPECT_EQ(next["messages"][2]["role"], "user");
}

TEST(SummariseSwap, RowsPerCellWithMediansAndErrors) {
  std::vector<RequestRecord> v = {Turn("warm", 0, 100, 10, 900),
                                  Turn("kv-restore", 0, 400, 12, 898),
                                  Turn("kv-off", 0, 2000, 910, 0),
                                  Turn("warm", 1, 120, 10, 900),
                                  Turn("kv-restore", 1, 500, 14, 896),
                                  Turn("kv-off", 1, 2200, 910, 0),
                                  Turn("corral-on-demand", 0, 900, 5, 0, "cold_start")};
  RequestRecord failed = Turn("kv-off", 2, 0, 0, -1);
  failed.ok = false;
  failed.error = "HTTP 503";
  v.push_back(failed);
  RequestRecord warmup = Turn("warm", -1, 9999, 1, 1);
  warmup.warmup = true;
  v.push_back(warmup);
  RequestRecord no_cache_n = Turn("router", 0, 2100, 910, -1);  // a server without cache_n
  v.push_back(no_cache_n);
  const auto rows = SummariseSwap(v);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].target, "warm");
  EXPECT_EQ(rows[0].requests, 2);  // the warm-up is not counted
  EXPECT_DOUBLE_EQ(rows[0].ttft_ms.median, 110);
  EXPECT_DOUBLE_EQ(rows[1].cache_n, 897);
  EXPECT_DOUBLE_EQ(rows[1].prompt_n, 13);
  EXPECT_EQ(rows[2].target, "kv-off");
  EXPECT_EQ(rows[2].requests, 3);
  EXPECT_EQ(rows[2].errors, 1);
  EXPECT_DOUBLE_EQ(rows[2].cache_n, 0);
  EXPECT_DOUBLE_EQ(rows[2].ttft_ms.median, 2100);
  EXPECT_EQ(rows[3].workload, "cold_start");
  EXPECT_DOUBLE_EQ(rows[4].cache_n, -1);
  EXPECT_DOUBLE_EQ(rows[4].prompt_n, 910);
}

TEST(SuiteW, ReportShowsTheSwapTableWithRatios) {
  std::vector<Target> targets(4);
  targets[0].name = "warm";
  targets[1].name = "kv-restore";
  targets[2].name = "kv-off";
  targets[2].compare_to = "kv-restore";
  targets[3].name = "corral-on-demand";
  std::vector<RequestRecord> v;
  for (int run = 0; run < 4; ++run) {
    v.push_back(Turn("warm", run, 100, 10, 900));
    v.push_back(Turn("kv-restore", run, 400, 12, 898));
    v.push_back(Turn("kv-off", run, 2000, 910, 0));
    v.push_back(Turn("corral-on-demand", run, 900, 5, 0, "cold_start"));
  }
  SuiteResult s;
  s.suite = "W";
  s.title = "swap";
  s.status = "ran";
  s.targets = targets;
  s.records = v;
  s.aggregate = Summarise(v, targets, RunOptions{});
  SwapSummary sw;
  sw.words = 3200;
  sw.ctx = 12288;
  sw.rounds = 4;
  sw.conversation_tokens = 910;
  sw.budget_bytes = 300 << 20;
  sw.model_argv = {"llama-server", "--slot-save-path", "/s/kv/"};
  sw.rows = SummariseSwap(v);
  s.swap = sw;
  const json r = ReportJson(RunInfo{}, HostInfo{}, Provenance{}, {}, {s});
  const json& swap = r["suites"][0]["swap"];
  ASSERT_EQ(swap["rows"].size(), 4u);
  const json& off = swap["rows"][2];
  EXPECT_EQ(off["target"], "kv-off");
  ASSERT_EQ(off["vs"].size(), 2u);  // against warm (the first target) and against kv-restore
  EXPECT_EQ(off["vs"][0]["baseline"], "warm");
  EXPECT_NEAR(off["vs"][0]["paired_ratio"]["estimate"].get<double>(), 20, 1e-9);
  EXPECT_EQ(off["vs"][1]["baseline"], "kv-restore");
  EXPECT_NEAR(off["vs"][1]["paired_ratio"]["estimate"].get<double>(), 5, 1e-9);
  EXPECT_EQ(r["suites"][0]["requests"][1]["server_timings"]["cache_n"], 898);
  const std::string md = RenderMarkdown(r);
  for (const char* want :
       {"## Suite W (swap): ran", "### Swap and cold start", "--slot-save-path /s/kv/",
        "| swap_next_turn | kv-restore | 4/4 | 400.0 | 400.0-400.0 | 12 / 898 | 6.0 | warm: 4.000 [4.000, 4.000] |",
        "| swap_next_turn | kv-off | 4/4 | 2000.0 | 2000.0-2000.0 | 910 / 0 | 455.0 | warm: 20.000 [20.000, "
        "20.000]; kv-restore: 5.000 [5.000, 5.000] |",
        "| cold_start | corral-on-demand | 4/4 | 900.0 |"}) {
    EXPECT_NE(md.find(want), std::string::npos) << want << "\n" << md;
  }
}

TEST(ChatChunk, CacheNFromTimings) {
  EXPECT_EQ(InterpretChatChunk(R"({"timings":{"prompt_n":3,"cache_n":1988}})").timings_cache_n, 1988);
  EXPECT_EQ(InterpretChatChunk(R"({"timings":{"prompt_n":3}})").timings_cache_n, -1);
  EXPECT_EQ(InterpretChatChunk(R"({"timings":{"cache_n":-2}})").timings_cache_n, -1);
  EXPECT_EQ(InterpretChatChunk(R"({"timings":{"cache_n":"7"}})").timings_cache_n, -1);
}

}  // namespace
}  // namespace corral::bench
