// The life of one supervised llama-server child, as a pure state machine.
//
//            spawn ok           first log output          /health == 200
//  (none) ───────────► starting ────────────────► loading ────────────────► ready
//                        │  │                        │ │                    │   │
//                        │  └──────────┐  ┌──────────┘ │                    │   │ exit / signal /
//                        │    Stop()   ▼  ▼   Stop()   │ exit / signal /    │   │ unresponsive
//                        │          stopping ◄─────────┼────── Stop() ──────┘   │ (we SIGKILL
//                        │             │               │ health timeout         │  the group)
//                        │  exit after │ SIGTERM       │ (we SIGKILL the group) │
//                        │  (or grace  │ → SIGKILL)    ▼                        │
//                        └─────────────┼──────────► failed(reason) ◄────────────┘
//                                      ▼               │    ▲
//                                   stopped  restart   │    │ restart cancelled
//                                            policy    ▼    │ (StopAll: the daemon drains)
//                                            applies  restart_pending(reason, at)
//                                                          │
//                                                          │ `at` reached: kRestart, and the
//                                                          ▼ supervisor begins a fresh Lifecycle
//                                                       starting (same name, argv; new pid)
//
// failed(reason): kSpawn (exec failed), kExited (exit code), kSignaled (a signal we did not
// send), kOomKilled (SIGKILL we did not send: the kernel's OOM killer, or a user's kill -9),
// kHealthTimeout (not ready within the model-size-scaled timeout), kUnresponsive (ready, then
// /health went unanswered, and the child used no CPU, for the liveness timeout: a hung or
// SIGSTOPped child; a busy one that answers late is never killed).
//
// restart_pending(reason, at): failed, and the restart policy (supervisor.h) starts it again
// at `at`; the failure is kept (it says why). No process exists meanwhile, so IsTerminal is
// true: Stop() forgets it and a new Start() with its name replaces it, as for failed. The
// router keeps requests for it parked; clients see it as "failed" with `restart_in_ms`
// (control/api.cc), so the wire format predates this state.
//
// Liveness of a ready child: one /health probe in flight at a time, the next `interval` after
// the last answer. The first probe of a run of failed or unanswered ones starts the clock; if
// no 200 arrives within `timeout` of it, the child is unresponsive. The clock starts when a
// probe is *sent* (not at the last answer), so a monitor thread that was itself paused (the
// daemon stopped with Ctrl+Z) probes again before it judges anyone.
//
// Time is passed in by the caller (`now`), so timeouts and probe backoff are tested without
// sleeping. Thread-safety: none; the supervisor guards each Lifecycle with its mutex.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace corral::supervisor {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class ChildState { kStarting, kLoading, kReady, kStopping, kStopped, kFailed, kRestartPending };
std::string_view to_string(ChildState s);
// True for stopped, failed and restart pending: no process (it is gone and reaped). Of these
// only restart pending has a way on (to starting, by the restart policy).
bool IsTerminal(ChildState s);

enum class FailureKind { kNone, kSpawn, kExited, kSignaled, kOomKilled, kHealthTimeout, kUnresponsive };
std::string_view to_string(FailureKind k);

struct Failure {
  FailureKind kind = FailureKind::kNone;
  int exit_code = 0;    // kExited
  int signal = 0;       // kSignaled, kOomKilled
  std::string message;  // one human sentence: "exited with code 1 while loading"
};

// What the caller must do after an event or a tick. kProbe: send one GET /health and report
// its answer with OnHealth (no other probe is asked for until then). kRestart: a pending
// restart is due: start the child again with a fresh Lifecycle (asked for once).
enum class Action { kNone, kProbe, kKillForTimeout, kKillAfterGrace, kKillUnresponsive, kRestart };

// Readiness probe backoff: first retry after kFirstProbeDelay, doubling to kMaxProbeDelay;
// a log write (the child is doing something) resets it to kFirstProbeDelay.
inline constexpr std::chrono::milliseconds kFirstProbeDelay{2};
inline constexpr std::chrono::milliseconds kMaxProbeDelay{50};

// Liveness probing of a ready child (see the top of this file). timeout 0 = off.
struct Liveness {
  std::chrono::milliseconds interval{0};  // from an answer to the next probe
  std::chrono::milliseconds timeout{0};   // unanswered this long → unresponsive
};
// The liveness the supervisor uses for a timeout: a probe every quarter of it, at most every
// kMaxLivenessInterval, at least kMinLivenessInterval apart. timeout 0 = off.
inline constexpr std::chrono::milliseconds kMaxLivenessInterval{3000};
inline constexpr std::chrono::milliseconds kMinLivenessInterval{20};
Liveness LivenessFor(std::chrono::milliseconds timeout);

class Lifecycle {
 public:
  Lifecycle(TimePoint started, std::chrono::milliseconds health_timeout, Liveness liveness = {});

  ChildState state() const { return state_; }
  const Failure& failure() const { return failure_; }
  int port() const { return port_; }
  std::optional<TimePoint> ready_at() const { return ready_at_; }
  // When a pending restart is due; nullopt unless restart pending (or once it fired).
  std::optional<TimePoint> restart_at() const { return restart_at_; }

  // The child wrote to its log. Starting → loading; with a known port, probe now.
  void OnLogOutput(TimePoint now);
  // The child said where it listens. A probe is due now.
  void OnPortLearned(int port, TimePoint now);
  // A /health answer (0: nothing answered within the probe's deadline). Starting up: 200 →
  // ready; anything else (503 loading, refused) → retry with backoff. Ready: 200 → alive;
  // anything else keeps the unresponsive clock running; the next probe `interval` later.
  void OnHealth(int http_status, TimePoint now);
  // The child used CPU since the supervisor last looked: busy, not hung. A running
  // unresponsive clock restarts from `now`. (A llama-server saturated by many streams may
  // answer /health late; a SIGSTOPped or deadlocked one uses no CPU at all.)
  void OnProgress(TimePoint now);
  // True while a ready child's unresponsive clock runs (a probe out or failed): then the
  // supervisor looks at the child's CPU time before each tick.
  bool LivenessClockRunning() const { return state_ == ChildState::kReady && !unresponsive_ && failing_since_; }
  // The process could not be executed at all.
  void OnSpawnFailed(std::string message);
  // Stop requested: → stopping with a SIGKILL deadline `grace` from now. Returns false when
  // there is nothing to stop (already stopping or terminal).
  bool OnStopRequested(TimePoint now, std::chrono::milliseconds grace);
  // The process is gone. `status` is the waitpid status; `we_killed` says whether Corral sent
  // SIGKILL itself (grace expired, health timeout or unresponsive).
  void OnExit(int status, bool we_killed);

  // The restart policy will start a failed child again at `at`: failed → restart_pending,
  // the failure kept. False (nothing changes) unless failed.
  bool OnRestartScheduled(TimePoint at);
  // The pending restart will not happen (the supervisor drains): restart_pending → failed.
  // False (nothing changes) unless restart pending.
  bool OnRestartCancelled();

  // Adds the child's own words to a failure ("...: error loading model: ...").
  void AppendFailureDetail(const std::string& detail) {
    if ((state_ == ChildState::kFailed || state_ == ChildState::kRestartPending) && !detail.empty()) {
      failure_.message += ": " + detail;
    }
  }

  // Which timer fired, if any, at `now`.
  Action OnTick(TimePoint now);
  // The earliest time OnTick may have work; nullopt when nothing is pending.
  std::optional<TimePoint> NextDeadline() const;

 private:
  bool LivenessOn() const;

  ChildState state_ = ChildState::kStarting;
  Failure failure_;
  TimePoint health_deadline_;
  std::optional<TimePoint> probe_at_;
  std::chrono::milliseconds probe_delay_ = kFirstProbeDelay;
  std::optional<TimePoint> kill_at_;
  std::optional<TimePoint> ready_at_;
  std::optional<TimePoint> restart_at_;  // restart pending: when it is due
  bool timed_out_ = false;
  Liveness liveness_;
  bool probe_in_flight_ = false;
  std::optional<TimePoint> failing_since_;  // when the first of a run of failed probes was sent
  bool unresponsive_ = false;
  ChildState state_before_stop_ = ChildState::kStarting;
  int port_ = 0;
};

}  // namespace corral::supervisor
