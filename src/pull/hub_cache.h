// The Hugging Face hub cache on disk, the layout huggingface_hub, llama.cpp (-hf) and Corral
// share, so one download serves all three:
//
//   HUB/models--OWNER--NAME/
//     blobs/SHA256                 the file's bytes, named by their sha256 (LFS files)
//     blobs/SHA256.incomplete      a download in progress (resumed with Range; never listed)
//     snapshots/COMMIT/PATH        a relative symlink to ../../blobs/SHA256 (one more ../ per
//                                  directory level of PATH)
//     refs/REVISION                the commit REVISION pointed to when last pulled (no newline)
//   HUB/.locks/models--OWNER--NAME/SHA256.lock   flock(2) held while that blob downloads
//                                                (huggingface_hub locks the same file)
//
// HUB is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub (what the catalog scans).
//
// A blob is visible only once complete and verified: it is written as .incomplete, its
// sha256 checked, then renamed (atomic) and fsynced; the snapshot link is made after.
//
// Thread-safety: stateless functions; concurrent pulls of one blob are serialised by its lock.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace corral::pull {

std::string HubCacheDir();

class HubRepoCache {
 public:
  HubRepoCache(std::string hub_dir, const std::string& repo);  // repo: a valid "owner/name"

  const std::string& dir() const { return dir_; }
  std::string BlobPath(const std::string& sha256) const { return dir_ + "/blobs/" + sha256; }
  std::string IncompletePath(const std::string& sha256) const { return BlobPath(sha256) + ".incomplete"; }
  std::string SnapshotPath(const std::string& commit, const std::string& path) const {
    return dir_ + "/snapshots/" + commit + "/" + path;
  }
  std::string LockPath(const std::string& sha256) const;

  // Creates blobs/, snapshots/, refs/ and the lock directory.
  Status Prepare() const;
  // The commit refs/REVISION names; NotFound when absent.
  Result<std::string> ReadRef(const std::string& revision) const;
  // Writes refs/REVISION atomically (a commit id as REVISION writes nothing).
  Status WriteRef(const std::string& revision, const std::string& commit) const;
  // Makes snapshots/COMMIT/PATH a relative link to the blob, replacing an older link.
  Status LinkSnapshot(const std::string& commit, const std::string& path, const std::string& sha256) const;
  // For a file not stored in LFS (no sha256 in the listing): the bytes live in the snapshot
  // directory itself, as huggingface_hub does for small files.
  bool HasBlob(const std::string& sha256) const;

 private:
  std::string hub_;
  std::string dir_;
  std::string folder_;  // "models--owner--name"
};

// An exclusive flock(2) on a lock file, released on destruction.
class FileLock {
 public:
  FileLock() = default;
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // kFailedPrecondition when another process holds it.
  Status TryLock(const std::string& path);

 private:
  int fd_ = -1;
};

// Bytes free for an unprivileged writer on the filesystem holding `dir`.
Result<uint64_t> FreeBytes(const std::string& dir);

}  // namespace corral::pull
