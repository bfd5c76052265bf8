#include "bench/system.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "bench/client.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/subprocess.h"

namespace corral::bench {

namespace {

constexpr uint64_t kMaxProcFileBytes = 4 << 20;
constexpr auto kSystemPoll = std::chrono::milliseconds(20);

std::string FirstLineWith(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return line;
  }
  return "";
}

std::string AfterColon(const std::string& line) {
  size_t c = line.find(':');
  if (c == std::string::npos) return "";
  size_t b = line.find_first_not_of(" \t", c + 1);
  return b == std::string::npos ? "" : line.substr(b);
}

std::vector<std::string> SplitNul(const std::string& raw) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    out.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

}  // namespace

HostInfo ProbeHost() {
  HostInfo h;
  if (auto cpu = ReadFileBounded("/proc/cpuinfo", kMaxProcFileBytes); cpu.ok()) {
    h.cpu_model = AfterColon(FirstLineWith(*cpu, "model name"));
    if (h.cpu_model.empty()) h.cpu_model = AfterColon(FirstLineWith(*cpu, "Model"));
  }
  h.logical_cores = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) h.usable_cores = CPU_COUNT(&set);
  if (auto mem = ReadFileBounded("/proc/meminfo", kMaxProcFileBytes); mem.ok()) {
    std::string v = AfterColon(FirstLineWith(*mem, "MemTotal"));
    h.ram_bytes = std::strtoull(v.c_str(), nullptr, 10) * 1024;
  }
  h.gpu = "none detected";
  if (!FindOnPath("nvidia-smi").empty()) {
    auto r = RunCapture({"nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"},
                        std::chrono::seconds(10), size_t{64} * 1024);
    if (r.ok() && r->exit_code == 0 && !r->output.empty()) {
      h.gpu = r->output;
      while (!h.gpu.empty() && (h.gpu.back() == '\n' || h.gpu.back() == ' ')) h.gpu.pop_back();
      std::replace(h.gpu.begin(), h.gpu.end(), '\n', ';');
    }
  }
  struct utsname u {};
  if (::uname(&u) == 0) {
    h.kernel = std::string(u.sysname) + " " + u.release;
    h.hostname = u.nodename;
  }
  double load[1];
  if (::getloadavg(load, 1) == 1) h.load_average_1m = load[0];
  return h;
}

bool BuiltOptimized() {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  return true;
#else
  return false;
#endif
}

std::string BuildDescription() {
  std::string s;
#if defined(__OPTIMIZE__)
  s = "optimised";
#else
  s = "-O0 (no optimisation)";
#endif
#if defined(NDEBUG)
  s += ", NDEBUG";
#else
  s += ", assertions on";
#endif
#if defined(__SANITIZE_ADDRESS__)
  s += ", AddressSanitizer";
#endif
  return s;
}

Result<std::string> ReadProcFile(pid_t pid, const char* name) {
  if (pid <= 0) return InvalidArgument("no such process id " + std::to_string(pid));
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  // /proc files report size 0, so read them by hand with a bound.
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path + " (no such process, or not allowed)");
  std::string out;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > kMaxProcFileBytes) return Status(StatusCode::kResourceExhausted, path + " is too large");
  }
  return out;
}

Result<std::vector<std::string>> ReadCmdline(pid_t pid) {
  CORRAL_ASSIGN_OR_RETURN(std::string raw, ReadProcFile(pid, "cmdline"));
  if (raw.empty()) return NotFound("process " + std::to_string(pid) + " has no command line (a zombie?)");
  return SplitNul(raw);
}

Result<uint64_t> ReadRssBytes(pid_t pid) {
  CORRAL_ASSIGN_OR_RETURN(std::string text, ReadProcFile(pid, "status"));
  std::string v = AfterColon(FirstLineWith(text, "VmRSS"));
  if (v.empty()) return NotFound("no VmRSS in /proc/" + std::to_string(pid) + "/status");
  return std::strtoull(v.c_str(), nullptr, 10) * 1024;
}

pid_t ProxyProcessPid(pid_t daemon_pid) {
  for (pid_t child : ChildPids(daemon_pid)) {
    auto argv = ReadCmdline(child);
    if (argv.ok() && argv->size() >= 2 && (*argv)[1] == "__proxy-process") return child;
  }
  return -1;
}

namespace {
// "Pss:" from /proc/<pid>/smaps_rollup, in bytes.
Result<uint64_t> ReadPssBytes(pid_t pid) {
  CORRAL_ASSIGN_OR_RETURN(std::string text, ReadProcFile(pid, "smaps_rollup"));
  std::string v = AfterColon(FirstLineWith(text, "Pss:"));
  if (v.empty()) return NotFound("no Pss in /proc/" + std::to_string(pid) + "/smaps_rollup");
  return std::strtoull(v.c_str(), nullptr, 10) * 1024;
}
}  // namespace

Result<uint64_t> ReadDaemonRssBytes(pid_t daemon_pid) {
  pid_t proxy = ProxyProcessPid(daemon_pid);
  if (proxy <= 0) return ReadRssBytes(daemon_pid);
  // Two processes of one binary: their RSS would count the shared pages (the binary, libc)
  // twice; the sum of their proportional set sizes counts every page once.
  CORRAL_ASSIGN_OR_RETURN(uint64_t keeper, ReadPssBytes(daemon_pid));
  CORRAL_ASSIGN_OR_RETURN(uint64_t edge, ReadPssBytes(proxy));
  return keeper + edge;
}

std::vector<pid_t> ChildPids(pid_t pid) {
  std::vector<pid_t> out;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task_dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(task_dir + "/" + e->d_name + "/children");
    long child = 0;
    while (in >> child) out.push_back(static_cast<pid_t>(child));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

ProcessComparison CompareProcesses(pid_t a, pid_t b) {
  ProcessComparison c;
  auto ca = ReadProcFile(a, "cmdline");
  auto cb = ReadProcFile(b, "cmdline");
  auto ea = ReadProcFile(a, "environ");
  auto eb = ReadProcFile(b, "environ");
  for (const auto* r : {&ca, &cb, &ea, &eb}) {
    if (!r->ok() && c.error.empty()) c.error = r->status().message();
  }
  if (!c.error.empty()) return c;
  const auto argv_a = SplitNul(*ca), argv_b = SplitNul(*cb);
  c.cmdline_a = Join(argv_a);
  c.cmdline_b = Join(argv_b);
  c.cmdline_equal = *ca == *cb;
  c.environ_equal = *ea == *eb;
  for (size_t i = 0; i < std::max(argv_a.size(), argv_b.size()); ++i) {
    const std::string va = i < argv_a.size() ? "'" + argv_a[i] + "'" : "(none)";
    const std::string vb = i < argv_b.size() ? "'" + argv_b[i] + "'" : "(none)";
    if (va != vb) c.differences.push_back("argv[" + std::to_string(i) + "]: " + va + " vs " + vb);
  }
  std::map<std::string, std::string> env_a, env_b;
  for (const auto& kv : SplitNul(*ea)) env_a[kv.substr(0, kv.find('='))] = kv;
  for (const auto& kv : SplitNul(*eb)) env_b[kv.substr(0, kv.find('='))] = kv;
  for (const auto& [k, v] : env_a) {
    auto it = env_b.find(k);
    if (it == env_b.end()) {
      c.differences.push_back("env only in a: " + k);
    } else if (it->second != v) {
      c.differences.push_back("env differs: " + k);
    }
  }
  for (const auto& [k, v] : env_b) {
    if (!env_a.count(k)) c.differences.push_back("env only in b: " + k);
  }
  // Resource limits: a daemon that raised its own (open files) must give the child the
  // user's. Compared line by line ("Max open files  1024  524288  files").
  auto la = ReadProcFile(a, "limits");
  auto lb = ReadProcFile(b, "limits");
  if (la.ok() && lb.ok()) {
    c.limits_equal = *la == *lb;
    auto lines = [](const std::string& text) {
      std::vector<std::string> out;
      for (size_t at = 0, nl; at < text.size(); at = nl + 1) {
        nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        out.push_back(text.substr(at, nl - at));
      }
      return out;
    };
    auto va = lines(*la), vb = lines(*lb);
    for (size_t i = 0; i < std::max(va.size(), vb.size()); ++i) {
      std::string x = i < va.size() ? va[i] : "(none)", y = i < vb.size() ? vb[i] : "(none)";
      if (x != y) c.limit_differences.push_back("'" + x + "' vs '" + y + "'");
    }
  } else {
    c.limit_differences.push_back("cannot read /proc/<pid>/limits");
  }
  if (!c.environ_equal && std::none_of(c.differences.begin(), c.differences.end(),
                                       [](const std::string& d) { return d.rfind("env", 0) == 0; })) {
    c.differences.push_back("environment: same variables, different order");
  }
  return c;
}

Result<std::unique_ptr<LocalServer>> LocalServer::Start(const std::vector<std::string>& argv_in,
                                                        std::chrono::seconds timeout) {
  if (argv_in.empty()) return InvalidArgument("empty llama-server command line");
  std::unique_ptr<LocalServer> s(new LocalServer());
  char tmpl[] = "/tmp/corral-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return ErrnoError("creating a temporary directory", errno);
  s->dir_ = tmpl;
  s->log_path_ = s->dir_ + "/server.log";
  auto pid = SpawnToLog(argv_in, s->log_path_, /*append=*/false, /*own_group=*/true);
  if (!pid.ok()) return pid.status();
  s->pid_ = *pid;
  static const std::regex kListening(R"(listening on http://127\.0\.0\.1:(\d+))");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // Ctrl-C while a big model loads: stop now (the destructor stops the process group), not
    // when it is ready minutes later.
    if (Interrupted()) return Status(StatusCode::kCancelled, "interrupted while " + argv_in[0] + " was starting");
    int status = 0;
    if (::waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      return Unavailable(argv_in[0] + " exited during start; its log ends with:\n" + s->LogTail(2000));
    }
    if (s->port_ == 0) {
      std::smatch m;
      const std::string text = s->LogTail(1 << 20);
      if (std::regex_search(text, m, kListening)) s->port_ = std::stoi(m[1]);
    }
    if (s->port_ != 0) {
      Endpoint ep{"127.0.0.1", std::to_string(s->port_), ""};
      auto r = HttpRequest(ep, "/health", "", std::chrono::seconds(2));
      if (r.ok() && r->status == 200) return s;
    }
    std::this_thread::sleep_for(kSystemPoll);
  }
  return Status(StatusCode::kTimeout, argv_in[0] + " was not ready in time; its log ends with:\n" + s->LogTail(2000));
}

LocalServer::~LocalServer() {
  StopProcessGroup(pid_, std::chrono::seconds(5));  // router mode's children are in the group
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

std::string LocalServer::LogTail(size_t bytes) const {
  auto text = ReadFileBounded(log_path_, 256ULL << 20);
  if (!text.ok()) return "";
  return text->size() > bytes ? text->substr(text->size() - bytes) : *text;
}

}  // namespace corral::bench
