#include "common/interrupt.h"

#include <atomic>
#include <csignal>

namespace corral {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void OnInterrupt(int sig) {
  g_interrupted.store(true, std::memory_order_relaxed);
  std::signal(sig, SIG_DFL);
}

}  // namespace

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool Interrupted() {
  return g_interrupted.load(std::memory_order_relaxed);
}
void ResetInterruptedForTest() {
  g_interrupted.store(false);
}

}  // namespace corral
