// Speculative decoding, the catalog half: the vocabulary digest the GGUF reader computes,
// the vocab hash and MTP layers ModelInfo keeps, and ChooseSpec's rules (catalog/spec.h).
#include "catalog/spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "catalog/gguf_builder.h"
#include "catalog/gguf_reader.h"
#include "catalog/model_info.h"

namespace corral::catalog {
namespace {

using corral::testing::GgufBuilder;

// A header-only GGUF: architecture, a token list, BOS id and optionally nextn layers.
std::string TokenFile(const std::vector<std::string>& tokens, uint32_t bos = 1, uint32_t nextn = 0,
                      const std::string& model = "llama") {
  GgufBuilder b;
  b.Header(3, 0, nextn != 0 ? 5 : 4);
  b.KvStr("general.architecture", "qwen3");
  b.KvStr("tokenizer.ggml.model", model);
  b.KvU32("tokenizer.ggml.bos_token_id", bos);
  b.Key("tokenizer.ggml.tokens", 9).ArrayHead(8, tokens.size());
  for (const auto& t : tokens) b.Str(t);
  if (nextn != 0) b.KvU32("qwen3.nextn_predict_layers", nextn);
  return b.bytes();
}

uint64_t DigestOf(const std::string& bytes, uint64_t keep = 64) {
  GgufReadOptions o;
  o.keep_array_items = keep;
  auto f = ParseGguf(bytes, "t.gguf", o);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return 0;
  return f->Find("tokenizer.ggml.tokens")->digest;
}

uint64_t VocabHashOf(const std::string& bytes) {
  auto f = ParseGguf(bytes, "t.gguf");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? ExtractModelInfo(*f).vocab_hash : 0;
}

TEST(VocabDigest, KeptOrElidedTheSame) {
  const std::string bytes = TokenFile({"<unk>", "<s>", "</s>", "a", "b"});
  const uint64_t kept = DigestOf(bytes, 64);
  EXPECT_NE(kept, 0u);
  EXPECT_EQ(DigestOf(bytes, 2), kept);  // elided: counted and hashed, not stored
  GgufReadOptions o;
  o.digest_keys.clear();
  auto f = ParseGguf(bytes, "t.gguf", o);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Find("tokenizer.ggml.tokens")->digest, 0u);  // not asked for
  EXPECT_EQ(f->Find("tokenizer.ggml.tokens")->items.size(), 5u);
  EXPECT_EQ(f->Find("tokenizer.ggml.tokens")->items[3].str, "a");
}

TEST(VocabDigest, TrailingPaddingIsLeftOutOtherChangesAreNot) {
  const uint64_t base = DigestOf(TokenFile({"<unk>", "<s>", "</s>", "a", "b"}));
  EXPECT_EQ(DigestOf(TokenFile({"<unk>", "<s>", "</s>", "a", "b", "[PAD5]", "[PAD6]"})), base);
  EXPECT_NE(DigestOf(TokenFile({"<unk>", "<s>", "</s>", "a", "[PAD4]", "b"})), base);
  EXPECT_NE(DigestOf(TokenFile({"<unk>", "<s>", "</s>", "a", "c"})), base);
  EXPECT_NE(DigestOf(TokenFile({"<unk>", "<s>", "</s>", "ab"})), base);  // lengths are hashed
  EXPECT_NE(DigestOf(TokenFile({"<unk>", "<s>", "</s>", "a"})), base);
}

TEST(VocabDigest, MalformedTokenListsAreClearErrors) {
  GgufBuilder b;
  b.Header(3, 0, 1).Key("tokenizer.ggml.tokens", 9).ArrayHead(8, 3).Str("a").Pod<uint64_t>(1000).Raw("xy");
  auto f = ParseGguf(b.bytes(), "t.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
}

TEST(VocabHash, TokensTokenizerAndBosMakeTheIdentity) {
  const std::vector<std::string> t = {"<unk>", "<s>", "</s>", "a", "b"};
  const uint64_t base = VocabHashOf(TokenFile(t));
  EXPECT_NE(base, 0u);
  EXPECT_EQ(VocabHashOf(TokenFile(t)), base);
  EXPECT_NE(VocabHashOf(TokenFile(t, 2)), base);             // another BOS id
  EXPECT_NE(VocabHashOf(TokenFile(t, 1, 0, "gpt2")), base);  // another tokenizer model
  EXPECT_EQ(VocabHashOf(TokenFile(t, 1, 2)), base);          // MTP layers are not the vocabulary
  GgufBuilder none;
  none.Header(3, 0, 1).KvStr("general.architecture", "llama");
  EXPECT_EQ(VocabHashOf(none.bytes()), 0u);  // no token list: no identity
  EXPECT_EQ(VocabHashText(0), "");
  EXPECT_EQ(VocabHashText(0xabcULL), "0000000000000abc");
}

TEST(VocabHash, NextnLayersAndIndexRoundTrip) {
  auto f = ParseGguf(TokenFile({"a", "b"}, 1, 3), "t.gguf");
  ASSERT_TRUE(f.ok());
  ModelInfo m = ExtractModelInfo(*f);
  EXPECT_EQ(m.nextn_layers, 3u);
  auto back = ModelInfoFromJson(ToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->vocab_hash, m.vocab_hash);
  EXPECT_EQ(back->nextn_layers, 3u);
  nlohmann::json old = ToJson(m);
  old.erase("vocab_hash");  // an entry from an older index: refused, so the file is read again
  EXPECT_FALSE(ModelInfoFromJson(old).ok());
}

// ---- ChooseSpec --------------------------------------------------------------------------

Model M(const std::string& name, uint64_t params, uint64_t vocab, const std::string& arch = "llama") {
  Model m;
  m.name = name;
  m.path = "/models/" + name + ".gguf";
  m.architecture = arch;
  m.n_params = params;
  m.size_bytes = params * 2;
  m.info.architecture = arch;
  m.info.vocab_hash = vocab;
  m.info.n_params = params;
  return m;
}

class ChooseSpecTest : public ::testing::Test {
 protected:
  Result<SpecChoice> Choose(const Model& target, std::string_view setting) {
    return ChooseSpec(target, models_, setting, [this](std::string_view ref) -> Result<Model> {
      for (const auto& m : models_) {
        if (m.name == ref) return m;
      }
      return NotFound("no model '" + std::string(ref) + "'");
    });
  }
  std::vector<Model> models_;
};

TEST_F(ChooseSpecTest, AutoPicksTheSmallestSameVocabMuchSmallerModel) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("mid", 2000, 7), M("small", 500, 7), M("tiny-other-vocab", 100, 9)};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, SpecKind::kDraft);
  ASSERT_TRUE(c->draft.has_value());
  EXPECT_EQ(c->draft->name, "small");
  EXPECT_EQ(c->setting, "auto");
  EXPECT_NE(c->reason.find("smallest"), std::string::npos) << c->reason;
  EXPECT_EQ(SpecJson(*c)["draft_path"], "/models/small.gguf");
  EXPECT_EQ(SpecLine(*c).rfind("draft small (auto", 0), 0u) << SpecLine(*c);
}

TEST_F(ChooseSpecTest, AutoWithOnlyAnotherVocabularyChoosesNone) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("small-other", 500, 9)};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kNone);
  EXPECT_FALSE(c->draft.has_value());
  EXPECT_NE(c->reason.find("1 another vocabulary"), std::string::npos) << c->reason;
}

TEST_F(ChooseSpecTest, AutoRefusesADraftThatIsNotMuchSmaller) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("almost", 2001, 7), M("twin", 8000, 7)};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kNone);
  EXPECT_NE(c->reason.find("2 same vocabulary but too big"), std::string::npos) << c->reason;
  models_.push_back(M("quarter", 2000, 7));  // exactly 1/4 qualifies
  c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kDraft);
  EXPECT_EQ(c->draft->name, "quarter");
}

TEST_F(ChooseSpecTest, AutoStaysInTheArchitectureFamily) {
  const Model target = M("moe", 30000, 7, "qwen3moe");
  models_ = {target, M("dense-small", 600, 7, "qwen3"), M("llama-small", 100, 7, "llama")};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->kind, SpecKind::kDraft);
  EXPECT_EQ(c->draft->name, "dense-small");
  EXPECT_EQ(ArchFamily("qwen3moe"), "qwen3");
  EXPECT_EQ(ArchFamily("llama"), "llama");
}

TEST_F(ChooseSpecTest, AutoSkipsProjectorsAndEmbeddingModels) {
  const Model target = M("big", 8000, 7);
  Model proj = M("proj", 100, 7);
  proj.info.type = "mmproj";
  Model embed = M("embed", 100, 7);
  embed.info.pooling_type = 1;
  models_ = {target, proj, embed};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kNone);
}

TEST_F(ChooseSpecTest, AutoUsesMtpHeadsFirst) {
  Model target = M("mtp", 8000, 7);
  target.info.nextn_layers = 1;
  models_ = {target, M("small", 500, 7)};
  auto c = Choose(target, "auto");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kMtp);
  EXPECT_FALSE(c->draft.has_value());
  EXPECT_NE(c->reason.find("nextn_predict_layers"), std::string::npos) << c->reason;
}

TEST_F(ChooseSpecTest, OffChoosesNone) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("small", 500, 7)};
  auto c = Choose(target, "off");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, SpecKind::kNone);
  EXPECT_EQ(c->reason, "off in the config");
}

TEST_F(ChooseSpecTest, NamedDraftWithTheSameVocabularyIsUsedEvenIfLarge) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("half", 4000, 7)};
  auto c = Choose(target, "half");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, SpecKind::kDraft);
  EXPECT_EQ(c->draft->name, "half");
  EXPECT_EQ(c->setting, "half");
}

TEST_F(ChooseSpecTest, NamedDraftWithAnotherVocabularyIsRefused) {
  const Model target = M("big", 8000, 7);
  models_ = {target, M("other", 500, 9), M("novocab", 500, 0)};
  for (const char* name : {"other", "novocab"}) {
    auto c = Choose(target, name);
    ASSERT_FALSE(c.ok()) << name;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("does not share the vocabulary of big"), std::string::npos)
        << c.status().message();
  }
}

TEST_F(ChooseSpecTest, NamedDraftMissingIsRefusedTheTargetItselfGetsNone) {
  const Model target = M("big", 8000, 7);
  models_ = {target};
  auto missing = Choose(target, "ghost");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("draft model 'ghost'"), std::string::npos) << missing.status().message();
  auto self = Choose(target, "big");  // a global draft started on its own: no draft for it
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(self->kind, SpecKind::kNone);
  EXPECT_NE(self->reason.find("itself"), std::string::npos) << self->reason;
}

TEST_F(ChooseSpecTest, BadSettingsAreRefused) {
  const Model target = M("big", 8000, 7);
  for (const std::string& bad : {std::string(), std::string("a\nb"), std::string(2000, 'x')}) {
    auto c = Choose(target, bad);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace corral::catalog
