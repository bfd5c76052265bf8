// The daemon end to end through its proxy: a request for a model that is not running starts
// it (one child however many requests wait), unknown models get a 404 naming close matches,
// idle models are evicted least-recently-used first when the memory budget is short (never
// a pinned one), idle models are unloaded after their TTL, and Ollama's keep_alive 0
// unloads. Real llama-server, tiny synthetic models, a daemon per test in its own XDG dirs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using nlohmann::json;
using testing::RunResult;

class DaemonProxyTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    const std::string models = dir_.File("data/corral/models");
    ASSERT_TRUE(testing::MakeAlphaBravo(models));
  }
  bool WaitRunning(const std::vector<std::string>& want, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Running() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

TEST_F(DaemonProxyTest, ConcurrentRequestsShareOneOnDemandStart) {
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());
  EXPECT_TRUE(Running().empty());

  std::vector<std::thread> clients;
  std::vector<int> statuses(4, 0);
  std::vector<std::string> bodies(4);
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha));
      if (r.ok()) {
        statuses[i] = r->status;
        bodies[i] = r->body;
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(statuses[i], 200) << bodies[i];
    EXPECT_NE(bodies[i].find("\"completion_tokens\":4"), std::string::npos) << bodies[i];
  }
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});  // one child for all four

  // /v1/models lists both catalog models with their state.
  auto models = testing::Http("GET", port, "/v1/models");
  ASSERT_TRUE(models.ok());
  json list = json::parse(models->body, nullptr, false);
  ASSERT_TRUE(list.contains("data")) << models->body;
  EXPECT_EQ(list["data"].size(), 2U) << models->body;
}

TEST_F(DaemonProxyTest, UnknownModelIs404NamingCloseMatches) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha + "x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404) << r->body;
  EXPECT_NE(r->body.find(alpha), std::string::npos) << r->body;
  EXPECT_TRUE(Running().empty());
}

// Memory for one model, not two: the idle one is evicted for the new one; a pinned one never is.
class DaemonBudgetTest : public DaemonProxyTest {
 protected:
  void SetUp() override {
    DaemonProxyTest::SetUp();
    if (HasFatalFailure()) return;
    // What one model reserves, from the daemon's own plan (then restart with the budget).
    json plan = Json({"start", NameOf("alpha"), "--dry-run", "--json"});
    const uint64_t one = plan["plan"].value("reserved_bytes", 0ULL);
    Corral({"daemon", "stop"});
    ASSERT_GT(one, 0U) << plan.dump();
    env_["CORRAL_MEMORY_BUDGET"] = std::to_string(one + one / 2);
  }
};

TEST_F(DaemonBudgetTest, EvictsTheIdleModelForANewOne) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  auto a = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->status, 200) << a->body;
  auto b = testing::Http("POST", port, "/v1/chat/completions", Chat(bravo));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->status, 200) << b->body;
  EXPECT_EQ(Running(), std::vector<std::string>{bravo});
}

TEST_F(DaemonBudgetTest, NeverEvictsAPinnedModel) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  ASSERT_EQ(Corral({"start", alpha}).exit_code, 0);
  auto b = testing::Http("POST", port, "/v1/chat/completions", Chat(bravo));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->status, 503) << b->body;
  EXPECT_NE(b->body.find("budget"), std::string::npos) << b->body;
  EXPECT_NE(b->headers.count("retry-after"), 0U);
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});
}

TEST_F(DaemonProxyTest, IdleModelIsUnloadedAfterItsTtl) {
  env_["CORRAL_MODEL_TTL"] = "1";
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  auto a = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_TRUE(WaitRunning({}));
}

TEST_F(DaemonProxyTest, OllamaKeepAliveZeroUnloads) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  // An empty generate request loads the model (Ollama's convention).
  auto load = testing::Http("POST", port, "/api/generate", json{{"model", alpha}}.dump());
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load->status, 200) << load->body;
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});
  auto unload = testing::Http("POST", port, "/api/generate", json{{"model", alpha}, {"keep_alive", 0}}.dump());
  ASSERT_TRUE(unload.ok());
  EXPECT_EQ(unload->status, 200) << unload->body;
  EXPECT_TRUE(WaitRunning({}));
}

// Issue 14: the short name a user types works on every route and command, and what clients
// get back names the model, never its file.
TEST_F(DaemonProxyTest, ShortNamesWorkEverywhereAndNoPathReachesClients) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());
  ASSERT_NE(alpha, "alpha");  // the canonical name is longer; "alpha" is the file stem
  auto r = testing::Http("POST", port, "/v1/chat/completions", Chat("alpha"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string model_field = json::parse(r->body)["model"];
  EXPECT_EQ(model_field.find('/'), std::string::npos) << model_field;  // --alias: a name, not the path
  EXPECT_EQ(model_field, alpha);
  r = testing::Http(
      "POST", port, "/v1/messages",
      json{{"model", "alpha"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body.find(dir_.path()), std::string::npos) << r->body;

  // /api/show like /api/chat, with capabilities and the parameter size from the GGUF.
  r = testing::Http("POST", port, "/api/show", R"({"model":"alpha"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json show = json::parse(r->body);
  EXPECT_EQ(show["capabilities"][0], "completion") << r->body;
  EXPECT_FALSE(show["details"]["parameter_size"].get<std::string>().empty()) << r->body;
  // /api/ps: a real expiry (pinned or no TTL: far future, never year 1), the model's size.
  r = testing::Http("GET", port, "/api/ps");
  ASSERT_TRUE(r.ok());
  json ps = json::parse(r->body)["models"];
  ASSERT_EQ(ps.size(), 1U) << r->body;
  EXPECT_EQ(ps[0]["expires_at"].get<std::string>().rfind("0001", 0), std::string::npos) << r->body;
  EXPECT_GT(ps[0]["size"].get<uint64_t>(), 0U);
  // /v1/models/{id} by the short name; the list says which other names work.
  r = testing::Http("GET", port, "/v1/models/alpha");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["id"], alpha);
  EXPECT_NE(json::parse(r->body)["names"].dump().find("\"alpha\""), std::string::npos) << r->body;
  // /api/tags lists the names a client compares with.
  r = testing::Http("GET", port, "/api/tags");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"name\":\"alpha\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"name\":\"" + alpha + ":latest\""), std::string::npos) << r->body;

  // The CLI: logs and stop by the short name (start accepted it before; stop did not).
  auto logs = Corral({"logs", "alpha", "--lines", "5"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  auto stop = Corral({"stop", "alpha"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(WaitRunning({}));
  stop = Corral({"stop", "zzz-nothing"});
  EXPECT_EQ(stop.exit_code, 66) << stop.err;
}

}  // namespace
}  // namespace corral
