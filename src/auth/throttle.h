// Slows down repeated failed authentications from one address (issue 13).
//
// Per client address: the first kFreeFailures failures within kWindow are answered at once;
// after that each failure's answer waits kBaseDelay * 2^(n - kFreeFailures - 1), capped at
// kMaxDelay. A window with no failure forgets the address; a success forgets it at once.
// At most kMaxTracked addresses are tracked (the oldest is forgotten first), so a flood of
// addresses costs bounded memory. Time is passed in (tested with explicit times).
//
// Thread-safety: thread-safe (one mutex; held only for the map update).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace corral::auth {

class FailureThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kFreeFailures = 5;
  static constexpr std::chrono::seconds kWindow{60};
  static constexpr std::chrono::milliseconds kBaseDelay{100};
  static constexpr std::chrono::milliseconds kMaxDelay{5000};
  static constexpr size_t kMaxTracked = 4096;

  // Records a failure from `address` at `now`; returns how long to hold the answer.
  std::chrono::milliseconds OnFailure(const std::string& address, Clock::time_point now);
  void OnSuccess(const std::string& address);
  size_t tracked() const;

 private:
  struct Entry {
    size_t failures = 0;
    Clock::time_point last{};
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace corral::auth
