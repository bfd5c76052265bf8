// A bounded reader for the header of GGUF files (versions 2 and 3): metadata and the tensor
// table, never the tensor data.
//
// Byte layout (little-endian; the same as ggml/include/gguf.h, plus nested arrays):
//
//   offset 0   magic "GGUF"                          4 bytes
//   offset 4   version                               uint32   (2 or 3; 1 used 32-bit counts)
//   offset 8   n_tensors                             int64
//   offset 16  n_kv                                  int64
//   then n_kv key/value pairs:
//     key                                            string
//     value type                                     int32  (gguf_type below)
//     value:  UINT8/INT8 1 byte, UINT16/INT16 2, UINT32/INT32/FLOAT32 4, BOOL 1 (0 or 1),
//             UINT64/INT64/FLOAT64 8, STRING = string,
//             ARRAY = element type (int32) + count (uint64) + count values of that type
//             (an ARRAY element type means nested arrays: the spec allows them, ggml
//             refuses them; we read them up to kMaxArrayDepth levels)
//   then n_tensors tensor infos:
//     name                                           string
//     n_dims                                         uint32  (1..4)
//     ne[n_dims]                                     int64 each, >= 0
//     type                                           int32  (ggml_type)
//     offset                                         uint64 (into the data blob, aligned)
//   padding to `alignment` (general.alignment, uint32, power of two; default 32)
//   tensor data blob                                 (never read here)
//
//   string = uint64 length + that many bytes (UTF-8, no terminator)
//   gguf_type: 0 UINT8, 1 INT8, 2 UINT16, 3 INT16, 4 UINT32, 5 INT32, 6 FLOAT32, 7 BOOL,
//              8 STRING, 9 ARRAY, 10 UINT64, 11 INT64, 12 FLOAT64
//
// Split models (gguf-split) are several files named PREFIX-00001-of-0000N.gguf, each a whole
// GGUF file with split.no / split.count / split.tensors.count keys; the first holds the
// model's metadata. ParseSplitName() reads that naming.
//
// Why hand-written rather than ggml's gguf_init_from_file: ggml's reader materialises every
// array (a 150k-entry tokenizer becomes 150k std::strings) and has no bound on a listing's
// cost, and it aborts on nested arrays. Listing thousands of files needs a reader that skips
// what it does not need with bounded, buffered reads, checks every length and count against
// the bytes left in the file before allocating, and turns every malformation into a
// Status naming the file, the problem and the offset. tests/catalog/gguf_crosscheck_test.cc
// proves it agrees with ggml's reader on every file both accept.
//
// Thread-safety: free functions, safe to call concurrently; the result is a plain value.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace corral::catalog {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
constexpr uint32_t kGgufTypeCount = 13;
std::string_view to_string(GgufType type);

// Limits applied while reading; everything is also bounded by the bytes left in the file.
struct GgufLimits {
  uint64_t max_kv = 1u << 20;              // metadata pairs
  uint64_t max_tensors = 1u << 20;         // tensor infos
  uint64_t max_key_bytes = 64u << 10;      // one key or tensor name
  uint64_t max_string_bytes = 64u << 20;   // one string value
  uint64_t max_array_items = 1ull << 30;   // elements of one array (ggml's own limit)
  uint32_t max_array_depth = 4;            // nesting of arrays
  uint64_t max_header_bytes = 1ull << 32;  // metadata + tensor table
};

// What to keep. Arrays longer than `keep_array_items` are counted and skipped, not stored
// (a 150k-token vocabulary costs a scan, not 150k strings); `kKeepAll` keeps everything.
struct GgufReadOptions {
  static constexpr uint64_t kKeepAll = UINT64_MAX;
  uint64_t keep_array_items = 64;
  bool read_tensors = true;  // false: stop after the metadata
  GgufLimits limits;
  // String arrays (top level) whose entries are hashed into GgufValue::digest, kept or not:
  // the tokenizer's tokens give a vocabulary identity without storing 150k strings.
  std::vector<std::string> digest_keys = {"tokenizer.ggml.tokens"};
};

// The digest of a string array: FNV-1a 64 over each entry (its length as 8 little-endian
// bytes, then its bytes), leaving out trailing entries that start with "[PAD" (the padding
// convert_hf_to_gguf.py adds up to the embedding size: Qwen2.5 0.5B and 7B differ only
// there, and llama.cpp accepts them as a draft pair). Never 0.
class StringListDigest {
 public:
  void Add(std::string_view entry);
  uint64_t value() const { return committed_ == 0 ? 1 : committed_; }

 private:
  static constexpr uint64_t kOffset = 0xcbf29ce484222325ULL;
  uint64_t running_ = kOffset;
  uint64_t committed_ = kOffset;
};

// One metadata value. Scalars use the field their type names; an array has elem_type, count
// and (when kept) items. Thread-safety: a plain value.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u = 0;                         // UINT8/16/32/64 and BOOL
  int64_t i = 0;                          // INT8/16/32/64
  double f = 0;                           // FLOAT32/64
  std::string str;                        // STRING
  GgufType elem_type = GgufType::kUint8;  // ARRAY
  uint64_t count = 0;                     // ARRAY: number of elements in the file
  bool elided = false;                    // ARRAY: items were skipped (count > keep limit)
  std::vector<GgufValue> items;           // ARRAY: the elements, unless elided
  uint64_t digest = 0;                    // ARRAY of STRING named in digest_keys: StringListDigest; 0 = none

  // Any integer type (and BOOL) that fits in the result; nullopt otherwise.
  std::optional<uint64_t> AsUint() const;
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsDouble() const;  // any number
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

// One entry of the tensor table. nbytes is computed from type and shape.
struct GgufTensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};
  uint32_t type = 0;    // ggml_type
  uint64_t offset = 0;  // relative to data_offset
  uint64_t nbytes = 0;
};

// A parsed header. Thread-safety: a plain value.
struct GgufFile {
  std::string path;
  uint32_t version = 0;
  uint64_t file_size = 0;
  uint64_t n_tensors = 0;
  uint32_t alignment = 32;
  uint64_t header_bytes = 0;            // end of the tensor table (before padding)
  uint64_t data_offset = 0;             // start of the tensor data blob
  std::vector<GgufKv> kv;               // in file order
  std::vector<GgufTensorInfo> tensors;  // empty when read_tensors was false

  const GgufValue* Find(std::string_view key) const;
  std::optional<uint64_t> GetUint(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;
  std::optional<double> GetDouble(std::string_view key) const;
  uint64_t TensorBytes() const;  // sum of nbytes
  uint64_t ParamCount() const;   // sum of elements
};

// Reads the header of `path` with bounded, buffered reads. Errors (kCorrupt, kIoError) name
// the file, the problem and the byte offset.
Result<GgufFile> ReadGgufFile(const std::string& path, const GgufReadOptions& options = {});

// The same over bytes in memory (the fuzzer's entry); `name` is used in errors. `bytes` is
// taken as the whole file.
Result<GgufFile> ParseGguf(std::string_view bytes, std::string_view name, const GgufReadOptions& options = {});

// ggml tensor types this build knows: name, elements per block, bytes per block.
struct GgmlTypeTraits {
  uint32_t id;
  const char* name;
  uint32_t block_elems;
  uint32_t block_bytes;
};
// nullptr for an unknown or removed type.
const GgmlTypeTraits* FindGgmlType(uint32_t type);
// The number of ggml type ids (exclusive upper bound of valid ids).
uint32_t GgmlTypeCount();

// "Q4_K_M" for general.file_type (llama_ftype); "" when unknown.
std::string_view FileTypeName(uint32_t file_type);

// PREFIX-00001-of-00003.gguf → {PREFIX, 1, 3}. Numbers are exactly five digits, 1 ≤ no ≤ count.
struct SplitName {
  std::string prefix;  // the path before "-00001-of-00003.gguf"
  uint32_t no = 0;
  uint32_t count = 0;
};
std::optional<SplitName> ParseSplitName(std::string_view path);
// The path of shard `no` (1-based) of a split named like `split`.
std::string SplitPath(const SplitName& split, uint32_t no);

}  // namespace corral::catalog
