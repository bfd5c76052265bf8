#include "common/fs.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

namespace corral {
namespace {

Status WriteAll(int fd, const char* p, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("writing " + what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string DirName(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

AtomicFile::~AtomicFile() {
  Abandon();
}

Status AtomicFile::Open(const std::string& path, mode_t mode) {
  if (fd_ >= 0) return Internal("AtomicFile opened twice");
  path_ = path;
  std::filesystem::path p(path);
  std::string tmpl = (p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path()) /
                     ("." + p.filename().string() + ".tmp.XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("creating a temporary file beside " + path, errno);
  fd_ = fd;
  temp_path_ = buf.data();
  offset_ = 0;
  if (::fchmod(fd_, mode) != 0) {
    Status st = ErrnoError("chmod " + temp_path_, errno);
    Abandon();
    return st;
  }
  return Status::Ok();
}

Status AtomicFile::Write(const void* data, size_t size) {
  if (fd_ < 0) return Internal("AtomicFile::Write before Open");
  CORRAL_RETURN_IF_ERROR(WriteAll(fd_, static_cast<const char*>(data), size, temp_path_));
  offset_ += size;
  return Status::Ok();
}

Status AtomicFile::PadTo(uint64_t alignment) {
  static const char kZeros[64] = {};
  if (alignment == 0) return Status::Ok();
  uint64_t pad = (alignment - offset_ % alignment) % alignment;
  while (pad > 0) {
    size_t n = pad < sizeof(kZeros) ? static_cast<size_t>(pad) : sizeof(kZeros);
    CORRAL_RETURN_IF_ERROR(Write(kZeros, n));
    pad -= n;
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return Internal("AtomicFile::Commit before Open");
  if (::fsync(fd_) != 0) return ErrnoError("fsync " + temp_path_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ErrnoError("close " + temp_path_, errno);
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    Status st = ErrnoError("renaming " + temp_path_ + " to " + path_, errno);
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
    return st;
  }
  temp_path_.clear();
  int dfd = ::open(DirName(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: the rename is already visible
    ::close(dfd);
  }
  return Status::Ok();
}

void AtomicFile::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) {
  AtomicFile f;
  CORRAL_RETURN_IF_ERROR(f.Open(path, mode));
  CORRAL_RETURN_IF_ERROR(f.Write(contents));
  return f.Commit();
}

Result<std::string> ReadFileBounded(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoError("stat " + path, e);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Status(StatusCode::kResourceExhausted,
                  path + " is " + std::to_string(st.st_size) + " bytes; the limit is " + std::to_string(max_bytes));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoError("read " + path, e);
    }
    if (r == 0) break;
    if (out.size() + static_cast<size_t>(r) > max_bytes) {
      ::close(fd);
      return Status(StatusCode::kResourceExhausted, path + " grew past the limit while reading");
    }
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

Result<std::string> TailFile(const std::string& path, size_t lines, uint64_t window_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  const off_t size = std::max<off_t>(::lseek(fd, 0, SEEK_END), 0);
  const auto window = static_cast<off_t>(std::min<uint64_t>(window_bytes, static_cast<uint64_t>(size)));
  std::string buf(static_cast<size_t>(window), '\0');
  ssize_t r = window > 0 ? ::pread(fd, buf.data(), buf.size(), size - window) : 0;
  ::close(fd);
  buf.resize(r > 0 ? static_cast<size_t>(r) : 0);
  std::string out = buf.substr(StartOfLastLines(buf, lines));
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

size_t StartOfLastLines(std::string_view text, size_t lines) {
  if (lines == 0) return text.size();
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (size_t count = 0; pos > 0;) {
    const size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) return 0;
    if (++count == lines) return nl + 1;
    pos = nl;
  }
  return 0;
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::path p(path);
  std::filesystem::path cur;
  for (const auto& part : p) {
    cur /= part;
    if (cur.empty() || std::filesystem::exists(cur, ec)) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoError("mkdir " + cur.string(), errno);
    }
  }
  if (!std::filesystem::is_directory(p, ec)) return IoError(path + " is not a directory");
  return Status::Ok();
}

std::string ExpandHome(std::string_view path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (home != nullptr && *home != '\0') return std::string(home) + std::string(path.substr(1));
  }
  return std::string(path);
}

Result<std::string> Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoError("read " + path, e);
    }
    if (r == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(r));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace corral
