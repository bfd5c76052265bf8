// Following a model's llama-server log for the web dashboard (GET /v1/logs/follow, issue 16):
// the last lines of the file, then every line appended to it, pushed as NDJSON while the
// watcher stays. The daemon never copies log bytes otherwise (llama-server writes its file
// itself); this reads the file, as `corral logs -f` does.
//
// Wire (one JSON object per line):
//   {"t":"log","name":N,"path":P,"running":B}   first
//   {"line":"...","cut":true?}                   one log line; "cut" when it was longer than
//                                                max_line_bytes and the rest was dropped
//   {"t":"rotated"}                              the file was replaced (the model restarted)
//   (a blank line now and then: a heartbeat, so a watcher that left is noticed)
//
// Bounds: at most max_line_bytes of a line are kept (memory per watcher is one line plus a
// read buffer), at most max_tail_lines are replayed, reads are 64 KiB at a time.
// Thread-safety: LogLineSplitter is a plain value; FollowLog's stream runs on the control
// connection's thread and reads only the file and `stop`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "control/transport.h"

namespace corral::daemon {

// Splits appended bytes into lines (without '\n' or a trailing '\r'); a line longer than
// `max_line_bytes` keeps its first max_line_bytes and is marked cut.
class LogLineSplitter {
 public:
  struct Line {
    std::string text;
    bool cut = false;
  };
  explicit LogLineSplitter(size_t max_line_bytes) : max_(max_line_bytes) {}
  void Add(std::string_view bytes, std::vector<Line>& out);
  // The partial line held back (an unfinished write).
  size_t pending() const { return partial_.size(); }

 private:
  size_t max_;
  std::string partial_;
  bool cut_ = false;  // the current line is over the limit: the rest up to '\n' is dropped
};

// One NDJSON line ('\n'-terminated) for a log line; bytes that are not UTF-8 are replaced.
std::string LogLineJson(const LogLineSplitter::Line& line);

// The last `lines` complete lines of the `window_bytes` at the end of `text_end` (a file's
// tail, possibly starting mid-line: that first partial line is dropped unless `from_start`).
std::vector<LogLineSplitter::Line> LastLines(std::string_view text_end, bool from_start, size_t lines,
                                             size_t max_line_bytes);

struct LogFollowOptions {
  size_t max_tail_lines = 5000;
  size_t max_line_bytes = 4096;
  uint64_t tail_window_bytes = 4ULL << 20;
  std::chrono::milliseconds wake{1000};       // how often `stop` and a rotation are checked
  std::chrono::milliseconds heartbeat{5000};  // a blank line after this long without one
};

// The streaming answer of GET /v1/logs/follow. `stop` is asked at least every `wake`: true
// ends the stream (the daemon drains).
control::Response FollowLog(const std::string& name, const std::string& path, bool running, size_t tail_lines,
                            std::function<bool()> stop, const LogFollowOptions& options = {});

}  // namespace corral::daemon
