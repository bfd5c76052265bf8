// Small filesystem helpers with crash-safe semantics.
// Thread-safety: free functions are thread-safe; an AtomicFile belongs to one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

// A file written under a temporary name in the target's directory and renamed over the
// target by Commit() after fsync: readers see the old file or the whole new one, never a
// part. A file that is destroyed without Commit() (error, exception, Ctrl+C via the
// interrupt flag) removes its temporary file.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Creates the temporary file. `mode` is applied to the final file (e.g. 0600 for secrets).
  Status Open(const std::string& path, mode_t mode = 0644);
  Status Write(const void* data, size_t size);
  Status Write(std::string_view data) { return Write(data.data(), data.size()); }
  // Pads with zero bytes up to a multiple of `alignment`.
  Status PadTo(uint64_t alignment);
  uint64_t offset() const { return offset_; }
  // fsync, rename over the target, fsync the directory.
  Status Commit();
  // Removes the temporary file; safe to call more than once.
  void Abandon();
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
};

// Writes `contents` to `path` atomically (see AtomicFile).
Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode = 0644);

// Reads a whole file, refusing files larger than `max_bytes`.
Result<std::string> ReadFileBounded(const std::string& path, uint64_t max_bytes);

// Where the last `lines` lines of `text` begin (an offset into it; 0 when it has no more
// lines than that, text.size() for lines == 0). A final '\n' ends the last line rather than
// starting an empty one. The one line-counting rule of TailFile and `corral logs` (log_follow).
size_t StartOfLastLines(std::string_view text, size_t lines);

// The last `lines` lines of a file (without its final newline), reading at most
// `window_bytes` from its end (log files can be large; a tail never needs all of them).
Result<std::string> TailFile(const std::string& path, size_t lines, uint64_t window_bytes);

// mkdir -p with `mode` for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

// Expands a leading "~/" with $HOME.
std::string ExpandHome(std::string_view path);

// Lowercase hex SHA-256 of a file's bytes.
Result<std::string> Sha256File(const std::string& path);

}  // namespace corral
