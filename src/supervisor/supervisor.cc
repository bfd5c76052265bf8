#include "supervisor/supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "common/fs.h"
#include "common/log.h"
#include "common/rlimit.h"
#include "supervisor/kv_state.h"

extern char** environ;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace corral::supervisor {
namespace {

constexpr uint64_t kTagWake = 1ULL << 32;
constexpr uint64_t kTagInotify = 2ULL << 32;
constexpr uint64_t kTagPidfd = 3ULL << 32;
constexpr uint64_t kTagProbe = 4ULL << 32;                  // | the probe's id
constexpr size_t kMaxLogReadPerEvent = size_t{256} * 1024;  // bytes scanned per log-growth event
constexpr size_t kPortScanTail = 256;                       // bytes kept across reads for the port line
constexpr size_t kFailureLogLines = 20;
// Restart policy (see supervisor.h); the first delay is SupervisorOptions::restart_delay.
constexpr int kMaxRestartDelayFactor = 30;
constexpr std::chrono::seconds kStableUptime{60};
constexpr int kMaxCrashesInARow = 5;
constexpr uint64_t kFailureLogWindowBytes = uint64_t{16} * 1024;  // read from the end of the log
// A /health probe's own deadline, connect to status line: a readiness probe's, and the
// least a liveness probe gets (it gets its interval when that is longer).
constexpr std::chrono::milliseconds kProbeTimeout{1000};
constexpr size_t kStatusLineBytes = 12;  // "HTTP/1.1 200"
constexpr char kHealthRequest[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
constexpr std::chrono::seconds kStopExtraWait{5};

// utime + stime of `pid` in clock ticks (/proc/<pid>/stat fields 14 and 15); 0 when unreadable.
uint64_t CpuTicks(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (p == nullptr) return 0;
  // After ')': field 3 (state) is the first; utime and stime are the 12th and 13th.
  uint64_t fields[13] = {};
  int i = 0;
  for (char* tok = const_cast<char*>(p + 1); i < 13;) {
    while (*tok == ' ') ++tok;
    if (*tok == 0) return 0;
    char* end = nullptr;
    fields[i++] = std::strtoull(tok, &end, 10);
    if (end == tok) {  // the state letter
      while (*end != 0 && *end != ' ') ++end;
    }
    tok = end;
  }
  return fields[11] + fields[12];
}

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

// "HTTP/1.1 200 ..." → 200; 0 when the bytes are not an HTTP status line.
int ParseStatusLine(const char* buf, size_t got) {
  if (got < kStatusLineBytes || std::memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') return 0;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (buf[i] < '0' || buf[i] > '9') return 0;
    status = status * 10 + (buf[i] - '0');
  }
  return status;
}

// The first error line llama-server logged ("0.00.013 E llama_model_load: error loading
// model: ..."), without its timestamp and level; "" when there is none.
std::string FirstError(const std::string& log_tail) {
  size_t pos = 0;
  while (pos < log_tail.size()) {
    size_t eol = log_tail.find('\n', pos);
    std::string_view line(log_tail.data() + pos, (eol == std::string::npos ? log_tail.size() : eol) - pos);
    pos = eol == std::string::npos ? log_tail.size() : eol + 1;
    size_t mark = line.find(" E ");
    if (mark < 20) return std::string(line.substr(mark + 3));  // npos is never < 20
    if (line.starts_with("error: ")) return std::string(line.substr(7));
  }
  return "";
}

}  // namespace

// One GET /health in flight, as a small state machine on the monitor's epoll set:
// non-blocking connect (EPOLLOUT) → send the request → read the status line (EPOLLIN), all
// before `deadline`. `id` tags its epoll events, so an event of an older probe of the same
// child is never taken for this one's.
struct Supervisor::HealthProbe {
  int fd = -1;
  uint32_t id = 0;
  bool sent = false;
  TimePoint deadline;
  size_t got = 0;
  char buf[kStatusLineBytes] = {};
};

struct Supervisor::Child {
  uint32_t serial = 0;
  LaunchSpec spec;
  std::vector<std::string> argv;
  std::string log_path;
  Lifecycle lifecycle;
  pid_t pid = -1;
  int pidfd = -1;
  int log_fd = -1;  // read side, for the port line and `logs`
  int watch = -1;   // inotify watch descriptor
  uint64_t log_offset = 0;
  uint64_t cpu_ticks = 0;  // utime + stime at the last liveness look (see CpuTicks)
  std::string log_tail;    // last bytes read, so a port line split across reads is found
  bool spawn_done = false;
  bool stop_queued = false;
  bool we_killed = false;
  TimePoint spawned_at;
  std::chrono::system_clock::time_point started_wall;
  std::string last_log_lines;
  uint64_t generation = 1;
  uint32_t restarts = 0;      // restart policy: times started again
  Failure last_failure;       // the failure the last restart recovered from
  int crashes_in_a_row = 0;   // reset by a minute of being ready
  HealthProbe probe;          // the /health probe in flight, if any (probe.fd >= 0)
  std::string kv_dir;         // its saved KV state lives here; "" = not kept
  bool kv_restoring = false;  // ready, restoring: listed as loading until done

  Child(LaunchSpec s, TimePoint now, std::chrono::milliseconds timeout, Liveness liveness)
      : spec(std::move(s)), lifecycle(now, timeout, liveness) {}
};

Status CheckChildName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' && name[0] != '-' &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
            });
  if (!ok) {
    return InvalidArgument("bad name '" + name + "': use 1-64 letters, digits, '.', '_' or '-' (not first)");
  }
  return Status::Ok();
}

Supervisor::Supervisor(SupervisorOptions options)
    : options_(std::move(options)),
      budget_bytes_(options_.memory_budget_bytes),
      health_base_ms_(options_.health_timeout_base.count()),
      health_per_gib_ms_(options_.health_timeout_per_gib.count()),
      stop_grace_ms_(options_.stop_grace.count()),
      self_pid_(::getpid()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0 || inotify_fd_ < 0) {
    // Out of file descriptors at start-up: nothing sensible can continue.
    std::fprintf(stderr, "corral: supervisor: cannot create epoll/eventfd/inotify: %s\n", std::strerror(errno));
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTagWake;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  ev.data.u64 = kTagInotify;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, inotify_fd_, &ev);
  monitor_ = std::thread([this] { MonitorLoop(); });
  kv_thread_ = std::thread([this] { KvLoop(); });
}

Supervisor::~Supervisor() {
  StopAll();
  {
    MutexLock lock(mu_);
    quit_ = true;
  }
  Wake();
  kv_cv_.notify_all();
  kv_thread_.join();
  monitor_.join();
  for (auto& [name, c] : children_) {
    AbortProbeLocked(*c);
    if (c->pidfd >= 0) ::close(c->pidfd);
    if (c->log_fd >= 0) ::close(c->log_fd);
  }
  ::close(inotify_fd_);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void Supervisor::Wake() {
  uint64_t one = 1;
  ssize_t r = ::write(wake_fd_, &one, sizeof(one));
  (void)r;  // a full counter still wakes the loop
}

std::chrono::milliseconds Supervisor::HealthTimeoutFor(uint64_t model_bytes) const {
  uint64_t gib = (model_bytes + (1ULL << 30) - 1) >> 30;
  return std::chrono::milliseconds(health_base_ms_.load()) +
         std::chrono::milliseconds(health_per_gib_ms_.load()) * static_cast<int64_t>(gib);
}

void Supervisor::SetLimits(const Limits& l) {
  budget_bytes_.store(l.memory_budget_bytes);
  health_base_ms_.store(l.health_timeout_base.count());
  health_per_gib_ms_.store(l.health_timeout_per_gib.count());
  stop_grace_ms_.store(l.stop_grace.count());
}

Supervisor::Limits Supervisor::limits() const {
  return {budget_bytes_.load(), std::chrono::milliseconds(health_base_ms_.load()),
          std::chrono::milliseconds(health_per_gib_ms_.load()), std::chrono::milliseconds(stop_grace_ms_.load())};
}

uint64_t Supervisor::ReservedLocked() const {
  uint64_t sum = 0;
  for (const auto& [name, c] : children_) {
    const ChildState s = c->lifecycle.state();
    if (!IsTerminal(s) || s == ChildState::kRestartPending) sum += c->spec.reserved_bytes;
  }
  return sum;
}

uint64_t Supervisor::reserved_bytes() const {
  MutexLock lock(mu_);
  return ReservedLocked();
}

Result<ChildInfo> Supervisor::Start(const LaunchSpec& spec_in) {
  CORRAL_RETURN_IF_ERROR(CheckChildName(spec_in.name));
  CORRAL_RETURN_IF_ERROR(CheckRawArgs(spec_in.raw_args));
  CORRAL_RETURN_IF_ERROR(CheckRawArgs(spec_in.preset_args).WithContext("preset"));
  if (spec_in.port < 0 || spec_in.port > 65535) return InvalidArgument("port must be 0-65535");
  // KV state: llama-server refuses a --slot-save-path that is not a directory, so it is made
  // now (and older identities of the same model file are dropped); a directory that cannot be
  // made turns the feature off for this start rather than failing it.
  LaunchSpec spec = spec_in;
  const std::string kv_dir = KvDirFor(options_.llama_server, spec);
  if (!kv_dir.empty()) {
    auto prepared = PrepareKvDir(spec.kv_root, kv_dir, spec.model_path);
    if (!prepared.ok()) {
      LogWarn("%s: KV state not kept: %s", spec.name.c_str(), prepared.status().message().c_str());
      spec.kv_root.clear();
    } else if (*prepared > 0) {
      Log("%s: dropped %d saved KV state(s) of an older model file or argv", spec.name.c_str(), *prepared);
    }
  }

  MutexLock lock(mu_);
  auto it = children_.find(spec.name);
  if (it != children_.end() && !IsTerminal(it->second->lifecycle.state())) {
    return Status(StatusCode::kAlreadyExists, "a model named '" + spec.name + "' is already " +
                                                  std::string(to_string(it->second->lifecycle.state())) +
                                                  "; stop it first or start another copy with --name");
  }
  const uint64_t budget = budget_bytes_.load();
  if (budget != 0 && !spec.force) {
    uint64_t reserved = ReservedLocked();
    if (reserved + spec.reserved_bytes > budget) {
      std::string holders;
      for (const auto& [name, c] : children_) {
        if (IsTerminal(c->lifecycle.state())) continue;
        holders += (holders.empty() ? "" : ", ") + name + " " + FormatBytes(c->spec.reserved_bytes);
      }
      return Status(StatusCode::kResourceExhausted,
                    "not enough memory for '" + spec.name + "': it needs about " + FormatBytes(spec.reserved_bytes) +
                        ", the budget is " + FormatBytes(budget) + " and " + FormatBytes(reserved) +
                        " is already reserved" + (holders.empty() ? "" : " (" + holders + ")") +
                        "; stop a model, raise memory_budget, or pass --force");
    }
  }

  auto child = std::make_unique<Child>(spec, Clock::now(), HealthTimeoutFor(spec.model_bytes),
                                       LivenessFor(options_.liveness_timeout));
  Child& c = *child;
  c.serial = next_serial_++;
  c.argv = BuildArgv(options_.llama_server, spec);
  if (!spec.kv_root.empty()) c.kv_dir = kv_dir;
  c.log_path = options_.log_dir + "/" + spec.name + ".log";
  if (it != children_.end()) {
    AbortProbeLocked(*it->second);
    if (it->second->log_fd >= 0) ::close(it->second->log_fd);
    children_.erase(it);
  }
  children_[spec.name] = std::move(child);
  commands_.push_back({CommandKind::kSpawn, c.serial});
  Wake();
  cv_.wait(lock.native(), [&c] { return c.spawn_done; });
  ChildInfo info = InfoLocked(c);
  if (c.lifecycle.state() == ChildState::kFailed && c.lifecycle.failure().kind == FailureKind::kSpawn) {
    return Status(StatusCode::kUnavailable, c.lifecycle.failure().message);
  }
  return info;
}

Result<ChildInfo> Supervisor::Stop(const std::string& name) {
  MutexLock lock(mu_);
  auto it = children_.find(name);
  if (it == children_.end()) return NotFound("no model named '" + name + "' is running");
  Child* c = it->second.get();
  if (c->lifecycle.state() == ChildState::kReady && !c->kv_restoring && !c->kv_dir.empty() && !c->stop_queued) {
    // Save its KV state first (bounded by kv_timeout), without the lock: llama-server answers
    // a save of a busy slot only once the slot is idle again.
    const uint32_t serial = c->serial;
    const int port = c->lifecycle.port();
    const std::string dir = c->kv_dir;
    const std::string model_path = c->spec.model_path;
    const std::string root = c->spec.kv_root;
    const uint64_t budget = c->spec.kv_budget_bytes;
    lock.Unlock();
    const auto t0 = Clock::now();
    KvResult saved = SaveKvState(port, dir, model_path, options_.kv_timeout);
    const int dropped = budget != 0 ? EnforceKvBudget(root, budget, dir) : 0;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!saved.error.empty()) {
      LogWarn("%s: KV state save: %s", name.c_str(), saved.error.c_str());
    }
    if (saved.slots > 0) {
      Log("%s: saved the KV state of %d slot(s), %llu tokens, %s, in %.0f ms%s", name.c_str(), saved.slots,
          static_cast<unsigned long long>(saved.tokens), FormatBytes(saved.bytes).c_str(), ms,
          dropped > 0 ? (" (" + std::to_string(dropped) + " older state(s) dropped for the budget)").c_str() : "");
    }
    lock.Lock();
    it = children_.find(name);
    if (it == children_.end() || it->second->serial != serial)
      return NotFound("'" + name + "' went away while stopping");
    c = it->second.get();
  }
  if (!IsTerminal(c->lifecycle.state())) {
    if (!c->stop_queued) {
      c->stop_queued = true;
      commands_.push_back({CommandKind::kStop, c->serial});
      Wake();
    }
    auto limit = std::chrono::milliseconds(stop_grace_ms_.load()) + kStopExtraWait;
    uint32_t serial = c->serial;
    bool gone = cv_.wait_for(lock.native(), limit, [&]() CORRAL_REQUIRES(mu_) {
      auto f = children_.find(name);
      return f == children_.end() || f->second->serial != serial || IsTerminal(f->second->lifecycle.state());
    });
    it = children_.find(name);
    if (it == children_.end() || it->second->serial != serial)
      return NotFound("'" + name + "' went away while stopping");
    c = it->second.get();
    if (!gone) {
      return Status(StatusCode::kTimeout,
                    "'" + name + "' (pid " + std::to_string(c->pid) + ") did not exit after SIGTERM and SIGKILL");
    }
  }
  ChildInfo info = InfoLocked(*c);
  AbortProbeLocked(*c);
  if (c->log_fd >= 0) ::close(c->log_fd);
  children_.erase(it);
  changed_ = true;
  lock.Unlock();
  if (options_.on_change) options_.on_change();
  return info;
}

void Supervisor::StopAll() {
  std::vector<std::string> names;
  {
    MutexLock lock(mu_);
    for (auto& [name, c] : children_) {
      if (c->lifecycle.OnRestartCancelled()) BumpLocked(*c);  // draining: nothing comes back
      if (IsTerminal(c->lifecycle.state()) || c->stop_queued) continue;
      c->stop_queued = true;
      commands_.push_back({CommandKind::kStop, c->serial});
      names.push_back(name);
    }
  }
  Wake();
  MutexLock lock(mu_);
  cv_.wait_for(lock.native(), std::chrono::milliseconds(stop_grace_ms_.load()) + kStopExtraWait,
               [&]() CORRAL_REQUIRES(mu_) {
                 return std::all_of(children_.begin(), children_.end(),
                                    [](const auto& kv) { return IsTerminal(kv.second->lifecycle.state()); });
               });
}

std::vector<ChildInfo> Supervisor::List() const {
  MutexLock lock(mu_);
  std::vector<ChildInfo> out;
  for (const auto& [name, c] : children_) out.push_back(InfoLocked(*c));
  return out;
}

Result<ChildInfo> Supervisor::Get(const std::string& name) const {
  MutexLock lock(mu_);
  auto it = children_.find(name);
  if (it == children_.end()) return NotFound("no model named '" + name + "' is running");
  return InfoLocked(*it->second);
}

Result<ChildInfo> Supervisor::WaitForChange(const std::string& name, uint64_t seen_generation,
                                            std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  cv_.wait_for(lock.native(), timeout, [&]() CORRAL_REQUIRES(mu_) {
    auto it = children_.find(name);
    return it == children_.end() || it->second->generation != seen_generation;
  });
  auto it = children_.find(name);
  if (it == children_.end()) return NotFound("no model named '" + name + "' is running");
  return InfoLocked(*it->second);
}

Result<ChildInfo> Supervisor::WaitSettled(const std::string& name, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  cv_.wait_for(lock.native(), timeout, [&]() CORRAL_REQUIRES(mu_) {
    auto it = children_.find(name);
    if (it == children_.end()) return true;
    ChildState s = it->second->lifecycle.state();
    return (s == ChildState::kReady && !it->second->kv_restoring) || IsTerminal(s);
  });
  auto it = children_.find(name);
  if (it == children_.end()) return NotFound("no model named '" + name + "' is running");
  return InfoLocked(*it->second);
}

ChildInfo Supervisor::InfoLocked(const Child& c) const {
  ChildInfo i;
  i.name = c.spec.name;
  i.model = c.spec.model;
  i.model_path = c.spec.model_path;
  i.state = c.lifecycle.state();
  if (i.state == ChildState::kReady && c.kv_restoring) i.state = ChildState::kLoading;  // not announced yet
  i.failure = c.lifecycle.failure();
  i.pid = c.pid;
  i.port = c.lifecycle.port();
  i.argv = c.argv;
  i.log_path = c.log_path;
  i.started_at = c.started_wall;
  if (auto r = c.lifecycle.ready_at())
    i.ready_ms = std::chrono::duration<double, std::milli>(*r - c.spawned_at).count();
  i.reserved_bytes = c.spec.reserved_bytes;
  if (c.pid > 0 && !IsTerminal(i.state)) i.rss_bytes = ProcessRssBytes(c.pid);
  i.last_log_lines = c.last_log_lines;
  i.generation = c.generation;
  i.restarts = c.restarts;
  i.last_failure = c.last_failure;
  if (auto at = c.lifecycle.restart_at(); at && i.state == ChildState::kRestartPending) {
    i.restart_in_ms = std::max(0.0, std::chrono::duration<double, std::milli>(*at - Clock::now()).count());
  }
  return i;
}

void Supervisor::BumpLocked(Child& c) {
  ++c.generation;
  changed_ = true;
  cv_.notify_all();
}

Supervisor::Child* Supervisor::FindSerialLocked(uint32_t serial) {
  for (auto& [name, c] : children_) {
    if (c->serial == serial) return c.get();
  }
  return nullptr;
}

namespace {

// Moves name.log to name.log.1, .1 to .2, ... keeping `keep` old logs.
void RotateLogs(const std::string& path, int keep) {
  for (int i = keep; i >= 1; --i) {
    std::string from = i == 1 ? path : path + "." + std::to_string(i - 1);
    std::string to = path + "." + std::to_string(i);
    ::rename(from.c_str(), to.c_str());  // ENOENT is normal
  }
}

}  // namespace

void Supervisor::SpawnLocked(Child& c) {
  auto fail = [&](const std::string& msg) CORRAL_REQUIRES(mu_) {
    c.lifecycle.OnSpawnFailed(msg);
    c.last_log_lines = msg + "\n";
    c.spawn_done = true;
    BumpLocked(c);
  };
  c.started_wall = std::chrono::system_clock::now();
  c.spawned_at = Clock::now();

  Status dirs = MakeDirs(options_.log_dir, 0700);
  if (!dirs.ok()) return fail("cannot create the log directory: " + dirs.message());
  RotateLogs(c.log_path, options_.log_keep);
  int log_w = ::open(c.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (log_w < 0) return fail("cannot open the log " + c.log_path + ": " + std::strerror(errno));
  c.log_fd = ::open(c.log_path.c_str(), O_RDONLY | O_CLOEXEC);
  c.watch = ::inotify_add_watch(inotify_fd_, c.log_path.c_str(), IN_MODIFY);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2] = {-1, -1};
  if (c.log_fd < 0 || devnull < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(log_w);
    if (devnull >= 0) ::close(devnull);
    return fail(std::string("cannot prepare the child's files: ") + std::strerror(errno));
  }

  // Everything the child touches is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed in a multi-threaded process.
  std::vector<char*> argv;
  for (auto& a : c.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The daemon's environment, less the Hugging Face token (`corral pull` reads it; a
  // llama-server child has no use for it: docs/pull.md).
  std::vector<std::string> env_copy = c.spec.env;
  if (env_copy.empty()) {
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view kv(*e);
      if (kv.starts_with("HF_TOKEN=") || kv.starts_with("HUGGING_FACE_HUB_TOKEN=")) continue;
      env_copy.emplace_back(kv);
    }
  }
  std::vector<char*> envp;
  for (auto& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* const* child_env = envp.data();
  const pid_t parent = self_pid_;

  pid_t pid = ::fork();
  if (pid == 0) {
    // Child.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the daemon died before prctl took effect
    ::dup2(devnull, 0);
    ::dup2(log_w, 1);
    ::dup2(log_w, 2);
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    RestoreOpenFileLimitInChild();  // the daemon raised its own; the child gets the user's
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) ::sigaction(sig, &dfl, nullptr);
    ::execve(argv[0], argv.data(), child_env);
    int e = errno;
    ssize_t w = ::write(err_pipe[1], &e, sizeof(e));
    (void)w;
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(err_pipe[1]);
  ::close(log_w);
  ::close(devnull);
  if (pid < 0) {
    ::close(err_pipe[0]);
    return fail(std::string("fork failed: ") + std::strerror(fork_errno));
  }
  ::setpgid(pid, pid);  // also from the parent, so kill(-pid) works at once
  int exec_errno = 0;
  ssize_t r;
  do {
    r = ::read(err_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (r < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (r == static_cast<ssize_t>(sizeof(exec_errno))) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return fail("cannot execute " + c.argv[0] + ": " + std::strerror(exec_errno));
  }
  c.pid = pid;
  c.pidfd = PidfdOpen(pid);
  if (c.pidfd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagPidfd | c.serial;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.pidfd, &ev);
  }
  c.spawn_done = true;
  BumpLocked(c);
}

void Supervisor::ReadLogLocked(Child& c, TimePoint now) {
  if (c.log_fd < 0) return;
  char buf[16384];
  size_t total = 0;
  bool grew = false;
  while (total < kMaxLogReadPerEvent) {
    ssize_t r = ::pread(c.log_fd, buf, sizeof(buf), static_cast<off_t>(c.log_offset));
    if (r <= 0) break;
    grew = true;
    c.log_offset += static_cast<uint64_t>(r);
    total += static_cast<size_t>(r);
    if (c.lifecycle.port() == 0) {
      c.log_tail.append(buf, static_cast<size_t>(r));
      int port = ParseListeningPort(c.log_tail);
      if (port != 0) c.lifecycle.OnPortLearned(port, now);
      if (c.log_tail.size() > kPortScanTail) c.log_tail.erase(0, c.log_tail.size() - kPortScanTail);
    }
  }
  if (total >= kMaxLogReadPerEvent) {
    // A chatty child: skip to the end; only recent bytes can hold news.
    off_t end = ::lseek(c.log_fd, 0, SEEK_END);
    if (end > 0) c.log_offset = static_cast<uint64_t>(end);
  }
  if (grew) {
    ChildState before = c.lifecycle.state();
    c.lifecycle.OnLogOutput(now);
    if (c.lifecycle.state() != before) BumpLocked(c);
  }
}

void Supervisor::ReapLocked(Child& c) {
  if (c.pid <= 0) return;
  // Has it ended? Asked without reaping: while the leader is an unreaped zombie its pid (and
  // so its group id) cannot be reused, so the group kill below reaches only what it left.
  siginfo_t ended{};
  if (::waitid(P_PID, static_cast<id_t>(c.pid), &ended, WEXITED | WNOHANG | WNOWAIT) != 0 || ended.si_pid != c.pid) {
    return;  // not yet (pidfd readiness and waitid agree; spurious wake-ups are harmless)
  }
  ::kill(-c.pid, SIGKILL);  // anything the child left in its group
  int status = 0;
  pid_t w;
  do {
    w = ::waitpid(c.pid, &status, 0);  // it has ended: does not block
  } while (w < 0 && errno == EINTR);
  if (w != c.pid) return;
  ReadLogLocked(c, Clock::now());
  c.lifecycle.OnExit(status, c.we_killed);
  AbortProbeLocked(c);
  if (c.pidfd >= 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.pidfd, nullptr);
    ::close(c.pidfd);
    c.pidfd = -1;
  }
  if (c.watch >= 0) {
    ::inotify_rm_watch(inotify_fd_, c.watch);
    c.watch = -1;
  }
  if (c.lifecycle.state() == ChildState::kFailed) {
    auto tail = TailFile(c.log_path, kFailureLogLines, kFailureLogWindowBytes);
    c.last_log_lines = tail.ok() && !tail->empty() ? *tail + "\n" : std::string();
    if (c.lifecycle.failure().kind == FailureKind::kExited)
      c.lifecycle.AppendFailureDetail(FirstError(c.last_log_lines));
    // Restart policy: only a child that was ready once (or is already being restarted), so
    // a model that never loads is not started in a loop.
    if (c.spec.restart && !c.stop_queued && (c.lifecycle.ready_at() || c.restarts > 0)) {
      const TimePoint now = Clock::now();
      if (auto ready = c.lifecycle.ready_at(); ready && now - *ready >= kStableUptime) c.crashes_in_a_row = 0;
      if (c.crashes_in_a_row < kMaxCrashesInARow) {
        auto delay = std::min<std::chrono::milliseconds>(options_.restart_delay * (1 << c.crashes_in_a_row),
                                                         options_.restart_delay * kMaxRestartDelayFactor);
        ++c.crashes_in_a_row;
        c.lifecycle.OnRestartScheduled(now + delay);
        // The daemon logs failures it sees; this one it sees as restart pending.
        LogError("%s failed: %s; the restart policy starts it again in %lld ms", c.spec.name.c_str(),
                 c.lifecycle.failure().message.c_str(), static_cast<long long>(delay.count()));
      } else {
        c.lifecycle.AppendFailureDetail("gave up restarting after " + std::to_string(kMaxCrashesInARow) +
                                        " crashes in a row");
      }
    }
  }
  BumpLocked(c);
}

// The restart policy's new start: same spec, argv and name; a fresh lifecycle; the old log
// rotated to <name>.log.1 by SpawnLocked.
void Supervisor::RespawnLocked(Child& c) {
  ++c.restarts;
  c.last_failure = c.lifecycle.failure();  // the fresh lifecycle below forgets it
  AbortProbeLocked(c);
  c.lifecycle = Lifecycle(Clock::now(), HealthTimeoutFor(c.spec.model_bytes), LivenessFor(options_.liveness_timeout));
  if (c.log_fd >= 0) ::close(c.log_fd);
  c.log_fd = -1;
  c.log_offset = 0;
  c.log_tail.clear();
  c.last_log_lines.clear();
  c.pid = -1;
  c.we_killed = false;
  c.spawn_done = false;
  SpawnLocked(c);
  if (c.pid > 0) ReadLogLocked(c, Clock::now());
}

void Supervisor::StartProbeLocked(Child& c, TimePoint now) {
  AbortProbeLocked(c);
  HealthProbe& p = c.probe;
  p = HealthProbe{};
  p.id = next_probe_id_++;
  if (p.id == 0) p.id = next_probe_id_++;  // 0 is "none"
  const auto limit = c.lifecycle.state() == ChildState::kReady
                         ? std::max(kProbeTimeout, LivenessFor(options_.liveness_timeout).interval)
                         : kProbeTimeout;
  p.deadline = now + limit;
  p.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (p.fd < 0) return FinishProbeLocked(c, 0, now);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(c.lifecycle.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = ::connect(p.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (!connected && errno != EINPROGRESS) return FinishProbeLocked(c, 0, now);
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = kTagProbe | p.id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p.fd, &ev) != 0) return FinishProbeLocked(c, 0, now);
  if (connected) AdvanceProbeLocked(c, EPOLLOUT, now);
}

void Supervisor::AdvanceProbeLocked(Child& c, uint32_t events, TimePoint now) {
  HealthProbe& p = c.probe;
  if (p.fd < 0) return;
  if (!p.sent) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return FinishProbeLocked(c, 0, now);
    // 60 bytes into an empty loopback socket buffer: all or nothing.
    constexpr size_t kLen = sizeof(kHealthRequest) - 1;
    if (::send(p.fd, kHealthRequest, kLen, MSG_NOSIGNAL) != static_cast<ssize_t>(kLen)) {
      return FinishProbeLocked(c, 0, now);
    }
    p.sent = true;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTagProbe | p.id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, p.fd, &ev) != 0) return FinishProbeLocked(c, 0, now);
    return;  // the answer comes with EPOLLIN
  }
  while (p.got < sizeof(p.buf)) {
    ssize_t r = ::recv(p.fd, p.buf + p.got, sizeof(p.buf) - p.got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // more later
    if (r <= 0) return FinishProbeLocked(c, ParseStatusLine(p.buf, p.got), now);
    p.got += static_cast<size_t>(r);
  }
  FinishProbeLocked(c, ParseStatusLine(p.buf, p.got), now);
}

void Supervisor::FinishProbeLocked(Child& c, int http_status, TimePoint now) {
  AbortProbeLocked(c);
  ChildState before = c.lifecycle.state();
  c.lifecycle.OnHealth(http_status, now);
  if (c.lifecycle.state() != before) {
    if (c.lifecycle.state() == ChildState::kReady && !c.kv_dir.empty() && !c.kv_restoring) {
      // Saved KV state goes in before anyone is told it is ready (KvLoop).
      c.kv_restoring = true;
      kv_jobs_.push_back(c.serial);
      kv_cv_.notify_one();
    }
    BumpLocked(c);
  }
}

void Supervisor::KvLoop() {
  MutexLock lock(mu_);
  for (;;) {
    kv_cv_.wait(lock.native(), [this]() CORRAL_REQUIRES(mu_) { return quit_ || !kv_jobs_.empty(); });
    if (quit_) return;
    const uint32_t serial = kv_jobs_.front();
    kv_jobs_.erase(kv_jobs_.begin());
    Child* c = FindSerialLocked(serial);
    if (c == nullptr || !c->kv_restoring) continue;
    const int port = c->lifecycle.port();
    const std::string dir = c->kv_dir;
    const std::string name = c->spec.name;
    lock.Unlock();
    const auto t0 = Clock::now();
    KvResult restored = RestoreKvState(port, dir, options_.kv_timeout);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!restored.error.empty()) LogWarn("%s: KV state restore: %s", name.c_str(), restored.error.c_str());
    if (restored.slots > 0) {
      Log("%s: restored the KV state of %d slot(s), %llu tokens, %s, in %.0f ms", name.c_str(), restored.slots,
          static_cast<unsigned long long>(restored.tokens), FormatBytes(restored.bytes).c_str(), ms);
    }
    lock.Lock();
    if (Child* again = FindSerialLocked(serial)) {
      again->kv_restoring = false;
      BumpLocked(*again);
    }
    Wake();  // the monitor calls on_change: now it is ready for everyone
  }
}

void Supervisor::AbortProbeLocked(Child& c) {
  if (c.probe.fd >= 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.probe.fd, nullptr);
    ::close(c.probe.fd);
  }
  c.probe.fd = -1;
  c.probe.id = 0;
}

Supervisor::Child* Supervisor::FindProbeLocked(uint32_t id) {
  if (id == 0) return nullptr;
  for (auto& [name, c] : children_) {
    if (c->probe.fd >= 0 && c->probe.id == id) return c.get();
  }
  return nullptr;
}

void Supervisor::MonitorLoop() {
  epoll_event events[32];
  for (;;) {
    int timeout_ms = -1;
    {
      MutexLock lock(mu_);
      if (quit_) return;
      auto now = Clock::now();
      for (auto& [name, c] : children_) {
        auto d = c->lifecycle.NextDeadline();
        auto take = [&d](TimePoint t) { d = d ? std::min(*d, t) : t; };
        if (c->probe.fd >= 0) take(c->probe.deadline);
        if (d) {
          auto ms = std::chrono::ceil<std::chrono::milliseconds>(*d - now).count();
          ms = std::max<int64_t>(0, ms);
          if (timeout_ms < 0 || ms < timeout_ms) timeout_ms = static_cast<int>(std::min<int64_t>(ms, 60000));
        }
      }
    }
    int n = ::epoll_wait(epoll_fd_, events, 32, timeout_ms);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "corral: supervisor: epoll_wait: %s\n", std::strerror(errno));
      std::abort();
    }
    bool notify = false;
    {
      MutexLock lock(mu_);
      auto now = Clock::now();
      for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64 & 0xffffffff00000000ULL;
        uint32_t low = static_cast<uint32_t>(events[i].data.u64 & 0xffffffffULL);
        if (tag == kTagWake) {
          uint64_t v;
          ssize_t r = ::read(wake_fd_, &v, sizeof(v));
          (void)r;
        } else if (tag == kTagInotify) {
          alignas(inotify_event) char buf[4096];
          for (;;) {
            ssize_t r = ::read(inotify_fd_, buf, sizeof(buf));
            if (r <= 0) break;
            for (char* p = buf; p < buf + r;) {
              auto* ev = reinterpret_cast<inotify_event*>(p);
              for (auto& [name, c] : children_) {
                if (c->watch == ev->wd) ReadLogLocked(*c, now);
              }
              p += sizeof(inotify_event) + ev->len;
            }
          }
        } else if (tag == kTagPidfd) {
          if (Child* c = FindSerialLocked(low)) ReapLocked(*c);
        } else if (tag == kTagProbe) {
          if (Child* c = FindProbeLocked(low)) AdvanceProbeLocked(*c, events[i].events, now);
        }
      }
      // Commands.
      std::vector<Command> cmds;
      cmds.swap(commands_);
      for (const auto& cmd : cmds) {
        Child* c = FindSerialLocked(cmd.serial);
        if (c == nullptr) continue;
        if (cmd.kind == CommandKind::kSpawn) {
          SpawnLocked(*c);
          if (c->pid > 0) ReadLogLocked(*c, Clock::now());
        } else if (c->lifecycle.OnStopRequested(Clock::now(), std::chrono::milliseconds(stop_grace_ms_.load()))) {
          AbortProbeLocked(*c);
          if (c->pid > 0) ::kill(-c->pid, SIGTERM);
          BumpLocked(*c);
        }
      }
      // Timers: probe deadlines, then each lifecycle's own (a pending restart's too).
      now = Clock::now();
      for (auto& [name, c] : children_) {
        if (c->probe.fd >= 0 && now >= c->probe.deadline) FinishProbeLocked(*c, 0, now);
        for (;;) {
          if (c->lifecycle.LivenessClockRunning() && c->pid > 0) {
            // Busy is not hung: CPU time that moves restarts the unresponsive clock.
            uint64_t ticks = CpuTicks(c->pid);
            if (ticks != 0 && ticks != c->cpu_ticks) {
              c->cpu_ticks = ticks;
              c->lifecycle.OnProgress(now);
            }
          }
          Action a = c->lifecycle.OnTick(now);
          if (a == Action::kNone) break;
          if (a == Action::kProbe) {
            StartProbeLocked(*c, now);
          } else if (a == Action::kRestart) {
            RespawnLocked(*c);  // a fresh lifecycle: the loop goes on with it
          } else {              // kKillForTimeout, kKillAfterGrace, kKillUnresponsive
            AbortProbeLocked(*c);
            if (c->pid > 0) {
              c->we_killed = true;
              ::kill(-c->pid, SIGKILL);  // the whole group: its connections close, its streams are cut
            }
          }
        }
      }
      notify = changed_;
      changed_ = false;
    }
    if (notify && options_.on_change) options_.on_change();
  }
}

}  // namespace corral::supervisor
