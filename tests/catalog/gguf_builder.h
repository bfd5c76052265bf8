// Test-only: builds GGUF bytes by hand, field by field, so tests and the corpus generator can
// write valid files with every value type (nested arrays included, which ggml cannot write)
// and malformed files that lie about lengths, counts and types.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::testing {

class GgufBuilder {
 public:
  template <typename T>
  GgufBuilder& Pod(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // the test machines are little-endian, like GGUF
    bytes_.append(b, sizeof(T));
    return *this;
  }
  GgufBuilder& Raw(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  GgufBuilder& Str(std::string_view s) {
    Pod<uint64_t>(s.size());
    return Raw(s);
  }
  GgufBuilder& Header(uint32_t version, int64_t n_tensors, int64_t n_kv) {
    Raw("GGUF");
    Pod(version);
    Pod(n_tensors);
    return Pod(n_kv);
  }
  // A key and its type; the caller writes the value.
  GgufBuilder& Key(std::string_view key, int32_t type) {
    Str(key);
    return Pod(type);
  }
  GgufBuilder& KvU32(std::string_view key, uint32_t v) { return Key(key, 4).Pod(v); }
  GgufBuilder& KvStr(std::string_view key, std::string_view v) { return Key(key, 8).Str(v); }
  // ARRAY header: element type and count; the caller writes the elements.
  GgufBuilder& ArrayHead(int32_t elem_type, uint64_t n) {
    Pod(elem_type);
    return Pod(n);
  }
  GgufBuilder& Tensor(std::string_view name, std::vector<int64_t> ne, int32_t type, uint64_t offset) {
    Str(name);
    Pod<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) Pod(d);
    Pod(type);
    return Pod(offset);
  }
  GgufBuilder& PadTo(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back('\0');
    return *this;
  }
  GgufBuilder& Zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// A small valid v3 file: every scalar type, a string array, a nested array, a chat template,
// a 5-token vocabulary, and two tensors (F32 [8], F16 [32 x 2]) with their data.
// `offsets` (if given) receives the byte offset where each field starts, for truncation.
inline std::string ValidGguf(uint32_t version = 3, std::vector<size_t>* offsets = nullptr) {
  GgufBuilder b;
  auto mark = [&] {
    if (offsets) offsets->push_back(b.size());
  };
  mark();
  b.Header(version, 2, 19);
  mark();
  b.KvStr("general.architecture", "llama");
  mark();
  b.KvStr("general.name", "Builder Test");
  mark();
  b.KvU32("general.file_type", 1);
  mark();
  b.KvU32("llama.context_length", 256);
  mark();
  b.KvU32("llama.embedding_length", 8);
  mark();
  b.KvU32("llama.block_count", 1);
  mark();
  b.Key("t.u8", 0).Pod<uint8_t>(200);
  mark();
  b.Key("t.i8", 1).Pod<int8_t>(-5);
  mark();
  b.Key("t.u16", 2).Pod<uint16_t>(60000);
  mark();
  b.Key("t.i16", 3).Pod<int16_t>(-30000);
  mark();
  b.Key("t.i32", 5).Pod<int32_t>(-7);
  mark();
  b.Key("t.f32", 6).Pod<float>(1.5f);
  mark();
  b.Key("t.bool", 7).Pod<uint8_t>(1);
  mark();
  b.Key("t.u64", 10).Pod<uint64_t>(1ULL << 40);
  mark();
  b.Key("t.i64", 11).Pod<int64_t>(-(1LL << 40));
  mark();
  b.Key("t.f64", 12).Pod<double>(2.25);
  mark();
  b.Key("tokenizer.ggml.tokens", 9).ArrayHead(8, 5);
  for (const char* t : {"<s>", "</s>", "a", "b", "c"}) b.Str(t);
  mark();
  b.Key("t.nested", 9).ArrayHead(9, 2);
  b.ArrayHead(4, 2).Pod<uint32_t>(1).Pod<uint32_t>(2);
  b.ArrayHead(8, 1).Str("x");
  mark();
  b.KvStr("tokenizer.chat_template", "{{ messages }}");
  mark();
  b.Tensor("norm.weight", {8}, 0, 0);
  mark();
  b.Tensor("tok.weight", {32, 2}, 1, 32);
  mark();
  b.PadTo(32);
  b.Zeros(32);   // norm.weight: 8 x 4 bytes
  b.Zeros(128);  // tok.weight: 64 x 2 bytes
  return b.bytes();
}

}  // namespace corral::testing
