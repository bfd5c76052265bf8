// Every file of the checked-in malformed corpus: ok-* files parse, bad-* files give one clean
// kCorrupt error that names the file and the byte offset — never a crash or a huge allocation
// (this test also runs under ASan+UBSan).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "catalog/gguf_reader.h"
#include "catalog/model_info.h"

namespace corral::catalog {
namespace {

TEST(GgufCorpus, EveryFileGivesACleanAnswer) {
  size_t ok = 0, bad = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CORRAL_GGUF_CORPUS_DIR)) {
    const std::string path = entry.path().string();
    const std::string name = entry.path().filename().string();
    if (name.rfind("ok-", 0) != 0 && name.rfind("bad-", 0) != 0) continue;
    auto f = ReadGgufFile(path);
    if (name.rfind("ok-", 0) == 0) {
      EXPECT_TRUE(f.ok()) << name << ": " << f.status().ToString();
      if (f.ok()) (void)ExtractModelInfo(*f);
      ++ok;
    } else {
      ASSERT_FALSE(f.ok()) << name << " was accepted";
      EXPECT_EQ(f.status().code(), StatusCode::kCorrupt) << name << ": " << f.status().ToString();
      EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
      EXPECT_NE(f.status().message().find("at byte"), std::string::npos) << f.status().message();
      EXPECT_EQ(f.status().message().find('\n'), std::string::npos) << "one line: " << f.status().message();
      ++bad;
    }
  }
  EXPECT_GE(ok, 5u);
  EXPECT_GE(bad, 80u);
}

TEST(GgufCorpus, TruncationAtEveryByteIsAnError) {
  std::ifstream in(std::string(CORRAL_GGUF_CORPUS_DIR) + "/ok-valid-v3.gguf", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string valid = ss.str();
  ASSERT_GT(valid.size(), 100u);
  ASSERT_TRUE(ParseGguf(valid, "v").ok());
  for (size_t n = 0; n < valid.size(); ++n) {
    auto f = ParseGguf(std::string_view(valid).substr(0, n), "cut.gguf");
    EXPECT_FALSE(f.ok()) << "accepted a file cut at " << n;
  }
}

}  // namespace
}  // namespace corral::catalog
