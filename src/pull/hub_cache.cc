#include "pull/hub_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "common/fs.h"

namespace corral::pull {
namespace {

std::string AbsEnv(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v == '/') ? std::string(v) : std::string();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

std::string HubCacheDir() {
  if (std::string d = AbsEnv("HF_HUB_CACHE"); !d.empty()) return d;
  if (std::string d = AbsEnv("HF_HOME"); !d.empty()) return d + "/hub";
  if (std::string d = AbsEnv("XDG_CACHE_HOME"); !d.empty()) return d + "/huggingface/hub";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/tmp") + "/.cache/huggingface/hub";
}

HubRepoCache::HubRepoCache(std::string hub_dir, const std::string& repo) : hub_(std::move(hub_dir)) {
  folder_ = "models--" + repo;
  const size_t slash = folder_.find('/');
  if (slash != std::string::npos) folder_.replace(slash, 1, "--");
  dir_ = hub_ + "/" + folder_;
}

std::string HubRepoCache::LockPath(const std::string& sha256) const {
  return hub_ + "/.locks/" + folder_ + "/" + sha256 + ".lock";
}

Status HubRepoCache::Prepare() const {
  for (const char* sub : {"/blobs", "/snapshots", "/refs"}) CORRAL_RETURN_IF_ERROR(MakeDirs(dir_ + sub));
  return MakeDirs(hub_ + "/.locks/" + folder_);
}

Result<std::string> HubRepoCache::ReadRef(const std::string& revision) const {
  auto text = ReadFileBounded(dir_ + "/refs/" + revision, 256);
  if (!text.ok()) return NotFound("no refs/" + revision + " in " + dir_);
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status HubRepoCache::WriteRef(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return Status::Ok();
  const std::string path = dir_ + "/refs/" + revision;
  CORRAL_RETURN_IF_ERROR(MakeDirs(DirOf(path)));  // refs/pr/1
  return WriteFileAtomic(path, commit);
}

Status HubRepoCache::LinkSnapshot(const std::string& commit, const std::string& path, const std::string& sha256) const {
  const std::string link = SnapshotPath(commit, path);
  CORRAL_RETURN_IF_ERROR(MakeDirs(DirOf(link)));
  std::string target = "../../";
  for (char c : path) {
    if (c == '/') target += "../";
  }
  target += "blobs/" + sha256;
  // Make the link under a temporary name and rename it over the old one: never a moment
  // without a file at PATH, never a link to a blob that is not there.
  const std::string tmp = link + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0) return ErrnoError("creating link " + tmp, errno);
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoError("renaming link to " + link, e);
  }
  return Status::Ok();
}

bool HubRepoCache::HasBlob(const std::string& sha256) const {
  struct stat st {};
  return ::stat(BlobPath(sha256).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

Status FileLock::TryLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return ErrnoError("opening lock " + path, errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    if (e == EWOULDBLOCK) {
      return Status(StatusCode::kFailedPrecondition, "another download of this file is running (" + path + ")");
    }
    return ErrnoError("locking " + path, e);
  }
  return Status::Ok();
}

Result<uint64_t> FreeBytes(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoError("statvfs " + dir, errno);
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace corral::pull
