// Cross-check: on every .gguf of the pinned llama.cpp tree, on synthetic models of each
// weight type and on a file ggml itself writes with every value type, our reader's keys,
// types, counts, values and tensor table (names, types, shapes, offsets, sizes) agree with
// ggml's own gguf library. Also checks our ggml type table against ggml's.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "catalog/gguf_reader.h"
#include "ggml.h"
#include "gguf.h"
#include "support/test_support.h"

namespace corral::catalog {
namespace {

std::string EngineDir() {
  return std::filesystem::path(corral::testing::PinnedLlamaServer()).parent_path().parent_path().string();
}

void CompareScalar(const GgufValue& v, gguf_context* g, int64_t id, const std::string& key) {
  switch (v.type) {
    case GgufType::kUint8: EXPECT_EQ(v.u, gguf_get_val_u8(g, id)) << key; break;
    case GgufType::kInt8: EXPECT_EQ(v.i, gguf_get_val_i8(g, id)) << key; break;
    case GgufType::kUint16: EXPECT_EQ(v.u, gguf_get_val_u16(g, id)) << key; break;
    case GgufType::kInt16: EXPECT_EQ(v.i, gguf_get_val_i16(g, id)) << key; break;
    case GgufType::kUint32: EXPECT_EQ(v.u, gguf_get_val_u32(g, id)) << key; break;
    case GgufType::kInt32: EXPECT_EQ(v.i, gguf_get_val_i32(g, id)) << key; break;
    case GgufType::kFloat32: EXPECT_EQ(static_cast<float>(v.f), gguf_get_val_f32(g, id)) << key; break;
    case GgufType::kBool: EXPECT_EQ(v.u != 0, gguf_get_val_bool(g, id)) << key; break;
    case GgufType::kString: EXPECT_EQ(v.str, gguf_get_val_str(g, id)) << key; break;
    case GgufType::kUint64: EXPECT_EQ(v.u, gguf_get_val_u64(g, id)) << key; break;
    case GgufType::kInt64: EXPECT_EQ(v.i, gguf_get_val_i64(g, id)) << key; break;
    case GgufType::kFloat64: EXPECT_EQ(v.f, gguf_get_val_f64(g, id)) << key; break;
    case GgufType::kArray: FAIL() << key;
  }
}

void CompareArrayItem(const GgufValue& item, gguf_context* g, int64_t id, size_t k, const std::string& key) {
  const void* data = item.type == GgufType::kString ? nullptr : gguf_get_arr_data(g, id);
  switch (item.type) {
    case GgufType::kString: EXPECT_EQ(item.str, gguf_get_arr_str(g, id, k)) << key << "[" << k << "]"; break;
    case GgufType::kUint8: EXPECT_EQ(item.u, static_cast<const uint8_t*>(data)[k]) << key; break;
    case GgufType::kInt8: EXPECT_EQ(item.i, static_cast<const int8_t*>(data)[k]) << key; break;
    case GgufType::kUint16: EXPECT_EQ(item.u, static_cast<const uint16_t*>(data)[k]) << key; break;
    case GgufType::kInt16: EXPECT_EQ(item.i, static_cast<const int16_t*>(data)[k]) << key; break;
    case GgufType::kUint32: EXPECT_EQ(item.u, static_cast<const uint32_t*>(data)[k]) << key; break;
    case GgufType::kInt32: EXPECT_EQ(item.i, static_cast<const int32_t*>(data)[k]) << key; break;
    case GgufType::kFloat32: EXPECT_EQ(static_cast<float>(item.f), static_cast<const float*>(data)[k]) << key; break;
    case GgufType::kBool: EXPECT_EQ(item.u, static_cast<const uint8_t*>(data)[k]) << key; break;
    case GgufType::kUint64: EXPECT_EQ(item.u, static_cast<const uint64_t*>(data)[k]) << key; break;
    case GgufType::kInt64: EXPECT_EQ(item.i, static_cast<const int64_t*>(data)[k]) << key; break;
    case GgufType::kFloat64: EXPECT_EQ(item.f, static_cast<const double*>(data)[k]) << key; break;
    case GgufType::kArray: FAIL() << "ggml has no nested arrays: " << key;
  }
}

// Reads `path` with both readers and compares everything. Returns the number of keys compared.
size_t CrossCheck(const std::string& path) {
  SCOPED_TRACE(path);
  GgufReadOptions keep;
  keep.keep_array_items = GgufReadOptions::kKeepAll;
  auto ours = ReadGgufFile(path, keep);
  ggml_context* meta = nullptr;
  gguf_init_params params{/*no_alloc=*/true, &meta};
  std::unique_ptr<gguf_context, decltype(&gguf_free)> g(gguf_init_from_file(path.c_str(), params), &gguf_free);
  std::unique_ptr<ggml_context, decltype(&ggml_free)> meta_owner(meta, &ggml_free);
  if (g == nullptr) {
    EXPECT_FALSE(ours.ok()) << "ggml refused a file we accepted";
    return 0;
  }
  if (!ours.ok()) {
    ADD_FAILURE() << ours.status().ToString();
    return 0;
  }
  EXPECT_EQ(ours->version, gguf_get_version(g.get()));
  EXPECT_EQ(ours->alignment, gguf_get_alignment(g.get()));
  EXPECT_EQ(ours->data_offset, gguf_get_data_offset(g.get()));
  const int64_t n_kv = gguf_get_n_kv(g.get());
  EXPECT_EQ(static_cast<int64_t>(ours->kv.size()), n_kv);
  for (int64_t id = 0; id < n_kv && id < static_cast<int64_t>(ours->kv.size()); ++id) {
    const GgufKv& kv = ours->kv[static_cast<size_t>(id)];
    EXPECT_EQ(kv.key, gguf_get_key(g.get(), id));
    EXPECT_EQ(static_cast<int>(kv.value.type), static_cast<int>(gguf_get_kv_type(g.get(), id))) << kv.key;
    if (kv.value.type == GgufType::kArray) {
      EXPECT_EQ(static_cast<int>(kv.value.elem_type), static_cast<int>(gguf_get_arr_type(g.get(), id))) << kv.key;
      EXPECT_EQ(kv.value.count, gguf_get_arr_n(g.get(), id)) << kv.key;
      if (kv.value.items.size() != kv.value.count) {
        ADD_FAILURE() << kv.key << ": " << kv.value.items.size() << " items kept of " << kv.value.count;
        continue;
      }
      for (size_t k = 0; k < kv.value.items.size(); ++k) CompareArrayItem(kv.value.items[k], g.get(), id, k, kv.key);
    } else {
      CompareScalar(kv.value, g.get(), id, kv.key);
    }
  }
  const int64_t n_t = gguf_get_n_tensors(g.get());
  EXPECT_EQ(static_cast<int64_t>(ours->tensors.size()), n_t);
  for (int64_t id = 0; id < n_t && id < static_cast<int64_t>(ours->tensors.size()); ++id) {
    const GgufTensorInfo& t = ours->tensors[static_cast<size_t>(id)];
    EXPECT_EQ(t.name, gguf_get_tensor_name(g.get(), id));
    EXPECT_EQ(t.type, static_cast<uint32_t>(gguf_get_tensor_type(g.get(), id))) << t.name;
    EXPECT_EQ(t.offset, gguf_get_tensor_offset(g.get(), id)) << t.name;
    EXPECT_EQ(t.nbytes, gguf_get_tensor_size(g.get(), id)) << t.name;
    const ggml_tensor* gt = ggml_get_tensor(meta, t.name.c_str());
    if (gt == nullptr) {
      ADD_FAILURE() << "ggml has no tensor " << t.name;
      continue;
    }
    for (int d = 0; d < 4; ++d) EXPECT_EQ(t.ne[static_cast<size_t>(d)], gt->ne[d]) << t.name << " dim " << d;
  }
  return static_cast<size_t>(n_kv);
}

TEST(GgufCrossCheck, TypeTableMatchesGgml) {
  EXPECT_EQ(GgmlTypeCount(), static_cast<uint32_t>(GGML_TYPE_COUNT));
  for (uint32_t id = 0; id < static_cast<uint32_t>(GGML_TYPE_COUNT); ++id) {
    const auto type = static_cast<ggml_type>(id);
    const GgmlTypeTraits* ours = FindGgmlType(id);
    if (ggml_blck_size(type) == 0) {
      EXPECT_EQ(ours, nullptr) << id;
      continue;
    }
    ASSERT_NE(ours, nullptr) << id << " " << ggml_type_name(type);
    EXPECT_EQ(ours->block_elems, static_cast<uint32_t>(ggml_blck_size(type))) << id;
    EXPECT_EQ(ours->block_bytes, ggml_type_size(type)) << id;
    std::string lower = ours->name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string theirs = ggml_type_name(type);
    for (char& c : theirs) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(lower, theirs);
  }
}

TEST(GgufCrossCheck, EveryGgufOfThePinnedTree) {
  size_t files = 0, keys = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(EngineDir() + "/src")) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") {
      keys += CrossCheck(e.path().string());
      ++files;
    }
  }
  EXPECT_GE(files, 10u);
  EXPECT_GT(keys, 100u);
}

TEST(GgufCrossCheck, SyntheticModelsOfEachType) {
  corral::testing::TempDir dir;
  for (const char* type : {"f16", "q8_0", "q4_0"}) {
    const std::string path = corral::testing::MakeModel(
        dir.path(), std::string("m-") + type + ".gguf",
        {"--type", type, "--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128", "--ctx", "512"});
    ASSERT_FALSE(path.empty()) << type;
    EXPECT_GT(CrossCheck(path), 10u);
  }
  const std::string bpe =
      corral::testing::MakeModel(dir.path(), "bpe.gguf",
                                 {"--vocab", "llama-bpe", "--n-embd", "64", "--n-layer", "1", "--n-head", "4",
                                  "--n-head-kv", "2", "--n-ff", "128", "--ctx", "512"});
  ASSERT_FALSE(bpe.empty());
  EXPECT_GT(CrossCheck(bpe), 10u);
}

TEST(GgufCrossCheck, EveryValueTypeWrittenByGgml) {
  corral::testing::TempDir dir;
  gguf_context* g = gguf_init_empty();
  gguf_set_val_u8(g, "u8", 250);
  gguf_set_val_i8(g, "i8", -100);
  gguf_set_val_u16(g, "u16", 65000);
  gguf_set_val_i16(g, "i16", -32000);
  gguf_set_val_u32(g, "u32", 4000000000u);
  gguf_set_val_i32(g, "i32", -2000000000);
  gguf_set_val_f32(g, "f32", 3.25f);
  gguf_set_val_bool(g, "bool", true);
  gguf_set_val_str(g, "str", "héllo");
  gguf_set_val_u64(g, "u64", 1ULL << 60);
  gguf_set_val_i64(g, "i64", -(1LL << 60));
  gguf_set_val_f64(g, "f64", -0.125);
  // (general.alignment is left out: ggml's writer lays tensors out at the default alignment
  // and its reader then refuses its own file; the corpus covers other alignments.)
  const int32_t ints[] = {1, -2, 3};
  gguf_set_arr_data(g, "arr.i32", GGUF_TYPE_INT32, ints, 3);
  const double dbl[] = {0.5, 1e300};
  gguf_set_arr_data(g, "arr.f64", GGUF_TYPE_FLOAT64, dbl, 2);
  const uint8_t bools[] = {1, 0, 1, 1};
  gguf_set_arr_data(g, "arr.bool", GGUF_TYPE_BOOL, bools, 4);
  const char* strs[] = {"a", "", "ccc"};
  gguf_set_arr_str(g, "arr.str", strs, 3);
  gguf_set_arr_data(g, "arr.empty", GGUF_TYPE_UINT16, nullptr, 0);
  // Tensors of several types and shapes, with data.
  ggml_init_params ip{16 * 1024 * 1024, nullptr, false};
  ggml_context* ctx = ggml_init(ip);
  ggml_tensor* a = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 7);
  ggml_set_name(a, "a");
  ggml_tensor* b = ggml_new_tensor_3d(ctx, GGML_TYPE_Q8_0, 64, 3, 2);
  ggml_set_name(b, "b");
  ggml_tensor* c = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, 2, 3, 4, 5);
  ggml_set_name(c, "c");
  ggml_tensor* d = ggml_new_tensor_2d(ctx, GGML_TYPE_Q4_K, 256, 2);
  ggml_set_name(d, "d");
  for (ggml_tensor* t : {a, b, c, d}) gguf_add_tensor(g, t);
  const std::string path = dir.File("all-types.gguf");
  ASSERT_TRUE(gguf_write_to_file(g, path.c_str(), false));
  gguf_free(g);
  ggml_free(ctx);
  EXPECT_EQ(CrossCheck(path), 17u);
}

}  // namespace
}  // namespace corral::catalog
