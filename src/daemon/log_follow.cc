#include "daemon/log_follow.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "common/fs.h"

namespace corral::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kReadChunkBytes = 64U << 10;
constexpr size_t kMaxBatchBytes = 1U << 20;  // NDJSON handed to one write; the rest waits
constexpr uint32_t kWatchMask = IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB;

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// One followed file: its descriptor, an inotify watch that wakes the loop on every write, and
// the offset read so far. Owned by one stream thread.
class FollowedFile {
 public:
  FollowedFile(std::string path, const LogFollowOptions& o) : path_(std::move(path)), o_(o), split_(o.max_line_bytes) {
    in_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    Reopen();
  }
  ~FollowedFile() {
    if (fd_ >= 0) ::close(fd_);
    if (in_ >= 0) ::close(in_);
  }
  FollowedFile(const FollowedFile&) = delete;
  FollowedFile& operator=(const FollowedFile&) = delete;

  // The last `lines` lines as NDJSON; following starts at the end of the file.
  std::string Tail(size_t lines) {
    if (fd_ < 0) return "";
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return "";
    const auto size = static_cast<uint64_t>(st.st_size);
    const uint64_t window = std::min<uint64_t>(o_.tail_window_bytes, size);
    std::string buf(static_cast<size_t>(window), '\0');
    ssize_t r = window > 0 ? ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(size - window)) : 0;
    buf.resize(r > 0 ? static_cast<size_t>(r) : 0);
    offset_ = size - window + buf.size();
    // A last line without '\n' yet stays for the splitter, which completes it later.
    size_t end = buf.rfind('\n');
    std::string_view complete =
        end == std::string::npos ? std::string_view() : std::string_view(buf).substr(0, end + 1);
    std::vector<LogLineSplitter::Line> held;
    split_.Add(std::string_view(buf).substr(complete.size()), held);
    std::string out;
    for (const auto& l : LastLines(complete, window == size, lines, o_.max_line_bytes)) out += LogLineJson(l);
    return out;
  }

  // Waits up to `timeout` for the file to change (no wait while unread bytes are known).
  void Wait(std::chrono::milliseconds timeout) {
    if (more_) return;
    pollfd p{in_, POLLIN, 0};
    if (::poll(&p, in_ >= 0 ? 1 : 0, static_cast<int>(timeout.count())) > 0) {
      char ev[4096];
      while (::read(in_, ev, sizeof ev) > 0) {
      }
    }
  }

  // What was appended since the last call (NDJSON), a rotation line first when the file was
  // replaced or truncated. At most ~kMaxBatchBytes per call.
  std::string ReadNew() {
    std::string out;
    if (Rotated()) {
      Reopen();
      out = Dump({{"t", "rotated"}});
    }
    more_ = false;
    if (fd_ < 0) return out;
    std::vector<LogLineSplitter::Line> lines;
    char buf[kReadChunkBytes];
    for (;;) {
      ssize_t r = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(offset_));
      if (r <= 0) break;
      offset_ += static_cast<uint64_t>(r);
      split_.Add(std::string_view(buf, static_cast<size_t>(r)), lines);
      size_t bytes = 0;
      for (const auto& l : lines) bytes += l.text.size();
      if (bytes >= kMaxBatchBytes) {
        more_ = true;
        break;
      }
    }
    for (const auto& l : lines) out += LogLineJson(l);
    return out;
  }

 private:
  // The path now names another file (rotation, a restart), or the file shrank.
  bool Rotated() const {
    struct stat now {};
    if (::stat(path_.c_str(), &now) != 0) return false;  // gone: keep what is open
    struct stat opened {};
    if (fd_ < 0 || ::fstat(fd_, &opened) != 0) return true;
    return now.st_ino != opened.st_ino || now.st_dev != opened.st_dev ||
           static_cast<uint64_t>(opened.st_size) < offset_;
  }
  void Reopen() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    offset_ = 0;
    split_ = LogLineSplitter(o_.max_line_bytes);
    if (in_ < 0) return;
    if (wd_ >= 0) ::inotify_rm_watch(in_, wd_);
    wd_ = ::inotify_add_watch(in_, path_.c_str(), kWatchMask);
  }

  std::string path_;
  LogFollowOptions o_;
  LogLineSplitter split_;
  int fd_ = -1, in_ = -1, wd_ = -1;
  uint64_t offset_ = 0;
  bool more_ = false;
};

}  // namespace

void LogLineSplitter::Add(std::string_view bytes, std::vector<Line>& out) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    if (!cut_) {
      const size_t room = max_ - std::min(max_, partial_.size());
      partial_.append(piece.substr(0, room));
      cut_ = piece.size() > room;
    }
    if (nl == std::string_view::npos) return;
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    out.push_back({std::move(partial_), cut_});
    partial_.clear();
    cut_ = false;
    bytes.remove_prefix(nl + 1);
  }
}

std::string LogLineJson(const LogLineSplitter::Line& line) {
  nlohmann::json j = {{"line", line.text}};
  if (line.cut) j["cut"] = true;
  return Dump(j);
}

std::vector<LogLineSplitter::Line> LastLines(std::string_view text_end, bool from_start, size_t lines,
                                             size_t max_line_bytes) {
  std::vector<LogLineSplitter::Line> out;
  if (lines == 0) return out;
  if (!from_start) {  // the window began mid-line: that piece is not a whole line
    size_t nl = text_end.find('\n');
    text_end = nl == std::string_view::npos ? std::string_view() : text_end.substr(nl + 1);
  }
  // Find where the last `lines` lines begin, then split only those.
  const size_t pos = StartOfLastLines(text_end, lines);
  LogLineSplitter split(max_line_bytes);
  split.Add(text_end.substr(pos), out);
  return out;
}

control::Response FollowLog(const std::string& name, const std::string& path, bool running, size_t tail_lines,
                            std::function<bool()> stop, const LogFollowOptions& options) {
  control::Response r;
  const std::string first = Dump({{"t", "log"}, {"name", name}, {"path", path}, {"running", running}});
  tail_lines = std::min(tail_lines, options.max_tail_lines);
  r.stream = [path, first, tail_lines, options,
              stop = std::move(stop)](const std::function<bool(std::string_view)>& write) {
    FollowedFile file(path, options);
    if (!write(first + file.Tail(tail_lines))) return;
    auto last_write = Clock::now();
    while (!stop()) {
      file.Wait(options.wake);
      std::string out = file.ReadNew();
      if (out.empty() && Clock::now() - last_write < options.heartbeat) continue;
      if (out.empty()) out = "\n";  // heartbeat: a watcher that left makes this write fail
      if (!write(out)) return;
      last_write = Clock::now();
    }
  };
  return r;
}

}  // namespace corral::daemon
