// The daemon's state file: typed validation of every field, bounded size and depth, and a
// bad file moved aside with a notice instead of failing the daemon (issue 11, item 7).
#include "daemon/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fs.h"
#include "support/test_support.h"

namespace corral::daemon {
namespace {

using corral::testing::TempDir;

TEST(StateFileTest, RoundTrip) {
  StateFile s;
  s.daemon_pid = 1234;
  s.models.push_back(
      {"tiny", "tiny-4m-f16", "/m/tiny.gguf", 99, 8080, "ready", {"llama-server", "-m", "/m/tiny.gguf"}});
  auto back = ParseStateFile(FormatStateFile(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->daemon_pid, 1234);
  ASSERT_EQ(back->models.size(), 1u);
  EXPECT_EQ(back->models[0].name, "tiny");
  EXPECT_EQ(back->models[0].pid, 99);
  EXPECT_EQ(back->models[0].port, 8080);
  EXPECT_EQ(back->models[0].argv, s.models[0].argv);
  // Missing optional fields default; unknown fields are ignored.
  auto sparse = ParseStateFile(R"({"models":[{"name":"x","future":{"a":1}}],"also_future":true})");
  ASSERT_TRUE(sparse.ok()) << sparse.status().ToString();
  EXPECT_EQ(sparse->models[0].pid, 0);
}

// Before: `"pid":"abc"` threw from json::value and every daemon start exited 71.
TEST(StateFileTest, WrongTypesHugeNumbersAndDeepNestingAreRefused) {
  const char* bad[] = {
      R"({"models":[{"name":"x","pid":"abc"}]})",
      R"({"models":[{"name":"x","pid":-1}]})",
      R"({"models":[{"name":"x","pid":1.5}]})",
      R"({"models":[{"name":"x","pid":1e400}]})",
      R"({"models":[{"name":"x","pid":99999999999999999999999}]})",
      R"({"models":[{"name":"x","port":70000}]})",
      R"({"models":[{"name":7}]})",
      R"({"models":[{"name":"x","argv":"llama-server"}]})",
      R"({"models":[{"name":"x","argv":[1]}]})",
      R"({"models":[{"name":"a\u0000b"}]})",
      R"({"models":[5]})",
      R"({"models":{}})",
      R"({"version":"1","models":[]})",
      R"({"daemon_pid":{"x":1},"models":[]})",
      R"({})",
      R"([])",
      R"(nul)",
  };
  for (const char* text : bad) {
    auto r = ParseStateFile(text);
    EXPECT_FALSE(r.ok()) << text;
  }
  auto typed = ParseStateFile(R"({"models":[{"name":"x"},{"name":"y","pid":"abc"}]})");
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("models[1].pid"), std::string::npos) << typed.status().message();

  const std::string deep = R"({"models":[{"name":)" + std::string(100000, '[') + std::string(100000, ']') + "}]}";
  auto d = ParseStateFile(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("nested deeper"), std::string::npos) << d.status().message();
  EXPECT_FALSE(ParseStateFile(std::string(kMaxStateFileBytes + 1, ' ')).ok());
}

TEST(StateFileTest, ABadFileIsMovedAsideNeverFatal) {
  TempDir dir;
  const std::string path = dir.File("state.json");
  // None: nothing to say.
  StateRead none = ReadStateFile(path, 42);
  EXPECT_FALSE(none.state.has_value());
  EXPECT_TRUE(none.notice.empty());

  ASSERT_TRUE(WriteFileAtomic(path, R"({"version":1,"daemon_pid":1,"models":[{"name":"x","pid":"abc"}]})").ok());
  StateRead bad = ReadStateFile(path, 42);
  EXPECT_FALSE(bad.state.has_value());
  EXPECT_NE(bad.notice.find("models[0].pid"), std::string::npos) << bad.notice;
  EXPECT_NE(bad.notice.find(path + ".corrupt-42"), std::string::npos) << bad.notice;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::exists(path + ".corrupt-42"));

  // Not a regular file (a FIFO would block a read): moved aside too.
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  StateRead fifo = ReadStateFile(path, 43);
  EXPECT_FALSE(fifo.state.has_value());
  EXPECT_NE(fifo.notice.find("not a regular file"), std::string::npos) << fifo.notice;
  EXPECT_FALSE(std::filesystem::exists(path));

  // A good one is read.
  StateFile s;
  s.daemon_pid = 7;
  ASSERT_TRUE(WriteStateFile(path, s).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  StateRead good = ReadStateFile(path, 44);
  ASSERT_TRUE(good.state.has_value());
  EXPECT_EQ(good.state->daemon_pid, 7);
  EXPECT_TRUE(good.notice.empty());
}

}  // namespace
}  // namespace corral::daemon
