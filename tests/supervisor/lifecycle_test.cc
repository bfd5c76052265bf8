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

TEST(LifecycleTest, ToStringCoversEveryState) {
  EXPECT_EQ(to_string(ChildState::kStarting), "starting");
  EXPECT_EQ(to_string(ChildState::kLoading), "loading");
  EXPECT_EQ(to_string(ChildState::kReady), "ready");
  EXPECT_EQ(to_string(ChildState::kStopping), "stopping");
  EXPECT_EQ(to_string(ChildState::kStopped), "stopped");
  EXPECT_EQ(to_string(ChildState::kFailed), "failed");
  EXPECT_EQ(to_string(FailureKind::kOomKilled), "oom_killed");
  EXPECT_EQ(to_string(FailureKind::kHealthTimeout), "health_timeout");
}

}  // namespace
}  // namespace corral::supervisor
