// The GGUF reader on hand-built files: every value type, nested arrays, elided arrays,
// split names, limits, and clear errors for malformed input.
#include <gtest/gtest.h>

#include <fstream>

#include "catalog/gguf_builder.h"
#include "catalog/gguf_reader.h"
#include "support/test_support.h"

namespace corral::catalog {
namespace {

using corral::testing::GgufBuilder;
using corral::testing::ValidGguf;

GgufReadOptions KeepAll() {
  GgufReadOptions o;
  o.keep_array_items = GgufReadOptions::kKeepAll;
  return o;
}

TEST(GgufReader, ReadsEveryValueType) {
  for (uint32_t version : {2u, 3u}) {
    auto f = ParseGguf(ValidGguf(version), "valid.gguf", KeepAll());
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->version, version);
    EXPECT_EQ(f->kv.size(), 19u);
    EXPECT_EQ(f->Find("t.u8")->u, 200u);
    EXPECT_EQ(f->Find("t.i8")->i, -5);
    EXPECT_EQ(f->Find("t.u16")->u, 60000u);
    EXPECT_EQ(f->Find("t.i16")->i, -30000);
    EXPECT_EQ(f->Find("t.i32")->i, -7);
    EXPECT_FLOAT_EQ(static_cast<float>(f->Find("t.f32")->f), 1.5f);
    EXPECT_EQ(f->Find("t.bool")->u, 1u);
    EXPECT_EQ(f->Find("t.bool")->type, GgufType::kBool);
    EXPECT_EQ(f->Find("t.u64")->u, 1ULL << 40);
    EXPECT_EQ(f->Find("t.i64")->i, -(1LL << 40));
    EXPECT_DOUBLE_EQ(f->Find("t.f64")->f, 2.25);
    EXPECT_EQ(f->GetString("general.architecture"), "llama");
    const GgufValue* tokens = f->Find("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->elem_type, GgufType::kString);
    ASSERT_EQ(tokens->items.size(), 5u);
    EXPECT_EQ(tokens->items[2].str, "a");
    const GgufValue* nested = f->Find("t.nested");
    ASSERT_NE(nested, nullptr);
    EXPECT_EQ(nested->elem_type, GgufType::kArray);
    ASSERT_EQ(nested->items.size(), 2u);
    EXPECT_EQ(nested->items[0].elem_type, GgufType::kUint32);
    EXPECT_EQ(nested->items[0].items[1].u, 2u);
    EXPECT_EQ(nested->items[1].items[0].str, "x");
    ASSERT_EQ(f->tensors.size(), 2u);
    EXPECT_EQ(f->tensors[1].name, "tok.weight");
    EXPECT_EQ(f->tensors[1].ne[0], 32);
    EXPECT_EQ(f->tensors[1].ne[1], 2);
    EXPECT_EQ(f->tensors[1].nbytes, 128u);
    EXPECT_EQ(f->tensors[1].offset, 32u);
    EXPECT_EQ(f->data_offset % 32, 0u);
    EXPECT_EQ(f->ParamCount(), 8u + 64u);
    EXPECT_EQ(f->TensorBytes(), 32u + 128u);
  }
}

TEST(GgufReader, LongArraysAreCountedNotKept) {
  GgufReadOptions o;
  o.keep_array_items = 3;
  auto f = ParseGguf(ValidGguf(), "valid.gguf", o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const GgufValue* tokens = f->Find("tokenizer.ggml.tokens");
  EXPECT_TRUE(tokens->elided);
  EXPECT_EQ(tokens->count, 5u);
  EXPECT_TRUE(tokens->items.empty());
  // The keys after the skipped array are still read correctly.
  EXPECT_EQ(f->GetString("tokenizer.chat_template"), "{{ messages }}");
}

TEST(GgufReader, MetadataOnlyStopsBeforeTensors) {
  GgufReadOptions o;
  o.read_tensors = false;
  auto f = ParseGguf(ValidGguf(), "valid.gguf", o);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->tensors.empty());
  EXPECT_EQ(f->n_tensors, 2u);
}

TEST(GgufReader, ReadsFromDiskLikeFromMemory) {
  corral::testing::TempDir dir;
  const std::string bytes = ValidGguf();
  std::ofstream(dir.File("v.gguf"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto disk = ReadGgufFile(dir.File("v.gguf"), KeepAll());
  auto mem = ParseGguf(bytes, "v.gguf", KeepAll());
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(disk->kv.size(), mem->kv.size());
  EXPECT_EQ(disk->header_bytes, mem->header_bytes);
  EXPECT_EQ(disk->file_size, bytes.size());
}

TEST(GgufReader, ErrorsNameTheFileAndTheProblem) {
  std::string bad = ValidGguf();
  auto f = ParseGguf(bad.substr(0, 30), "cut.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(f.status().message().find("cut.gguf"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("at byte"), std::string::npos) << f.status().message();

  auto magic = ParseGguf("GGML" + bad.substr(4), "m.gguf");
  EXPECT_NE(magic.status().message().find("bad magic"), std::string::npos);
  auto huge = ParseGguf(GgufBuilder().Header(3, 0, 1).Key("s", 8).Pod<uint64_t>(UINT64_MAX).bytes(), "h.gguf");
  EXPECT_NE(huge.status().message().find("exceeds the limit"), std::string::npos) << huge.status().message();
  auto missing = ReadGgufFile("/nonexistent/x.gguf");
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("/nonexistent/x.gguf"), std::string::npos);
}

TEST(GgufReader, RefusesNestingDeeperThanTheLimit) {
  GgufBuilder b;
  b.Header(3, 0, 1).Key("a", 9);
  for (int d = 0; d < 5; ++d) b.ArrayHead(9, 1);
  b.ArrayHead(4, 0);
  auto f = ParseGguf(b.bytes(), "deep.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("nested deeper"), std::string::npos) << f.status().message();
}

TEST(GgufReader, AHugeCountIsRefusedBeforeAllocating) {
  // 2^29 elements of 8 bytes would need 4 GiB: refused from the bytes left, not by trying.
  auto f = ParseGguf(GgufBuilder().Header(3, 0, 1).Key("a", 9).ArrayHead(10, 1ULL << 29).bytes(), "a.gguf", KeepAll());
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("hold at most"), std::string::npos) << f.status().message();
  // Beyond ggml's limit of 2^30 elements the count alone is refused.
  auto g = ParseGguf(GgufBuilder().Header(3, 0, 1).Key("a", 9).ArrayHead(10, 1ULL << 40).bytes(), "a.gguf");
  EXPECT_NE(g.status().message().find("more than the limit"), std::string::npos) << g.status().message();
}

TEST(GgufReader, SplitNames) {
  auto s = ParseSplitName("/m/Llama-3-70B-Q4_K_M-00002-of-00003.gguf");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->prefix, "/m/Llama-3-70B-Q4_K_M");
  EXPECT_EQ(s->no, 2u);
  EXPECT_EQ(s->count, 3u);
  EXPECT_EQ(SplitPath(*s, 1), "/m/Llama-3-70B-Q4_K_M-00001-of-00003.gguf");
  EXPECT_FALSE(ParseSplitName("model.gguf").has_value());
  EXPECT_FALSE(ParseSplitName("x-00004-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseSplitName("x-00000-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseSplitName("x-0001a-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseSplitName("x-00001-of-00003.bin").has_value());
}

TEST(GgufReader, FileTypeNames) {
  EXPECT_EQ(FileTypeName(15), "Q4_K_M");
  EXPECT_EQ(FileTypeName(1), "F16");
  EXPECT_EQ(FileTypeName(7), "Q8_0");
  EXPECT_EQ(FileTypeName(5), "");
}

}  // namespace
}  // namespace corral::catalog
