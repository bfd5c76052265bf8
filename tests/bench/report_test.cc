// Report generation: the JSON keys of schema 1, the Markdown tables, well-formed SVG; and the
// aggregation rules behind them (warm-ups dropped, errors counted, noisy cells flagged).
#include <gtest/gtest.h>

#include "bench/report.h"
#include "bench/runner.h"

namespace corral::bench {
namespace {

RequestRecord Rec(const std::string& target, int run, double ttft, double tps, bool ok = true) {
  RequestRecord r;
  r.target = target;
  r.workload = "chat_turn";
  r.run = run;
  r.warmup = run < 0;
  r.ok = ok;
  if (!ok) r.error = "HTTP 500";
  r.ttft_ms = ttft;
  r.decode_tps = tps;
  r.e2e_ms = ttft + 100;
  r.itl_p50_ms = 1;
  r.itl_p99_ms = 2;
  r.completion_tokens = 64;
  r.prompt_tokens = 50;
  r.prompt_tps = 50 / ttft * 1000;
  return r;
}

std::vector<Target> Targets() {
  Target a, b;
  a.name = "raw";
  a.url = "http://127.0.0.1:1";
  a.argv = {"llama-server", "-m", "x.gguf"};
  b.name = "we<&>ird";
  b.url = "http://127.0.0.1:2";
  return {a, b};
}

std::vector<RequestRecord> Records() {
  std::vector<RequestRecord> v;
  v.push_back(Rec("raw", -1, 500, 1));  // warm-up: must not count
  v.push_back(Rec("we<&>ird", -1, 500, 1));
  for (int i = 0; i < 10; ++i) {
    v.push_back(Rec("raw", i, 10 + 0.1 * i, 1000 + i));
    v.push_back(Rec("we<&>ird", i, i % 2 == 0 ? 5 : 25, 900 + i));  // noisy TTFT
  }
  v.push_back(Rec("we<&>ird", 10, 10, 1000, false));
  return v;
}

TEST(Summarise, PairedRatioCancelsSharedDrift) {
  // Both targets slow down together run by run (a busy machine); the target is always
  // exactly 10 % faster than the baseline request sent next to it.
  std::vector<RequestRecord> v;
  for (int i = 0; i < 12; ++i) {
    const double drift = (i % 3 == 0) ? 300 : 1000 + 50 * i;
    v.push_back(Rec("raw", i, 10, drift));
    v.push_back(Rec("we<&>ird", i, 10, drift * 1.1));
  }
  Aggregate agg = Summarise(v, Targets(), RunOptions{});
  const CellComparison* decode = nullptr;
  for (const auto& c : agg.comparisons) {
    if (c.metric == "decode_tps") decode = &c;
  }
  ASSERT_NE(decode, nullptr);
  EXPECT_EQ(decode->pairs, 12);
  EXPECT_NEAR(decode->paired_ratio.estimate, 1.1, 1e-12);
  EXPECT_NEAR(decode->paired_ratio.lo, 1.1, 1e-12);
  EXPECT_NEAR(decode->paired_ratio.hi, 1.1, 1e-12);
  EXPECT_LT(decode->result.ratio.lo, 1.0);  // the unpaired interval cannot see it
}

TEST(Summarise, DropsWarmupsCountsErrorsFlagsNoise) {
  RunOptions opt;
  Aggregate agg = Summarise(Records(), Targets(), opt);
  ASSERT_EQ(agg.cells.size(), 2u);
  const Cell& raw = agg.cells[0];
  EXPECT_EQ(raw.target, "raw");
  EXPECT_EQ(raw.requests, 10);
  EXPECT_EQ(raw.errors, 0);
  EXPECT_DOUBLE_EQ(raw.metrics.at("ttft_ms").median, 10.45);
  EXPECT_DOUBLE_EQ(raw.metrics.at("ttft_ms").max, 10.9);  // the 500 ms warm-up is gone
  EXPECT_TRUE(raw.noisy.empty());
  const Cell& other = agg.cells[1];
  EXPECT_EQ(other.requests, 11);
  EXPECT_EQ(other.errors, 1);
  EXPECT_EQ(other.error_samples, std::vector<std::string>{"HTTP 500"});
  EXPECT_NE(std::find(other.noisy.begin(), other.noisy.end(), "ttft_ms"), other.noisy.end());
  // Comparisons: every non-baseline target against the first, deterministic.
  bool found = false;
  for (const auto& c : agg.comparisons) {
    EXPECT_EQ(c.baseline, "raw");
    if (c.metric == "decode_tps") {
      found = true;
      EXPECT_DOUBLE_EQ(c.result.diff.estimate, 904.5 - 1004.5);
      EXPECT_TRUE(c.result.significant);
    }
  }
  EXPECT_TRUE(found);
  Aggregate again = Summarise(Records(), Targets(), opt);
  EXPECT_DOUBLE_EQ(again.comparisons[0].result.diff.lo, agg.comparisons[0].result.diff.lo);
}

nlohmann::json SampleReport() {
  SuiteResult s;
  s.suite = "B";
  s.title = "cross-tool";
  s.status = "ran";
  s.targets = Targets();
  s.records = Records();
  RunOptions opt;
  s.aggregate = Summarise(s.records, s.targets, opt);
  s.checks.push_back({"same model bytes: raw", true, "abc"});
  RunInfo run;
  run.created_utc = "2026-11-24T07:00:00Z";
  run.command = {"corral", "bench"};
  run.options = opt;
  run.mode = "normalized";
  HostInfo host;
  host.cpu_model = "Test CPU";
  host.logical_cores = host.usable_cores = 2;
  host.gpu = "none detected";
  Provenance p;
  p.corral_commit = "abc123";
  p.llama_cpp_pinned_commit = "de3ff81";
  Workload w;
  w.name = "chat_turn";
  w.prompt = "hi";
  return ReportJson(run, host, p, {w}, {s, SkippedSuite("C", "needs the proxy")});
}

TEST(ReportJson, SchemaKeys) {
  nlohmann::json j = SampleReport();
  EXPECT_EQ(j["schema_version"], kSchemaVersion);
  for (const char* key :
       {"tool", "created_utc", "command", "options", "build", "host", "provenance", "workloads", "suites"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"cpu_model", "logical_cores", "usable_cores", "ram_bytes", "gpu", "kernel"}) {
    EXPECT_TRUE(j["host"].contains(key)) << key;
  }
  for (const char* key : {"corral_commit", "corral_source_commit", "llama_cpp_pinned_commit", "llama_server_version"}) {
    EXPECT_TRUE(j["provenance"].contains(key)) << key;
  }
  EXPECT_TRUE(j["build"].contains("optimized"));
  const auto& s = j["suites"][0];
  EXPECT_EQ(s["targets"][0]["argv"][0], "llama-server");
  EXPECT_EQ(s["cells"].size(), 2u);
  EXPECT_TRUE(s["cells"][0]["metrics"]["decode_tps"].contains("p99"));
  EXPECT_EQ(s["requests"].size(), Records().size());  // per-request records, warm-ups marked
  EXPECT_EQ(s["requests"][0]["warmup"], true);
  EXPECT_EQ(j["suites"][1]["status"], "skipped");
  EXPECT_EQ(j["suites"][1]["reason"], "needs the proxy");
}

TEST(RenderMarkdown, Tables) {
  const std::string md = RenderMarkdown(SampleReport());
  EXPECT_NE(md.find("## Suite B (cross-tool): ran"), std::string::npos);
  EXPECT_NE(md.find("| chat_turn | raw | 10/10 | 1004.5 "), std::string::npos) << md;
  EXPECT_NE(md.find("| chat_turn | we<&>ird | 10/11 |"), std::string::npos);
  EXPECT_NE(md.find("**ttft_ms"), std::string::npos);  // noisy flagged, not hidden
  EXPECT_NE(md.find("↳ error"), std::string::npos);
  EXPECT_NE(md.find("| chat_turn | decode_tps | raw | we<&>ird | -100.0 ["), std::string::npos);
  EXPECT_NE(md.find("paired ratio [95 % CI] (pairs)"), std::string::npos);
  EXPECT_NE(md.find("(10) |"), std::string::npos);  // 10 pairs: the failed request has no partner
  EXPECT_NE(md.find("## Suite C (proxy hop): skipped"), std::string::npos);
  EXPECT_NE(md.find("Reason: needs the proxy"), std::string::npos);
  EXPECT_NE(md.find("`llama-server -m x.gguf`"), std::string::npos);
}

// A small well-formedness check: balanced tags, quoted attributes, escaped '&' and '<'.
bool WellFormedXml(const std::string& s, std::string& why) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      size_t semi = s.find(';', i);
      const std::string ent = semi == std::string::npos ? "" : s.substr(i, semi - i + 1);
      if (ent != "&lt;" && ent != "&gt;" && ent != "&amp;" && ent != "&quot;") {
        why = "bad entity at " + std::to_string(i);
        return false;
      }
      i = semi + 1;
      continue;
    }
    if (s[i] != '<') {
      ++i;
      continue;
    }
    size_t end = s.find('>', i);
    if (end == std::string::npos) {
      why = "unclosed tag";
      return false;
    }
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) {
      why = "'<' inside a tag";
      return false;
    }
    size_t quotes = static_cast<size_t>(std::count(tag.begin(), tag.end(), '"'));
    if (quotes % 2 != 0) {
      why = "unbalanced quotes in <" + tag + ">";
      return false;
    }
    if (!tag.empty() && tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) {
        why = "mismatched </" + tag.substr(1) + ">";
        return false;
      }
      stack.pop_back();
    } else if (!tag.empty() && tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find(' ')));
    }
    i = end + 1;
  }
  if (!stack.empty()) why = "unclosed <" + stack.back() + ">";
  return stack.empty();
}

TEST(RenderSvgChart, WellFormedWithBars) {
  const std::string svg = RenderSvgChart(SampleReport(), "decode_tps", "Decode & <tokens>");
  std::string why;
  EXPECT_TRUE(WellFormedXml(svg, why)) << why << "\n" << svg;
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find("we&lt;&amp;&gt;ird"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 5, true);
  size_t rects = 0;
  for (size_t p = svg.find("<rect x="); p != std::string::npos; p = svg.find("<rect x=", p + 1)) ++rects;
  EXPECT_EQ(rects, 2u);  // one bar per target
  const std::string empty = RenderSvgChart(nlohmann::json::object(), "ttft_ms", "t");
  EXPECT_TRUE(WellFormedXml(empty, why)) << why;
  EXPECT_NE(empty.find("no data"), std::string::npos);
}

}  // namespace
}  // namespace corral::bench
