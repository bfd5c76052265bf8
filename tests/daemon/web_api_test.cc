// The daemon's side of the web dashboard's Bench and Logs pages (issue 16), without a browser
// or a model: report ids and listing (traversal, symbolic links, oversized and broken files),
// the report summary, quick runs against a scripted stand-in for `corral bench`, and a log
// followed live (cut lines, rotation, the watcher leaving, the daemon draining).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "daemon/bench_runs.h"
#include "daemon/log_follow.h"
#include "support/test_support.h"

namespace corral::daemon {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

json SampleReport() {
  json req = json::array();
  req.push_back({{"target", "direct"}, {"warmup", true}, {"ttft_ms", 99.0}, {"decode_tps", 1.0}});
  for (int i = 0; i < 3; ++i) {
    req.push_back({{"target", "direct"}, {"warmup", false}, {"ttft_ms", 1.0 + i}, {"decode_tps", 500.0}, {"ok", true}});
    req.push_back({{"target", "proxy"}, {"warmup", false}, {"ttft_ms", 1.2 + i}, {"decode_tps", 495.0}, {"ok", true}});
  }
  json cell = {{"target", "proxy"},
               {"workload", "chat_turn"},
               {"concurrency", 1},
               {"errors", 0},
               {"metrics", {{"ttft_ms", {{"median", 2.2}, {"p10", 1.2}, {"p90", 3.2}, {"n", 3}, {"stddev", 1}}}}}};
  json suite = {{"suite", "C"}, {"title", "proxy"}, {"status", "ok"}};
  suite["targets"] = json::array({json{{"name", "direct"}, {"model", "tiny"}}});
  suite["cells"] = json::array({cell});
  suite["hop_summary"] =
      json::array({json{{"target", "proxy"}, {"added_ttft_p50_ms", 0.2}, {"paired_decode_ratio", {{"lo", 1}}}}});
  suite["requests"] = req;
  json report = {{"schema_version", 1},
                 {"created_utc", "2026-12-02T10:00:00Z"},
                 {"host", {{"cpu_model", "AMD EPYC"}, {"logical_cores", 2}, {"nested", {{"x", 1}}}}}};
  report["suites"] = json::array({suite});
  return report;
}

class BenchReportsTest : public ::testing::Test {
 protected:
  // A run folder as `corral bench` writes it.
  std::string MakeRun(const std::string& root, const std::string& id, const std::string& results) {
    EXPECT_TRUE(MakeDirs(root + "/" + id).ok());
    Write(root + "/" + id + "/results.json", results);
    Write(root + "/" + id + "/report.md", "# report " + id + "\n");
    return root + "/" + id;
  }
  testing::TempDir dir_;
};

TEST_F(BenchReportsTest, IdsAreFolderNamesNeverPaths) {
  for (const char* ok : {"20261202T050000Z-lan", "a", "A.b_c-d", "20261124T080650Z"}) {
    EXPECT_TRUE(IsBenchReportId(ok)) << ok;
  }
  for (const char* bad :
       {"", ".", "..", "../x", "a/b", "/etc", ".hidden", "-rf", "_x", "a..b", "a b", "a%2Fb", "a\\b", "a\nb"}) {
    EXPECT_FALSE(IsBenchReportId(bad)) << bad;
  }
  EXPECT_TRUE(IsBenchReportId(std::string(128, 'a')));
  EXPECT_FALSE(IsBenchReportId(std::string(129, 'a')));
}

TEST_F(BenchReportsTest, ListingSkipsLinksHiddenAndIncompleteFoldersAndTheFirstRootWins) {
  const std::string a = dir_.File("state"), b = dir_.File("repo");
  MakeRun(a, "20261202T010000Z", "{}");
  MakeRun(b, "20261202T010000Z", "{\"from\":\"repo\"}");  // same name: the first root's wins
  MakeRun(b, "20261124T080650Z", "{}");
  ASSERT_TRUE(MakeDirs(b + "/20261125T000000Z").ok());  // no results.json
  MakeRun(b, ".hidden", "{}");
  ASSERT_EQ(::symlink(b.c_str(), (a + "/linked").c_str()), 0);  // a link to a folder
  ASSERT_TRUE(MakeDirs(a + "/linkedfile").ok());
  ASSERT_EQ(::symlink("/etc/hostname", (a + "/linkedfile/results.json").c_str()), 0);
  auto list = ListBenchReports({a, b, dir_.File("missing")});
  std::vector<std::string> ids;
  for (const auto& e : list) ids.push_back(e.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"20261124T080650Z", "20261202T010000Z"}));
  for (const auto& e : list) {
    if (e.id == "20261202T010000Z") {
      EXPECT_EQ(e.dir, a);
    }
  }
}

TEST_F(BenchReportsTest, LoadRefusesBadIdsUnknownLinkedBrokenAndOversizedReports) {
  const std::string root = dir_.File("state");
  MakeRun(root, "good", SampleReport().dump());
  MakeRun(root, "broken", "{not json");
  MakeRun(root, "deep", std::string(100, '[') + std::string(100, ']'));
  const std::string big = MakeRun(root, "big", "{}");
  ASSERT_EQ(::truncate((big + "/results.json").c_str(), static_cast<off_t>(kMaxBenchReportBytes + 1)), 0);
  ASSERT_EQ(::symlink((root + "/good").c_str(), (root + "/alias").c_str()), 0);
  const std::vector<std::string> dirs = {root};
  EXPECT_EQ(LoadBenchReport(dirs, "../state/good").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadBenchReport(dirs, "..").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadBenchReport(dirs, std::string(5000, 'a')).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadBenchReport(dirs, "nothere").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(LoadBenchReport(dirs, "alias").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(LoadBenchReport(dirs, "broken").ok());
  EXPECT_FALSE(LoadBenchReport(dirs, "deep").ok());
  auto oversized = LoadBenchReport(dirs, "big");
  EXPECT_FALSE(oversized.ok());
  auto good = LoadBenchReport(dirs, "good");
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ((*good)["id"], "good");
  EXPECT_EQ((*good)["markdown"], "# report good\n");
}

TEST_F(BenchReportsTest, SummaryKeepsWhatThePageDrawsAndDropsWarmupsAndNesting) {
  json s = SummarizeBenchReport(SampleReport());
  EXPECT_EQ(s["created_utc"], "2026-12-02T10:00:00Z");
  EXPECT_EQ(s["host"]["cpu_model"], "AMD EPYC");
  EXPECT_FALSE(s["host"].contains("nested"));
  ASSERT_EQ(s["suites"].size(), 1U);
  const json& suite = s["suites"][0];
  EXPECT_EQ(suite["model"], "tiny");
  EXPECT_EQ(suite["requests"].size(), 6U);  // the warm-up left out
  EXPECT_EQ(suite["cells"][0]["metrics"]["ttft_ms"]["median"], 2.2);
  EXPECT_FALSE(suite["cells"][0]["metrics"]["ttft_ms"].contains("stddev"));
  EXPECT_EQ(suite["hop_summary"][0]["added_ttft_p50_ms"], 0.2);
  EXPECT_FALSE(suite["hop_summary"][0].contains("paired_decode_ratio"));
  // Anything of the wrong shape is left out, never an error.
  EXPECT_TRUE(SummarizeBenchReport(json::array()).empty());
  json odd = json::object();
  odd["suites"] = json::array({json(1), json("x"), json{{"cells", 5}, {"requests", {{"a", 1}}}}});
  json o = SummarizeBenchReport(odd);
  ASSERT_EQ(o["suites"].size(), 1U);
  EXPECT_TRUE(o["suites"][0]["cells"].empty());
  // Requests are capped.
  json many = SampleReport();
  json& reqs = many["suites"][0]["requests"];
  for (size_t i = 0; i < kMaxBenchRequestsShown + 10; ++i) reqs.push_back({{"target", "proxy"}, {"ttft_ms", 1.0}});
  EXPECT_EQ(SummarizeBenchReport(many)["suites"][0]["requests"].size(), kMaxBenchRequestsShown);
}

// A stand-in for `corral bench`: its last argument is --out's folder.
class BenchRunsTest : public BenchReportsTest {
 protected:
  BenchRunsOptions Options(const std::string& script) {
    BenchRunsOptions o;
    o.report_dirs = {dir_.File("state/bench")};
    o.command = {"/bin/sh", "-c", script, "corral"};
    o.publish = [this](std::string line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(json::parse(line));
      cv_.notify_all();
    };
    return o;
  }
  // The published run whose state is not "running" (bounded wait).
  json Finished() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return !lines_.empty() && lines_.back()["run"]["state"] != "running"; });
    return lines_.empty() ? json() : lines_.back()["run"];
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> lines_;
};

TEST_F(BenchRunsTest, ARunWritesAReportThatTheListAndTheFeedName) {
  const std::string script =
      "for a; do out=$a; done; mkdir -p \"$out/20991231T000000Z\" && echo '{}' > "
      "\"$out/20991231T000000Z/results.json\" "
      "&& echo progress >&2 && printf '{\\n  \"dir\": \"%s\",\\n  \"ok\": true\\n}\\n' \"$out/20991231T000000Z\"";
  BenchRuns runs(Options(script));
  EXPECT_EQ(runs.Run()["state"], "none");
  ASSERT_TRUE(runs.Start("alpha", "http://127.0.0.1:1", "http://127.0.0.1:2", 3).ok());
  json run = Finished();
  EXPECT_EQ(run["state"], "done") << run.dump();
  EXPECT_EQ(run["id"], "20991231T000000Z");
  EXPECT_EQ(run["model"], "alpha");
  EXPECT_EQ(run["runs"], 3);
  EXPECT_EQ(lines_.front()["t"], "bench");
  EXPECT_EQ(lines_.front()["run"]["state"], "running");
  json list = runs.List();
  ASSERT_EQ(list["reports"].size(), 1U);
  EXPECT_EQ(list["reports"][0]["id"], "20991231T000000Z");
  EXPECT_FALSE(list["reports"][0].contains("dir"));  // folders stay in the daemon
  EXPECT_EQ(list["run"]["state"], "done");
  // The command it ran: quick suite C with the urls, the model and the runs.
  EXPECT_EQ(runs.Start("alpha", "u", "v", 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runs.Start("alpha", "u", "v", 101).code(), StatusCode::kInvalidArgument);
}

TEST_F(BenchRunsTest, OneRunAtATimeAndStopKillsIt) {
  BenchRuns runs(Options("exec sleep 60"));
  ASSERT_TRUE(runs.Start("alpha", "u", "v", 1).ok());
  Status again = runs.Start("beta", "u", "v", 1);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("alpha"), std::string::npos) << again.message();
  runs.Stop();
  EXPECT_EQ(runs.Run()["state"], "cancelled");
}

TEST_F(BenchRunsTest, AFailedRunSaysWhy) {
  BenchRuns runs(Options("echo 'bench: the proxy did not answer' >&2; exit 3"));
  ASSERT_TRUE(runs.Start("alpha", "u", "v", 1).ok());
  json run = Finished();
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(run["exit_code"], 3);
  EXPECT_NE(run["error"].get<std::string>().find("the proxy did not answer"), std::string::npos) << run.dump();
}

TEST(LogFollowTest, LinesAreSplitAndCutAtTheBound) {
  LogLineSplitter s(8);
  std::vector<LogLineSplitter::Line> out;
  s.Add("short\r\nexactly8\n0123456789abc", out);
  EXPECT_EQ(s.pending(), 8U);  // the long line holds at most the bound
  s.Add("def\nnext", out);
  ASSERT_EQ(out.size(), 3U);
  EXPECT_EQ(out[0].text, "short");
  EXPECT_FALSE(out[0].cut);
  EXPECT_EQ(out[1].text, "exactly8");
  EXPECT_FALSE(out[1].cut);
  EXPECT_EQ(out[2].text, "01234567");
  EXPECT_TRUE(out[2].cut);
  EXPECT_EQ(s.pending(), 4U);
  EXPECT_EQ(LogLineJson({"a\"b\xff", true}), "{\"cut\":true,\"line\":\"a\\\"b\xef\xbf\xbd\"}\n");
  auto last = LastLines("tial\nl1\nl2\nl3\n", /*from_start=*/false, 2, 100);
  ASSERT_EQ(last.size(), 2U);
  EXPECT_EQ(last[0].text, "l2");
  EXPECT_EQ(last[1].text, "l3");
  EXPECT_EQ(LastLines("l1\nl2\n", true, 10, 100).size(), 2U);
  EXPECT_TRUE(LastLines("l1\n", true, 0, 100).empty());
}

// Runs FollowLog's stream on a thread, collecting what it writes.
struct Watcher {
  std::mutex mu;
  std::condition_variable cv;
  std::string got;
  std::atomic<bool> stop{false};
  std::atomic<bool> leave{false};
  std::thread thread;
  void Run(control::Response r) {
    thread = std::thread([this, r = std::move(r)] {
      r.stream([this](std::string_view bytes) {
        std::lock_guard<std::mutex> lock(mu);
        got.append(bytes);
        cv.notify_all();
        return !leave.load();
      });
      std::lock_guard<std::mutex> lock(mu);
      got.append("<end>");
      cv.notify_all();
    });
  }
  bool WaitFor(const std::string& text) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 20s, [&] { return got.find(text) != std::string::npos; });
  }
  ~Watcher() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

TEST(LogFollowTest, TailThenNewLinesThenRotationUntilTheDaemonDrains) {
  testing::TempDir dir;
  const std::string log = dir.File("alpha.log");
  std::string old;
  for (int i = 0; i < 50; ++i) old += "old line " + std::to_string(i) + "\n";
  Write(log, old + "partial");
  LogFollowOptions o;
  o.wake = 50ms;
  o.heartbeat = 100ms;
  o.max_line_bytes = 64;
  Watcher w;
  w.Run(FollowLog(
      "alpha", log, true, 3, [&w] { return w.stop.load(); }, o));
  ASSERT_TRUE(w.WaitFor("old line 49"));
  EXPECT_NE(w.got.find(R"({"name":"alpha","path":")"), std::string::npos) << w.got;
  EXPECT_EQ(w.got.find("old line 46"), std::string::npos) << "only the last 3 lines";
  EXPECT_NE(w.got.find("old line 47"), std::string::npos);
  {
    std::ofstream f(log, std::ios::app);
    f << " finished\n" << std::string(1000, 'x') << "\nmarker\n";
  }
  ASSERT_TRUE(w.WaitFor("marker")) << w.got;
  EXPECT_NE(w.got.find(R"({"line":"partial finished"})"), std::string::npos) << w.got;
  EXPECT_NE(w.got.find(R"({"cut":true,"line":")" + std::string(64, 'x') + "\"}"), std::string::npos);
  // A restart replaces the file: the new one is followed from its start.
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0);
  Write(log, "fresh start\n");
  ASSERT_TRUE(w.WaitFor("fresh start")) << w.got;
  EXPECT_NE(w.got.find(R"({"t":"rotated"})"), std::string::npos);
  w.stop = true;
  ASSERT_TRUE(w.WaitFor("<end>"));
}

TEST(LogFollowTest, AWatcherThatLeftEndsTheStreamAtTheNextHeartbeat) {
  testing::TempDir dir;
  const std::string log = dir.File("alpha.log");
  Write(log, "one\n");
  LogFollowOptions o;
  o.wake = 20ms;
  o.heartbeat = 50ms;
  Watcher w;
  w.leave = true;  // every write "fails": the peer is gone
  w.Run(FollowLog(
      "alpha", log, false, 10, [] { return false; }, o));
  EXPECT_TRUE(w.WaitFor("<end>"));
  EXPECT_NE(w.got.find("\"running\":false"), std::string::npos);
}

}  // namespace
}  // namespace corral::daemon
