// Clang's thread-safety analysis (-Wthread-safety), made usable with libstdc++.
//
// libstdc++'s std::mutex carries no capability attributes, so the analysis cannot see it.
// `Mutex` is std::mutex with them, and `MutexLock` the scoped lock the analysis follows.
// Members written `CORRAL_GUARDED_BY(mu_)` and functions written `CORRAL_REQUIRES(mu_)`
// are then checked at compile time by every clang build (the fuzz build in `make test`
// compiles every module that has a mutex, with -Werror). Under GCC the macros vanish.
//
// Waiting on a condition variable: `cv_.wait(lock.native())` in a loop whose condition is
// written in the function itself (a predicate lambda would be invisible to the analysis).
#pragma once

#include <mutex>

#if defined(__clang__)
#define CORRAL_TSA(x) __attribute__((x))
#else
#define CORRAL_TSA(x)
#endif

#define CORRAL_CAPABILITY(x) CORRAL_TSA(capability(x))
#define CORRAL_SCOPED_CAPABILITY CORRAL_TSA(scoped_lockable)
#define CORRAL_GUARDED_BY(x) CORRAL_TSA(guarded_by(x))
#define CORRAL_PT_GUARDED_BY(x) CORRAL_TSA(pt_guarded_by(x))
#define CORRAL_REQUIRES(...) CORRAL_TSA(requires_capability(__VA_ARGS__))
#define CORRAL_EXCLUDES(...) CORRAL_TSA(locks_excluded(__VA_ARGS__))
#define CORRAL_ACQUIRE(...) CORRAL_TSA(acquire_capability(__VA_ARGS__))
#define CORRAL_RELEASE(...) CORRAL_TSA(release_capability(__VA_ARGS__))
#define CORRAL_TRY_ACQUIRE(...) CORRAL_TSA(try_acquire_capability(__VA_ARGS__))
#define CORRAL_RETURN_CAPABILITY(x) CORRAL_TSA(lock_returned(x))
#define CORRAL_NO_THREAD_SAFETY_ANALYSIS CORRAL_TSA(no_thread_safety_analysis)

namespace corral {

class CORRAL_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() CORRAL_ACQUIRE() { mu_.lock(); }
  void unlock() CORRAL_RELEASE() { mu_.unlock(); }
  bool try_lock() CORRAL_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction (or to Unlock()).
class CORRAL_SCOPED_CAPABILITY MutexLock {
 public:
  // The bodies use std::unique_lock, which the analysis cannot see into; the attributes
  // state what they do.
  explicit MutexLock(Mutex& mu) CORRAL_ACQUIRE(mu) CORRAL_NO_THREAD_SAFETY_ANALYSIS : lock_(mu.mu_) {}
  ~MutexLock() CORRAL_RELEASE() CORRAL_NO_THREAD_SAFETY_ANALYSIS = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Released early (e.g. to call back without the lock), and taken again.
  void Unlock() CORRAL_RELEASE() CORRAL_NO_THREAD_SAFETY_ANALYSIS { lock_.unlock(); }
  void Lock() CORRAL_ACQUIRE() CORRAL_NO_THREAD_SAFETY_ANALYSIS { lock_.lock(); }

  // For std::condition_variable::wait / wait_until. To the analysis the lock stays held.
  std::unique_lock<std::mutex>& native() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace corral
