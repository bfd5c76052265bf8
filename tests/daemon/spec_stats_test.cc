// The speculative-decoding fallback rule (issue 17, daemon/spec_stats.h): per-child totals,
// per-file windows of >= 256 draft tokens, a mark below 30 % acceptance, and the bounds.
// Pure: no process, no clock.
#include "daemon/spec_stats.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

TEST(SpecStatsTest, HighAcceptanceNeverMarks) {
  SpecStats s;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 30, 29));
  EXPECT_FALSE(s.DisabledReason("/m/a.gguf"));
  auto t = s.ForChild("a");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->drafted, 3000u);
  EXPECT_EQ(t->accepted, 2900u);
  EXPECT_NEAR(t->acceptance(), 2900.0 / 3000.0, 1e-12);
}

TEST(SpecStatsTest, LowAcceptanceMarksOnlyOnceAWindowIsFull) {
  SpecStats s;
  // 250 draft tokens at 10 %: below the window, no decision yet.
  for (int i = 0; i < 25; ++i) EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 10, 1));
  EXPECT_FALSE(s.DisabledReason("/m/a.gguf"));
  // The window fills (260 tokens, 26 accepted = 10 %): marked, once, with the numbers.
  auto why = s.Observe("a", 1, "/m/a.gguf", 10, 1);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("10%"), std::string::npos) << *why;
  EXPECT_NE(why->find("260 draft tokens"), std::string::npos) << *why;
  EXPECT_NE(why->find("below 30%"), std::string::npos) << *why;
  EXPECT_EQ(s.DisabledReason("/m/a.gguf"), why);
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 10, 1));  // already marked: not reported again
  // Another file and its child are untouched.
  EXPECT_FALSE(s.Observe("b", 1, "/m/b.gguf", 10, 9));
  EXPECT_FALSE(s.DisabledReason("/m/b.gguf"));
  // The child keeps its totals (it runs with its draft until its next start).
  EXPECT_EQ(s.ForChild("a")->drafted, 270u);
}

TEST(SpecStatsTest, WindowsAreConsecutive) {
  SpecStats s;
  // A good window (300 tokens at 90 %) is forgotten once decided: a later bad one still marks.
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 300, 270));
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 200, 20));  // 200 < 256: undecided
  EXPECT_TRUE(s.Observe("a", 1, "/m/a.gguf", 100, 10));   // 300 at 10 %
  // Exactly at the threshold pays: 30 % over 256 is not marked.
  SpecStats t;
  EXPECT_FALSE(t.Observe("a", 1, "/m/a.gguf", 1000, 300));
  EXPECT_FALSE(t.DisabledReason("/m/a.gguf"));
  // One huge response decides its own window.
  EXPECT_TRUE(t.Observe("a", 1, "/m/a.gguf", 1'000'000, 1));
}

TEST(SpecStatsTest, CustomRule) {
  SpecStats s(SpecRule{16, 0.5});
  EXPECT_EQ(s.rule().window_tokens, 16u);
  EXPECT_TRUE(s.Observe("a", 1, "/m/a.gguf", 16, 7));
}

TEST(SpecStatsTest, ARestartedChildStartsItsTotalsAgain) {
  SpecStats s;
  s.Observe("a", 1, "/m/a.gguf", 40, 30);
  s.Observe("a", 2, "/m/a.gguf", 10, 10);  // a new process under the same name
  EXPECT_EQ(s.ForChild("a")->drafted, 10u);
  EXPECT_EQ(s.ForChild("a")->accepted, 10u);
  s.ForgetChildren([](const std::string& name) { return name != "a"; });
  EXPECT_FALSE(s.ForChild("a"));
}

TEST(SpecStatsTest, InconsistentOrEmptyCountsAreIgnored) {
  SpecStats s(SpecRule{1, 0.3});
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", -1, -1));  // no draft in this response
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 0, 0));
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 5, 6));  // more accepted than drafted
  EXPECT_FALSE(s.Observe("a", 1, "/m/a.gguf", 5, -1));
  EXPECT_FALSE(s.ForChild("a"));
  EXPECT_FALSE(s.DisabledReason("/m/a.gguf"));
  // No child name (the child is gone already): the file's window still counts.
  EXPECT_TRUE(s.Observe("", 0, "/m/a.gguf", 5, 0));
  // No file: nothing to mark.
  EXPECT_FALSE(s.Observe("b", 1, "", 5, 0));
}

TEST(SpecStatsTest, ClearForgetsMarksAndWindows) {
  SpecStats s;
  ASSERT_TRUE(s.Observe("a", 1, "/m/a.gguf", 300, 0));
  s.Observe("b", 1, "/m/b.gguf", 200, 0);
  s.Clear();
  EXPECT_FALSE(s.DisabledReason("/m/a.gguf"));
  EXPECT_FALSE(s.Observe("b", 1, "/m/b.gguf", 100, 0));  // b's window started again: 100 < 256
  EXPECT_TRUE(s.ForChild("a"));                          // running children keep their totals
}

TEST(SpecStatsTest, BoundedNumberOfEntries) {
  SpecStats s(SpecRule{1, 0.3});
  for (size_t i = 0; i < SpecStats::kMaxEntries; ++i) {
    s.Observe("c" + std::to_string(i), 1, "/m/" + std::to_string(i), 1, 1);
  }
  // Past the cap, new names are ignored; known ones still count.
  EXPECT_FALSE(s.Observe("new", 1, "/m/new", 5, 0));
  EXPECT_FALSE(s.ForChild("new"));
  EXPECT_FALSE(s.DisabledReason("/m/new"));
  EXPECT_TRUE(s.Observe("c0", 1, "/m/0", 5, 0));
  EXPECT_EQ(s.ForChild("c0")->drafted, 6u);
}

}  // namespace
}  // namespace corral::daemon
