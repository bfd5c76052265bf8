// The KV state directory's rules without a process (supervisor/kv_state.h): the argv gets
// --slot-save-path only when the spec keeps KV state, the directory follows the identity
// (file size and mtime, -c, args; not the port), an older identity of the same model is
// dropped, and the budget drops the least recently saved first.
#include "supervisor/kv_state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support/test_support.h"

namespace corral::supervisor {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& p, size_t bytes) {
  std::ofstream(p) << std::string(bytes, 'x');
}

// A saved state as SaveKvState leaves it: a slot file and an index (for `model_path`).
void FakeState(const fs::path& dir, const std::string& model_key, int64_t saved_at, size_t bytes) {
  fs::create_directories(dir);
  WriteFile(dir / "slot-0.bin", bytes);
  std::ofstream(dir / kKvIndexFile) << R"({"version":1,"model":")" << model_key << R"(","saved_at":)" << saved_at
                                    << R"(,"slots":[{"id":0,"file":"slot-0.bin","tokens":10,"bytes":)" << bytes
                                    << "}]}";
}

class KvStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("alpha.gguf");
    WriteFile(model_, 1000);
    spec_.name = "alpha";
    spec_.model = "alpha";
    spec_.model_path = model_;
    spec_.kv_root = dir_.File("kv");
  }
  testing::TempDir dir_;
  std::string model_;
  LaunchSpec spec_;
};

TEST_F(KvStateTest, ArgvHasTheSlotSavePathOnlyWhenKept) {
  auto argv = BuildArgv("/bin/llama-server", spec_);
  auto at = std::find(argv.begin(), argv.end(), "--slot-save-path");
  ASSERT_NE(at, argv.end());
  ASSERT_NE(at + 1, argv.end());
  EXPECT_EQ(*(at + 1), KvDirFor("/bin/llama-server", spec_));
  EXPECT_TRUE((at + 1)->starts_with(spec_.kv_root + "/alpha-"));

  LaunchSpec off = spec_;
  off.kv_root.clear();
  auto plain = BuildArgv("/bin/llama-server", off);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), "--slot-save-path"), plain.end());
  EXPECT_EQ(KvDirFor("/bin/llama-server", off), "");

  LaunchSpec own = spec_;  // the user's own save path wins
  own.raw_args = {"--slot-save-path=/elsewhere"};
  EXPECT_FALSE(KvKeeps(own));
  auto theirs = BuildArgv("/bin/llama-server", own);
  EXPECT_EQ(std::count_if(theirs.begin(), theirs.end(),
                          [](const std::string& a) { return a.find("slot-save") != std::string::npos; }),
            1);
}

TEST_F(KvStateTest, TheDirectoryFollowsTheIdentityNotThePort) {
  const std::string base = KvDirFor("/bin/llama-server", spec_);
  LaunchSpec port = spec_;
  port.port = 8080;
  EXPECT_EQ(KvDirFor("/bin/llama-server", port), base);
  LaunchSpec ctx = spec_;
  ctx.ctx = 4096;
  EXPECT_NE(KvDirFor("/bin/llama-server", ctx), base);
  LaunchSpec cache = spec_;
  cache.preset_args = {"-ctk", "q8_0"};
  EXPECT_NE(KvDirFor("/bin/llama-server", cache), base);
  EXPECT_NE(KvDirFor("/other/llama-server", spec_), base);
  WriteFile(model_, 1001);  // the file changed (size)
  EXPECT_NE(KvDirFor("/bin/llama-server", spec_), base);
}

TEST_F(KvStateTest, PrepareDropsOlderIdentitiesOfTheSameModel) {
  // Learn the index's model key from a real preparation, then fake states around it.
  const std::string old_dir = KvDirFor("/bin/llama-server", spec_);
  LaunchSpec ctx = spec_;
  ctx.ctx = 2048;
  const std::string new_dir = KvDirFor("/bin/llama-server", ctx);
  ASSERT_NE(old_dir, new_dir);
  ASSERT_TRUE(PrepareKvDir(spec_.kv_root, old_dir, model_).ok());
  struct stat st {};
  ASSERT_EQ(::stat(old_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  FakeState(old_dir, KvModelKey(model_), 1, 10);  // a state saved under the old -c
  const std::string other = dir_.File("kv/bravo-0000000000000001");
  FakeState(other, KvModelKey(dir_.File("bravo.gguf")), 1, 10);
  auto dropped = PrepareKvDir(spec_.kv_root, new_dir, model_);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 1);
  EXPECT_FALSE(fs::exists(old_dir));  // the argv changed: the old state is stale
  EXPECT_TRUE(fs::exists(other));     // another model's state stays
  EXPECT_TRUE(fs::exists(new_dir));
}

TEST_F(KvStateTest, BudgetDropsTheLeastRecentlySavedFirst) {
  const std::string root = spec_.kv_root;
  FakeState(root + "/a-1", "k1", 100, 4000);
  FakeState(root + "/b-2", "k2", 300, 4000);
  FakeState(root + "/c-3", "k3", 200, 4000);
  EXPECT_GE(KvBytesUsed(root), 12000U);
  // Room for two: the oldest (a, saved at 100) goes.
  EXPECT_EQ(EnforceKvBudget(root, 9000, ""), 1);
  EXPECT_FALSE(fs::exists(root + "/a-1"));
  EXPECT_TRUE(fs::exists(root + "/b-2"));
  EXPECT_TRUE(fs::exists(root + "/c-3"));
  // The one just saved goes last, even when it is the oldest by its index.
  EXPECT_EQ(EnforceKvBudget(root, 4500, root + "/c-3"), 1);
  EXPECT_TRUE(fs::exists(root + "/c-3"));
  EXPECT_FALSE(fs::exists(root + "/b-2"));
  // Under budget: nothing to do.
  EXPECT_EQ(EnforceKvBudget(root, 1ULL << 30, ""), 0);
}

TEST_F(KvStateTest, NoIndexRestoresNothingAndAnUnreachableChildIsReported) {
  const std::string dir = KvDirFor("/bin/llama-server", spec_);
  ASSERT_TRUE(PrepareKvDir(spec_.kv_root, dir, model_).ok());
  KvResult r = RestoreKvState(1, dir, std::chrono::milliseconds(200));
  EXPECT_EQ(r.slots, 0);
  EXPECT_TRUE(r.error.empty());
  // Port 1 on loopback: nothing listens; the save reports it and leaves no index behind.
  KvResult s = SaveKvState(1, dir, model_, std::chrono::milliseconds(200));
  EXPECT_EQ(s.slots, 0);
  EXPECT_FALSE(s.error.empty());
  EXPECT_FALSE(fs::exists(fs::path(dir) / kKvIndexFile));
}

}  // namespace
}  // namespace corral::supervisor
