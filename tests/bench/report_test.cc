// Report generation: the JSON keys of schema 1, the Markdown tables, well-formed SVG; and the
// aggregation rules behind them (warm-ups dropped, errors counted, noisy cells flagged).
#include <gtest/gtest.h>

#include <cmath>

#include "bench/nginx.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/suites.h"

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

TEST(Summarise, ComparesATargetAlsoWithItsVsTarget) {
  // direct, proxy, tls (vs=proxy): tls is 5 % slower to decode than the proxy, which is
  // 10 % slower than direct; each pair's ratio is exact, so the paired ratios are too.
  Target direct, proxy, tls;
  direct.name = "direct";
  proxy.name = "proxy";
  tls.name = "tls";
  tls.compare_to = "proxy";
  std::vector<RequestRecord> v;
  for (int i = 0; i < 8; ++i) {
    const double base = 1000 + 37 * i;
    v.push_back(Rec("direct", i, 10, base));
    v.push_back(Rec("proxy", i, 10, base * 0.9));
    v.push_back(Rec("tls", i, 10, base * 0.9 * 0.95));
  }
  Aggregate agg = Summarise(v, {direct, proxy, tls}, RunOptions{});
  std::map<std::string, const CellComparison*> decode;  // "baseline/target"
  for (const auto& c : agg.comparisons) {
    if (c.metric == "decode_tps") decode[c.baseline + "/" + c.target] = &c;
  }
  ASSERT_EQ(decode.size(), 3u);
  EXPECT_NEAR(decode.at("direct/proxy")->paired_ratio.estimate, 0.9, 1e-12);
  EXPECT_NEAR(decode.at("direct/tls")->paired_ratio.estimate, 0.855, 1e-12);
  EXPECT_NEAR(decode.at("proxy/tls")->paired_ratio.estimate, 0.95, 1e-12);
  EXPECT_EQ(decode.at("proxy/tls")->pairs, 8);
  // The hop summary gets the second row too, and the report shows its baseline.
  SuiteResult s;
  s.suite = "C";
  s.title = "proxy hop";
  s.status = "ran";
  s.targets = {direct, proxy, tls};
  s.records = v;
  s.aggregate = agg;
  RunInfo run;
  run.options = RunOptions{};
  const nlohmann::json r = ReportJson(run, HostInfo{}, Provenance{}, {}, {s});
  const auto& rows = r["suites"][0]["hop_summary"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2]["baseline"], "proxy");
  EXPECT_EQ(rows[2]["target"], "tls");
  EXPECT_NEAR(rows[2]["paired_decode_ratio"]["estimate"].get<double>(), 0.95, 1e-12);
  EXPECT_NE(RenderMarkdown(r).find("| chat_turn | tls | proxy | 8/8 |"), std::string::npos) << RenderMarkdown(r);
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

// A suite C result with the nginx target, a burst cell, the footprint and the cold start.
SuiteResult SuiteCResult(bool nginx_present) {
  SuiteResult s;
  s.suite = "C";
  s.title = "proxy hop";
  s.status = "ran";
  Target direct, proxy, nginx;
  direct.name = "direct";
  proxy.name = "proxy";
  nginx.name = "nginx";
  s.targets = {direct, proxy};
  if (nginx_present) s.targets.push_back(nginx);
  for (int i = 0; i < 6; ++i) {
    for (const auto& t : s.targets) {
      const double added = t.name == "direct" ? 0 : (t.name == "proxy" ? 0.05 : 0.3);
      RequestRecord r = Rec(t.name, i, 10 + added, t.name == "direct" ? 1000 : 990);
      s.records.push_back(r);
      for (int stream = 0; stream < 4; ++stream) {  // the load cell: 4 streams per run
        RequestRecord b = Rec(t.name, i, 20 + added, 500);
        b.workload = "burst@4";
        b.concurrency = 4;
        b.stream = stream;
        b.e2e_ms = t.name == "direct" ? 100 : 101;
        b.completion_tokens = 32;
        if (t.name == "proxy" && i == 0 && stream == 0) {
          b.ok = false;
          b.error = "HTTP 502";
        }
        s.records.push_back(b);
      }
    }
  }
  s.aggregate = Summarise(s.records, s.targets, RunOptions{});
  NginxReference ref;
  if (nginx_present) {
    ref.status = "ran";
    ref.binary = "/usr/sbin/nginx";
    ref.version = "1.22.1";
    ref.version_line = "nginx version: nginx/1.22.1";
    ref.config = "daemon off;\nproxy_buffering off;\n";
  } else {
    ref.status = "absent";
    ref.reason = std::string("no nginx on PATH; to measure the reference proxy: ") + kNginxInstallHint;
  }
  s.nginx = ref;
  Footprint f;
  f.status = "ran";
  f.daemon_pid = 42;
  f.requested = f.opened = f.open_at_end = f.answered_again = 1000;
  f.idle_hold_s = 5;
  f.rss_idle_before = 8 << 20;
  f.rss_with_idle = (8 << 20) + 1000 * 1024;
  f.rss_peak_streams = f.rss_with_idle + 64 * 16 * 1024;
  f.streams = 64;
  f.per_idle_connection_bytes = 1024;
  f.per_stream_bytes = 16 * 1024;
  f.nofile_soft_before = 1024;
  f.nofile_soft = f.nofile_hard = 4096;
  s.footprint = f;
  ColdStart cs;
  cs.status = "ran";
  cs.model_ref = "/models/m.gguf";
  cs.repetitions = 2;
  for (double b : {4.0, 6.0}) {
    ColdStartRun r;
    r.ok = true;
    r.send_to_first_token_ms = 100 + b;
    r.send_to_listening_ms = 100;
    r.listening_to_first_token_ms = b;
    r.listening_to_health_ms = 1;
    r.health_to_first_token_ms = b - 1;
    cs.runs.push_back(r);
  }
  ColdStartRun failed;
  failed.error = "no 'listening on' line appeared";
  cs.runs.push_back(failed);
  std::vector<double> v = {4, 6};
  cs.listening_to_first_token_ms = Summarize(v);
  cs.send_to_first_token_ms = Summarize({104, 106});
  cs.health_to_first_token_ms = Summarize({3, 5});
  cs.listening_to_health_ms = Summarize({1, 1});
  s.cold_start = cs;
  return s;
}

nlohmann::json SuiteCReport(bool nginx_present) {
  RunInfo run;
  run.options = RunOptions{};
  return ReportJson(run, HostInfo{}, Provenance{}, {}, {SuiteCResult(nginx_present)});
}

TEST(ReportJson, SuiteCPartsCarryTheirNumbersAndMethod) {
  const nlohmann::json c = SuiteCReport(true)["suites"][0];
  // Hop summary: every non-direct target against direct, per cell.
  ASSERT_EQ(c["hop_summary"].size(), 4u);  // {chat_turn, burst@4} x {proxy, nginx}
  for (const auto& h : c["hop_summary"]) {
    EXPECT_EQ(h["baseline"], "direct");
    EXPECT_TRUE(h.contains("added_ttft_p50_ms"));
    EXPECT_TRUE(h.contains("added_ttft_p99_ms"));
    EXPECT_TRUE(h["paired_decode_ratio"]["valid"].get<bool>());
    if (h["workload"] == "chat_turn" && h["target"] == "nginx") {
      EXPECT_NEAR(h["added_ttft_p50_ms"].get<double>(), 0.3, 1e-9);
      EXPECT_NEAR(h["paired_decode_ratio"]["estimate"].get<double>(), 0.99, 1e-9);
    }
  }
  // Load: the highest burst level, errors counted, aggregate ratio against direct.
  ASSERT_TRUE(c["load"].is_object());
  EXPECT_EQ(c["load"]["concurrency"], 4);
  ASSERT_EQ(c["load"]["targets"].size(), 3u);
  EXPECT_EQ(c["load"]["targets"][1]["target"], "proxy");
  EXPECT_EQ(c["load"]["targets"][1]["errors"], 1);
  EXPECT_TRUE(c["load"]["targets"][2]["aggregate_tps_ratio"]["valid"].get<bool>());
  // nginx: version and exact config.
  EXPECT_EQ(c["nginx"]["status"], "ran");
  EXPECT_EQ(c["nginx"]["version"], "1.22.1");
  EXPECT_EQ(c["nginx"]["config"], "daemon off;\nproxy_buffering off;\n");
  // Footprint.
  const auto& f = c["footprint"];
  EXPECT_EQ(f["requested"], 1000);
  EXPECT_EQ(f["open_at_end"], 1000);
  EXPECT_EQ(f["rss_bytes"]["idle_before"], 8 << 20);
  EXPECT_EQ(f["per_stream_bytes"], 16 * 1024);
  EXPECT_EQ(f["nofile"]["bench_soft_before"], 1024);
  EXPECT_FALSE(f["method"].get<std::string>().empty());
  // Cold start: per-run values, NaN (not seen) as null, medians.
  const auto& cs = c["cold_start"];
  EXPECT_EQ(cs["target_ms"], 30);
  ASSERT_EQ(cs["runs"].size(), 3u);
  EXPECT_TRUE(cs["runs"][2]["listening_to_first_token_ms"].is_null());
  EXPECT_DOUBLE_EQ(cs["listening_to_first_token_ms"]["median"].get<double>(), 5.0);
  EXPECT_EQ(cs["listening_to_first_token_ms"]["n"], 2);
  EXPECT_FALSE(cs["method"].get<std::string>().empty());
}

TEST(RenderMarkdown, SuiteCPartsAreShown) {
  const std::string md = RenderMarkdown(SuiteCReport(true));
  for (const char* s : {"### Proxy hop, relative to direct", "| chat_turn | nginx | direct | 6/6 | 0.300 |",
                        "### Proxy under load", "| proxy | 23/24 | 1 |", "### nginx reference: ran",
                        "nginx version: nginx/1.22.1", "```nginx\ndaemon off;\nproxy_buffering off;\n```",
                        "### Daemon footprint: ran", "| idle keep-alive connections opened / requested | 1000 / 1000",
                        "8.00 MiB", "16.0 KiB per stream", "1024 → 4096 / 4096", "### Cold start: ran",
                        "| (b) listening line → first token | 5.00 |", "run 3 failed: no 'listening on' line"}) {
    EXPECT_NE(md.find(s), std::string::npos) << s << "\n" << md;
  }
}

TEST(RenderMarkdown, AbsentNginxSaysHowToInstallIt) {
  const nlohmann::json r = SuiteCReport(false);
  EXPECT_EQ(r["suites"][0]["nginx"]["status"], "absent");
  const std::string md = RenderMarkdown(r);
  EXPECT_NE(md.find("### nginx reference: absent"), std::string::npos) << md;
  EXPECT_NE(md.find("apt-get install nginx-light"), std::string::npos) << md;
}

TEST(ColdStart, ChildLogListeningToFirstTaskOnItsOwnClock) {
  const std::string log =
      "0.00.162.808 I srv  llama_server: model loaded\n"
      "0.00.162.848 I srv  llama_server: listening on http://127.0.0.1:46021\n"
      "0.00.169.152 I slot get_availabl: id  3 | task -1 | selected slot by LRU, t_last = -1\n"
      "0.00.169.264 I slot launch_slot_: id  3 | task 0 | processing task, is_child = 0\n"
      "0.00.170.000 I slot launch_slot_: id  2 | task 1 | processing task, is_child = 0\n";
  EXPECT_NEAR(ChildListeningToFirstTaskMs(log), 6.416, 1e-9);
  // Minutes roll over into the stamp's first field.
  EXPECT_NEAR(ChildListeningToFirstTaskMs("0.59.999.000 I listening on http://127.0.0.1:1\n"
                                          "1.00.001.500 I slot launch_slot_: id 0\n"),
              2.5, 1e-9);
  EXPECT_TRUE(std::isnan(ChildListeningToFirstTaskMs("0.00.001.000 I slot launch_slot_: before listening\n")));
  EXPECT_TRUE(std::isnan(ChildListeningToFirstTaskMs("0.00.001.000 I listening on http://127.0.0.1:1\n")));
  EXPECT_TRUE(std::isnan(ChildListeningToFirstTaskMs("")));
}

TEST(RenderMarkdown, LoadSectionSaysHowToGetIt) {
  SuiteResult s = SuiteCResult(false);
  std::erase_if(s.records, [](const RequestRecord& r) { return r.workload != "chat_turn"; });
  s.aggregate = Summarise(s.records, s.targets, RunOptions{});
  RunInfo run;
  const nlohmann::json r = ReportJson(run, HostInfo{}, Provenance{}, {}, {s});
  EXPECT_TRUE(r["suites"][0]["load"].is_null());
  EXPECT_NE(RenderMarkdown(r).find("add `--workload burst`"), std::string::npos);
}

// Suite S (issue 17): acceptance summed over the draft target's measured requests, the
// paired decode ratio draft / no-draft, and the table that shows them.
TEST(SuiteS, AcceptanceRatioAndReport) {
  Target base, draft;
  base.name = "no-draft";
  draft.name = "draft";
  std::vector<RequestRecord> v;
  for (int run = -1; run < 8; ++run) {
    RequestRecord b = Rec("no-draft", run, 10, 100);
    RequestRecord d = Rec("draft", run, 10, 150);
    b.workload = d.workload = "agent_decode";
    d.server_draft_n = run < 0 ? 1000 : 40;  // the warm-up's counts must not count
    d.server_draft_accepted = run < 0 ? 0 : 30;
    d.has_server_timings = true;
    v.push_back(b);
    v.push_back(d);
  }
  RequestRecord no_counts = Rec("draft", 8, 10, 150);  // a response without draft counts
  no_counts.workload = "agent_decode";
  v.push_back(no_counts);
  const auto rows = SummariseSpec(v, "draft");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].workload, "agent_decode");
  EXPECT_EQ(rows[0].requests, 9);
  EXPECT_EQ(rows[0].with_counts, 8);
  EXPECT_EQ(rows[0].drafted, 320);
  EXPECT_EQ(rows[0].accepted, 240);
  EXPECT_DOUBLE_EQ(rows[0].acceptance, 0.75);
  EXPECT_TRUE(SummariseSpec(v, "nobody").empty());

  SuiteSOptions so;
  so.draft_path = "/m/d.gguf";
  so.draft_max = 8;
  so.knobs.gpu_layers = 99;
  EXPECT_EQ(DraftArgs(so), (std::vector<std::string>{"--spec-type", "draft-simple", "--spec-draft-model", "/m/d.gguf",
                                                     "--spec-draft-n-max", "8", "--spec-draft-ngl", "99"}));
  so.mode = "defaults";
  so.draft_max = 0;
  EXPECT_EQ(DraftArgs(so),
            (std::vector<std::string>{"--spec-type", "draft-simple", "--spec-draft-model", "/m/d.gguf"}));

  SuiteResult s;
  s.suite = "S";
  s.title = "speculative";
  s.status = "ran";
  s.targets = {base, draft};
  s.records = v;
  s.aggregate = Summarise(v, s.targets, RunOptions{});
  s.spec = SpecSummary{"/m/t.gguf", "/m/d.gguf", "abcdef0123456789ff", DraftArgs(so), rows};
  RunInfo run;
  const nlohmann::json r = ReportJson(run, HostInfo{}, Provenance{}, {}, {s});
  const auto& spec = r["suites"][0]["spec"];
  ASSERT_EQ(spec["rows"].size(), 1u);
  const auto& row = spec["rows"][0];
  EXPECT_DOUBLE_EQ(row["acceptance"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(row["decode_tps_no_draft"].get<double>(), 100);
  EXPECT_DOUBLE_EQ(row["decode_tps_draft"].get<double>(), 150);
  EXPECT_NEAR(row["decode_ratio"]["estimate"].get<double>(), 1.5, 1e-12);
  EXPECT_EQ(row["pairs"], 8);
  EXPECT_FALSE(spec["method"].get<std::string>().empty());
  // The request records keep the raw counts.
  int with_counts = 0;
  for (const auto& rec : r["suites"][0]["requests"]) {
    if (rec.contains("server_timings") && rec["server_timings"].value("draft_n", -1) == 40) ++with_counts;
  }
  EXPECT_EQ(with_counts, 8);
  const std::string md = RenderMarkdown(r);
  for (const char* want : {"## Suite S (speculative): ran", "--spec-type draft-simple --spec-draft-model /m/d.gguf",
                           "| agent_decode | 100.0 | 150.0 | 1.500 [1.500, 1.500] (8) | 75.0 % | 320 (240) |"}) {
    EXPECT_NE(md.find(want), std::string::npos) << want << "\n" << md;
  }
}

}  // namespace
}  // namespace corral::bench
