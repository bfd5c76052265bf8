// Writes the malformed-GGUF corpus (tests/fuzz/corpus/fuzz_gguf): valid seeds named ok-*,
// malformed files named bad-* that the reader must reject with a clean error. The unit test
// gguf_corpus_test checks exactly that; the fuzzer starts from these files.
//   make_gguf_corpus OUT_DIR
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "catalog/gguf_builder.h"

using corral::testing::GgufBuilder;
using corral::testing::ValidGguf;

namespace {

std::string g_dir;
int g_count = 0;

void Write(const std::string& name, const std::string& bytes) {
  std::ofstream out(g_dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ++g_count;
}

template <typename T>
std::string Patch(std::string bytes, size_t at, T v) {
  std::memcpy(bytes.data() + at, &v, sizeof(T));
  return bytes;
}

// A file with one KV whose value the callback writes, and no tensors.
std::string OneKv(const std::function<void(GgufBuilder&)>& value) {
  GgufBuilder b;
  b.Header(3, 0, 1);
  value(b);
  return b.bytes();
}

// A file with one tensor described by the callback, then `data` bytes of data.
std::string OneTensor(const std::function<void(GgufBuilder&)>& tensor, size_t data = 64) {
  GgufBuilder b;
  b.Header(3, 1, 0);
  tensor(b);
  b.PadTo(32).Zeros(data);
  return b.bytes();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_gguf_corpus OUT_DIR\n");
    return 64;
  }
  g_dir = argv[1];
  std::vector<size_t> offsets;
  const std::string valid = ValidGguf(3, &offsets);
  Write("ok-valid-v3.gguf", valid);
  Write("ok-valid-v2.gguf", ValidGguf(2));
  Write("ok-empty.gguf", GgufBuilder().Header(3, 0, 0).bytes());

  // Truncated at every field boundary and a few bytes inside each field.
  for (size_t k = 0; k < offsets.size(); ++k) {
    for (size_t delta : {size_t{0}, size_t{1}, size_t{5}, size_t{9}}) {
      size_t at = offsets[k] + delta;
      if (at >= valid.size() || (k + 1 < offsets.size() && delta > 0 && at >= offsets[k + 1])) continue;
      if (at == 0 && delta == 0) continue;
      Write("bad-truncated-at-" + std::to_string(at) + ".gguf", valid.substr(0, at));
    }
  }
  Write("bad-truncated-data.gguf", valid.substr(0, valid.size() - 1));

  // Magic and version.
  Write("bad-magic.gguf", "GGML" + valid.substr(4));
  Write("bad-magic-bigendian.gguf", "FUGG" + valid.substr(4));
  Write("bad-magic-short.gguf", "GG");
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u, 0xFFFFFFFFu}) {
    Write("bad-version-" + std::to_string(v) + ".gguf", Patch(valid, 4, v));
  }

  // Lying counts.
  Write("bad-n-tensors-huge.gguf", Patch(valid, 8, int64_t{1} << 40));
  Write("bad-n-tensors-negative.gguf", Patch(valid, 8, int64_t{-1}));
  Write("bad-n-kv-huge.gguf", Patch(valid, 16, int64_t{1} << 40));
  Write("bad-n-kv-negative.gguf", Patch(valid, 16, int64_t{-1}));
  Write("bad-n-kv-too-many.gguf", Patch(valid, 16, int64_t{20}));
  Write("bad-n-tensors-too-many.gguf", Patch(valid, 8, int64_t{3}));
  Write("bad-key-length-huge.gguf", Patch(valid, offsets[1], uint64_t{1} << 62));
  Write("bad-key-length-past-end.gguf", Patch(valid, offsets[1], uint64_t{valid.size()}));
  Write("bad-key-empty.gguf", OneKv([](GgufBuilder& b) { b.Key("", 4).Pod<uint32_t>(1); }));
  Write("bad-string-length-huge.gguf", OneKv([](GgufBuilder& b) { b.Key("s", 8).Pod<uint64_t>(UINT64_MAX); }));
  Write("bad-string-length-lies.gguf", OneKv([](GgufBuilder& b) { b.Key("s", 8).Pod<uint64_t>(100).Raw("short"); }));

  // Types.
  for (int32_t t : {13, -1, 0x7FFFFFFF, 100}) {
    Write("bad-value-type-" + std::to_string(t) + ".gguf",
          OneKv([t](GgufBuilder& b) { b.Key("k", t).Pod<uint32_t>(0); }));
    Write("bad-array-type-" + std::to_string(t) + ".gguf",
          OneKv([t](GgufBuilder& b) { b.Key("k", 9).ArrayHead(t, 1).Pod<uint32_t>(0); }));
  }
  Write("bad-bool-2.gguf", OneKv([](GgufBuilder& b) { b.Key("k", 7).Pod<uint8_t>(2); }));
  Write("bad-duplicate-key.gguf", GgufBuilder().Header(3, 0, 2).KvU32("k", 1).KvU32("k", 2).bytes());
  Write("bad-alignment-zero.gguf", GgufBuilder().Header(3, 0, 1).KvU32("general.alignment", 0).bytes());
  Write("bad-alignment-3.gguf", GgufBuilder().Header(3, 0, 1).KvU32("general.alignment", 3).bytes());
  Write("bad-alignment-type.gguf", GgufBuilder().Header(3, 0, 1).KvStr("general.alignment", "32").bytes());
  Write("ok-alignment-64.gguf", GgufBuilder().Header(3, 0, 1).KvU32("general.alignment", 64).bytes());

  // Arrays: huge counts, lying counts, deep and self-similar nesting.
  Write("bad-array-count-huge.gguf", OneKv([](GgufBuilder& b) { b.Key("a", 9).ArrayHead(4, UINT64_MAX); }));
  Write("bad-array-count-lies.gguf",
        OneKv([](GgufBuilder& b) { b.Key("a", 9).ArrayHead(4, 1000).Pod<uint32_t>(1).Pod<uint32_t>(2); }));
  Write("bad-array-strings-lie.gguf",
        OneKv([](GgufBuilder& b) { b.Key("a", 9).ArrayHead(8, 3).Str("a").Pod<uint64_t>(1ULL << 50); }));
  Write("bad-array-nested-count-huge.gguf",
        OneKv([](GgufBuilder& b) { b.Key("a", 9).ArrayHead(9, 2).ArrayHead(9, UINT64_MAX); }));
  Write("bad-array-nested-deep.gguf", OneKv([](GgufBuilder& b) {
          b.Key("a", 9);
          for (int d = 0; d < 6; ++d) b.ArrayHead(9, 1);
          b.ArrayHead(4, 1).Pod<uint32_t>(7);
        }));
  Write("ok-array-nested-3.gguf", OneKv([](GgufBuilder& b) {
          b.Key("a", 9);
          for (int d = 0; d < 3; ++d) b.ArrayHead(9, 1);
          b.ArrayHead(4, 1).Pod<uint32_t>(7);
        }));
  // An array whose elements are arrays that look like the outer one ("cyclic-looking").
  Write("bad-array-self-similar.gguf", OneKv([](GgufBuilder& b) {
          b.Key("a", 9).ArrayHead(9, 1000);
          for (int k = 0; k < 5; ++k) b.ArrayHead(9, 1000);
        }));
  Write("ok-array-empty-of-arrays.gguf", OneKv([](GgufBuilder& b) { b.Key("a", 9).ArrayHead(9, 0); }));

  // Tensor table.
  Write("bad-tensor-dims-5.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {1, 1, 1, 1, 1}, 0, 0); }));
  Write("bad-tensor-ne-negative.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {-4}, 0, 0); }));
  Write("bad-tensor-ne-overflow.gguf", OneTensor([](GgufBuilder& b) {
          b.Tensor("t", {int64_t{1} << 40, int64_t{1} << 40}, 0, 0);
        }));
  for (int32_t t : {4, 31, 43, -1, 1000}) {
    Write("bad-tensor-type-" + std::to_string(t) + ".gguf",
          OneTensor([t](GgufBuilder& b) { b.Tensor("t", {32}, t, 0); }));
  }
  Write("bad-tensor-block-size.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {33}, 2, 0); }));
  Write("bad-tensor-unaligned.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {4}, 0, 3); }));
  Write("bad-tensor-past-end.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {1024}, 0, 0); }));
  Write("bad-tensor-offset-huge.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {4}, 0, UINT64_MAX - 31); }));
  Write("bad-tensor-duplicate.gguf", [] {
    GgufBuilder b;
    b.Header(3, 2, 0).Tensor("t", {4}, 0, 0).Tensor("t", {4}, 0, 32).PadTo(32).Zeros(64);
    return b.bytes();
  }());
  Write("bad-tensor-name-huge.gguf", OneTensor([](GgufBuilder& b) { b.Pod<uint64_t>(1ULL << 40); }));
  Write("ok-tensor-zero-elements.gguf", OneTensor([](GgufBuilder& b) { b.Tensor("t", {0, 4}, 0, 0); }, 0));
  std::printf("wrote %d files to %s\n", g_count, g_dir.c_str());
  return 0;
}
