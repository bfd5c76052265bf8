// KV state kept across unloads (issue 17, docs/kv.md), end to end through the daemon's proxy
// with the real llama-server on tiny synthetic models: a conversation on alpha, a request
// for bravo evicts alpha (memory for one) and saves its slots (files 0600, an index with no
// prompt text), back to alpha: the restored slot serves the same prefix from its cache
// (llama-server's own timings.cache_n / prompt_n: token counts, never wall-clock). Also: the
// off switches leave the argv alone, and a changed argv (another -c) drops the old state.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"
#include "support/two_model_daemon.h"

namespace corral {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A user turn long enough that its prefix matters (a few hundred tokens), always the same.
std::string LongText() {
  std::string s;
  for (int i = 0; i < 60; ++i) s += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog. ";
  return s;
}

std::string Conversation(const std::string& model) {
  return json{{"model", model},
              {"messages", {{{"role", "user"}, {"content", LongText()}}}},
              {"max_tokens", 4},
              {"temperature", 0}}
      .dump();
}

class KvKeepTest : public testing::TwoModelDaemonTest {
 protected:
  std::string KvRoot() { return dir_.File("state/corral/kv"); }
  // The state directories under the kv root whose name starts with `model`.
  std::vector<fs::path> StateDirs(const std::string& model) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(KvRoot(), ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_directory() && it->path().filename().string().starts_with(model + "-")) out.push_back(it->path());
    }
    return out;
  }
  json Argv(const std::string& model, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"start", model, "--dry-run", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Json(args)["plan"]["argv"];
  }
  static bool HasSlotSavePath(const json& argv) {
    for (const auto& a : argv) {
      if (a == "--slot-save-path") return true;
    }
    return false;
  }
  bool WaitRunning(const std::vector<std::string>& want) {
    for (int i = 0; i < 600; ++i) {  // bounded: 30 s
      if (Running() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

// Memory for one model, not two (the daemon's own plan says what one reserves).
class KvSwapTest : public KvKeepTest {
 protected:
  void SetUp() override {
    KvKeepTest::SetUp();
    if (HasFatalFailure()) return;
    json plan = Json({"start", NameOf("alpha"), "--dry-run", "--json"});
    const uint64_t one = plan["plan"].value("reserved_bytes", 0ULL);
    Corral({"daemon", "stop"});
    ASSERT_GT(one, 0U) << plan.dump();
    env_["CORRAL_MEMORY_BUDGET"] = std::to_string(one + one / 2);
  }
};

TEST_F(KvSwapTest, SwappedOutModelComesBackWithItsCache) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  auto first = testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 200) << first->body;
  const json t1 = json::parse(first->body)["timings"];
  const int64_t full = t1.value("prompt_n", 0) + t1.value("cache_n", 0);
  ASSERT_GT(full, 200) << first->body;

  // bravo needs alpha's memory: alpha is evicted, its slot saved first.
  auto b = testing::Http("POST", port, "/v1/chat/completions", Conversation(bravo));
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->status, 200) << b->body;
  ASSERT_EQ(Running(), std::vector<std::string>{bravo});

  auto dirs = StateDirs(alpha);
  ASSERT_EQ(dirs.size(), 1U);
  bool slot_file = false;
  for (const auto& f : fs::directory_iterator(dirs[0])) {
    struct stat st {};
    ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U) << f.path();
    slot_file = slot_file || f.path().filename().string().starts_with("slot-");
  }
  EXPECT_TRUE(slot_file);
  struct stat dst {};
  ASSERT_EQ(::stat(dirs[0].c_str(), &dst), 0);
  EXPECT_EQ(dst.st_mode & 0777, 0700U);
  // Corral's own index: counts and hashes, never the conversation.
  std::ifstream in(dirs[0] / "corral-kv.json");
  std::string index((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(index.find("quick brown fox"), std::string::npos) << index;
  json idx = json::parse(index, nullptr, false);
  ASSERT_TRUE(idx.is_object()) << index;
  ASSERT_FALSE(idx["slots"].empty()) << index;
  EXPECT_GE(idx["slots"][0].value("tokens", 0), full) << index;

  // Back to alpha (bravo is evicted): the same conversation is served from the restored cache.
  auto again = testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->status, 200) << again->body;
  ASSERT_EQ(Running(), std::vector<std::string>{alpha});
  const json t2 = json::parse(again->body)["timings"];
  EXPECT_GE(t2.value("cache_n", 0), full - 1) << again->body;  // llama-server re-reads at least one token
  EXPECT_LE(t2.value("prompt_n", 0), 1) << again->body;
}

TEST_F(KvSwapTest, OffMeansNoSaveAndAFullPrefill) {
  env_["CORRAL_KV_KEEP"] = "false";
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  ASSERT_EQ(testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha))->status, 200);
  ASSERT_EQ(testing::Http("POST", port, "/v1/chat/completions", Conversation(bravo))->status, 200);
  EXPECT_TRUE(StateDirs(alpha).empty());
  auto again = testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(json::parse(again->body)["timings"].value("cache_n", -1), 0) << again->body;
}

TEST_F(KvKeepTest, ArgvShowsTheSlotSavePathUnlessSwitchedOff) {
  StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  json argv = Argv(alpha);
  ASSERT_TRUE(HasSlotSavePath(argv)) << argv.dump();
  EXPECT_NE(argv.dump().find(KvRoot() + "/" + alpha + "-"), std::string::npos) << argv.dump();
  // The user's own --slot-save-path wins: Corral adds none and keeps out of it.
  json own = Argv(alpha, {"--", "--slot-save-path", dir_.File("mine")});
  EXPECT_EQ(own.dump().find(KvRoot()), std::string::npos) << own.dump();
  Corral({"daemon", "stop"});

  // Per model: models.NAME.kv_keep: false.
  fs::create_directories(dir_.File("config/corral"));
  std::ofstream(dir_.File("config/corral/config.yaml")) << "models:\n  " << alpha << ":\n    kv_keep: false\n";
  StartDaemon();
  EXPECT_FALSE(HasSlotSavePath(Argv(alpha)));
  EXPECT_TRUE(HasSlotSavePath(Argv(bravo)));
  Corral({"daemon", "stop"});

  // Globally.
  env_["CORRAL_KV_KEEP"] = "false";
  StartDaemon();
  EXPECT_FALSE(HasSlotSavePath(Argv(bravo)));
}

TEST_F(KvKeepTest, AnotherContextSizeDropsTheOldState) {
  int port = StartDaemon();
  const std::string alpha = NameOf("alpha");
  ASSERT_EQ(Corral({"start", alpha, "-c", "2048"}).exit_code, 0);
  auto r = testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(Corral({"stop", alpha}).exit_code, 0);  // saves
  auto before = StateDirs(alpha);
  ASSERT_EQ(before.size(), 1U);
  EXPECT_TRUE(fs::exists(before[0] / "corral-kv.json"));

  // Another -c is another identity: the old state cannot be restored into it and is dropped.
  ASSERT_EQ(Corral({"start", alpha, "-c", "1024"}).exit_code, 0);
  auto after = StateDirs(alpha);
  ASSERT_EQ(after.size(), 1U);
  EXPECT_NE(after[0], before[0]);
  EXPECT_FALSE(fs::exists(before[0]));
  auto fresh = testing::Http("POST", port, "/v1/chat/completions", Conversation(alpha));
  ASSERT_TRUE(fresh.ok());
  ASSERT_EQ(fresh->status, 200) << fresh->body;
  EXPECT_EQ(json::parse(fresh->body)["timings"].value("cache_n", -1), 0) << fresh->body;
}

}  // namespace
}  // namespace corral
