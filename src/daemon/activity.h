// Activity: the daemon's side of the event feed (control/feed.h). It turns what the daemon
// sees into feed lines: child changes (the supervisor's on_change), finished requests (the
// router's request observer) and, once a second while anyone watches, the gauges.
//
// Threads: OnChildren on the supervisor's monitor thread; OnRequest on the proxy host's
// thread (or a proxy worker with proxy_process: false); the gauge source on the feed's
// ticker thread; Stream on a control connection's thread. Each takes `mu_` briefly.
// Ownership: the daemon owns it; the router and supervisor outlive the feed's ticker (Close
// before they go).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "control/feed.h"
#include "control/transport.h"
#include "proxy/model_provider.h"
#include "supervisor/supervisor.h"

namespace corral::daemon {

class ModelRouter;

class Activity {
 public:
  struct Sources {
    std::function<std::vector<supervisor::ChildInfo>()> children;
    std::function<uint64_t()> budget_bytes;
    std::function<uint64_t()> reserved_bytes;
    ModelRouter* router = nullptr;
  };
  explicit Activity(Sources sources, control::FeedOptions options = {});
  ~Activity();  // Close()

  // `child`: the running model that served it ("" when gone already).
  void OnRequest(const std::string& model, const std::string& child, const proxy::RequestRecord& r);
  void OnChildren(const std::vector<supervisor::ChildInfo>& children);
  // GET /v1/events: `hello` is the first line's JSON (without "t" and "v").
  control::Response Stream(nlohmann::json hello);
  // One more line for every watcher (e.g. {"t":"bench",...}).
  void Publish(std::string line) { feed_.Publish(std::move(line)); }
  // Ends every stream (drain) and stops the ticker. Idempotent.
  void Close();

  control::Gauges GaugesNow();

 private:
  Sources sources_;
  Mutex mu_;
  std::map<std::string, uint64_t> last_generation_ CORRAL_GUARDED_BY(mu_);  // child -> last published generation
  std::map<std::string, uint64_t> requests_ CORRAL_GUARDED_BY(mu_);         // child -> finished requests
  uint64_t total_requests_ CORRAL_GUARDED_BY(mu_) = 0;
  uint64_t rate_base_ CORRAL_GUARDED_BY(mu_) = 0;  // total_requests_ at the last gauges
  std::chrono::steady_clock::time_point rate_at_ CORRAL_GUARDED_BY(mu_){};
  control::EventFeed feed_;  // last: its ticker calls GaugesNow
};

}  // namespace corral::daemon
