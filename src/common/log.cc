#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace corral {
namespace {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};
// Set once, before threads start (the proxy process names itself at start-up).
char g_tag[32] = "";

void VLog(LogLevel level, const char* fmt, va_list ap) {
  if (static_cast<int>(level) > g_log_level.load(std::memory_order_relaxed)) return;
  // One write per line: threads (monitor, connections, main) log concurrently.
  char line[4096];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  size_t n = std::strftime(line, sizeof(line), "%H:%M:%S corral", &tm);
  n += static_cast<size_t>(std::snprintf(line + n, sizeof(line) - n, g_tag[0] != 0 ? "[%s]: " : "%s: ", g_tag));
  if (level == LogLevel::kWarn) n += static_cast<size_t>(std::snprintf(line + n, sizeof(line) - n, "warning: "));
  if (level == LogLevel::kError) n += static_cast<size_t>(std::snprintf(line + n, sizeof(line) - n, "error: "));
  int m = std::vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  n = std::min(sizeof(line) - 2, n + static_cast<size_t>(std::max(m, 0)));
  line[n++] = '\n';
  ssize_t w = ::write(2, line, n);
  (void)w;
}

}  // namespace

void SetLogLevel(const std::string& name) {
  LogLevel l = LogLevel::kInfo;
  if (name == "error") l = LogLevel::kError;
  if (name == "warn") l = LogLevel::kWarn;
  if (name == "debug" || name == "trace") l = LogLevel::kDebug;
  g_log_level.store(static_cast<int>(l), std::memory_order_relaxed);
}

void SetLogTag(const std::string& tag) {
  size_t n = std::min(tag.size(), sizeof(g_tag) - 1);
  std::copy_n(tag.data(), n, g_tag);
  g_tag[n] = 0;
}

void Log(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LogLevel::kInfo, fmt, ap);
  va_end(ap);
}

void LogWarn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LogLevel::kWarn, fmt, ap);
  va_end(ap);
}

void LogError(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LogLevel::kError, fmt, ap);
  va_end(ap);
}

}  // namespace corral
