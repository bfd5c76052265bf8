#include "daemon/config_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace corral::daemon {
namespace {

// Events that can mean "the file's content changed": written and closed, renamed into
// place, created, removed (a reload then reports the file gone: defaults apply).
constexpr uint32_t kDirEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;
// The directory itself went away: watch it again when it comes back.
constexpr uint32_t kGoneEvents = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED;

}  // namespace

ConfigWatcher::ConfigWatcher(std::string file, std::function<void()> on_change, std::chrono::milliseconds debounce,
                             std::chrono::milliseconds retry)
    : file_(std::move(file)),
      dir_(std::filesystem::path(file_).parent_path().string()),
      base_(std::filesystem::path(file_).filename().string()),
      on_change_(std::move(on_change)),
      debounce_(debounce),
      retry_(retry) {}

ConfigWatcher::~ConfigWatcher() {
  Stop();
}

Status ConfigWatcher::Start() {
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ < 0) return ErrnoError("inotify_init1", errno);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    int e = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return ErrnoError("eventfd", e);
  }
  AddWatch();
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ConfigWatcher::Stop() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t w = ::write(stop_fd_, &one, sizeof(one));
    (void)w;
  }
  if (thread_.joinable()) thread_.join();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

bool ConfigWatcher::AddWatch() {
  const std::string dir = dir_.empty() ? std::string(".") : dir_;
  watch_ = ::inotify_add_watch(inotify_fd_, dir.c_str(), kDirEvents | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  return watch_ >= 0;
}

void ConfigWatcher::Loop() {
  using Clock = std::chrono::steady_clock;
  bool pending = false;  // an event for our file waits for the debounce to pass
  Clock::time_point fire_at{};
  Clock::time_point retry_at = Clock::now() + retry_;
  alignas(inotify_event) std::array<char, 16 * 1024> buf{};
  for (;;) {
    const auto now = Clock::now();
    int timeout_ms = -1;
    auto until = [&](Clock::time_point t) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
      int v = static_cast<int>(std::max<int64_t>(0, ms));
      timeout_ms = timeout_ms < 0 ? v : std::min(timeout_ms, v);
    };
    if (pending) until(fire_at);
    if (watch_ < 0) until(retry_at);

    std::array<pollfd, 2> fds = {pollfd{inotify_fd_, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) return;
    if (n > 0 && (fds[1].revents & POLLIN) != 0) return;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      for (;;) {
        ssize_t len = ::read(inotify_fd_, buf.data(), buf.size());
        if (len <= 0) break;  // EAGAIN: drained
        for (ssize_t off = 0; off < len;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(buf.data() + off);
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
          if ((ev->mask & kGoneEvents) != 0 && ev->wd == watch_) {
            if ((ev->mask & IN_IGNORED) == 0) ::inotify_rm_watch(inotify_fd_, watch_);
            watch_ = -1;
            retry_at = Clock::now() + retry_;
            pending = true;  // the file went with its directory
            fire_at = Clock::now() + debounce_;
            continue;
          }
          if ((ev->mask & IN_Q_OVERFLOW) != 0 || (ev->len > 0 && base_ == ev->name)) {
            pending = true;
            fire_at = Clock::now() + debounce_;  // restart the quiet period
          }
        }
      }
    }
    const auto t = Clock::now();
    if (watch_ < 0 && t >= retry_at) {
      retry_at = t + retry_;
      if (AddWatch()) {
        pending = true;  // the directory (and maybe the file) appeared
        fire_at = t + debounce_;
      }
    }
    if (pending && t >= fire_at) {
      pending = false;
      on_change_();
    }
  }
}

}  // namespace corral::daemon
