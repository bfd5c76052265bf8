#include "engine/engine.h"

#include <gtest/gtest.h>

namespace corral::engine {
namespace {

TEST(ParseCommitTest, KnownFormats) {
  EXPECT_EQ(ParseCommit("x\nversion: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU"), "de3ff81");
  EXPECT_EQ(ParseCommit("version: 4567 (abcdef0)\n"), "abcdef0");
  EXPECT_EQ(ParseCommit("nothing here"), "");
  EXPECT_EQ(ParseCommit("version: 1 (not-hex)"), "");
  EXPECT_EQ(ParseCommit("version: 1 (abc)"), "");  // too short to be a commit
  EXPECT_EQ(ParseCommit("version:"), "");
  EXPECT_EQ(ParseCommit("version: (commit "), "");
}

TEST(LocateTest, ExplicitBinaryMustExist) {
  config::Config c;
  c.llama_server = "/nonexistent/llama-server";
  c.source["llama_server"] = "flag";
  auto r = Locate(c, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("/nonexistent/llama-server"), std::string::npos);
}

TEST(LocateTest, PinnedBuildIsTheFallbackAndReportsItsCommit) {
  config::Config c;
  ::setenv("PATH", "/nonexistent", 1);  // no llama-server on PATH
  auto r = Locate(c, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->source, "pinned");
  EXPECT_EQ(r->commit, kPinnedCommit);
}

}  // namespace
}  // namespace corral::engine
