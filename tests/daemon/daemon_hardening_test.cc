// Issue 11, the daemon's side: hostile input through the proxy, the state file and the CLI.
//   (2)  a request's model is a catalog name, never a path; every spelling of a model shares
//        one start and one failure backoff; errors carry no file bytes, log lines or paths;
//   (3)  a model name belongs to one file: a child of another file never answers for it;
//   (4b) keep_alive from a request never unloads a model `corral start` pinned;
//   (7)  a state file with a wrong-typed field is moved aside, the daemon starts;
//   (10) one daemon per state dir, "permission denied" for another user's socket, usage
//        errors for `logs -n -1` and `--memory-budget -5`, responses name the model, not
//        its path (--alias).
// Real llama-server, tiny synthetic models, a daemon per test in its own XDG dirs.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

extern char** environ;

namespace corral {
namespace {

using nlohmann::json;
using testing::RunResult;

using testing::kTinyDims;

class DaemonHardeningTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    ASSERT_TRUE(testing::MakeAlphaBravo(ModelDir()));
  }
  std::string ModelDir() const { return dir_.File("data/corral/models"); }
  void WriteConfig(const std::string& yaml) {
    std::filesystem::create_directories(dir_.File("config/corral"));
    std::ofstream(dir_.File("config/corral/config.yaml"), std::ios::trunc) << yaml;
  }
  // True when `pred` holds at some poll within `limit`.
  template <typename Pred>
  static bool Eventually(Pred pred, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (pred()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // An error body a client may see: no file bytes, no log lines, no absolute paths.
  void ExpectNothingLeaks(const std::string& body) {
    EXPECT_EQ(body.find("root:"), std::string::npos) << body;
    EXPECT_EQ(body.find(dir_.path()), std::string::npos) << body;
    EXPECT_EQ(body.find("/etc/"), std::string::npos) << body;
    EXPECT_EQ(body.find("log lines"), std::string::npos) << body;
  }
};

// Models in an /api/tags answer: its distinct digests.
size_t DistinctDigests(const std::string& body) {
  const json tags = json::parse(body);
  std::set<std::string> d;
  for (const auto& m : tags["models"]) d.insert(m["digest"].get<std::string>());
  return d.size();
}

// Before: {"model":"/etc/passwd"} launched llama-server on the file and the 503 quoted it;
// ?model=../../etc/passwd resolved against the daemon's cwd; any GGUF on disk was served.
TEST_F(DaemonHardeningTest, RequestsNameCatalogModelsNeverPaths) {
  const std::string outside = testing::MakeModel(dir_.File("elsewhere"), "outside.gguf", [] {
    auto a = kTinyDims;
    a.insert(a.end(), {"--name", "outsider"});
    return a;
  }());
  ASSERT_FALSE(outside.empty());
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha_file = ModelDir() + "/alpha.gguf";
  for (const std::string& ref :
       {std::string("/etc/passwd"), std::string("/etc/shadow"), alpha_file, outside, std::string("../../etc/passwd"),
        std::string("./alpha.gguf"), std::string("~/alpha.gguf"), std::string("alpha.gguf")}) {
    auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(ref));
    ASSERT_TRUE(r.ok()) << ref;
    EXPECT_EQ(r->status, 404) << ref << ": " << r->body;
    ExpectNothingLeaks(r->body);
  }
  auto props = testing::Http("GET", port, "/props?model=../../etc/passwd");
  ASSERT_TRUE(props.ok());
  EXPECT_EQ(props->status, 404) << props->body;
  ExpectNothingLeaks(props->body);
  EXPECT_TRUE(Running().empty());
  auto tags = testing::Http("GET", port, "/api/tags");
  ASSERT_TRUE(tags.ok());
  // Two models (issue 14 lists each once per name a client may check for, one digest per
  // model); no spelling a request used was added.
  EXPECT_EQ(DistinctDigests(tags->body), 2U) << tags->body;
  EXPECT_EQ(tags->body.find("zz-unknown"), std::string::npos);
  EXPECT_EQ(tags->body.find("etc/passwd"), std::string::npos);

  // Control characters: refused, not echoed (a CR LF would split a response head).
  auto crlf = testing::Http("POST", port, "/v1/chat/completions", Chat("alpha\r\nSet-Cookie: a=b"));
  ASSERT_TRUE(crlf.ok());
  // The proxy refuses it (400) before it reaches the router (which would say 404).
  EXPECT_EQ(crlf->status, 400) << crlf->body;
  EXPECT_EQ(crlf->body.find("Set-Cookie"), std::string::npos) << crlf->body;
  EXPECT_NE(crlf->body.find("control character"), std::string::npos) << crlf->body;
  EXPECT_TRUE(Running().empty());
}

// Before: 15 spellings of one path made 15 launches (the backoff was per spelling), each a
// permanent route and a row in ps; the 503 carried 20 log lines.
TEST_F(DaemonHardeningTest, SpellingsShareOneStartAndOneBackoff) {
  WriteConfig("models:\n  alpha:\n    args: [\"--no-such-flag-for-corral-tests\"]\n");
  const int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());
  std::vector<std::string> spellings = {alpha, "ALPHA", "lpha", "alph"};
  for (size_t n = 4; n < alpha.size(); ++n) spellings.push_back(alpha.substr(0, n));
  std::string first_message;
  for (const auto& s : spellings) {
    auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(s));
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(r->status, 503) << s << ": " << r->body;
    ExpectNothingLeaks(r->body);
    EXPECT_EQ(r->body.find("no-such-flag"), std::string::npos) << r->body;  // llama-server's own words stay in the log
    json body = json::parse(r->body, nullptr, false);
    const std::string message = body.is_object() ? body["error"].value("message", std::string()) : r->body;
    if (first_message.empty()) {
      first_message = message;
      EXPECT_NE(message.find("exited with code"), std::string::npos) << message;
    } else {
      EXPECT_EQ(message, first_message) << s;  // the same backoff answers every spelling
    }
  }
  // One launch: one row, a log that was never rotated by a second start.
  json ps = Ps();
  ASSERT_EQ(ps.size(), 1U) << ps.dump();
  EXPECT_EQ(ps[0].value("state", std::string()), "failed");
  const std::string log = ps[0].value("log_path", std::string());
  EXPECT_TRUE(std::filesystem::exists(log)) << log;
  EXPECT_FALSE(std::filesystem::exists(log + ".1")) << "a second launch rotated " << log;

  // A healthy model by many spellings: one child, one row, and nothing else grows.
  const std::string bravo = NameOf("bravo");
  std::set<int> statuses;
  for (size_t n = 3; n <= bravo.size(); ++n) {
    auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(bravo.substr(0, n)));
    ASSERT_TRUE(r.ok());
    statuses.insert(r->status);
  }
  for (int i = 0; i < 200; ++i) {  // unknown spellings: 404, no state
    auto r = testing::Http("POST", port, "/v1/chat/completions", Chat("zz-unknown-" + std::to_string(i)));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 404) << r->body;
  }
  EXPECT_EQ(statuses, std::set<int>{200});
  EXPECT_EQ(Ps().size(), 2U);
  auto tags = testing::Http("GET", port, "/api/tags");
  ASSERT_TRUE(tags.ok());
  // Two models (issue 14 lists each once per name a client may check for, one digest per
  // model); no spelling a request used was added.
  EXPECT_EQ(DistinctDigests(tags->body), 2U) << tags->body;
  EXPECT_EQ(tags->body.find("zz-unknown"), std::string::npos);
  EXPECT_EQ(tags->body.find("etc/passwd"), std::string::npos);
}

// Before: a GGUF whose metadata said model A's name, started once, answered every later
// request for A. Now a name the catalog gives a file routes only to that file's child.
TEST_F(DaemonHardeningTest, AModelNameBelongsToOneFile) {
  auto dims = kTinyDims;
  dims.insert(dims.end(), {"--name", "alpha", "--seed", "9"});  // claims alpha's name
  const std::string impostor = testing::MakeModel(dir_.File("elsewhere"), "impostor.gguf", dims);
  ASSERT_FALSE(impostor.empty());
  const int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());

  // Started by path (the local user may): it does not get alpha's name...
  json started = Json({"start", impostor, "--json"});
  const std::string impostor_model = started["model"].value("model", std::string());
  EXPECT_NE(impostor_model, alpha);
  EXPECT_TRUE(impostor_model.starts_with(alpha + "-path-")) << impostor_model;
  // ...and even a child *named* like alpha does not answer for alpha.
  ASSERT_EQ(Corral({"stop", "--all"}).exit_code, 0);
  ASSERT_EQ(Corral({"start", impostor, "--name", alpha}).exit_code, 0);
  auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  // Responses name the model (--alias), and this one is alpha's own file.
  EXPECT_EQ(json::parse(r->body).value("model", std::string()), alpha) << r->body;
  EXPECT_EQ(r->body.find(".gguf"), std::string::npos) << r->body;
  bool alpha_file_runs = false;
  for (const auto& m : Ps()) {
    alpha_file_runs = alpha_file_runs || (m.value("model_path", std::string()) == ModelDir() + "/alpha.gguf" &&
                                          m.value("state", std::string()) == "ready");
  }
  EXPECT_TRUE(alpha_file_runs) << Ps().dump();
  // /api/ps-style listing: alpha's row is about alpha's file.
  auto models = testing::Http("GET", port, "/v1/models");
  ASSERT_TRUE(models.ok());
  EXPECT_NE(models->body.find(alpha), std::string::npos);

  // The dry run shows the --alias it passes.
  json plan = Json({"start", alpha, "--dry-run", "--json"})["plan"];
  const auto argv = plan["argv"].get<std::vector<std::string>>();
  auto it = std::find(argv.begin(), argv.end(), "--alias");
  ASSERT_NE(it, argv.end()) << plan.dump();
  EXPECT_EQ(*std::next(it), alpha);
}

// Before: keep_alive 0 from any client unloaded a model `corral start` had pinned.
TEST_F(DaemonHardeningTest, KeepAliveNeverUnloadsAPinnedModel) {
  const int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  ASSERT_EQ(Corral({"start", alpha}).exit_code, 0);
  for (const json& keep_alive : {json(0), json(1), json("0s")}) {
    auto r = testing::Http("POST", port, "/api/generate", json{{"model", alpha}, {"keep_alive", keep_alive}}.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  // The unload would come within the router's 1 s idle check; give it more than twice that.
  EXPECT_FALSE(Eventually([&] { return Running().empty(); }, std::chrono::milliseconds(2500)));
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});
  // The same request for a model loaded on demand does unload it.
  const std::string bravo = NameOf("bravo");
  auto load = testing::Http("POST", port, "/api/generate", json{{"model", bravo}}.dump());
  ASSERT_TRUE(load.ok());
  ASSERT_EQ(load->status, 200) << load->body;
  auto unload = testing::Http("POST", port, "/api/generate", json{{"model", bravo}, {"keep_alive", 0}}.dump());
  ASSERT_TRUE(unload.ok());
  EXPECT_TRUE(Eventually([&] { return Running() == std::vector<std::string>{alpha}; }, std::chrono::seconds(30)));
}

// Before: `"pid":"abc"` made every daemon start exit 71 until the file was deleted.
TEST_F(DaemonHardeningTest, AWrongTypedStateFileIsMovedAside) {
  const std::string state_dir = dir_.File("state/corral");
  std::filesystem::create_directories(state_dir);
  std::ofstream(state_dir + "/state.json") << R"({"version":1,"daemon_pid":1,"models":[{"name":"x","pid":"abc"}]})";
  RunResult r = Corral({"daemon", "start"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json status = Json({"status", "--json"});
  bool noticed = false;
  for (const auto& n : status["notices"])
    noticed = noticed || n.get<std::string>().find("moved it aside") != std::string::npos;
  EXPECT_TRUE(noticed) << status["notices"].dump();
  bool aside = false;
  for (const auto& e : std::filesystem::directory_iterator(state_dir)) {
    aside = aside || e.path().filename().string().starts_with("state.json.corrupt-");
  }
  EXPECT_TRUE(aside);
}

// Before: a second daemon with another runtime dir shared the state dir (state, logs).
TEST_F(DaemonHardeningTest, OneDaemonPerStateDirectory) {
  ASSERT_GT(StartDaemon(), 0);
  auto other = env_;
  other["XDG_RUNTIME_DIR"] = dir_.File("run2");
  RunResult r = testing::RunCorral({"serve"}, other, std::chrono::seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("state directory"), std::string::npos) << r.err;
  EXPECT_EQ(Json({"status", "--json"})["daemon"].value("pid", 0), pid_);  // the first one is untouched
}

// Runs the corral binary as another user (nobody) with this test's environment.
RunResult RunAsNobody(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  RunResult out;
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return out;
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<std::string> argv_s = {testing::CorralBinary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], 2);
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(err[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(err[0], buf, sizeof(buf));
    if (n <= 0) break;
    out.err.append(buf, static_cast<size_t>(n));
  }
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  out.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Before: `corral ps` as another user said "no daemon is running".
TEST_F(DaemonHardeningTest, AnotherUsersSocketIsPermissionDenied) {
  ASSERT_GT(StartDaemon(), 0);
  RunResult r;
  if (::geteuid() == 0) {
    r = RunAsNobody({"ps", "--no-spawn"}, env_);
    if (r.exit_code == 126) GTEST_SKIP() << "cannot switch to user nobody here";
    if (r.exit_code == 127) GTEST_SKIP() << "nobody cannot run " << testing::CorralBinary();
  } else {
    // Not root: the same refusal, from a runtime dir we may not enter.
    const std::string run = dir_.File("run/corral");
    ASSERT_EQ(::chmod(run.c_str(), 0), 0);
    r = Corral({"ps", "--no-spawn"});
    ::chmod(run.c_str(), 0700);
  }
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("no Corral daemon"), std::string::npos) << r.err;
}

// Before: `logs -n -1` exited 0 and `--memory-budget -5` was accepted.
TEST_F(DaemonHardeningTest, BadNumbersAndNamesAreUsageErrors) {
  EXPECT_EQ(Corral({"logs", "x", "-n", "-1", "--no-spawn"}).exit_code, 64);
  RunResult budget = Corral({"--memory-budget", "-5", "ps", "--no-spawn"});
  EXPECT_EQ(budget.exit_code, 64) << budget.err;
  EXPECT_NE(budget.err.find("--memory-budget"), std::string::npos) << budget.err;
  EXPECT_EQ(Corral({"serve", "--memory-budget", "-5"}).exit_code, 64);
  RunResult name = Corral({"start", "al\npha", "--no-spawn"});
  EXPECT_EQ(name.exit_code, 64) << name.err;
  EXPECT_NE(name.err.find("control character"), std::string::npos) << name.err;
}

}  // namespace
}  // namespace corral
