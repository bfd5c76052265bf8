// The daemon's open-file limit: raised to the hard limit for itself, the original given
// back to the children it forks.
#include "common/rlimit.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace corral {
namespace {

TEST(OpenFileLimitTest, RaisedForUsAndRestoredInAForkedChild) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= 256) GTEST_SKIP() << "hard limit too low to test";
  rlimit low = rl;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);

  OpenFileLimits got = RaiseOpenFileLimit(4096);
  EXPECT_EQ(got.before, 256U);
  rlim_t want = rl.rlim_max == RLIM_INFINITY ? 4096 : std::min<rlim_t>(rl.rlim_max, 4096);
  EXPECT_EQ(got.now, want);
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &low), 0);
  EXPECT_EQ(low.rlim_cur, want);
  // Idempotent: a second call reports the same original.
  EXPECT_EQ(RaiseOpenFileLimit(4096).before, 256U);

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    RestoreOpenFileLimitInChild();
    rlimit in_child{};
    ::getrlimit(RLIMIT_NOFILE, &in_child);
    ::_exit(in_child.rlim_cur == 256 ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "the child did not get the original soft limit";
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace
}  // namespace corral
