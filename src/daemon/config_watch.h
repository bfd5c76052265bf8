// Watches one file (config.yaml) for changes and calls back once things settle.
//
// inotify watches the file's *directory*, not the file: editors and `mv` save by writing a
// temporary file and renaming it over the old one, which replaces the inode a file watch
// would follow. Events for other names in the directory are ignored. Bursts (an editor's
// write + chmod + rename, or several saves in a row) are coalesced: the callback runs once,
// `debounce` after the last event. A directory that does not exist yet is looked for again
// every `retry` until it does (then the callback runs once: the file may be there now).
//
// Threads: one thread owned by the watcher runs the callback; Stop() (or the destructor)
// wakes and joins it. The callback must not call Stop().
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/status.h"

namespace corral::daemon {

class ConfigWatcher {
 public:
  ConfigWatcher(std::string file, std::function<void()> on_change,
                std::chrono::milliseconds debounce = std::chrono::milliseconds(150),
                std::chrono::milliseconds retry = std::chrono::seconds(2));
  ~ConfigWatcher();  // Stop()
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Creates the inotify instance and starts the thread. An error only when inotify itself
  // is unavailable (the daemon then runs without file watching and says so).
  Status Start();
  void Stop();

 private:
  void Loop();
  bool AddWatch();  // true when the directory is watched

  const std::string file_;
  const std::string dir_;
  const std::string base_;
  const std::function<void()> on_change_;
  const std::chrono::milliseconds debounce_;
  const std::chrono::milliseconds retry_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: Stop() wakes the thread
  int watch_ = -1;    // touched by the watcher thread only after Start
  std::thread thread_;
};

}  // namespace corral::daemon
