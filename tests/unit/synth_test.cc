#include "synth/synth.h"

#include <gtest/gtest.h>

#include <ggml.h>
#include <gguf.h>

#include <cmath>
#include <cstring>
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

// The bytes of tensor `name` in the GGUF file at `path` ("" when absent).
std::string TensorBytes(const std::string& path, const std::string& name) {
  gguf_init_params p{/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* g = gguf_init_from_file(path.c_str(), p);
  if (g == nullptr) return "";
  std::string out;
  const int64_t id = gguf_find_tensor(g, name.c_str());
  if (id >= 0) {
    const size_t offset = gguf_get_data_offset(g) + gguf_get_tensor_offset(g, id);
    const size_t size = gguf_get_tensor_size(g, id);
    auto all = ReadFileBounded(path, 64 << 20);
    if (all.ok() && offset + size <= all->size()) out = all->substr(offset, size);
  }
  gguf_free(g);
  return out;
}

// Issue 17: a target whose layers from K on are near identity and a K-layer draft with the
// same seed share the first K layers, the embeddings and the output bit for bit.
TEST(SynthTest, IdentityFromMakesADraftPair) {
  testing::TempDir dir;
  Options target = Small(dir.File("target.gguf"));
  target.overrides.n_layer = 3;
  target.identity_from = 1;
  Options draft = Small(dir.File("draft.gguf"));
  draft.overrides.n_layer = 1;
  Options plain = Small(dir.File("plain.gguf"));
  plain.overrides.n_layer = 3;
  ASSERT_TRUE(Synthesize(target).ok());
  ASSERT_TRUE(Synthesize(draft).ok());
  ASSERT_TRUE(Synthesize(plain).ok());
  for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_output.weight",
                           "blk.0.ffn_down.weight", "output.weight", "output_norm.weight"}) {
    const std::string t = TensorBytes(target.out_path, name);
    ASSERT_FALSE(t.empty()) << name;
    EXPECT_EQ(t, TensorBytes(draft.out_path, name)) << name;
  }
  // Layer 1 on: inputs as in a plain model, outputs scaled down.
  EXPECT_EQ(TensorBytes(target.out_path, "blk.1.attn_q.weight"), TensorBytes(plain.out_path, "blk.1.attn_q.weight"));
  for (const char* name : {"blk.1.attn_output.weight", "blk.2.ffn_down.weight"}) {
    const std::string t = TensorBytes(target.out_path, name);
    const std::string p = TensorBytes(plain.out_path, name);
    ASSERT_EQ(t.size(), p.size()) << name;
    EXPECT_NE(t, p) << name;
    // f16 values: the near-identity ones are at least 100x smaller in magnitude.
    double sum_t = 0, sum_p = 0;
    for (size_t i = 0; i + 1 < t.size(); i += 2) {
      ggml_fp16_t vt, vp;
      std::memcpy(&vt, t.data() + i, 2);
      std::memcpy(&vp, p.data() + i, 2);
      sum_t += std::fabs(ggml_fp16_to_fp32(vt));
      sum_p += std::fabs(ggml_fp16_to_fp32(vp));
    }
    EXPECT_LT(sum_t * 100, sum_p) << name;
  }
  Options bad = Small(dir.File("bad.gguf"));
  bad.identity_from = 2;  // n_layer is 2
  auto r = Synthesize(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--identity-from"), std::string::npos) << r.status().message();
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
