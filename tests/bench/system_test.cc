// /proc readers and the byte-for-byte process comparison used by suite A.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "bench/system.h"

extern char** environ;

namespace corral::bench {
namespace {

// A `sleep` child with the given extra environment; killed by the destructor.
class Sleeper {
 public:
  explicit Sleeper(const char* seconds = "30", const std::vector<std::string>& env_extra = {}) {
    std::vector<std::string> env_s = env_extra;
    for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
    std::vector<char*> env;
    for (auto& e : env_s) env.push_back(e.data());
    env.push_back(nullptr);
    std::string sleep = "/bin/sleep", secs = seconds;
    char* argv[] = {sleep.data(), secs.data(), nullptr};
    EXPECT_EQ(::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv, env.data()), 0);
    // posix_spawn returns once the child has switched to its new memory, slightly before the
    // kernel fills in its argv: wait until /proc shows it (deadline, no fixed sleep).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ReadCmdline(pid_).ok() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  ~Sleeper() {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

TEST(ProcReaders, OwnProcess) {
  auto argv = ReadCmdline(::getpid());
  ASSERT_TRUE(argv.ok()) << argv.status().ToString();
  EXPECT_NE(argv->front().find("bench_unit_test"), std::string::npos);
  auto rss = ReadRssBytes(::getpid());
  ASSERT_TRUE(rss.ok());
  EXPECT_GT(*rss, 0u);
  EXPECT_FALSE(ReadCmdline(-1).ok());
}

TEST(ProcReaders, ChildrenAreListed) {
  Sleeper s;
  auto kids = ChildPids(::getpid());
  EXPECT_NE(std::find(kids.begin(), kids.end(), s.pid()), kids.end());
}

TEST(CompareProcesses, SameArgvAndEnvironment) {
  Sleeper a, b;
  ProcessComparison c = CompareProcesses(a.pid(), b.pid());
  EXPECT_TRUE(c.error.empty()) << c.error;
  EXPECT_TRUE(c.cmdline_equal);
  EXPECT_TRUE(c.environ_equal);
  EXPECT_TRUE(c.differences.empty()) << c.differences.front();
  EXPECT_EQ(c.cmdline_a, "/bin/sleep 30");
}

TEST(CompareProcesses, ReportsEachDifference) {
  Sleeper a("30", {"CORRAL_BENCH_TEST=1"}), b("31");
  ProcessComparison c = CompareProcesses(a.pid(), b.pid());
  EXPECT_FALSE(c.cmdline_equal);
  EXPECT_FALSE(c.environ_equal);
  auto has = [&](const std::string& s) {
    return std::find(c.differences.begin(), c.differences.end(), s) != c.differences.end();
  };
  EXPECT_TRUE(has("argv[1]: '30' vs '31'"));
  EXPECT_TRUE(has("env only in a: CORRAL_BENCH_TEST"));
}

TEST(CompareProcesses, MissingProcessIsAnError) {
  ProcessComparison c = CompareProcesses(::getpid(), 999999999);
  EXPECT_FALSE(c.error.empty());
  EXPECT_FALSE(c.cmdline_equal);
}

TEST(Host, ProbeGivesFacts) {
  HostInfo h = ProbeHost();
  EXPECT_GT(h.logical_cores, 0);
  EXPECT_GT(h.usable_cores, 0);
  EXPECT_GT(h.ram_bytes, 0u);
  EXPECT_FALSE(h.gpu.empty());
  EXPECT_FALSE(BuildDescription().empty());
}

}  // namespace
}  // namespace corral::bench

#include "support/test_support.h"

namespace corral::bench {
namespace {

// The corral binary of this build tree refuses to bench when it was built without
// optimisation (the asan-ubsan build), unless --allow-debug, and then the report says so.
TEST(BuildGuard, RefusesUnoptimisedBuildsUnlessAllowed) {
  // Suite C against a private daemon on a tiny model (the suite starts and stops it).
  testing::TempDir dir;
  const auto env = testing::PrivateDaemonEnv(dir);
  const std::string model =
      testing::MakeModel(dir.path(), "m.gguf", {"--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128"});
  ASSERT_FALSE(model.empty());
  auto plain = testing::RunCorral({"bench", "--suite", "C", "--smoke", "--model", model, "--out", dir.path()}, env);
  auto allowed = testing::RunCorral(
      {"bench", "--suite", "C", "--smoke", "--allow-debug", "--model", model, "--out", dir.File("a")}, env);
  testing::RunCorral({"daemon", "stop"}, env);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  if (BuiltOptimized()) {
    EXPECT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(allowed.err.find("WARNING"), std::string::npos);
  } else {
    EXPECT_EQ(plain.exit_code, 64);
    EXPECT_NE(plain.err.find("--allow-debug"), std::string::npos);
    EXPECT_NE(allowed.err.find("WARNING: corral was built WITHOUT optimisation"), std::string::npos);
    EXPECT_NE(allowed.out.find("WARNING: this run used a build without optimisation"), std::string::npos);
  }
}

}  // namespace
}  // namespace corral::bench
