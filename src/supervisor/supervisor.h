// The supervisor: launches unmodified llama-server children and follows each one through
// its Lifecycle (lifecycle.h) until it is stopped or fails.
//
// Threading model. One monitor thread, started by the constructor and joined by the
// destructor, owns every child process: it forks them (so PR_SET_PDEATHSIG, which fires
// when the *forking thread* exits, is tied to a thread that lives as long as the
// supervisor), and it watches them all with one epoll set: a pidfd per child (exit), one
// inotify fd (log growth: the port line, loading progress), the socket of each /health probe
// in flight (non-blocking: connect, send, read the status line; never a blocking call), an
// eventfd (commands) and the epoll timeout (probe backoff and deadlines, health timeout,
// liveness, stop grace). Public methods may be called from any thread; they take `mu_`, queue
// a command for the monitor thread when a process must be touched, and wait on `cv_` for its
// result. The monitor holds `mu_` only for non-blocking work.
//
// Liveness: a ready child is probed every LivenessFor(liveness_timeout).interval; when /health
// goes unanswered for liveness_timeout (lifecycle.h has the exact rule) its process group gets
// SIGKILL, it is failed as kUnresponsive ("unresponsive: /health did not answer and it used no CPU for 15 s") and
// the restart policy applies as to any crash.
//
// Children never outlive the daemon: each child gets PR_SET_PDEATHSIG=SIGKILL (checked
// against the getppid() race), runs in its own process group, has stdin on /dev/null and
// stdout/stderr on its log file, which it writes itself (the daemon never copies log bytes).
//
// Ownership: the Supervisor owns its children; destroying it stops them all (SIGTERM to each
// group, SIGKILL after the grace period).
//
// Restart policy (LaunchSpec::restart): a child that crashes after it was ready once is
// started again after 1 s, 2 s, 4 s ... up to 30 s; five crashes in a row without a minute of
// being ready in between give up (failed, with the reason). While a restart is pending the
// child is in state restart_pending (lifecycle.h) with `restart_in_ms`, keeps its memory
// reservation, and Stop() or a new Start() with its name cancels it; StopAll cancels every
// pending restart (restart_pending → failed).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "supervisor/launch.h"
#include "supervisor/lifecycle.h"

namespace corral::supervisor {

struct SupervisorOptions {
  std::string llama_server;          // absolute path of the binary to launch
  std::string log_dir;               // <name>.log and rotated <name>.log.1 .. .N live here
  int log_keep = 3;                  // rotated logs kept per name
  uint64_t memory_budget_bytes = 0;  // admission budget; 0 = no check
  // Health timeout = base + per_gib × model size (GiB, rounded up). The budget, the health
  // timeouts and the stop grace can change later (SetLimits).
  std::chrono::milliseconds health_timeout_base{std::chrono::seconds(60)};
  std::chrono::milliseconds health_timeout_per_gib{std::chrono::seconds(30)};
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
  // A ready child whose /health does not answer this long is killed and failed
  // (kUnresponsive); 0 = no liveness probes. llama-server answers /health from its HTTP
  // threads even while it decodes, so only a hung (or stopped) process stays silent.
  std::chrono::milliseconds liveness_timeout{std::chrono::seconds(15)};
  // Restart policy: the first delay; it doubles per crash in a row, up to 30 times this.
  std::chrono::milliseconds restart_delay{std::chrono::seconds(1)};
  // KV state kept across unloads (kv_state.h): the longest a save before a stop, or a
  // restore after a start, may take; then the stop goes on without it (and the child is
  // announced ready without it).
  std::chrono::milliseconds kv_timeout{std::chrono::seconds(30)};
  // Called on the monitor thread, without locks held, after any child changed state
  // (the daemon persists its state file here). May call List().
  std::function<void()> on_change;
};

// A snapshot of one child. Plain value.
struct ChildInfo {
  std::string name;
  std::string model;
  std::string model_path;
  ChildState state = ChildState::kStarting;
  Failure failure;
  pid_t pid = -1;
  int port = 0;
  std::vector<std::string> argv;
  std::string log_path;
  std::chrono::system_clock::time_point started_at;
  double ready_ms = -1;  // from spawn to ready; -1 until ready
  uint64_t reserved_bytes = 0;
  uint64_t rss_bytes = 0;
  std::string last_log_lines;  // tail of the log, filled when the child failed
  uint64_t generation = 0;     // bumped on every change (long polls compare it)
  uint32_t restarts = 0;       // times the restart policy started it again
  Failure last_failure;        // why the restart policy last had to start it again
  double restart_in_ms = -1;   // restart_pending: it is due in this many ms (-1 in any other state)
};

// What the router drives: start, stop, look. An interface so the router's rules can be
// unit-tested against a scripted fake, with no process (tests/daemon/router_test.cc).
class ChildControl {
 public:
  virtual ~ChildControl() = default;
  virtual Result<ChildInfo> Start(const LaunchSpec& spec) = 0;
  virtual Result<ChildInfo> Stop(const std::string& name) = 0;
  virtual std::vector<ChildInfo> List() const = 0;
  virtual Result<ChildInfo> Get(const std::string& name) const = 0;
};

class Supervisor final : public ChildControl {
 public:
  explicit Supervisor(SupervisorOptions options);
  ~Supervisor() override;
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Admits (memory), forks and returns at once in state starting, or an error:
  // (A spec that keeps KV state gets its state directory created first; a child that
  // becomes ready with saved slots is listed as loading until they are restored, at most
  // kv_timeout, so no request races the restore.)
  // kInvalidArgument (bad name, owned flag), kAlreadyExists (name live),
  // kResourceExhausted (budget; the message has the numbers), kIoError (log), or a spawn
  // failure (the child is then listed as failed).
  Result<ChildInfo> Start(const LaunchSpec& spec) override;
  // SIGTERM to the child's group, SIGKILL after the grace period; waits until it is gone and
  // forgets it. A failed child is just forgotten. kNotFound for an unknown name.
  // A ready child that keeps KV state (LaunchSpec::kv_root) first saves its busy slots,
  // for at most kv_timeout (the caller's thread blocks that long at worst); the budget is
  // then enforced. StopAll saves nothing (the daemon's drain must be quick).
  Result<ChildInfo> Stop(const std::string& name) override;
  // Stops every child (used by the daemon's drain).
  void StopAll();

  std::vector<ChildInfo> List() const override;
  Result<ChildInfo> Get(const std::string& name) const override;
  // Waits until the child's generation differs from `seen_generation`, or `timeout`.
  Result<ChildInfo> WaitForChange(const std::string& name, uint64_t seen_generation,
                                  std::chrono::milliseconds timeout) const;
  // Waits until the child is ready or terminal, or `timeout`.
  Result<ChildInfo> WaitSettled(const std::string& name, std::chrono::milliseconds timeout) const;

  // The limits a config reload may change. SetLimits applies to what comes next: the
  // admission of later starts, the health timeout of later starts, the grace of later
  // stops; a child keeps the health deadline it started with. Any thread.
  struct Limits {
    uint64_t memory_budget_bytes = 0;
    std::chrono::milliseconds health_timeout_base{0};
    std::chrono::milliseconds health_timeout_per_gib{0};
    std::chrono::milliseconds stop_grace{0};
  };
  void SetLimits(const Limits& limits);
  Limits limits() const;

  uint64_t memory_budget_bytes() const { return budget_bytes_.load(); }
  uint64_t reserved_bytes() const;
  std::chrono::milliseconds HealthTimeoutFor(uint64_t model_bytes) const;
  const SupervisorOptions& options() const { return options_; }

 private:
  struct Child;
  struct HealthProbe;
  enum class CommandKind { kSpawn, kStop };
  struct Command {
    CommandKind kind;
    uint32_t serial;
  };

  void MonitorLoop();
  // Restores saved KV state into children that just became ready (one at a time).
  void KvLoop();
  void Wake();
  // Monitor thread, mu_ held.
  void SpawnLocked(Child& c) CORRAL_REQUIRES(mu_);
  void ReadLogLocked(Child& c, TimePoint now) CORRAL_REQUIRES(mu_);
  void ReapLocked(Child& c) CORRAL_REQUIRES(mu_);
  void RespawnLocked(Child& c) CORRAL_REQUIRES(mu_);
  Child* FindSerialLocked(uint32_t serial) CORRAL_REQUIRES(mu_);
  // The /health probe of a child (one at a time), on the epoll set.
  void StartProbeLocked(Child& c, TimePoint now) CORRAL_REQUIRES(mu_);
  void AdvanceProbeLocked(Child& c, uint32_t epoll_events, TimePoint now) CORRAL_REQUIRES(mu_);
  void FinishProbeLocked(Child& c, int http_status, TimePoint now) CORRAL_REQUIRES(mu_);  // reports to the lifecycle
  void AbortProbeLocked(Child& c) CORRAL_REQUIRES(mu_);                                   // closes it, reports nothing
  Child* FindProbeLocked(uint32_t probe_id) CORRAL_REQUIRES(mu_);
  ChildInfo InfoLocked(const Child& c) const CORRAL_REQUIRES(mu_);
  void BumpLocked(Child& c) CORRAL_REQUIRES(mu_);
  uint64_t ReservedLocked() const CORRAL_REQUIRES(mu_);

  const SupervisorOptions options_;  // the limits in it are only the initial values of these:
  std::atomic<uint64_t> budget_bytes_;
  std::atomic<int64_t> health_base_ms_;
  std::atomic<int64_t> health_per_gib_ms_;
  std::atomic<int64_t> stop_grace_ms_;
  const pid_t self_pid_;

  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Child>> children_ CORRAL_GUARDED_BY(mu_);
  std::vector<Command> commands_ CORRAL_GUARDED_BY(mu_);
  uint32_t next_serial_ CORRAL_GUARDED_BY(mu_) = 1;
  uint32_t next_probe_id_ CORRAL_GUARDED_BY(mu_) = 1;
  bool quit_ CORRAL_GUARDED_BY(mu_) = false;
  bool changed_ CORRAL_GUARDED_BY(mu_) = false;
  std::vector<uint32_t> kv_jobs_ CORRAL_GUARDED_BY(mu_);  // serials of children to restore
  std::condition_variable kv_cv_;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int inotify_fd_ = -1;
  std::thread monitor_;
  std::thread kv_thread_;
};

// Valid child names: 1–64 of [A-Za-z0-9._-], not starting with '.' or '-'.
Status CheckChildName(const std::string& name);

}  // namespace corral::supervisor
