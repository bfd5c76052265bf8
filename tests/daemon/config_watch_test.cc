// The config file watcher (inotify on the directory, debounced) and the daemon-side checks of
// a config (memory budget, owned flags in the models: section's args). No llama-server.
#include "daemon/config_watch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "config/options.h"
#include "daemon/models.h"
#include "support/test_support.h"

namespace corral::daemon {
namespace {

using std::chrono::milliseconds;

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return done();
}

void WriteViaRename(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomic(path + ".tmp", text, 0600).ok());
  ASSERT_EQ(::rename((path + ".tmp").c_str(), path.c_str()), 0);
}

// What the callback saw, one entry per call: the file's text at that moment ("<none>" when
// absent). Calls run one after another on the watcher thread, so once the entry for a later
// sentinel write is there, every call that came before it is recorded too: the tests assert
// that nothing extra happened by the sentinel's arrival, not after a fixed sleep.
class Seen {
 public:
  explicit Seen(std::string file) : file_(std::move(file)) {}
  void Record() {
    std::string text = "<none>";
    if (auto r = ReadFileBounded(file_, 4096); r.ok()) text = *r;
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(text));
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  bool Saw(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(calls_.begin(), calls_.end(), text) != calls_.end();
  }

 private:
  const std::string file_;
  std::mutex mu_;
  std::vector<std::string> calls_;
};

TEST(ConfigWatcherTest, RenameIntoPlaceIsSeenAndBurstsAreCoalesced) {
  testing::TempDir dir;
  const std::string file = dir.File("config.yaml");
  Seen seen(file);
  // A long quiet period, so the burst below surely falls inside one.
  ConfigWatcher w(
      file, [&] { seen.Record(); }, milliseconds(400));
  ASSERT_TRUE(w.Start().ok());

  WriteViaRename(file, "a: 1\n");
  WriteViaRename(file, "a: 2\n");
  WriteViaRename(file, "a: 3\n");
  ASSERT_TRUE(WaitFor([&] { return seen.Saw("a: 3\n"); }));

  // The sentinel is an in-place write (close after write), which must count too. By the time
  // its call arrives, a second call for the burst would have been recorded before it.
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("a: 4\n", f);
  std::fclose(f);
  ASSERT_TRUE(WaitFor([&] { return seen.Saw("a: 4\n"); }));
  EXPECT_EQ(seen.Calls(), (std::vector<std::string>{"a: 3\n", "a: 4\n"}));
}

TEST(ConfigWatcherTest, OtherFilesInTheDirectoryAreIgnored) {
  testing::TempDir dir;
  Seen seen(dir.File("config.yaml"));
  ConfigWatcher w(
      dir.File("config.yaml"), [&] { seen.Record(); }, milliseconds(20));
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("other.yaml"), "x\n", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("config.yaml.bak"), "x\n", 0600).ok());
  // The sentinels: changes to the watched file arrive after the others, and alone count (a
  // call for another file would have recorded "<none>" first).
  WriteViaRename(dir.File("config.yaml"), "a: 1\n");
  ASSERT_TRUE(WaitFor([&] { return seen.Saw("a: 1\n"); }));
  WriteViaRename(dir.File("config.yaml"), "a: 2\n");
  ASSERT_TRUE(WaitFor([&] { return seen.Saw("a: 2\n"); }));
  EXPECT_EQ(seen.Calls(), (std::vector<std::string>{"a: 1\n", "a: 2\n"}));
}

TEST(ConfigWatcherTest, ADirectoryThatAppearsLaterIsWatched) {
  testing::TempDir dir;
  const std::string sub = dir.File("later");
  std::atomic<int> calls{0};
  ConfigWatcher w(
      sub + "/config.yaml", [&] { calls.fetch_add(1); }, milliseconds(20), milliseconds(50));
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(MakeDirs(sub, 0700).ok());
  ASSERT_TRUE(WaitFor([&] { return calls.load() >= 1; }));  // appeared: check once
  const int before = calls.load();
  WriteViaRename(sub + "/config.yaml", "a: 1\n");
  EXPECT_TRUE(WaitFor([&] { return calls.load() > before; }));
}

TEST(ConfigWatcherTest, StopWithoutEventsReturns) {
  testing::TempDir dir;
  ConfigWatcher w(dir.File("config.yaml"), [] {});
  ASSERT_TRUE(w.Start().ok());
  w.Stop();
  w.Stop();  // idempotent
}

// The checks config::Load cannot make alone (they need the supervisor's rules).
TEST(ValidateDaemonConfigTest, RefusesOwnedFlagsInModelArgsAndBadBudgets) {
  testing::TempDir dir;
  config::FlagValues f;
  f.config_file = dir.File("config.yaml");
  auto load = [&](const std::string& yaml) {
    EXPECT_TRUE(WriteFileAtomic(f.config_file, yaml, 0600).ok());
    return config::Load(f);
  };
  auto c = load("models:\n  tiny:\n    args: [\"--threads\", \"2\", \"--flash-attn\", \"on\"]\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok());

  for (const char* owned : {"--port", "--host=0.0.0.0", "--api-key", "-m", "--model"}) {
    c = load(std::string("models:\n  ok: {}\n  tiny:\n    args: [\"") + owned + "\", \"x\"]\n");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Status s = ValidateDaemonConfig(*c);
    ASSERT_FALSE(s.ok()) << owned;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("config.yaml:3: models.tiny.args"), std::string::npos) << s.message();
  }

  c = load("memory_budget: lots\n");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(ValidateDaemonConfig(*c).ok());
  c = load("memory_budget: 2GiB\n");
  ASSERT_TRUE(c.ok());
  auto b = MemoryBudgetBytes(*c, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 2ULL << 30);

  c = load("kv_keep_budget: plenty\n");
  ASSERT_TRUE(c.ok());
  Status kv = ValidateDaemonConfig(*c);
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.message().find("kv_keep_budget"), std::string::npos) << kv.message();
  c = load("kv_keep_budget: 512MiB\n");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(ValidateDaemonConfig(*c).ok());
}

}  // namespace
}  // namespace corral::daemon
