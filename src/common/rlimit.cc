#include "common/rlimit.h"

#include <algorithm>
#include <atomic>

namespace corral {
namespace {

// Written once before any child is forked; read in the child after fork().
std::atomic<rlim_t> g_original_soft{RLIM_INFINITY};
std::atomic<bool> g_raised{false};

}  // namespace

OpenFileLimits RaiseOpenFileLimit(rlim_t cap) {
  OpenFileLimits out;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return out;
  out.before = g_raised.load() ? g_original_soft.load() : rl.rlim_cur;
  out.hard = rl.rlim_max;
  out.now = rl.rlim_cur;
  rlim_t want = rl.rlim_max == RLIM_INFINITY ? cap : std::min(rl.rlim_max, cap);
  if (want > rl.rlim_cur) {
    rlimit raised = rl;
    raised.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      if (!g_raised.exchange(true)) g_original_soft.store(rl.rlim_cur);
      out.now = want;
    }
  }
  return out;
}

void RestoreOpenFileLimitInChild() {
  if (!g_raised.load(std::memory_order_relaxed)) return;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = g_original_soft.load(std::memory_order_relaxed);
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace corral
