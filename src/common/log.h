// The daemon's log: one line per call on stderr (daemon.log for a background daemon), with
// a time stamp and a level mark. `log_level` filters it: error < warn < info (the default)
// < debug, trace (nothing more verbose than info yet). Every module may log through it:
// the router (evictions, TTL unloads), the proxy-process host (restarts), the daemon.
//
// Thread-safety: every function may be called from any thread; a line is one write(2), so
// lines from concurrent threads (and from the proxy process, which shares the fd) never
// interleave. Secrets must never be passed in.
#pragma once

#include <string>

namespace corral {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// "error", "warn", "info", "debug", "trace"; anything else means info.
void SetLogLevel(const std::string& name);
// Lines are prefixed "HH:MM:SS corral: " (or "HH:MM:SS corral[TAG]: " after SetLogTag).
void SetLogTag(const std::string& tag);

void Log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogWarn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace corral
