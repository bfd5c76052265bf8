// The catalog's on-disk index: for each GGUF file (by real path) the size and mtime it had
// when read and the ModelInfo (or the error) its header gave. A warm listing stats files and
// reads this one file instead of every header. Versioned; written atomically; a missing,
// corrupt or older-version index is ignored and rebuilt.
//
// Thread-safety: an Index is a plain value owned by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "catalog/model_info.h"
#include "common/status.h"

namespace corral::catalog {

class Index {
 public:
  static constexpr int kVersion = 3;  // 2: template_tools, template_thinking, pooling_type; 3: vocab_hash, nextn_layers

  struct Entry {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    bool ok = false;
    ModelInfo info;     // when ok
    std::string error;  // when not ok
    bool used = false;  // touched by this scan (unused entries are dropped on Save)
  };

  // Reads `file`; any problem gives an empty index (and `load_problem()` says why).
  static Index Load(const std::string& file);

  // The entry for `path` if its size and mtime still match; nullptr otherwise.
  Entry* Find(const std::string& path, uint64_t size, int64_t mtime_ns);
  void Put(const std::string& path, Entry entry);

  // Writes the index atomically if anything changed (entries added or dropped).
  Status Save(const std::string& file);

  const std::string& load_problem() const { return load_problem_; }
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, Entry> entries_;
  bool dirty_ = false;
  std::string load_problem_;
};

}  // namespace corral::catalog
