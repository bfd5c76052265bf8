#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "support/test_support.h"

namespace corral {
namespace {

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFileTest, CommitReplacesTheTargetWhole) {
  testing::TempDir dir;
  std::string path = dir.File("state.json");
  ASSERT_TRUE(WriteFileAtomic(path, "old").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "new contents").ok());
  EXPECT_EQ(*ReadFileBounded(path, 1024), "new contents");
  EXPECT_EQ(CountEntries(dir.path()), 1U);  // no temporary left behind
}

TEST(AtomicFileTest, AbandonedFileLeavesTheOldOneAndNoTemp) {
  testing::TempDir dir;
  std::string path = dir.File("model.gguf");
  ASSERT_TRUE(WriteFileAtomic(path, "complete").ok());
  {
    AtomicFile f;
    ASSERT_TRUE(f.Open(path).ok());
    ASSERT_TRUE(f.Write("partial").ok());
    // destroyed without Commit(): simulates an error or Ctrl+C mid-write
  }
  EXPECT_EQ(*ReadFileBounded(path, 1024), "complete");
  EXPECT_EQ(CountEntries(dir.path()), 1U);
}

TEST(AtomicFileTest, ModeIsApplied) {
  testing::TempDir dir;
  std::string path = dir.File("secret");
  ASSERT_TRUE(WriteFileAtomic(path, "k", 0600).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST(AtomicFileTest, PadToAligns) {
  testing::TempDir dir;
  AtomicFile f;
  ASSERT_TRUE(f.Open(dir.File("x")).ok());
  ASSERT_TRUE(f.Write("abc").ok());
  ASSERT_TRUE(f.PadTo(32).ok());
  EXPECT_EQ(f.offset(), 32U);
  ASSERT_TRUE(f.PadTo(32).ok());
  EXPECT_EQ(f.offset(), 32U);
  ASSERT_TRUE(f.Commit().ok());
}

TEST(AtomicFileTest, UnwritableDirectoryIsAClearError) {
  Status st = WriteFileAtomic("/proc/definitely/not/here", "x");
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("/proc/definitely/not/here"), std::string::npos);
}

TEST(ReadFileBoundedTest, RefusesLargerFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("big"), std::string(100, 'x')).ok());
  auto r = ReadFileBounded(dir.File("big"), 99);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileBounded(dir.File("missing"), 10).status().code(), StatusCode::kIoError);
}

TEST(MakeDirsTest, CreatesNestedAndRefusesFiles) {
  testing::TempDir dir;
  EXPECT_TRUE(MakeDirs(dir.File("a/b/c")).ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir.File("a/b/c")));
  ASSERT_TRUE(WriteFileAtomic(dir.File("f"), "x").ok());
  EXPECT_FALSE(MakeDirs(dir.File("f")).ok());
}

TEST(TailFileTest, LastLinesWithinTheWindow) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("log"), "one\ntwo\nthree\n").ok());
  EXPECT_EQ(*TailFile(dir.File("log"), 2, 1024), "two\nthree");
  EXPECT_EQ(*TailFile(dir.File("log"), 10, 1024), "one\ntwo\nthree");
  EXPECT_EQ(*TailFile(dir.File("log"), 0, 1024), "");
  EXPECT_EQ(*TailFile(dir.File("log"), 10, 10), "two\nthree");  // only the last 10 bytes are read
  ASSERT_TRUE(WriteFileAtomic(dir.File("empty"), "").ok());
  EXPECT_EQ(*TailFile(dir.File("empty"), 3, 1024), "");
  EXPECT_FALSE(TailFile(dir.File("missing"), 3, 1024).ok());
}

// The one rule for "where do the last N lines start" (TailFile and `corral logs`).
TEST(StartOfLastLinesTest, EdgeCases) {
  struct Case {
    const char* text;
    size_t lines;
    const char* tail;  // text.substr(StartOfLastLines(text, lines))
  };
  for (const Case& c :
       {Case{"one\ntwo\nthree\n", 2, "two\nthree\n"}, Case{"one\ntwo\nthree", 2, "two\nthree"},  // no trailing newline
        Case{"one\ntwo\n", 5, "one\ntwo\n"},  // fewer lines than asked
        Case{"one\ntwo\n", 0, ""},            // none asked
        Case{"", 3, ""},                      // empty
        Case{"\n", 1, "\n"},                  // one empty line
        Case{"\n\n\n", 1, "\n"},              // only newlines: the last (empty) line
        Case{"\n\n\n", 2, "\n\n"}, Case{"\n\n\n", 9, "\n\n\n"}, Case{"a\n\nb\n", 2, "\nb\n"},  // an empty line counts
        Case{"x", 1, "x"}}) {
    const std::string_view text(c.text);
    const size_t at = StartOfLastLines(text, c.lines);
    ASSERT_LE(at, text.size()) << c.text;
    EXPECT_EQ(text.substr(at), c.tail) << "'" << c.text << "' lines " << c.lines;
  }
}

TEST(Sha256Test, KnownDigest) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("abc"), "abc").ok());
  EXPECT_EQ(*Sha256File(dir.File("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace corral
