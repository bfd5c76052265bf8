#include "catalog/gguf_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_set>

namespace corral::catalog {
namespace {

constexpr size_t kReadBufferBytes = 64 << 10;  // one pread fills this much
constexpr uint32_t kMaxDims = 4;               // GGML_MAX_DIMS

// The ggml type table of the pinned llama.cpp (ggml.h); checked against ggml_type_size /
// ggml_blck_size by tests/catalog/gguf_crosscheck_test.cc. Ids 4, 5, 31-33, 36-38 were removed.
constexpr GgmlTypeTraits kGgmlTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
    {40, "NVFP4", 64, 36},    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};
constexpr uint32_t kGgmlTypeCount = 43;

// llama_ftype (general.file_type) names, llama.h of the pinned tree.
constexpr std::pair<uint32_t, const char*> kFileTypes[] = {
    {0, "F32"},     {1, "F16"},     {2, "Q4_0"},       {3, "Q4_1"},    {7, "Q8_0"},     {8, "Q5_0"},
    {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"},    {12, "Q3_K_M"}, {13, "Q3_K_L"},  {14, "Q4_K_S"},
    {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},    {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"},
    {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},   {24, "IQ1_S"},  {25, "IQ4_NL"},  {26, "IQ3_S"},
    {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},     {30, "IQ4_XS"}, {31, "IQ1_M"},   {32, "BF16"},
    {36, "TQ1_0"},  {37, "TQ2_0"},  {38, "MXFP4_MOE"}, {39, "NVFP4"},  {40, "Q1_0"},    {41, "Q2_0"},
};

// Bytes one value of a fixed-size type takes; 0 for STRING and ARRAY.
uint64_t FixedSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool: return 1;
    case GgufType::kUint16:
    case GgufType::kInt16: return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32: return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64: return 8;
    case GgufType::kString:
    case GgufType::kArray: return 0;
  }
  return 0;
}

// The least bytes one element of type `t` can take in the file (a bound for counts).
uint64_t MinSize(GgufType t) {
  if (t == GgufType::kString) return 8;
  if (t == GgufType::kArray) return 12;
  return FixedSize(t);
}

// Random access to the bytes of one file, through a buffer.
class Source {
 public:
  virtual ~Source() = default;
  // Reads exactly n bytes at `offset` into dst, or fails (short read = truncated).
  virtual Status ReadAt(uint64_t offset, void* dst, size_t n) = 0;
};

class MemorySource final : public Source {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  Status ReadAt(uint64_t offset, void* dst, size_t n) override {
    if (offset > bytes_.size() || n > bytes_.size() - offset) return Corrupt("short read");
    std::memcpy(dst, bytes_.data() + offset, n);
    return Status::Ok();
  }

 private:
  std::string_view bytes_;
};

class FileSource final : public Source {
 public:
  FileSource(int fd, uint64_t size) : fd_(fd), size_(size), buf_(new char[kReadBufferBytes]) {}
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  Status ReadAt(uint64_t offset, void* dst, size_t n) override {
    char* out = static_cast<char*>(dst);
    while (n > 0) {
      if (offset >= buf_start_ && offset < buf_start_ + buf_len_) {
        size_t take = std::min<uint64_t>(n, buf_start_ + buf_len_ - offset);
        std::memcpy(out, buf_.get() + (offset - buf_start_), take);
        out += take;
        offset += take;
        n -= take;
        continue;
      }
      if (offset >= size_) return Corrupt("short read");
      if (n >= kReadBufferBytes) {  // a big string: read it straight into place
        CORRAL_RETURN_IF_ERROR(PreadAll(offset, out, n));
        return Status::Ok();
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBufferBytes, size_ - offset));
      CORRAL_RETURN_IF_ERROR(PreadAll(offset, buf_.get(), want));
      buf_start_ = offset;
      buf_len_ = want;
    }
    return Status::Ok();
  }

 private:
  Status PreadAll(uint64_t offset, char* dst, size_t n) {
    while (n > 0) {
      ssize_t r = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("read", errno);
      }
      if (r == 0) return Corrupt("short read (the file shrank while being read)");
      dst += r;
      offset += static_cast<uint64_t>(r);
      n -= static_cast<size_t>(r);
    }
    return Status::Ok();
  }

  int fd_;
  uint64_t size_;
  std::unique_ptr<char[]> buf_;
  uint64_t buf_start_ = 0;
  size_t buf_len_ = 0;
};

// The parser: a cursor over a Source of known size. Every read is checked against the bytes
// left before anything is allocated.
class Parser {
 public:
  Parser(Source& src, uint64_t size, std::string name, const GgufReadOptions& options)
      : src_(src), size_(size), name_(std::move(name)), opt_(options) {}

  Result<GgufFile> Parse();

 private:
  uint64_t Left() const { return size_ - pos_; }

  Status Fail(const std::string& problem) const {
    return Corrupt(name_ + ": " + problem + (cur_.empty() ? std::string() : " in " + cur_) + " (at byte " +
                   std::to_string(pos_) + " of " + std::to_string(size_) + ")");
  }

  Status Need(uint64_t n, std::string_view what) const {
    if (n > Left()) {
      return Fail("truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes, " +
                  std::to_string(Left()) + " left");
    }
    if (pos_ + n > opt_.limits.max_header_bytes) return Fail("header larger than the limit");
    return Status::Ok();
  }

  Status Read(void* dst, uint64_t n, std::string_view what) {
    CORRAL_RETURN_IF_ERROR(Need(n, what));
    Status st = src_.ReadAt(pos_, dst, static_cast<size_t>(n));
    if (!st.ok()) {
      if (st.code() == StatusCode::kIoError) return IoError(name_ + ": " + st.message());
      return Fail(st.message());
    }
    pos_ += n;
    return Status::Ok();
  }

  Status Skip(uint64_t n, std::string_view what) {
    CORRAL_RETURN_IF_ERROR(Need(n, what));
    pos_ += n;
    return Status::Ok();
  }

  template <typename T>
  Status ReadPod(T& v, std::string_view what) {
    unsigned char b[sizeof(T)] = {};
    CORRAL_RETURN_IF_ERROR(Read(b, sizeof(T), what));
    // GGUF is little-endian; assemble explicitly so the reader is endian-independent.
    uint64_t x = 0;
    for (size_t k = 0; k < sizeof(T); ++k) x |= static_cast<uint64_t>(b[k]) << (8 * k);
    if constexpr (sizeof(T) == 8) {
      std::memcpy(&v, &x, 8);
    } else {
      auto narrow = static_cast<
          std::conditional_t<sizeof(T) == 4, uint32_t, std::conditional_t<sizeof(T) == 2, uint16_t, uint8_t>>>(x);
      std::memcpy(&v, &narrow, sizeof(T));
    }
    return Status::Ok();
  }

  // A string: length, checked, then the bytes (or skipped when `out` is null).
  Status ReadString(std::string* out, uint64_t max_bytes, std::string_view what) {
    uint64_t len = 0;
    CORRAL_RETURN_IF_ERROR(ReadPod(len, what));
    if (len > max_bytes) {
      return Fail(std::string(what) + " length " + std::to_string(len) + " exceeds the limit of " +
                  std::to_string(max_bytes) + " bytes");
    }
    if (len > Left()) {
      return Fail("truncated: " + std::string(what) + " claims " + std::to_string(len) + " bytes, " +
                  std::to_string(Left()) + " left");
    }
    if (out == nullptr) return Skip(len, what);
    out->resize(static_cast<size_t>(len));
    return Read(out->data(), len, what);
  }

  Status ReadType(GgufType& t, std::string_view what) {
    int32_t raw = 0;
    CORRAL_RETURN_IF_ERROR(ReadPod(raw, what));
    if (raw < 0 || static_cast<uint32_t>(raw) >= kGgufTypeCount) {
      return Fail("invalid " + std::string(what) + " " + std::to_string(raw));
    }
    t = static_cast<GgufType>(raw);
    return Status::Ok();
  }

  // Reads one value of type `t` into `out` (or skips it when `out` is null).
  Status ReadValue(GgufType t, GgufValue* out, uint32_t depth);
  // The `n` entries of a top-level string array whose key is in digest_keys: each read
  // (bounded by max_string_bytes) and hashed into out->digest; stored when `keep`.
  Status ReadDigestedStrings(uint64_t n, GgufValue& out, bool keep);

  Source& src_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string name_;
  const GgufReadOptions& opt_;
  std::string cur_;          // the key or tensor being read, for error messages
  bool digest_key_ = false;  // the key being read is in digest_keys
};

Status Parser::ReadDigestedStrings(uint64_t n, GgufValue& out, bool keep) {
  StringListDigest digest;
  std::string entry;
  for (uint64_t k = 0; k < n; ++k) {
    CORRAL_RETURN_IF_ERROR(ReadString(&entry, opt_.limits.max_string_bytes, "string value"));
    digest.Add(entry);
    if (keep) {
      GgufValue& item = out.items[static_cast<size_t>(k)];
      item.type = GgufType::kString;
      item.str = entry;
    }
  }
  out.digest = digest.value();
  return Status::Ok();
}

Status Parser::ReadValue(GgufType t, GgufValue* out, uint32_t depth) {
  if (out != nullptr) out->type = t;
  switch (t) {
    case GgufType::kUint8: {
      uint8_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->u = v;
      return Status::Ok();
    }
    case GgufType::kInt8: {
      int8_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      // GGUF's int8 is signed: sign extension is the point here.
      if (out) out->i = v;  // NOLINT(bugprone-signed-char-misuse)
      return Status::Ok();
    }
    case GgufType::kUint16: {
      uint16_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->u = v;
      return Status::Ok();
    }
    case GgufType::kInt16: {
      int16_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->i = v;
      return Status::Ok();
    }
    case GgufType::kUint32: {
      uint32_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->u = v;
      return Status::Ok();
    }
    case GgufType::kInt32: {
      int32_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->i = v;
      return Status::Ok();
    }
    case GgufType::kFloat32: {
      float v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->f = v;
      return Status::Ok();
    }
    case GgufType::kBool: {
      uint8_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (v > 1) return Fail("bool value " + std::to_string(v) + " is neither 0 nor 1");
      if (out) out->u = v;
      return Status::Ok();
    }
    case GgufType::kUint64: {
      uint64_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->u = v;
      return Status::Ok();
    }
    case GgufType::kInt64: {
      int64_t v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->i = v;
      return Status::Ok();
    }
    case GgufType::kFloat64: {
      double v = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(v, "value"));
      if (out) out->f = v;
      return Status::Ok();
    }
    case GgufType::kString: return ReadString(out ? &out->str : nullptr, opt_.limits.max_string_bytes, "string value");
    case GgufType::kArray: {
      if (depth >= opt_.limits.max_array_depth) {
        return Fail("arrays nested deeper than " + std::to_string(opt_.limits.max_array_depth));
      }
      GgufType elem = GgufType::kUint8;
      CORRAL_RETURN_IF_ERROR(ReadType(elem, "array element type"));
      uint64_t n = 0;
      CORRAL_RETURN_IF_ERROR(ReadPod(n, "array length"));
      if (n > opt_.limits.max_array_items) {
        return Fail("array has " + std::to_string(n) + " elements, more than the limit of " +
                    std::to_string(opt_.limits.max_array_items));
      }
      const uint64_t min_size = MinSize(elem);
      if (min_size != 0 && n > Left() / min_size) {
        return Fail("truncated: array claims " + std::to_string(n) + " elements of type " +
                    std::string(to_string(elem)) + ", the " + std::to_string(Left()) + " bytes left hold at most " +
                    std::to_string(Left() / min_size));
      }
      const bool keep = out != nullptr && n <= opt_.keep_array_items;
      if (out != nullptr) {
        out->elem_type = elem;
        out->count = n;
        out->elided = !keep;
      }
      const uint64_t fixed = FixedSize(elem);
      if (!keep && fixed != 0) return Skip(n * fixed, "array");  // n * fixed <= Left(): checked above
      if (keep) out->items.resize(static_cast<size_t>(n));
      if (digest_key_ && depth == 0 && out != nullptr && elem == GgufType::kString) {
        return ReadDigestedStrings(n, *out, keep);
      }
      for (uint64_t k = 0; k < n; ++k) {
        CORRAL_RETURN_IF_ERROR(ReadValue(elem, keep ? &out->items[static_cast<size_t>(k)] : nullptr, depth + 1));
      }
      return Status::Ok();
    }
  }
  return Fail("invalid value type");
}

Result<GgufFile> Parser::Parse() {
  GgufFile f;
  f.file_size = size_;
  char magic[4];
  CORRAL_RETURN_IF_ERROR(Read(magic, 4, "magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    if (std::memcmp(magic, "FUGG", 4) == 0) return Fail("big-endian GGUF files are not supported");
    return Fail("not a GGUF file (bad magic)");
  }
  CORRAL_RETURN_IF_ERROR(ReadPod(f.version, "version"));
  if (f.version == 1) return Fail("GGUF version 1 is obsolete and not supported");
  if (f.version != 2 && f.version != 3) {
    if ((f.version & 0xFFFF) == 0 && (f.version >> 16) != 0) return Fail("big-endian GGUF files are not supported");
    return Fail("unsupported GGUF version " + std::to_string(f.version) + " (2 and 3 are read)");
  }
  int64_t n_tensors = 0;
  int64_t n_kv = 0;
  CORRAL_RETURN_IF_ERROR(ReadPod(n_tensors, "tensor count"));
  CORRAL_RETURN_IF_ERROR(ReadPod(n_kv, "metadata count"));
  // A key/value pair takes at least 8 (key length) + 1 + 4 (type) + 1 bytes; a tensor info
  // at least 8 + 1 (name) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > opt_.limits.max_kv) {
    return Fail("metadata count " + std::to_string(n_kv) + " is out of range");
  }
  if (static_cast<uint64_t>(n_kv) > Left() / 14) {
    return Fail("truncated: metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(Left()) +
                " bytes left");
  }
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > opt_.limits.max_tensors) {
    return Fail("tensor count " + std::to_string(n_tensors) + " is out of range");
  }
  if (static_cast<uint64_t>(n_tensors) > Left() / 33) {
    return Fail("truncated: tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                std::to_string(Left()) + " bytes left");
  }
  f.n_tensors = static_cast<uint64_t>(n_tensors);

  f.kv.reserve(static_cast<size_t>(n_kv));
  std::unordered_set<std::string> keys;
  for (int64_t k = 0; k < n_kv; ++k) {
    GgufKv kv;
    cur_.clear();
    CORRAL_RETURN_IF_ERROR(ReadString(&kv.key, opt_.limits.max_key_bytes, "key #" + std::to_string(k)));
    if (kv.key.empty()) return Fail("key #" + std::to_string(k) + " is empty");
    if (!keys.insert(kv.key).second) return Fail("duplicate key '" + kv.key + "'");
    cur_ = "key '" + kv.key + "'";
    digest_key_ = std::find(opt_.digest_keys.begin(), opt_.digest_keys.end(), kv.key) != opt_.digest_keys.end();
    GgufType t = GgufType::kUint8;
    CORRAL_RETURN_IF_ERROR(ReadType(t, "value type"));
    CORRAL_RETURN_IF_ERROR(ReadValue(t, &kv.value, 0));
    digest_key_ = false;
    f.kv.push_back(std::move(kv));
  }

  if (const GgufValue* a = f.Find("general.alignment")) {
    if (a->type != GgufType::kUint32) return Fail("general.alignment must be a UINT32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
      return Fail("general.alignment " + std::to_string(a->u) + " is not a power of two");
    }
    f.alignment = static_cast<uint32_t>(a->u);
  }
  if (!opt_.read_tensors) {
    f.header_bytes = pos_;
    return f;
  }

  cur_.clear();
  f.tensors.reserve(static_cast<size_t>(n_tensors));
  std::unordered_set<std::string> names;
  for (int64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    const std::string which = "tensor #" + std::to_string(k);
    CORRAL_RETURN_IF_ERROR(ReadString(&t.name, opt_.limits.max_key_bytes, which + " name"));
    if (!names.insert(t.name).second) return Fail("duplicate tensor name '" + t.name + "'");
    const std::string tn = "tensor '" + t.name + "'";
    CORRAL_RETURN_IF_ERROR(ReadPod(t.n_dims, tn + " dimension count"));
    if (t.n_dims > kMaxDims) {
      return Fail(tn + " has " + std::to_string(t.n_dims) + " dimensions, at most 4 are allowed");
    }
    uint64_t elems = 1;
    bool overflow = false;
    bool empty = false;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      CORRAL_RETURN_IF_ERROR(ReadPod(t.ne[d], tn + " shape"));
      if (t.ne[d] < 0) return Fail(tn + " has a negative dimension " + std::to_string(t.ne[d]));
      const auto ne = static_cast<uint64_t>(t.ne[d]);
      if (ne == 0) empty = true;
      if (ne != 0 && elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) overflow = true;
      elems *= ne;
    }
    if (empty) elems = 0;
    if (overflow && !empty) return Fail(tn + " has more elements than fit in 64 bits");
    int32_t type = 0;
    CORRAL_RETURN_IF_ERROR(ReadPod(type, tn + " type"));
    const GgmlTypeTraits* tt = type < 0 ? nullptr : FindGgmlType(static_cast<uint32_t>(type));
    if (tt == nullptr) return Fail(tn + " has unknown ggml type " + std::to_string(type));
    t.type = static_cast<uint32_t>(type);
    if (static_cast<uint64_t>(t.ne[0]) % tt->block_elems != 0) {
      return Fail(tn + " row of " + std::to_string(t.ne[0]) + " elements is not a multiple of the " + tt->name +
                  " block size " + std::to_string(tt->block_elems));
    }
    const uint64_t blocks = elems / tt->block_elems;
    if (blocks > std::numeric_limits<uint64_t>::max() / tt->block_bytes) return Fail(tn + " size overflows");
    t.nbytes = blocks * tt->block_bytes;
    CORRAL_RETURN_IF_ERROR(ReadPod(t.offset, tn + " data offset"));
    if (t.offset % f.alignment != 0) {
      return Fail(tn + " data offset " + std::to_string(t.offset) + " is not aligned to " +
                  std::to_string(f.alignment));
    }
    f.tensors.push_back(std::move(t));
  }
  f.header_bytes = pos_;
  // Like ggml: the data blob starts aligned, and a file without tensors has no padding.
  f.data_offset = f.tensors.empty() ? pos_ : (pos_ + f.alignment - 1) / f.alignment * f.alignment;
  // The data blob must hold every tensor: a shorter file is a truncated download.
  const uint64_t data_bytes = size_ >= f.data_offset ? size_ - f.data_offset : 0;
  for (const auto& t : f.tensors) {
    if (t.offset > data_bytes || t.nbytes > data_bytes - t.offset) {
      return Fail("truncated: tensor '" + t.name + "' data (" + std::to_string(t.nbytes) + " bytes at data offset " +
                  std::to_string(t.offset) + ") extends past the end of the file; an incomplete download?");
    }
  }
  return f;
}

}  // namespace

std::string_view to_string(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "UINT8";
    case GgufType::kInt8: return "INT8";
    case GgufType::kUint16: return "UINT16";
    case GgufType::kInt16: return "INT16";
    case GgufType::kUint32: return "UINT32";
    case GgufType::kInt32: return "INT32";
    case GgufType::kFloat32: return "FLOAT32";
    case GgufType::kBool: return "BOOL";
    case GgufType::kString: return "STRING";
    case GgufType::kArray: return "ARRAY";
    case GgufType::kUint64: return "UINT64";
    case GgufType::kInt64: return "INT64";
    case GgufType::kFloat64: return "FLOAT64";
  }
  return "?";
}

void StringListDigest::Add(std::string_view entry) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  const uint64_t len = entry.size();
  for (size_t k = 0; k < 8; ++k) running_ = (running_ ^ ((len >> (8 * k)) & 0xff)) * kPrime;
  for (unsigned char c : entry) running_ = (running_ ^ c) * kPrime;
  if (!entry.starts_with("[PAD")) committed_ = running_;
}

std::optional<uint64_t> GgufValue::AsUint() const {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
    case GgufType::kBool: return u;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      if (i < 0) return std::nullopt;
      return static_cast<uint64_t>(i);
    default: return std::nullopt;
  }
}

std::optional<int64_t> GgufValue::AsInt() const {
  switch (type) {
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64: return i;
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
    case GgufType::kBool:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::AsDouble() const {
  if (type == GgufType::kFloat32 || type == GgufType::kFloat64) return f;
  if (auto v = AsInt()) return static_cast<double>(*v);
  if (auto v = AsUint()) return static_cast<double>(*v);
  return std::nullopt;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const auto& entry : kv) {
    if (entry.key == key) return &entry.value;
  }
  return nullptr;
}

std::optional<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  return v ? v->AsUint() : std::nullopt;
}

std::optional<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr || v->type != GgufType::kString) return std::nullopt;
  return v->str;
}

std::optional<double> GgufFile::GetDouble(std::string_view key) const {
  const GgufValue* v = Find(key);
  return v ? v->AsDouble() : std::nullopt;
}

uint64_t GgufFile::TensorBytes() const {
  uint64_t sum = 0;
  for (const auto& t : tensors) sum += t.nbytes;
  return sum;
}

uint64_t GgufFile::ParamCount() const {
  uint64_t sum = 0;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) n *= static_cast<uint64_t>(t.ne[d]);
    sum += n;
  }
  return sum;
}

Result<GgufFile> ReadGgufFile(const std::string& path, const GgufReadOptions& options) {
  // O_NONBLOCK: a FIFO named *.gguf must not hang the listing (it is refused below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoError("opening " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("stat " + path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path + ": not a regular file");
  }
  FileSource src(fd, static_cast<uint64_t>(st.st_size));  // owns fd now
  Parser parser(src, static_cast<uint64_t>(st.st_size), path, options);
  auto f = parser.Parse();
  if (f.ok()) f->path = path;
  return f;
}

Result<GgufFile> ParseGguf(std::string_view bytes, std::string_view name, const GgufReadOptions& options) {
  MemorySource src(bytes);
  Parser parser(src, bytes.size(), std::string(name), options);
  auto f = parser.Parse();
  if (f.ok()) f->path = std::string(name);
  return f;
}

const GgmlTypeTraits* FindGgmlType(uint32_t type) {
  for (const auto& t : kGgmlTypes) {
    if (t.id == type) return &t;
  }
  return nullptr;
}

uint32_t GgmlTypeCount() {
  return kGgmlTypeCount;
}

std::string_view FileTypeName(uint32_t file_type) {
  for (const auto& [id, name] : kFileTypes) {
    if (id == file_type) return name;
  }
  return {};
}

std::optional<SplitName> ParseSplitName(std::string_view path) {
  // "-00001-of-00003.gguf" is 20 characters.
  constexpr std::string_view kExt = ".gguf";
  if (path.size() < 20 || path.substr(path.size() - kExt.size()) != kExt) return std::nullopt;
  std::string_view tail = path.substr(path.size() - 20, 15);  // "-00001-of-00003"
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-") return std::nullopt;
  auto num = [](std::string_view s) -> std::optional<uint32_t> {
    uint32_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    return v;
  };
  auto no = num(tail.substr(1, 5));
  auto count = num(tail.substr(10, 5));
  if (!no || !count || *no == 0 || *no > *count) return std::nullopt;
  return SplitName{std::string(path.substr(0, path.size() - 20)), *no, *count};
}

std::string SplitPath(const SplitName& split, uint32_t no) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-%05u-of-%05u.gguf", no, split.count);
  return split.prefix + buf;
}

}  // namespace corral::catalog
