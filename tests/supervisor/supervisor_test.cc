// The Supervisor with scripted fake children (fault injection only: exec failure, exit
// codes, hangs, SIGTERM-ignoring children) and a scripted /health endpoint for the readiness
// path. The real llama-server paths are in supervisor_integration_test.cc.
#include "supervisor/supervisor.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/fs.h"
#include "support/test_support.h"

namespace corral::supervisor {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

std::string Script(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.File(name);
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

SupervisorOptions Options(const TempDir& dir, const std::string& exe) {
  SupervisorOptions o;
  o.llama_server = exe;
  o.log_dir = dir.File("logs");
  o.health_timeout_base = std::chrono::seconds(30);
  o.health_timeout_per_gib = milliseconds(0);
  o.stop_grace = std::chrono::seconds(5);
  return o;
}

LaunchSpec Spec(const std::string& name) {
  LaunchSpec s;
  s.name = name;
  s.model = "fake";
  s.model_path = "/fake/model.gguf";
  return s;
}

bool Gone(pid_t pid) {
  auto stat = ReadFileBounded("/proc/" + std::to_string(pid) + "/stat", 1 << 16);
  if (!stat.ok()) return true;
  size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
}

// A tiny /health server: answers 503 `busy` times, then 200. One thread, blocking. While
// hung (SetHung), it accepts connections and never answers them, like a SIGSTOPped child.
class FakeHealth {
 public:
  explicit FakeHealth(int busy, bool hung = false) : busy_(busy), hung_(hung) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 16);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        if (hung_.load()) {
          held_.push_back(c);  // never answered; closed when the fake ends
          hung_requests_.fetch_add(1);
          continue;
        }
        char buf[512];
        ssize_t r = ::recv(c, buf, sizeof(buf), 0);
        (void)r;
        int n = requests_.fetch_add(1);
        const char* res = n < busy_ ? "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                                    : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        ssize_t w = ::send(c, res, std::strlen(res), MSG_NOSIGNAL);
        (void)w;
        ::close(c);
      }
    });
  }
  ~FakeHealth() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : held_) ::close(c);
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }
  int hung_requests() const { return hung_requests_.load(); }
  void SetHung(bool hung) { hung_.store(hung); }

 private:
  int busy_;
  std::atomic<bool> hung_;
  std::atomic<int> hung_requests_{0};
  std::vector<int> held_;  // the accept thread's only
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(SupervisorTest, ExecFailureIsReportedAndListed) {
  TempDir dir;
  Supervisor sup(Options(dir, dir.File("no-such-llama-server")));
  auto r = sup.Start(Spec("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot execute"), std::string::npos) << r.status().message();
  auto info = sup.Get("a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ChildState::kFailed);
  EXPECT_EQ(info->failure.kind, FailureKind::kSpawn);
}

TEST(SupervisorTest, ExitWhileLoadingIsFailedWithCodeAndLogTail) {
  TempDir dir;
  Supervisor sup(Options(dir, Script(dir, "fake.sh", "echo 'loading model'\necho 'error: bad magic' >&2\nexit 3")));
  auto r = sup.Start(Spec("a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto info = sup.WaitSettled("a", std::chrono::seconds(30));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ChildState::kFailed);
  EXPECT_EQ(info->failure.kind, FailureKind::kExited);
  EXPECT_EQ(info->failure.exit_code, 3);
  EXPECT_NE(info->last_log_lines.find("error: bad magic"), std::string::npos) << info->last_log_lines;
  // Stopping a failed child forgets it; the name is free again.
  EXPECT_TRUE(sup.Stop("a").ok());
  EXPECT_EQ(sup.Get("a").status().code(), StatusCode::kNotFound);
}

TEST(SupervisorTest, HealthTimeoutKillsTheChild) {
  TempDir dir;
  SupervisorOptions o = Options(dir, Script(dir, "fake.sh", "echo starting\nexec sleep 60"));
  o.health_timeout_base = milliseconds(150);
  Supervisor sup(o);
  auto r = sup.Start(Spec("slow"));
  ASSERT_TRUE(r.ok());
  auto info = sup.WaitSettled("slow", std::chrono::seconds(30));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ChildState::kFailed);
  EXPECT_EQ(info->failure.kind, FailureKind::kHealthTimeout) << info->failure.message;
  EXPECT_TRUE(Gone(r->pid));
}

TEST(SupervisorTest, StopEscalatesToSigkillForAChildIgnoringSigterm) {
  TempDir dir;
  SupervisorOptions o = Options(dir, Script(dir, "fake.sh", "trap '' TERM\necho stubborn\nexec sleep 60"));
  o.stop_grace = milliseconds(100);
  Supervisor sup(o);
  auto r = sup.Start(Spec("stubborn"));
  ASSERT_TRUE(r.ok());
  // Wait until the script has run its trap (it printed its line after it).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto log = ReadFileBounded(r->log_path, 1 << 20);
    if (log.ok() && log->find("stubborn") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(2));
  }
  auto stopped = sup.Stop("stubborn");
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_EQ(stopped->state, ChildState::kStopped);
  EXPECT_TRUE(Gone(r->pid));
}

TEST(SupervisorTest, ArgvEnvironmentAndStdioReachTheChild) {
  TempDir dir;
  std::string exe = Script(dir, "fake.sh",
                           "for a in \"$@\"; do echo \"arg:$a\"; done\n"
                           "echo \"env:$CORRAL_FAKE_VAR\"\n"
                           "if read line; then echo stdin-had-data; else echo stdin-empty; fi\n"
                           "exec sleep 60");
  Supervisor sup(Options(dir, exe));
  LaunchSpec spec = Spec("argv");
  spec.ctx = 512;
  spec.raw_args = {"--temp", "0.5 with space"};
  spec.env = {"CORRAL_FAKE_VAR=hello", "PATH=/usr/bin:/bin"};
  auto r = sup.Start(spec);
  ASSERT_TRUE(r.ok());
  // The script prints what it got; the byte-exact /proc/<pid>/cmdline check with the real
  // llama-server is in supervisor_integration_test.cc.
  std::string log;
  for (int i = 0; i < 2000 && log.find("stdin-") == std::string::npos; ++i) {
    auto t = ReadFileBounded(r->log_path, 1 << 20);
    if (t.ok()) log = *t;
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_NE(log.find("arg:-m\narg:/fake/model.gguf\narg:--host\narg:127.0.0.1\narg:--port\narg:0\narg:-c\narg:512\n"
                     "arg:--alias\narg:fake\narg:--temp\narg:0.5 with space\n"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("env:hello"), std::string::npos) << log;
  EXPECT_NE(log.find("stdin-empty"), std::string::npos) << log;
  // Own process group.
  EXPECT_EQ(::getpgid(r->pid), r->pid);
}

// A child launched with the daemon's own environment gets all of it except the Hugging Face
// token (`corral pull` reads it; llama-server never needs it: docs/pull.md).
TEST(SupervisorTest, InheritedEnvironmentLeavesOutTheHfToken) {
  TempDir dir;
  std::string exe = Script(dir, "fake.sh",
                           "echo \"env:$CORRAL_FAKE_INHERITED tok:[$HF_TOKEN$HUGGING_FACE_HUB_TOKEN]\"\n"
                           "exec sleep 60");
  ::setenv("CORRAL_FAKE_INHERITED", "yes", 1);
  ::setenv("HF_TOKEN", "hf_secret", 1);
  ::setenv("HUGGING_FACE_HUB_TOKEN", "hf_old", 1);
  Supervisor sup(Options(dir, exe));
  auto r = sup.Start(Spec("envtoken"));
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HUGGING_FACE_HUB_TOKEN");
  ::unsetenv("CORRAL_FAKE_INHERITED");
  ASSERT_TRUE(r.ok());
  std::string log;
  for (int i = 0; i < 2000 && log.find("tok:") == std::string::npos; ++i) {
    auto t = ReadFileBounded(r->log_path, 1 << 20);
    if (t.ok()) log = *t;
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_NE(log.find("env:yes tok:[]"), std::string::npos) << log;
}

TEST(SupervisorTest, ReadyFromThePortLineAndHealth) {
  TempDir dir;
  FakeHealth health(/*busy=*/3);
  std::string exe = Script(dir, "fake.sh",
                           "echo 'loading'\necho \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                           "exec sleep 60");
  Supervisor sup(Options(dir, exe));
  LaunchSpec spec = Spec("ready");
  spec.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
  auto r = sup.Start(spec);
  ASSERT_TRUE(r.ok());
  auto info = sup.WaitSettled("ready", std::chrono::seconds(30));
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->state, ChildState::kReady) << info->failure.message;
  EXPECT_EQ(info->port, health.port());
  EXPECT_EQ(health.requests(), 4);  // three 503s with backoff, then 200
  EXPECT_GE(info->ready_ms, 0.0);
  auto stopped = sup.Stop("ready");
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->state, ChildState::kStopped);
}

// Restart policy: a child that crashes after it was ready is started again with backoff;
// five crashes in a row give up with the reason; Stop() cancels a pending restart.
TEST(SupervisorTest, RestartPolicyRestartsACrashedChildWithBackoffThenGivesUp) {
  TempDir dir;
  FakeHealth health(/*busy=*/0);
  std::string exe = Script(dir, "crashy.sh",
                           "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                           "sleep 0.3\necho 'boom' >&2\nexit 3");
  SupervisorOptions o = Options(dir, exe);
  o.restart_delay = milliseconds(20);
  Supervisor sup(o);
  LaunchSpec spec = Spec("crashy");
  spec.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
  spec.restart = true;
  ASSERT_TRUE(sup.Start(spec).ok());
  auto info = sup.WaitSettled("crashy", std::chrono::seconds(30));
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->state, ChildState::kReady) << info->failure.message;
  const pid_t first_pid = info->pid;
  // It crashes, is restarted (a new pid), and becomes ready again.
  bool restarted = false;
  for (int i = 0; i < 600 && !restarted; ++i) {
    auto now = sup.Get("crashy");
    ASSERT_TRUE(now.ok());
    restarted = now->restarts >= 1 && now->state == ChildState::kReady && now->pid != first_pid;
    if (!restarted) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(restarted);
  // Five crashes in a row (20, 40, 80, 160, 320 ms apart) and it gives up.
  bool gave_up = false;
  for (int i = 0; i < 1500 && !gave_up; ++i) {
    auto now = sup.Get("crashy");
    ASSERT_TRUE(now.ok());
    gave_up = now->state == ChildState::kFailed && now->restart_in_ms < 0 && now->restarts == 5;
    if (!gave_up) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(gave_up);
  auto last = sup.Get("crashy");
  EXPECT_NE(last->failure.message.find("gave up restarting after 5 crashes in a row"), std::string::npos)
      << last->failure.message;
  EXPECT_EQ(sup.reserved_bytes(), 0U);
}

TEST(SupervisorTest, RestartPolicySkipsAChildThatNeverGotReadyAndStopCancels) {
  TempDir dir;
  FakeHealth health(/*busy=*/0);
  std::string never = Script(dir, "never.sh", "echo 'loading'\nexit 1");
  SupervisorOptions o = Options(dir, never);
  o.restart_delay = std::chrono::seconds(30);  // long: a pending restart stays pending
  Supervisor sup(o);
  LaunchSpec spec = Spec("never");
  spec.restart = true;
  ASSERT_TRUE(sup.Start(spec).ok());
  auto info = sup.WaitSettled("never", std::chrono::seconds(30));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ChildState::kFailed);
  EXPECT_LT(info->restart_in_ms, 0) << "a model that never loaded must not be restarted in a loop";

  // A child that was ready and crashed: the restart is pending, the memory stays reserved,
  // and Stop() cancels it.
  std::string crashy = Script(dir, "crash-once.sh",
                              "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                              "sleep 0.3\nexit 3");
  SupervisorOptions o2 = Options(dir, crashy);
  o2.restart_delay = std::chrono::seconds(30);
  Supervisor sup2(o2);
  LaunchSpec spec2 = Spec("crash-once");
  spec2.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
  spec2.restart = true;
  spec2.reserved_bytes = 1000;
  ASSERT_TRUE(sup2.Start(spec2).ok());
  bool pending = false;
  for (int i = 0; i < 1000 && !pending; ++i) {
    auto now = sup2.Get("crash-once");
    ASSERT_TRUE(now.ok());
    pending = now->state == ChildState::kRestartPending && now->restart_in_ms > 0;
    if (!pending) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_TRUE(pending);
  EXPECT_EQ(sup2.reserved_bytes(), 1000U);
  ASSERT_TRUE(sup2.Stop("crash-once").ok());
  EXPECT_FALSE(sup2.Get("crash-once").ok());
  EXPECT_EQ(sup2.reserved_bytes(), 0U);
}

// Waits (bounded) until `pred(info)` holds for the child, following its generations.
template <typename Pred>
Result<ChildInfo> WaitFor(const Supervisor& sup, const std::string& name, Pred pred,
                          std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto info = sup.Get(name);
  while (info.ok() && !pred(*info) && std::chrono::steady_clock::now() < deadline) {
    info = sup.WaitForChange(name, info->generation, milliseconds(100));
  }
  if (info.ok() && !pred(*info)) return Status(StatusCode::kTimeout, "condition not reached");
  return info;
}

// Restart pending is a state (issue 12 item 3): ready → (crash) restart_pending, with the
// crash as its failure and the memory still reserved; a new Start() with its name replaces
// it; StopAll (the daemon's drain) cancels a pending restart: restart_pending → failed.
TEST(SupervisorTest, ACrashedChildIsRestartPendingUntilReplacedOrDrained) {
  TempDir dir;
  FakeHealth health(/*busy=*/0);
  std::string crashy = Script(dir, "crash-once.sh",
                              "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                              "sleep 0.5\nexit 3");
  SupervisorOptions o = Options(dir, crashy);
  o.restart_delay = std::chrono::seconds(30);  // long: it stays pending for the test
  Supervisor sup(o);
  LaunchSpec spec = Spec("crash-once");
  spec.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
  spec.restart = true;
  spec.reserved_bytes = 1000;
  ASSERT_TRUE(sup.Start(spec).ok());
  auto pending = WaitFor(sup, "crash-once", [](const ChildInfo& i) { return IsTerminal(i.state); });
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();
  ASSERT_EQ(pending->state, ChildState::kRestartPending) << pending->failure.message;
  EXPECT_EQ(pending->failure.kind, FailureKind::kExited);
  EXPECT_EQ(pending->failure.exit_code, 3);
  EXPECT_GT(pending->restart_in_ms, 0);
  EXPECT_LE(pending->restart_in_ms, 30000);
  EXPECT_EQ(sup.reserved_bytes(), 1000U);

  // A new Start() with its name replaces it at once (no kAlreadyExists).
  auto again = sup.Start(spec);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->restarts, 0U);
  pending = WaitFor(sup, "crash-once", [](const ChildInfo& i) { return i.state == ChildState::kRestartPending; });
  ASSERT_TRUE(pending.ok()) << pending.status().ToString();

  // The drain cancels it: failed with the crash as its reason, no restart due, nothing reserved.
  sup.StopAll();
  auto drained = sup.Get("crash-once");
  ASSERT_TRUE(drained.ok());
  EXPECT_EQ(drained->state, ChildState::kFailed);
  EXPECT_LT(drained->restart_in_ms, 0);
  EXPECT_EQ(drained->failure.exit_code, 3);
  EXPECT_EQ(drained->restarts, 0U);
  EXPECT_EQ(sup.reserved_bytes(), 0U);
}

// Liveness (issue 11, item 8): a ready child whose /health stops answering is killed (its
// group), failed as unresponsive with the reason, and the restart policy brings it back.
TEST(SupervisorTest, UnresponsiveReadyChildIsKilledFailedAndRestarted) {
  TempDir dir;
  FakeHealth health(/*busy=*/0);
  std::string exe = Script(dir, "fake.sh",
                           "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                           "exec sleep 60");
  SupervisorOptions o = Options(dir, exe);
  o.liveness_timeout = milliseconds(400);
  o.restart_delay = milliseconds(300);
  Supervisor sup(o);
  LaunchSpec spec = Spec("hangs");
  spec.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
  spec.restart = true;
  ASSERT_TRUE(sup.Start(spec).ok());
  auto ready = sup.WaitSettled("hangs", std::chrono::seconds(30));
  ASSERT_TRUE(ready.ok());
  ASSERT_EQ(ready->state, ChildState::kReady) << ready->failure.message;
  // Answered liveness probes keep it ready: wait for two of them (100 ms apart).
  const int before = health.requests();
  auto probed = WaitFor(
      sup, "hangs", [&](const ChildInfo&) { return health.requests() >= before + 2; }, std::chrono::seconds(10));
  (void)probed;
  ASSERT_GE(health.requests(), before + 2) << "no liveness probes";
  ASSERT_EQ(sup.Get("hangs")->state, ChildState::kReady);

  health.SetHung(true);
  auto failed = WaitFor(sup, "hangs", [](const ChildInfo& i) { return i.state == ChildState::kRestartPending; });
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(failed->failure.kind, FailureKind::kUnresponsive) << failed->failure.message;
  EXPECT_EQ(failed->failure.message, "unresponsive: /health did not answer and it used no CPU for 0.4 s");
  EXPECT_GE(failed->restart_in_ms, 0) << "the restart policy applies";
  EXPECT_TRUE(Gone(ready->pid));
  EXPECT_GE(health.hung_requests(), 1);

  health.SetHung(false);
  auto back =
      WaitFor(sup, "hangs", [](const ChildInfo& i) { return i.state == ChildState::kReady && i.restarts >= 1; });
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_NE(back->pid, ready->pid);
  EXPECT_EQ(back->failure.kind, FailureKind::kNone);
}

// Non-blocking probes (issue 12, item 7): a child whose /health never answers does not hold
// up another child's start or readiness (the blocking probe held the monitor thread up to
// 1.2 s per probe, one child after another).
TEST(SupervisorTest, AHungProbeDoesNotDelayAnotherChildsReadiness) {
  TempDir dir;
  FakeHealth silent(/*busy=*/0, /*hung=*/true);
  FakeHealth quick(/*busy=*/0);
  std::string exe = Script(dir, "fake.sh",
                           "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                           "exec sleep 60");
  Supervisor sup(Options(dir, exe));
  LaunchSpec a = Spec("silent");
  a.env = {"FAKE_PORT=" + std::to_string(silent.port()), "PATH=/usr/bin:/bin"};
  ASSERT_TRUE(sup.Start(a).ok());
  // Wait until a probe of the silent child is out (bounded poll on the fake's counter).
  for (int i = 0; i < 3000 && silent.hung_requests() == 0; ++i) std::this_thread::sleep_for(milliseconds(2));
  ASSERT_GE(silent.hung_requests(), 1);
  LaunchSpec b = Spec("quick");
  b.env = {"FAKE_PORT=" + std::to_string(quick.port()), "PATH=/usr/bin:/bin"};
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(sup.Start(b).ok());
  auto info = sup.WaitSettled("quick", std::chrono::seconds(30));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->state, ChildState::kReady);
  EXPECT_LT(took, milliseconds(700)) << "the silent child's probe held up the monitor thread";
  EXPECT_EQ(sup.Get("silent")->state, ChildState::kLoading);
}

// Issue 11, item 10: each child's exit status is its own. Three children killed at once with
// three different signals are each reported with their own signal; again after the restart
// policy brought them back (same serial, new pid and pidfd), with the signals rotated.
TEST(SupervisorTest, ChildrenKilledTogetherEachKeepTheirOwnReason) {
  TempDir dir;
  FakeHealth health(/*busy=*/0);
  std::string exe = Script(dir, "fake.sh",
                           "echo \"main: server is listening on http://127.0.0.1:$FAKE_PORT\"\n"
                           "exec sleep 60");
  SupervisorOptions o = Options(dir, exe);
  o.restart_delay = milliseconds(300);
  Supervisor sup(o);
  const std::vector<std::string> names = {"a", "b", "c"};
  const std::vector<int> signals = {SIGSEGV, SIGKILL, SIGTERM};
  for (const auto& name : names) {
    LaunchSpec spec = Spec(name);
    spec.env = {"FAKE_PORT=" + std::to_string(health.port()), "PATH=/usr/bin:/bin"};
    spec.restart = true;
    ASSERT_TRUE(sup.Start(spec).ok());
  }
  for (uint32_t round = 0; round < 2; ++round) {
    std::vector<pid_t> pids;
    for (const auto& name : names) {
      auto info =
          WaitFor(sup, name, [&](const ChildInfo& i) { return i.state == ChildState::kReady && i.restarts == round; });
      ASSERT_TRUE(info.ok()) << name << ": " << info.status().ToString();
      pids.push_back(info->pid);
    }
    std::vector<int> sent;
    for (size_t i = 0; i < names.size(); ++i) sent.push_back(signals[(i + round) % signals.size()]);
    for (size_t i = 0; i < names.size(); ++i) ASSERT_EQ(::kill(pids[i], sent[i]), 0);
    for (size_t i = 0; i < names.size(); ++i) {
      // Restart pending: failed with its reason, and the policy brings it back.
      auto info = WaitFor(sup, names[i], [](const ChildInfo& c) { return c.state == ChildState::kRestartPending; });
      ASSERT_TRUE(info.ok()) << names[i];
      EXPECT_EQ(info->failure.signal, sent[i]) << names[i] << ": " << info->failure.message;
      const std::string abbrev = std::string("SIG") + ::sigabbrev_np(sent[i]);
      EXPECT_EQ(info->failure.message.rfind("killed by " + abbrev + " while serving", 0), 0u)
          << names[i] << ": " << info->failure.message;
      EXPECT_EQ(info->failure.kind, sent[i] == SIGKILL ? FailureKind::kOomKilled : FailureKind::kSignaled) << names[i];
    }
  }
}

TEST(SupervisorTest, NamesAreUniqueWhileLive) {
  TempDir dir;
  Supervisor sup(Options(dir, Script(dir, "fake.sh", "exec sleep 60")));
  ASSERT_TRUE(sup.Start(Spec("same")).ok());
  auto again = sup.Start(Spec("same"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(sup.Start(Spec("other")).ok());
  EXPECT_EQ(sup.List().size(), 2u);
  EXPECT_EQ(sup.Start(Spec("bad/name")).status().code(), StatusCode::kInvalidArgument);
  LaunchSpec owned = Spec("owned");
  owned.raw_args = {"--port", "80"};
  EXPECT_EQ(sup.Start(owned).status().code(), StatusCode::kInvalidArgument);
}

TEST(SupervisorTest, AdmissionReservesMemoryForConcurrentStarts) {
  TempDir dir;
  SupervisorOptions o = Options(dir, Script(dir, "fake.sh", "exec sleep 60"));
  o.memory_budget_bytes = 100ULL << 20;
  Supervisor sup(o);
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      LaunchSpec s = Spec("m" + std::to_string(i));
      s.reserved_bytes = 60ULL << 20;
      auto r = sup.Start(s);
      if (r.ok()) {
        ok.fetch_add(1);
      } else if (r.status().code() == StatusCode::kResourceExhausted) {
        refused.fetch_add(1);
        EXPECT_NE(r.status().message().find("60.0 MiB"), std::string::npos) << r.status().message();
        EXPECT_NE(r.status().message().find("100.0 MiB"), std::string::npos) << r.status().message();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(sup.reserved_bytes(), 60ULL << 20);
  LaunchSpec forced = Spec("forced");
  forced.reserved_bytes = 60ULL << 20;
  forced.force = true;
  EXPECT_TRUE(sup.Start(forced).ok());
}

// A config reload changes the budget and the timeouts for what comes next.
TEST(SupervisorTest, SetLimitsAppliesToLaterStarts) {
  TempDir dir;
  SupervisorOptions o = Options(dir, Script(dir, "fake.sh", "exec sleep 60"));
  o.memory_budget_bytes = 100ULL << 20;
  Supervisor sup(o);
  LaunchSpec a = Spec("a");
  a.reserved_bytes = 60ULL << 20;
  ASSERT_TRUE(sup.Start(a).ok());
  LaunchSpec b = Spec("b");
  b.reserved_bytes = 60ULL << 20;
  EXPECT_EQ(sup.Start(b).status().code(), StatusCode::kResourceExhausted);

  Supervisor::Limits l = sup.limits();
  EXPECT_EQ(l.memory_budget_bytes, 100ULL << 20);
  EXPECT_EQ(l.stop_grace, std::chrono::seconds(5));
  l.memory_budget_bytes = 200ULL << 20;
  l.health_timeout_base = std::chrono::seconds(7);
  l.health_timeout_per_gib = std::chrono::seconds(1);
  l.stop_grace = std::chrono::seconds(2);
  sup.SetLimits(l);
  EXPECT_EQ(sup.memory_budget_bytes(), 200ULL << 20);
  EXPECT_EQ(sup.HealthTimeoutFor(3ULL << 30), std::chrono::seconds(10));
  EXPECT_EQ(sup.limits().stop_grace, std::chrono::seconds(2));
  EXPECT_TRUE(sup.Start(b).ok());
}

TEST(SupervisorTest, DestroyingTheSupervisorStopsEveryChild) {
  TempDir dir;
  std::vector<pid_t> pids;
  {
    SupervisorOptions o = Options(dir, Script(dir, "fake.sh", "exec sleep 60"));
    o.stop_grace = milliseconds(200);
    Supervisor sup(o);
    for (const char* n : {"a", "b", "c"}) {
      auto r = sup.Start(Spec(n));
      ASSERT_TRUE(r.ok());
      pids.push_back(r->pid);
    }
  }
  for (pid_t p : pids) EXPECT_TRUE(Gone(p)) << p;
}

TEST(SupervisorTest, LogsRotateOnRestart) {
  TempDir dir;
  Supervisor sup(Options(dir, Script(dir, "fake.sh", "echo run-$$\nexit 1")));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sup.Start(Spec("rot")).ok());
    ASSERT_TRUE(sup.WaitSettled("rot", std::chrono::seconds(30)).ok());
  }
  struct stat st {};
  EXPECT_EQ(::stat(dir.File("logs/rot.log").c_str(), &st), 0);
  EXPECT_EQ(::stat(dir.File("logs/rot.log.1").c_str(), &st), 0);
  EXPECT_EQ(::stat(dir.File("logs/rot.log.2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace corral::supervisor
