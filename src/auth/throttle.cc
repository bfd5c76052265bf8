#include "auth/throttle.h"

#include <algorithm>

namespace corral::auth {

std::chrono::milliseconds FailureThrottle::OnFailure(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxTracked) {
      std::erase_if(entries_, [&](const auto& e) { return now - e.second.last > kWindow; });
      if (entries_.size() >= kMaxTracked) {
        auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                       [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
        entries_.erase(oldest);
      }
    }
    it = entries_.emplace(address, Entry{}).first;
  } else if (now - it->second.last > kWindow) {
    it->second.failures = 0;
  }
  Entry& e = it->second;
  e.last = now;
  ++e.failures;
  if (e.failures <= kFreeFailures) return std::chrono::milliseconds(0);
  size_t shift = std::min<size_t>(e.failures - kFreeFailures - 1, 16);
  return std::min(kMaxDelay, kBaseDelay * (int64_t{1} << shift));
}

void FailureThrottle::OnSuccess(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(address);
}

size_t FailureThrottle::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace corral::auth
