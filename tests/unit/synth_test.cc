#include "synth/synth.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/fs.h"
#include "support/test_support.h"

namespace corral::synth {
namespace {

Options Small(const std::string& out) {
  Options o;
  o.out_path = out;
  o.overrides = {64, 2, 4, 2, 128, 256};
  return o;
}

TEST(SynthTest, BadOptionsAreClearErrors) {
  testing::TempDir dir;
  struct Case {
    std::function<void(Options&)> change;
    const char* needle;
  } cases[] = {
      {[](Options& o) { o.preset = "huge"; }, "--preset"},
      {[](Options& o) { o.type = "q2_k"; }, "--type"},
      {[](Options& o) { o.arch = "mamba"; }, "--arch"},
      {[](Options& o) { o.out_path.clear(); }, "--out"},
      {[](Options& o) { o.overrides.n_embd = 66; }, "multiple of --n-head"},
      {[](Options& o) { o.overrides.n_embd = 100; }, "must be even"},
      {[](Options& o) { o.overrides.n_head_kv = 3; }, "--n-head-kv"},
      {[](Options& o) { o.overrides.n_embd = 1 << 20; }, "too large"},
      {[](Options& o) {
         o.type = "q4_0";
         o.overrides.n_embd = 48;
         o.overrides.n_head = 4;
       },
       "multiples of 32"},
  };
  for (const auto& c : cases) {
    Options o = Small(dir.File("m.gguf"));
    c.change(o);
    auto r = Synthesize(o);
    ASSERT_FALSE(r.ok()) << c.needle;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.needle;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.File("m.gguf")));
}

TEST(SynthTest, UnknownVocabListsTheKnownOnes) {
  testing::TempDir dir;
  Options o = Small(dir.File("m.gguf"));
  o.vocab = "klingon";
  auto r = Synthesize(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("llama-spm"), std::string::npos) << r.status().message();
}

TEST(SynthTest, RefusesToOverwriteWithoutForce) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("m.gguf"), "mine").ok());
  auto r = Synthesize(Small(dir.File("m.gguf")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFileBounded(dir.File("m.gguf"), 100), "mine");
}

TEST(SynthTest, UnwritableDirectoryIsAnIoError) {
  auto r = Synthesize(Small("/proc/corral/m.gguf"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
}

TEST(SynthTest, SameOptionsSameBytesOtherSeedOtherBytes) {
  testing::TempDir dir;
  for (const char* type : {"f16", "q8_0", "q4_0"}) {
    Options a = Small(dir.File(std::string("a-") + type));
    a.type = type;
    Options b = a;
    b.out_path = dir.File(std::string("b-") + type);
    Options c = a;
    c.out_path = dir.File(std::string("c-") + type);
    c.seed = a.seed + 1;
    ASSERT_TRUE(Synthesize(a).ok());
    ASSERT_TRUE(Synthesize(b).ok());
    ASSERT_TRUE(Synthesize(c).ok());
    EXPECT_EQ(*Sha256File(a.out_path), *Sha256File(b.out_path)) << type;
    EXPECT_NE(*Sha256File(a.out_path), *Sha256File(c.out_path)) << type;
  }
}

TEST(SynthTest, ReportMatchesTheFile) {
  testing::TempDir dir;
  auto r = Synthesize(Small(dir.File("m.gguf")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->n_vocab, 32000U);  // llama-spm
  EXPECT_EQ(std::filesystem::file_size(dir.File("m.gguf")), r->file_bytes);
  // embeddings + output (vocab x 64 each) + 2 layers of attention/ffn/norms + final norm
  const uint64_t per_layer = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64;
  EXPECT_EQ(r->n_params, 2 * 32000ULL * 64 + 2 * per_layer + 64);
}

TEST(SynthTest, PresetsCoverTwentyFiveMillionToOneBillion) {
  // Parameter counts of the presets with the default (llama-spm, 32000 tokens) vocab.
  auto params = [](const Dims& d) {
    uint64_t kv = d.n_embd / d.n_head * d.n_head_kv;
    uint64_t layer = 2ULL * d.n_embd * d.n_embd + 2ULL * d.n_embd * kv + 3ULL * d.n_embd * d.n_ff + 2ULL * d.n_embd;
    return 2ULL * 32000 * d.n_embd + d.n_layer * layer + d.n_embd;
  };
  const auto& p = Presets();
  ASSERT_EQ(p.size(), 4U);
  EXPECT_NEAR(static_cast<double>(params(p[0].dims)), 25e6, 3e6);
  EXPECT_NEAR(static_cast<double>(params(p[1].dims)), 100e6, 15e6);
  EXPECT_NEAR(static_cast<double>(params(p[2].dims)), 350e6, 50e6);
  EXPECT_NEAR(static_cast<double>(params(p[3].dims)), 1e9, 1.5e8);
}

}  // namespace
}  // namespace corral::synth
