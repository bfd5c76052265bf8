#include "supervisor/lifecycle.h"

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace corral::supervisor {

std::string_view to_string(ChildState s) {
  switch (s) {
    case ChildState::kStarting: return "starting";
    case ChildState::kLoading: return "loading";
    case ChildState::kReady: return "ready";
    case ChildState::kStopping: return "stopping";
    case ChildState::kStopped: return "stopped";
    case ChildState::kFailed: return "failed";
    case ChildState::kRestartPending: return "restart_pending";
  }
  return "unknown";
}

bool IsTerminal(ChildState s) {
  return s == ChildState::kStopped || s == ChildState::kFailed || s == ChildState::kRestartPending;
}

std::string_view to_string(FailureKind k) {
  switch (k) {
    case FailureKind::kNone: return "none";
    case FailureKind::kSpawn: return "spawn";
    case FailureKind::kExited: return "exited";
    case FailureKind::kSignaled: return "signaled";
    case FailureKind::kOomKilled: return "oom_killed";
    case FailureKind::kHealthTimeout: return "health_timeout";
    case FailureKind::kUnresponsive: return "unresponsive";
  }
  return "unknown";
}

Liveness LivenessFor(std::chrono::milliseconds timeout) {
  if (timeout <= std::chrono::milliseconds(0)) return {};
  return {std::clamp(timeout / 4, kMinLivenessInterval, kMaxLivenessInterval), timeout};
}

Lifecycle::Lifecycle(TimePoint started, std::chrono::milliseconds health_timeout, Liveness liveness)
    : health_deadline_(started + health_timeout), liveness_(liveness) {}

namespace {
bool Launching(ChildState s) {
  return s == ChildState::kStarting || s == ChildState::kLoading;
}

// 12000 ms → "12 s", 1500 ms → "1.5 s".
std::string Seconds(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  std::string tenths = std::to_string(ms / 100);
  if (tenths.size() < 2) tenths.insert(0, 2 - tenths.size(), '0');
  return tenths.substr(0, tenths.size() - 1) + "." + tenths.back() + " s";
}
}  // namespace

bool Lifecycle::LivenessOn() const {
  return liveness_.timeout > std::chrono::milliseconds(0);
}

void Lifecycle::OnLogOutput(TimePoint now) {
  if (state_ == ChildState::kStarting) state_ = ChildState::kLoading;
  if (Launching(state_) && port_ != 0 && !timed_out_) {
    probe_delay_ = kFirstProbeDelay;
    probe_at_ = now;
  }
}

void Lifecycle::OnPortLearned(int port, TimePoint now) {
  if (port_ != 0 || !Launching(state_)) return;
  port_ = port;
  if (state_ == ChildState::kStarting) state_ = ChildState::kLoading;
  probe_delay_ = kFirstProbeDelay;
  probe_at_ = now;
}

void Lifecycle::OnHealth(int http_status, TimePoint now) {
  probe_in_flight_ = false;
  if (state_ == ChildState::kReady) {
    if (unresponsive_ || !LivenessOn()) return;
    if (http_status == 200) failing_since_.reset();
    probe_at_ = now + liveness_.interval;
    return;
  }
  if (!Launching(state_) || timed_out_) return;
  if (http_status == 200) {
    state_ = ChildState::kReady;
    ready_at_ = now;
    probe_at_.reset();
    if (LivenessOn()) probe_at_ = now + liveness_.interval;
    return;
  }
  if (probe_at_) return;  // the child wrote to its log while the probe was out: probe again at once
  probe_at_ = now + probe_delay_;
  probe_delay_ = std::min(probe_delay_ * 2, kMaxProbeDelay);
}

void Lifecycle::OnProgress(TimePoint now) {
  if (LivenessClockRunning()) failing_since_ = now;
}

void Lifecycle::OnSpawnFailed(std::string message) {
  state_ = ChildState::kFailed;
  failure_ = {FailureKind::kSpawn, 0, 0, std::move(message)};
  probe_at_.reset();
  kill_at_.reset();
}

bool Lifecycle::OnStopRequested(TimePoint now, std::chrono::milliseconds grace) {
  if (IsTerminal(state_) || state_ == ChildState::kStopping) return false;
  state_before_stop_ = state_;
  state_ = ChildState::kStopping;
  probe_at_.reset();
  failing_since_.reset();
  kill_at_ = now + grace;
  return true;
}

void Lifecycle::OnExit(int status, bool we_killed) {
  if (IsTerminal(state_)) return;
  probe_at_.reset();
  kill_at_.reset();
  failing_since_.reset();
  if (timed_out_ || unresponsive_) {
    state_ = ChildState::kFailed;  // failure_ was set when the timeout fired
    return;
  }
  if (state_ == ChildState::kStopping) {
    state_ = ChildState::kStopped;
    return;
  }
  const std::string when =
      state_ == ChildState::kReady ? "while serving" : (state_ == ChildState::kLoading ? "while loading" : "at start");
  state_ = ChildState::kFailed;
  if (WIFEXITED(status)) {
    failure_ = {FailureKind::kExited, WEXITSTATUS(status), 0,
                "exited with code " + std::to_string(WEXITSTATUS(status)) + " " + when};
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::sigabbrev_np(sig);
    std::string sig_name = std::string("SIG") + (name != nullptr ? name : std::to_string(sig).c_str());
    if (sig == SIGKILL && !we_killed) {
      failure_ = {FailureKind::kOomKilled, 0, sig,
                  "killed by SIGKILL " + when + " (not sent by Corral: likely the kernel's OOM killer)"};
    } else {
      failure_ = {FailureKind::kSignaled, 0, sig, "killed by " + sig_name + " " + when};
    }
  } else {
    failure_ = {FailureKind::kExited, 0, 0, "ended with wait status " + std::to_string(status) + " " + when};
  }
}

bool Lifecycle::OnRestartScheduled(TimePoint at) {
  if (state_ != ChildState::kFailed) return false;
  state_ = ChildState::kRestartPending;
  restart_at_ = at;
  return true;
}

bool Lifecycle::OnRestartCancelled() {
  if (state_ != ChildState::kRestartPending) return false;
  state_ = ChildState::kFailed;
  restart_at_.reset();
  return true;
}

Action Lifecycle::OnTick(TimePoint now) {
  if (state_ == ChildState::kRestartPending && restart_at_ && now >= *restart_at_) {
    restart_at_.reset();  // asked for once: the supervisor replaces this Lifecycle
    return Action::kRestart;
  }
  if (Launching(state_) && !timed_out_ && now >= health_deadline_) {
    timed_out_ = true;
    probe_at_.reset();
    failure_ = {FailureKind::kHealthTimeout, 0, 0,
                std::string("not ready before the health timeout ") +
                    (port_ == 0 ? "(it never reported a listening address)" : "(/health never answered 200)")};
    return Action::kKillForTimeout;
  }
  if (state_ == ChildState::kReady && !unresponsive_ && failing_since_ && now >= *failing_since_ + liveness_.timeout) {
    unresponsive_ = true;
    probe_at_.reset();
    failure_ = {FailureKind::kUnresponsive, 0, 0,
                "unresponsive: /health did not answer and it used no CPU for " + Seconds(liveness_.timeout)};
    return Action::kKillUnresponsive;
  }
  if (state_ == ChildState::kStopping && kill_at_ && now >= *kill_at_) {
    kill_at_.reset();
    return Action::kKillAfterGrace;
  }
  const bool probing = Launching(state_) || (state_ == ChildState::kReady && !unresponsive_);
  if (probing && probe_at_ && !probe_in_flight_ && now >= *probe_at_) {
    probe_at_.reset();
    probe_in_flight_ = true;
    if (state_ == ChildState::kReady && !failing_since_) failing_since_ = now;
    return Action::kProbe;
  }
  return Action::kNone;
}

std::optional<TimePoint> Lifecycle::NextDeadline() const {
  std::optional<TimePoint> next;
  auto take = [&next](TimePoint t) { next = next ? std::min(*next, t) : t; };
  if (Launching(state_) && !timed_out_) take(health_deadline_);
  if (kill_at_) take(*kill_at_);
  if (restart_at_) take(*restart_at_);
  if (probe_at_ && !probe_in_flight_) take(*probe_at_);
  if (state_ == ChildState::kReady && !unresponsive_ && failing_since_) take(*failing_since_ + liveness_.timeout);
  return next;
}

}  // namespace corral::supervisor
