// The bench's view of the machine and of processes: host facts, /proc readers, the build's
// optimisation state, and llama-server children the bench starts itself.
// Thread-safety: free functions are thread-safe; a LocalServer belongs to one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral::bench {

struct HostInfo {
  std::string cpu_model;   // /proc/cpuinfo "model name"
  int logical_cores = 0;   // online CPUs
  int usable_cores = 0;    // CPUs this process may run on (affinity)
  uint64_t ram_bytes = 0;  // MemTotal
  std::string gpu;         // "none detected" or what nvidia-smi reports
  std::string kernel;      // uname -sr
  std::string hostname;
  double load_average_1m = -1;  // at the start of the run: a busy machine makes noisy numbers
};
HostInfo ProbeHost();

// True when this code was compiled with optimisation and with NDEBUG (assertions off).
bool BuiltOptimized();
// "-O2, NDEBUG" or "-O0, assertions on" - what BuiltOptimized() looked at.
std::string BuildDescription();

// /proc/<pid>/cmdline split at NUL bytes (exact argv), and the raw bytes.
Result<std::vector<std::string>> ReadCmdline(pid_t pid);
Result<std::string> ReadProcFile(pid_t pid, const char* name);  // raw bytes, bounded
// VmRSS from /proc/<pid>/status, in bytes.
Result<uint64_t> ReadRssBytes(pid_t pid);
// Direct children of `pid` (from /proc/<pid>/task/*/children).
std::vector<pid_t> ChildPids(pid_t pid);
// The daemon's proxy process (`corral __proxy-process`, a direct child), or -1 when the proxy
// runs inside the daemon (proxy_process: false).
pid_t ProxyProcessPid(pid_t daemon_pid);
// The daemon's footprint (never its llama-server children): its VmRSS, or with a proxy
// process the sum of both processes' PSS (RSS would count their shared pages twice).
Result<uint64_t> ReadDaemonRssBytes(pid_t daemon_pid);

// Byte-for-byte comparison of two processes' argv, environment and resource limits (suite A).
struct ProcessComparison {
  bool cmdline_equal = false;
  bool environ_equal = false;
  bool limits_equal = false;  // /proc/<pid>/limits (rlimits: open files, stack, ...)
  std::vector<std::string> limit_differences;
  std::string cmdline_a, cmdline_b;      // argv joined with spaces, for the report
  std::vector<std::string> differences;  // human-readable: "argv[3]: '8080' vs '0'", "env only in b: X=1"
  std::string error;                     // a /proc read failed ("" when both were read)
};
ProcessComparison CompareProcesses(pid_t a, pid_t b);

// A llama-server the bench started (raw or router mode): port 0, address learned from its
// log, ready when /health answers 200. The whole process group is killed on destruction.
class LocalServer {
 public:
  static Result<std::unique_ptr<LocalServer>> Start(const std::vector<std::string>& argv, std::chrono::seconds timeout);
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string LogTail(size_t bytes) const;

 private:
  LocalServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
  std::string log_path_;
};

}  // namespace corral::bench
