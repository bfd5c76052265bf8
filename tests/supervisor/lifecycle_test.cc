// The child state machine, driven with explicit times: no sleeps, no processes.
#include "supervisor/lifecycle.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>

namespace corral::supervisor {
namespace {

using std::chrono::milliseconds;

// waitpid statuses, built the way the kernel encodes them.
int Exited(int code) {
  return (code & 0xff) << 8;
}
int Signaled(int sig) {
  return sig & 0x7f;
}

TEST(LifecycleTest, HappyPathStartingLoadingReady) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000));
  EXPECT_EQ(lc.state(), ChildState::kStarting);
  lc.OnLogOutput(t0 + milliseconds(1));
  EXPECT_EQ(lc.state(), ChildState::kLoading);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(2)), Action::kNone);  // no port yet: nothing to probe
  lc.OnPortLearned(4321, t0 + milliseconds(10));
  EXPECT_EQ(lc.port(), 4321);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(10)), Action::kProbe);
  lc.OnHealth(200, t0 + milliseconds(11));
  EXPECT_EQ(lc.state(), ChildState::kReady);
  ASSERT_TRUE(lc.ready_at().has_value());
  EXPECT_EQ(*lc.ready_at(), t0 + milliseconds(11));
  // Ready children have no pending deadline (no health timeout, no probes).
  EXPECT_FALSE(lc.NextDeadline().has_value());
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(5000)), Action::kNone);
}

TEST(LifecycleTest, ProbeBackoffDoublesToTheCapAndResetsOnLogOutput) {
  TimePoint t{};
  Lifecycle lc(t, milliseconds(100000));
  lc.OnPortLearned(1, t);
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(lc.OnTick(t), Action::kProbe);
    lc.OnHealth(503, t);
    auto next = *lc.NextDeadline();
    delays.push_back(std::chrono::duration_cast<milliseconds>(next - t).count());
    EXPECT_EQ(lc.OnTick(next - milliseconds(1)), Action::kNone) << "probe fired early at step " << i;
    t = next;
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{2, 4, 8, 16, 32, 50, 50, 50}));
  ASSERT_EQ(lc.OnTick(t), Action::kProbe);
  lc.OnHealth(503, t);
  lc.OnLogOutput(t + milliseconds(1));  // the child wrote something: probe now
  EXPECT_EQ(*lc.NextDeadline(), t + milliseconds(1));
  EXPECT_EQ(lc.OnTick(t + milliseconds(1)), Action::kProbe);
  lc.OnHealth(503, t + milliseconds(1));
  EXPECT_EQ(*lc.NextDeadline(), t + milliseconds(3));  // backoff restarted at 2 ms
}

TEST(LifecycleTest, HealthTimeoutKillsAndFails) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(500));
  lc.OnLogOutput(t0);
  EXPECT_EQ(*lc.NextDeadline(), t0 + milliseconds(500));
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(499)), Action::kNone);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(500)), Action::kKillForTimeout);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(501)), Action::kNone);  // fires once
  lc.OnHealth(200, t0 + milliseconds(502));                     // too late to count
  EXPECT_NE(lc.state(), ChildState::kReady);
  lc.OnExit(Signaled(SIGKILL), /*we_killed=*/true);
  EXPECT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_EQ(lc.failure().kind, FailureKind::kHealthTimeout);
  EXPECT_NE(lc.failure().message.find("never reported a listening address"), std::string::npos);
}

TEST(LifecycleTest, ExitWhileLoadingIsFailedWithTheCode) {
  Lifecycle lc(TimePoint{}, milliseconds(1000));
  lc.OnLogOutput(TimePoint{});
  lc.OnExit(Exited(1), false);
  EXPECT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_EQ(lc.failure().kind, FailureKind::kExited);
  EXPECT_EQ(lc.failure().exit_code, 1);
  EXPECT_EQ(lc.failure().message, "exited with code 1 while loading");
}

TEST(LifecycleTest, SigkillNotSentByUsIsReportedAsOomKill) {
  Lifecycle lc(TimePoint{}, milliseconds(1000));
  lc.OnPortLearned(5, TimePoint{});
  lc.OnHealth(200, TimePoint{});
  lc.OnExit(Signaled(SIGKILL), /*we_killed=*/false);
  EXPECT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_EQ(lc.failure().kind, FailureKind::kOomKilled);
  EXPECT_EQ(lc.failure().signal, SIGKILL);
  EXPECT_NE(lc.failure().message.find("while serving"), std::string::npos);
}

TEST(LifecycleTest, OtherSignalIsSignaled) {
  Lifecycle lc(TimePoint{}, milliseconds(1000));
  lc.OnExit(Signaled(SIGSEGV), false);
  EXPECT_EQ(lc.failure().kind, FailureKind::kSignaled);
  EXPECT_NE(lc.failure().message.find("SIGSEGV"), std::string::npos);
}

TEST(LifecycleTest, StopSendsTermThenKillAfterGraceAndEndsStopped) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000));
  lc.OnPortLearned(5, t0);
  lc.OnHealth(200, t0);
  EXPECT_TRUE(lc.OnStopRequested(t0 + milliseconds(10), milliseconds(100)));
  EXPECT_FALSE(lc.OnStopRequested(t0 + milliseconds(11), milliseconds(100)));  // once
  EXPECT_EQ(lc.state(), ChildState::kStopping);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(109)), Action::kNone);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(110)), Action::kKillAfterGrace);
  lc.OnExit(Signaled(SIGKILL), true);
  EXPECT_EQ(lc.state(), ChildState::kStopped);
  EXPECT_EQ(lc.failure().kind, FailureKind::kNone);
}

TEST(LifecycleTest, StopWhileLoadingCancelsProbesAndHealthTimeout) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(50));
  lc.OnPortLearned(5, t0);
  EXPECT_TRUE(lc.OnStopRequested(t0, milliseconds(1000)));
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(60)), Action::kNone);  // neither probe nor timeout
  lc.OnExit(Exited(0), false);
  EXPECT_EQ(lc.state(), ChildState::kStopped);
}

TEST(LifecycleTest, SpawnFailureIsTerminal) {
  Lifecycle lc(TimePoint{}, milliseconds(50));
  lc.OnSpawnFailed("cannot execute /nope: No such file or directory");
  EXPECT_TRUE(IsTerminal(lc.state()));
  EXPECT_EQ(lc.failure().kind, FailureKind::kSpawn);
  EXPECT_FALSE(lc.NextDeadline().has_value());
  EXPECT_FALSE(lc.OnStopRequested(TimePoint{}, milliseconds(1)));
}

// Liveness (issue 11, item 8): a ready child is probed every interval; a run of failed or
// unanswered probes that lasts the timeout, counted from the first probe of the run, kills it.
TEST(LifecycleTest, ReadyChildIsProbedAndAnAnswerKeepsItAlive) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0 + milliseconds(1));
  ASSERT_EQ(lc.state(), ChildState::kReady);
  TimePoint t = t0 + milliseconds(1);
  // Answered probes, one interval apart, for far longer than the timeout.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(*lc.NextDeadline(), t + milliseconds(100)) << i;
    EXPECT_EQ(lc.OnTick(t + milliseconds(99)), Action::kNone) << i;
    t += milliseconds(100);
    ASSERT_EQ(lc.OnTick(t), Action::kProbe) << i;
    EXPECT_EQ(lc.OnTick(t), Action::kNone) << "one probe in flight at a time";
    t += milliseconds(30);  // a slow answer
    lc.OnHealth(200, t);
  }
  EXPECT_EQ(lc.state(), ChildState::kReady);
  EXPECT_EQ(lc.failure().kind, FailureKind::kNone);
}

TEST(LifecycleTest, UnansweredProbesForTheTimeoutMakeTheChildUnresponsive) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0);
  // The probe at 100 ms never comes back (SIGSTOP): the clock runs from when it was sent.
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(100)), Action::kProbe);
  EXPECT_EQ(*lc.NextDeadline(), t0 + milliseconds(500));
  // The supervisor abandons it at the probe's own deadline (here 150 ms) and reports 0; the
  // next probe goes out an interval later, and the clock keeps running.
  lc.OnHealth(0, t0 + milliseconds(250));
  EXPECT_EQ(*lc.NextDeadline(), t0 + milliseconds(350));
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(350)), Action::kProbe);
  lc.OnHealth(503, t0 + milliseconds(360));  // an answer that is not 200 does not count
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(460)), Action::kProbe);
  EXPECT_EQ(*lc.NextDeadline(), t0 + milliseconds(500));
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(499)), Action::kNone);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(500)), Action::kKillUnresponsive);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(501)), Action::kNone);  // fires once, and no more probes
  EXPECT_FALSE(lc.NextDeadline().has_value());
  lc.OnHealth(200, t0 + milliseconds(502));  // too late: the kill is on its way
  lc.OnExit(Signaled(SIGKILL), /*we_killed=*/true);
  EXPECT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_EQ(lc.failure().kind, FailureKind::kUnresponsive);
  EXPECT_EQ(lc.failure().message, "unresponsive: /health did not answer and it used no CPU for 0.4 s");
  EXPECT_EQ(to_string(FailureKind::kUnresponsive), "unresponsive");
}

// A llama-server saturated by 64 streams answered /health after more than the timeout and
// was killed mid-stream (found by suite C's footprint cell). Busy is not hung: CPU time that
// moves restarts the clock; only a child that neither answers nor runs is unresponsive.
TEST(LifecycleTest, ABusyChildThatAnswersLateIsNeverKilled) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0);
  EXPECT_FALSE(lc.LivenessClockRunning());
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(100)), Action::kProbe);  // out for a long time
  EXPECT_TRUE(lc.LivenessClockRunning());
  for (int ms = 200; ms <= 2000; ms += 100) {
    lc.OnProgress(t0 + milliseconds(ms));  // the supervisor saw its CPU time move
    EXPECT_NE(lc.OnTick(t0 + milliseconds(ms)), Action::kKillUnresponsive) << ms;
  }
  lc.OnHealth(200, t0 + milliseconds(2050));  // the late answer
  EXPECT_EQ(lc.state(), ChildState::kReady);
  EXPECT_FALSE(lc.LivenessClockRunning());
  // Then it stops running (SIGSTOP): no progress, and the timeout applies again.
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(2150)), Action::kProbe);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(2549)), Action::kNone);
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(2550)), Action::kKillUnresponsive);
  lc.OnProgress(t0 + milliseconds(2551));  // too late to matter
  lc.OnExit(Signaled(SIGKILL), /*we_killed=*/true);
  EXPECT_EQ(lc.failure().kind, FailureKind::kUnresponsive);
}

TEST(LifecycleTest, AnAnswerInTimeEndsTheRunOfFailedProbes) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(12000)});
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0);
  TimePoint t = t0;
  for (int i = 0; i < 10; ++i) {  // 11.9 s without a 200 (SIGSTOP, then SIGCONT)...
    t += milliseconds(100);
    ASSERT_EQ(lc.OnTick(t), Action::kProbe);
    t += milliseconds(1000);
    lc.OnHealth(0, t);
  }
  t = t0 + milliseconds(100) + milliseconds(11900);
  ASSERT_EQ(lc.OnTick(t - milliseconds(1)), Action::kProbe);
  lc.OnHealth(200, t - milliseconds(1));  // ...then it answers, 1 ms before the bound
  EXPECT_EQ(lc.OnTick(t + milliseconds(50)), Action::kNone);
  ASSERT_EQ(lc.OnTick(t + milliseconds(99)), Action::kProbe);
  EXPECT_EQ(*lc.NextDeadline(), t + milliseconds(99) + milliseconds(12000)) << "a new run starts a new clock";
  EXPECT_EQ(lc.state(), ChildState::kReady);
  EXPECT_EQ(lc.failure().kind, FailureKind::kNone);
  // The message names the bound in whole seconds.
  EXPECT_EQ(lc.OnTick(t + milliseconds(99) + milliseconds(12000)), Action::kKillUnresponsive);
  EXPECT_EQ(lc.failure().message, "unresponsive: /health did not answer and it used no CPU for 12 s");
}

TEST(LifecycleTest, APausedMonitorProbesBeforeItJudges) {
  // The daemon itself was stopped (Ctrl+Z) for a minute with no probe out: the first tick
  // after it sends a probe; nothing is judged on the old answer's age.
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0);
  TimePoint later = t0 + std::chrono::seconds(60);
  EXPECT_EQ(lc.OnTick(later), Action::kProbe);
  lc.OnHealth(200, later + milliseconds(1));
  EXPECT_EQ(lc.state(), ChildState::kReady);
}

TEST(LifecycleTest, LivenessOffStopAndCrashNeedNoProbes) {
  TimePoint t0{};
  {
    Lifecycle off(t0, milliseconds(1000));  // no liveness: a ready child has no deadline
    off.OnPortLearned(5, t0);
    off.OnHealth(200, t0);
    EXPECT_FALSE(off.NextDeadline().has_value());
  }
  Lifecycle lc(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  lc.OnPortLearned(5, t0);
  lc.OnHealth(200, t0);
  ASSERT_EQ(lc.OnTick(t0 + milliseconds(100)), Action::kProbe);
  // A stop while a probe is out: only the grace deadline is left, never kKillUnresponsive.
  ASSERT_TRUE(lc.OnStopRequested(t0 + milliseconds(110), milliseconds(10000)));
  EXPECT_EQ(*lc.NextDeadline(), t0 + milliseconds(10110));
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(600)), Action::kNone);
  lc.OnExit(Signaled(SIGTERM), false);
  EXPECT_EQ(lc.state(), ChildState::kStopped);
  // A crash while a probe is out is a crash, with its own reason.
  Lifecycle crash(t0, milliseconds(1000), Liveness{milliseconds(100), milliseconds(400)});
  crash.OnPortLearned(5, t0);
  crash.OnHealth(200, t0);
  ASSERT_EQ(crash.OnTick(t0 + milliseconds(100)), Action::kProbe);
  crash.OnExit(Signaled(SIGSEGV), false);
  EXPECT_EQ(crash.failure().kind, FailureKind::kSignaled);
  EXPECT_EQ(crash.failure().message, "killed by SIGSEGV while serving");
}

TEST(LifecycleTest, LivenessForScalesTheIntervalWithTheTimeout) {
  EXPECT_EQ(LivenessFor(milliseconds(0)).timeout, milliseconds(0));
  EXPECT_EQ(LivenessFor(std::chrono::seconds(15)).interval, std::chrono::seconds(3));
  EXPECT_EQ(LivenessFor(std::chrono::seconds(2)).interval, milliseconds(500));
  EXPECT_EQ(LivenessFor(milliseconds(40)).interval, kMinLivenessInterval);
}

// A log write while a readiness probe is out: the next probe goes out as soon as the answer
// (a 503) is in, not after the backoff.
TEST(LifecycleTest, LogOutputDuringAProbeMakesTheNextOneImmediate) {
  TimePoint t{};
  Lifecycle lc(t, milliseconds(100000));
  lc.OnPortLearned(1, t);
  ASSERT_EQ(lc.OnTick(t), Action::kProbe);
  lc.OnLogOutput(t + milliseconds(1));
  EXPECT_EQ(lc.OnTick(t + milliseconds(1)), Action::kNone) << "still one probe at a time";
  lc.OnHealth(503, t + milliseconds(3));
  EXPECT_EQ(lc.OnTick(t + milliseconds(3)), Action::kProbe);
}

// Restart pending (issue 12 item 3): a crashed child the restart policy will start again is
// a state of its own, with its due time as a deadline, not failed plus a sentinel.
TEST(LifecycleTest, RestartPendingKeepsTheFailureAndAsksForTheRestartOnceAtItsTime) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000), LivenessFor(milliseconds(0)));
  lc.OnPortLearned(5, t0);
  ASSERT_EQ(lc.OnTick(t0), Action::kProbe);
  lc.OnHealth(200, t0 + milliseconds(1));
  EXPECT_FALSE(lc.OnRestartScheduled(t0 + milliseconds(2))) << "only a failed child";
  EXPECT_EQ(lc.state(), ChildState::kReady);
  lc.OnExit(Signaled(SIGSEGV), /*we_killed=*/false);
  ASSERT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_FALSE(lc.NextDeadline().has_value());

  const TimePoint due = t0 + milliseconds(2000);
  ASSERT_TRUE(lc.OnRestartScheduled(due));
  EXPECT_EQ(lc.state(), ChildState::kRestartPending);
  EXPECT_TRUE(IsTerminal(lc.state())) << "no process while it waits";
  EXPECT_EQ(lc.failure().kind, FailureKind::kSignaled) << "the failure says why";
  EXPECT_EQ(lc.restart_at(), due);
  EXPECT_EQ(lc.NextDeadline(), due);
  lc.AppendFailureDetail("segfault in ggml");
  EXPECT_EQ(lc.failure().message, "killed by SIGSEGV while serving: segfault in ggml");
  // Nothing to signal: a stop is the supervisor's to forget; an exit changes nothing.
  EXPECT_FALSE(lc.OnStopRequested(t0 + milliseconds(10), milliseconds(100)));
  lc.OnExit(Exited(0), false);
  EXPECT_EQ(lc.state(), ChildState::kRestartPending);
  EXPECT_FALSE(lc.OnRestartScheduled(due + milliseconds(5))) << "scheduled once";

  EXPECT_EQ(lc.OnTick(due - milliseconds(1)), Action::kNone);
  EXPECT_EQ(lc.OnTick(due), Action::kRestart);
  EXPECT_EQ(lc.OnTick(due + milliseconds(1)), Action::kNone) << "asked for once";
  EXPECT_FALSE(lc.NextDeadline().has_value());
}

TEST(LifecycleTest, ACancelledRestartIsFailedAndNeverDue) {
  TimePoint t0{};
  Lifecycle lc(t0, milliseconds(1000));
  lc.OnLogOutput(t0);
  EXPECT_FALSE(lc.OnRestartCancelled()) << "nothing pending";
  lc.OnExit(Exited(2), false);
  ASSERT_TRUE(lc.OnRestartScheduled(t0 + milliseconds(50)));
  ASSERT_TRUE(lc.OnRestartCancelled());
  EXPECT_EQ(lc.state(), ChildState::kFailed);
  EXPECT_EQ(lc.failure().message, "exited with code 2 while loading");
  EXPECT_FALSE(lc.restart_at().has_value());
  EXPECT_FALSE(lc.NextDeadline().has_value());
  EXPECT_EQ(lc.OnTick(t0 + milliseconds(60)), Action::kNone);
  EXPECT_FALSE(lc.OnRestartCancelled());
}

TEST(LifecycleTest, ToStringCoversEveryState) {
  EXPECT_EQ(to_string(ChildState::kStarting), "starting");
  EXPECT_EQ(to_string(ChildState::kLoading), "loading");
  EXPECT_EQ(to_string(ChildState::kReady), "ready");
  EXPECT_EQ(to_string(ChildState::kStopping), "stopping");
  EXPECT_EQ(to_string(ChildState::kStopped), "stopped");
  EXPECT_EQ(to_string(ChildState::kFailed), "failed");
  EXPECT_EQ(to_string(ChildState::kRestartPending), "restart_pending");
  EXPECT_EQ(to_string(FailureKind::kOomKilled), "oom_killed");
  EXPECT_EQ(to_string(FailureKind::kHealthTimeout), "health_timeout");
  EXPECT_EQ(to_string(FailureKind::kUnresponsive), "unresponsive");
}

}  // namespace
}  // namespace corral::supervisor
