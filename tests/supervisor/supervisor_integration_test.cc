// The lifecycle end to end: the corral binary, a daemon started on demand, and the real
// pinned llama-server on tiny synthetic models. Every test has its own XDG dirs (so its own
// daemon, socket, state and logs) and stops its daemon at the end.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/fs.h"
#include "support/test_support.h"

extern char** environ;

namespace corral {
namespace {

using nlohmann::json;
using testing::RunResult;
using testing::TempDir;

using testing::kTinyDims;

// True when the process is gone or a zombie waiting for init (it no longer runs).
bool Gone(int pid) {
  auto stat = ReadFileBounded("/proc/" + std::to_string(pid) + "/stat", 1 << 16);
  if (!stat.ok()) return true;
  size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
}

bool WaitGone(int pid, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Gone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string Cmdline(int pid) {
  auto c = ReadFileBounded("/proc/" + std::to_string(pid) + "/cmdline", 1 << 20);
  return c.ok() ? *c : std::string();
}

class LifecycleCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"XDG_RUNTIME_DIR", dir_.File("run")},
            {"XDG_STATE_HOME", dir_.File("state")},
            {"XDG_CONFIG_HOME", dir_.File("config")},
            {"XDG_DATA_HOME", dir_.File("data")},
            {"CORRAL_LLAMA_SERVER", testing::PinnedLlamaServer()},
            // Tests run in parallel: each daemon's proxy takes a free port.
            {"CORRAL_LISTEN", "127.0.0.1:0"},
            // The catalog scans the caches of other tools under $HOME: keep them empty.
            {"HOME", dir_.File("home")},
            {"CORRAL_CACHE_DIR", dir_.File("cache")}};
    model_ = testing::MakeModel(dir_.path(), "tiny.gguf", kTinyDims);
    ASSERT_FALSE(model_.empty());
  }
  void TearDown() override { Corral({"daemon", "stop"}); }

  RunResult Corral(const std::vector<std::string>& args, std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = env_;
    for (auto& [k, v] : extra) env[k] = v;
    return testing::RunCorral(args, env);
  }
  json Json(const std::vector<std::string>& args, std::map<std::string, std::string> extra = {}) {
    RunResult r = Corral(args, std::move(extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  json Ps() { return Json({"ps", "--json"})["models"]; }
  json PsModel(const std::string& name) {
    for (const auto& m : Ps()) {
      if (m["name"] == name) return m;
    }
    return json();
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  std::string model_;
};

TEST_F(LifecycleCliTest, StartPsLogsStop) {
  json started = Json({"start", model_, "--json", "--ctx", "256"});
  const json& m = started["model"];
  EXPECT_EQ(m["state"], "ready");
  const std::string name = m["name"];
  EXPECT_EQ(name, "corral-synth-tiny-4m-f16");  // the catalog's canonical name
  int pid = m["pid"];
  int port = m["port"];
  ASSERT_GT(pid, 0);
  ASSERT_GT(port, 0);
  // The proxy's real address (the test config asks for port 0).
  const std::string proxy_url = started["proxy_url"];
  EXPECT_TRUE(proxy_url.starts_with("http://127.0.0.1:") && proxy_url.ends_with("/v1")) << proxy_url;
  EXPECT_EQ(proxy_url.find(":0/"), std::string::npos) << proxy_url;
  auto health = testing::Http("GET", port, "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);

  json listed = PsModel(name);
  EXPECT_EQ(listed["pid"], pid);
  EXPECT_EQ(listed["url"], "http://127.0.0.1:" + std::to_string(port));
  EXPECT_GT(listed["rss_bytes"].get<uint64_t>(), 0u);

  RunResult plain = Corral({"ps"});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.out.rfind("NAME\tSTATE\tPID\tURL", 0), 0u) << plain.out;  // TSV when piped

  RunResult logs = Corral({"logs", name, "-n", "3"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("listening on http://127.0.0.1:" + std::to_string(port)), std::string::npos) << logs.out;
  EXPECT_LE(std::count(logs.out.begin(), logs.out.end(), '\n'), 3);

  RunResult status = Corral({"status"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find(name), std::string::npos);

  RunResult stop = Corral({"stop", name});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(WaitGone(pid));
  EXPECT_TRUE(Ps().empty());
  // Its log stays readable after the stop.
  EXPECT_EQ(Corral({"logs", name, "-n", "1"}).exit_code, 0);
}

TEST_F(LifecycleCliTest, DryRunPrintsTheExactArgvAndLaunchesNothing) {
  RunResult r = Corral({"start", model_, "--dry-run", "--ctx", "256", "--", "--threads", "1", "--temp", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string first = r.out.substr(0, r.out.find('\n'));
  json plan = Json({"start", model_, "--dry-run", "--json"})["plan"];
  const std::string name = plan.value("model", std::string());  // passed as --alias (issue 11)
  ASSERT_FALSE(name.empty());
  // The one argv addition Corral makes besides --alias: the slot save directory of kv_keep
  // (issue 17, docs/kv.md), named by the model and a 16-hex identity of the cache-relevant argv.
  const std::string kv = model_.substr(0, model_.rfind('/')) + "/state/corral/kv/" + name + "-";
  auto mask_kv = [&kv](std::string text) {
    if (size_t at = text.find(kv); at != std::string::npos) text.replace(at + kv.size(), 16, "ID");
    return text;
  };
  EXPECT_EQ(mask_kv(first), testing::PinnedLlamaServer() + " -m " + model_ +
                                " --host 127.0.0.1 --port 0 -c 256 --alias " + name + " --slot-save-path " + kv +
                                "ID --threads 1 --temp 0.5");
  EXPECT_NE(r.out.find("# environment: this shell's"), std::string::npos);
  ASSERT_EQ(plan["argv"].size(), 11U) << plan.dump();
  EXPECT_EQ(mask_kv(plan["argv"][10].get<std::string>()), kv + "ID");
  plan["argv"].erase(10);
  EXPECT_EQ(plan["argv"], json::array({testing::PinnedLlamaServer(), "-m", model_, "--host", "127.0.0.1", "--port", "0",
                                       "--alias", name, "--slot-save-path"}));
  EXPECT_TRUE(Ps().empty());
}

// Suite A's argv proof: the child Corral starts has byte for byte the cmdline of the same
// llama-server started by hand with the same arguments.
TEST_F(LifecycleCliTest, ChildCmdlineEqualsTheHandStartedOneByteForByte) {
  json m = Json({"start", model_, "--json", "--ctx", "256", "--", "--threads", "1"})["model"];
  // By hand with the same arguments, the kv_keep slot directory included (docs/kv.md).
  std::string slot_dir;
  for (size_t i = 0; i + 1 < m["argv"].size(); ++i) {
    if (m["argv"][i] == "--slot-save-path") slot_dir = m["argv"][i + 1].get<std::string>();
  }
  ASSERT_FALSE(slot_dir.empty()) << m.dump();
  std::vector<std::string> extra = {
      "-c", "256", "--alias", m.value("model", std::string()), "--slot-save-path", slot_dir, "--threads", "1"};
  std::string ours = Cmdline(m["pid"]);
  auto by_hand = testing::LlamaServer::Start(model_, extra);
  ASSERT_TRUE(by_hand.ok()) << by_hand.status().ToString();
  std::string theirs = Cmdline((*by_hand)->pid());
  ASSERT_FALSE(ours.empty());
  EXPECT_EQ(ours, theirs);
  std::string expected;
  for (const auto& a : m["argv"]) expected += a.get<std::string>() + '\0';
  EXPECT_EQ(ours, expected);
}

TEST_F(LifecycleCliTest, TwoModelsAtOnceAndTheSameModelTwice) {
  std::string second = testing::MakeModel(dir_.path(), "other.gguf", kTinyDims);
  ASSERT_FALSE(second.empty());
  json a = Json({"start", model_, "--json"})["model"];
  json b = Json({"start", model_, "--name", "tiny-b", "--json"})["model"];
  json c = Json({"start", second, "--json"})["model"];
  // Same content, another file: the canonical name is taken, so the default name counts up.
  EXPECT_EQ(c["name"], a["name"].get<std::string>() + "-2");
  std::set<int> ports = {a["port"].get<int>(), b["port"].get<int>(), c["port"].get<int>()};
  EXPECT_EQ(ports.size(), 3u);
  for (int port : ports) {
    auto h = testing::Http("GET", port, "/health");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->status, 200);
  }
  EXPECT_EQ(Ps().size(), 3u);
  // Starting the same model again under its default name is idempotent.
  json again = Json({"start", model_, "--json"});
  EXPECT_TRUE(again["already_running"].get<bool>());
  EXPECT_EQ(again["model"]["pid"], a["pid"]);
  // An explicit name that is taken is refused.
  RunResult clash = Corral({"start", second, "--name", "tiny-b"});
  EXPECT_EQ(clash.exit_code, 67) << clash.err;
  EXPECT_NE(clash.err.find("already"), std::string::npos);

  RunResult all = Corral({"stop", "--all"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  for (const json* m : {&a, &b, &c}) EXPECT_TRUE(WaitGone((*m)["pid"]));
}

TEST_F(LifecycleCliTest, DaemonOnDemandAndNoSpawn) {
  RunResult none = Corral({"ps", "--no-spawn"});
  EXPECT_EQ(none.exit_code, 65) << none.err;
  EXPECT_EQ(Corral({"daemon", "status"}).exit_code, 65);
  RunResult ps = Corral({"ps"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  json st = Json({"daemon", "status", "--json"});
  EXPECT_TRUE(st["running"].get<bool>());
  int daemon_pid = st["daemon"]["pid"];
  // The daemon is detached: another session (double fork: not even its leader, so it can
  // never get a controlling terminal), and not our child.
  EXPECT_NE(::getsid(daemon_pid), ::getsid(0));
  EXPECT_NE(::getsid(daemon_pid), daemon_pid);
  EXPECT_EQ(Corral({"daemon", "start"}).exit_code, 0);  // already running: no-op
  EXPECT_EQ(Json({"daemon", "status", "--json"})["daemon"]["pid"], daemon_pid);
  EXPECT_EQ(Corral({"daemon", "stop"}).exit_code, 0);
  EXPECT_TRUE(WaitGone(daemon_pid));
  EXPECT_EQ(Corral({"ps", "--no-spawn"}).exit_code, 65);
}

TEST_F(LifecycleCliTest, SigkillOfTheDaemonLeavesNoOrphan) {
  json a = Json({"start", model_, "--json"})["model"];
  json b = Json({"start", model_, "--name", "second", "--json"})["model"];
  int daemon_pid = Json({"status", "--json"})["daemon"]["pid"];
  ASSERT_FALSE(Gone(a["pid"]));
  ASSERT_EQ(::kill(daemon_pid, SIGKILL), 0);
  EXPECT_TRUE(WaitGone(daemon_pid));
  EXPECT_TRUE(WaitGone(a["pid"])) << "llama-server outlived a SIGKILLed daemon";
  EXPECT_TRUE(WaitGone(b["pid"])) << "llama-server outlived a SIGKILLed daemon";
  // The next daemon reports what happened and starts clean.
  json st = Json({"status", "--json"});
  EXPECT_TRUE(st["models"].empty());
  ASSERT_FALSE(st["notices"].empty());
  EXPECT_NE(st["notices"][0].get<std::string>().find("without draining"), std::string::npos) << st["notices"];
}

TEST_F(LifecycleCliTest, ChildKilledFromOutsideIsReportedAndCanStartAgain) {
  json m = Json({"start", model_, "--json"})["model"];
  ASSERT_EQ(::kill(m["pid"].get<int>(), SIGKILL), 0);
  json failed;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    failed = PsModel(m["name"]);
    if (failed["state"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(failed["state"], "failed") << failed;
  EXPECT_EQ(failed["failure"]["kind"], "oom_killed");
  EXPECT_EQ(failed["failure"]["signal"], SIGKILL);
  EXPECT_NE(failed["last_log_lines"].get<std::string>().find("listening on"), std::string::npos);
  RunResult plain = Corral({"ps"});
  EXPECT_NE(plain.out.find("killed by SIGKILL"), std::string::npos) << plain.out;
  json again = Json({"start", model_, "--json"})["model"];
  EXPECT_EQ(again["state"], "ready");
  EXPECT_NE(again["pid"], m["pid"]);
}

// `corral start --restart`: the real llama-server killed from outside comes back by itself
// (after the 1 s first delay) on a new pid, ready, under the same name; ps says so.
TEST_F(LifecycleCliTest, RestartFlagBringsACrashedChildBack) {
  json m = Json({"start", model_, "--restart", "--json"})["model"];
  ASSERT_EQ(m["state"], "ready") << m;
  ASSERT_EQ(::kill(m["pid"].get<int>(), SIGKILL), 0);
  json back;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    back = PsModel(m["name"]);
    if (back["state"] == "ready" && back.value("restarts", 0) == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(back["state"], "ready") << back;
  EXPECT_EQ(back.value("restarts", 0), 1) << back;
  EXPECT_NE(back["pid"], m["pid"]);
  EXPECT_EQ(back["argv"], m["argv"]);
  RunResult plain = Corral({"ps"});
  EXPECT_NE(plain.out.find("[1 restarts]"), std::string::npos) << plain.out;
  // The proxy routes to the new process.
  std::string base = Json({"status", "--json"})["proxy"].value("base_url", std::string());
  ASSERT_NE(base.rfind(':'), std::string::npos) << base;
  const int port = std::stoi(base.substr(base.rfind(':') + 1));
  const std::string body =
      json{{"model", m["name"]}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}}.dump();
  auto r = testing::Http("POST", port, "/v1/chat/completions", body);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Corral({"stop", m["name"]}).exit_code, 0);
}

// Liveness (issue 11, item 8): a SIGSTOPped llama-server stops answering /health; with a
// 2 s liveness bound it is killed, shown in ps as failed with the reason, and the restart
// policy brings it back on a new pid.
TEST_F(LifecycleCliTest, StoppedChildIsKilledAsUnresponsiveAndRestarted) {
  std::map<std::string, std::string> fast = {{"CORRAL_LIVENESS_TIMEOUT", "2"}};
  json m = Json({"start", model_, "--restart", "--json"}, fast)["model"];
  ASSERT_EQ(m["state"], "ready") << m;
  const int pid = m["pid"];
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  json failed;
  std::string plain;
  json back;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    back = PsModel(m["name"]);
    if (failed.is_null() && back["state"] == "failed") {
      failed = back;
      plain = Corral({"ps"}).out;  // the 1 s restart delay leaves time to see it
    }
    if (back["state"] == "ready" && back.value("restarts", 0) >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(WaitGone(pid)) << "the stopped child was not killed";
  const std::string why = "unresponsive: /health did not answer and it used no CPU for 2 s";
  // The 1 s it is listed as failed can fall between two polls on a loaded machine; the
  // restarted child keeps the reason as last_failure, so that is what must hold.
  if (!failed.is_null()) {
    EXPECT_EQ(failed["failure"]["kind"], "unresponsive") << failed;
    EXPECT_EQ(failed["failure"]["message"], why) << failed;
  }
  ASSERT_TRUE(back.contains("last_failure")) << back;
  EXPECT_EQ(back["last_failure"]["kind"], "unresponsive") << back;
  EXPECT_EQ(back["last_failure"]["message"], why) << back;
  EXPECT_NE(Corral({"ps"}).out.find("restarted after: " + why), std::string::npos);
  // The plain table says it too, if it was still failed when `ps` ran (a slow, sanitized
  // build may already be restarting it by then).
  if (plain.find("failed") != std::string::npos) {
    EXPECT_NE(plain.find(why), std::string::npos) << plain;
  }
  ASSERT_EQ(back["state"], "ready") << back;
  EXPECT_GE(back.value("restarts", 0), 1) << back;
  EXPECT_NE(back["pid"], pid);
  auto health = testing::Http("GET", back["port"].get<int>(), "/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(Corral({"stop", m["name"]}).exit_code, 0);
}

// Issue 11, item 10: two real children killed at once with different signals are each
// reported with their own.
TEST_F(LifecycleCliTest, TwoChildrenKilledWithDifferentSignalsKeepTheirOwnReasons) {
  json a = Json({"start", model_, "--json"})["model"];
  json b = Json({"start", model_, "--name", "second", "--json"})["model"];
  ASSERT_EQ(::kill(a["pid"].get<int>(), SIGSEGV), 0);
  ASSERT_EQ(::kill(b["pid"].get<int>(), SIGKILL), 0);
  json fa;
  json fb;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    fa = PsModel(a["name"]);
    fb = PsModel("second");
    if (fa["state"] == "failed" && fb["state"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(fa["state"], "failed") << fa;
  ASSERT_EQ(fb["state"], "failed") << fb;
  EXPECT_EQ(fa["failure"]["kind"], "signaled") << fa;
  EXPECT_EQ(fa["failure"]["signal"], SIGSEGV) << fa;
  EXPECT_EQ(fa["failure"]["message"], "killed by SIGSEGV while serving") << fa;
  EXPECT_EQ(fb["failure"]["kind"], "oom_killed") << fb;
  EXPECT_EQ(fb["failure"]["signal"], SIGKILL) << fb;
  EXPECT_EQ(fb["failure"]["message"].get<std::string>().rfind("killed by SIGKILL while serving", 0), 0u) << fb;
}

TEST_F(LifecycleCliTest, CorruptGgufFailsToLoadWithAClearReason) {
  // A truncated copy: the header is intact, the tensor data is not.
  std::string bad = dir_.File("trunc.gguf");
  auto whole = ReadFileBounded(model_, 64 << 20);
  ASSERT_TRUE(whole.ok());
  ASSERT_TRUE(WriteFileAtomic(bad, whole->substr(0, whole->size() / 3)).ok());
  RunResult r = Corral({"start", bad});
  EXPECT_EQ(r.exit_code, 67) << r.err;
  EXPECT_NE(r.err.find("failed: exited with code 1 while loading: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not within the file bounds"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--- last lines of"), std::string::npos) << r.err;
  json failed;
  for (const auto& m : Ps()) {
    if (m["model_path"] == bad) failed = m;
  }
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(failed["failure"]["kind"], "exited");
  // Garbage that is not GGUF at all is still launched (llama-server is the judge) and fails.
  std::string garbage = dir_.File("garbage.gguf");
  ASSERT_TRUE(WriteFileAtomic(garbage, "GGUF\x03\x00\x00\x00 not really").ok());
  RunResult g = Corral({"start", garbage, "--json"});
  EXPECT_EQ(g.exit_code, 67) << g.err;
  json gj = json::parse(g.out, nullptr, false);
  ASSERT_FALSE(gj.is_discarded()) << g.out;
  EXPECT_EQ(gj["model"]["name"], "garbage");
  EXPECT_EQ(gj["model"]["state"], "failed");
}

TEST_F(LifecycleCliTest, ModelReferencesGoThroughTheCatalog) {
  std::string dir = dir_.File("data/corral/models");
  ASSERT_TRUE(MakeDirs(dir, 0755).ok());
  ASSERT_FALSE(testing::MakeModel(dir, "a.gguf", kTinyDims).empty());
  json m = Json({"start", "synth-tiny", "--json"})["model"];  // a unique substring of the name
  EXPECT_EQ(m["model_path"], dir + "/a.gguf");
  EXPECT_EQ(m["state"], "ready");
  ASSERT_FALSE(
      testing::MakeModel(dir, "b.gguf", std::vector<std::string>(kTinyDims.begin(), kTinyDims.end() - 2)).empty());
  RunResult two = Corral({"start", "synth", "--dry-run"});
  EXPECT_EQ(two.exit_code, 66) << two.out << two.err;
  RunResult none = Corral({"start", "no-such-model"});
  EXPECT_EQ(none.exit_code, 66);
}

TEST_F(LifecycleCliTest, AdmissionRefusesWhatDoesNotFitUnlessForced) {
  std::map<std::string, std::string> small = {{"CORRAL_MEMORY_BUDGET", "4MiB"}};
  RunResult r = Corral({"start", model_}, small);
  EXPECT_EQ(r.exit_code, 67) << r.err;
  EXPECT_NE(r.err.find("not enough memory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("budget is 4.0 MiB"), std::string::npos) << r.err;
  EXPECT_TRUE(Ps().empty());
  RunResult forced = Corral({"start", model_, "--force"}, small);
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  json st = Json({"status", "--json"});
  EXPECT_EQ(st["memory"]["budget_bytes"], 4ULL << 20);
}

TEST_F(LifecycleCliTest, RawArgRefusalAndExitCodes) {
  RunResult port = Corral({"start", model_, "--", "--port", "1234"});
  EXPECT_EQ(port.exit_code, 64);
  EXPECT_NE(port.err.find("--port is owned by Corral"), std::string::npos) << port.err;
  EXPECT_EQ(Corral({"start", model_, "--", "--api-key=secret"}).exit_code, 64);
  EXPECT_EQ(Corral({"start", model_, "--", "--ssl-cert-file", "c.pem"}).exit_code, 64);
  RunResult unknown = Corral({"start", dir_.File("nope.gguf")});
  EXPECT_EQ(unknown.exit_code, 66) << unknown.err;
  EXPECT_EQ(Corral({"stop", "ghost"}).exit_code, 66);
  EXPECT_EQ(Corral({"logs", "ghost"}).exit_code, 66);
  EXPECT_EQ(Corral({"start", model_, "--name", "bad/name"}).exit_code, 64);
}

TEST_F(LifecycleCliTest, MissingEngineIsExit70) {
  std::map<std::string, std::string> missing = {{"CORRAL_LLAMA_SERVER", dir_.File("no-llama-server")}};
  RunResult r = Corral({"start", model_}, missing);
  EXPECT_EQ(r.exit_code, 70) << r.err;
}

TEST_F(LifecycleCliTest, HealthTimeoutFailsTheStart) {
  std::map<std::string, std::string> zero = {{"CORRAL_HEALTH_TIMEOUT", "0"}, {"CORRAL_HEALTH_TIMEOUT_PER_GIB", "0"}};
  RunResult r = Corral({"start", model_}, zero);
  EXPECT_EQ(r.exit_code, 67) << r.err;
  EXPECT_NE(r.err.find("health timeout"), std::string::npos) << r.err;
}

TEST_F(LifecycleCliTest, CorruptStateFileIsMovedAsideAndReported) {
  ASSERT_TRUE(MakeDirs(dir_.File("state/corral"), 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_.File("state/corral/state.json"), "{\"models\": [tru").ok());
  json st = Json({"status", "--json"});
  ASSERT_FALSE(st["notices"].empty());
  std::string notice = st["notices"][0];
  EXPECT_NE(notice.find("corrupt"), std::string::npos) << notice;
  std::string aside = notice.substr(notice.find(dir_.File("state/corral/state.json.corrupt-")));
  auto kept = ReadFileBounded(aside, 1 << 20);
  ASSERT_TRUE(kept.ok()) << aside;
  EXPECT_EQ(*kept, "{\"models\": [tru");
  // The daemon wrote a fresh, valid state file (0600) and works normally.
  auto fresh = ReadFileBounded(dir_.File("state/corral/state.json"), 1 << 20);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(json::parse(*fresh, nullptr, false).is_discarded());
  struct stat sb {};
  ASSERT_EQ(::stat(dir_.File("state/corral/state.json").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  json started = Json({"start", model_, "--json"})["model"];
  EXPECT_EQ(started["state"], "ready");
  json saved = json::parse(*ReadFileBounded(dir_.File("state/corral/state.json"), 1 << 20));
  ASSERT_EQ(saved["models"].size(), 1u);
  EXPECT_EQ(saved["models"][0]["name"], started["name"]);
}

TEST_F(LifecycleCliTest, RunStreamsAnAnswer) {
  RunResult r = Corral({"run", model_, "Say hello", "--max-tokens", "8"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(r.out.size(), 1u);
}

TEST_F(LifecycleCliTest, ServeInTheForegroundDrainsOnSigterm) {
  std::vector<std::string> argv_s = {testing::CorralBinary(), "serve"};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  for (const auto& [k, v] : env_) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t serve = -1;
  ASSERT_EQ(::posix_spawn(&serve, argv[0], nullptr, nullptr, argv.data(), envp.data()), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Corral({"daemon", "status"}).exit_code != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  json m = Json({"start", model_, "--json", "--no-spawn"})["model"];
  ASSERT_EQ(::kill(serve, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(serve, &status, 0), serve);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(WaitGone(m["pid"]));
  EXPECT_EQ(Corral({"ps", "--no-spawn"}).exit_code, 65);
}

}  // namespace
}  // namespace corral
