// What the terminal dashboard knows, built only from the daemon's event feed
// (control/feed.h): the hello snapshot, model changes, finished requests and the gauges.
// Pure: times come in as arguments, so tests replay a feed and render at a fixed instant.
//
// Thread-safety: a plain value; one thread (the dashboard's loop).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "control/feed.h"

namespace corral::tui {

// One row of the models table: a running child, or a catalog model that is not running.
// The implicit moves are json's, string's and vector's, all noexcept; as with FeedEvent
// (control/feed.h), clang-tidy's exception-escape cannot see through json's assertions.
struct ModelRow {     // NOLINT(bugprone-exception-escape)
  std::string name;   // the child's name, or the catalog name
  std::string model;  // the catalog name it serves
  bool running = false;
  std::string state;       // the child's state ("loading", "ready", ...), or "off"
  std::string failure;     // failed: the reason
  int64_t loading_s = -1;  // starting/loading: seconds since the start
  int pid = -1;
  uint64_t estimate_bytes = 0;  // the reservation (running) or the file size (off)
  uint64_t rss_bytes = 0;
  uint32_t ctx = 0;
  double tok_s_p50 = -1;  // over the last minute; -1 = no request
  double ttft_p50 = -1;
  uint64_t requests = 0;  // finished requests since the daemon started (running only)
  int in_flight = 0;
  int64_t ttl_left_s = -1;
  bool pinned = false;
  nlohmann::json detail;  // the child's JSON (argv, log path, ...) or the catalog entry
};

// The speculative decoding a child runs with, read from its argv (issue 17): "MTP heads",
// "draft FILE (N per step)", or "" when its argv asks for none.
std::string SpecFromArgv(const nlohmann::json& argv);

enum class SortKey { kState, kName, kMemory, kRequests };
std::string_view to_string(SortKey k);

class DashState {
 public:
  static constexpr int64_t kWindowMs = 60'000;  // p50 window
  static constexpr size_t kMaxRecentPerModel = 4096;

  void Apply(const control::FeedEvent& ev, int64_t now_ms);
  // The daemon went away: everything shown is stale until the next hello.
  void SetDisconnected(const std::string& why);

  // Running first (then by `sort`), filtered by a case-insensitive substring of the name.
  std::vector<ModelRow> Rows(int64_t now_ms, SortKey sort, const std::string& filter) const;

  bool connected() const { return connected_; }
  const std::string& disconnect_reason() const { return why_; }
  const std::string& proxy_url() const { return proxy_url_; }        // ".../v1"
  const std::string& proxy_base_url() const { return proxy_base_; }  // "http://127.0.0.1:11450"
  const std::string& version() const { return version_; }
  int daemon_pid() const { return pid_; }
  const control::Gauges& gauges() const { return gauges_; }
  uint64_t budget_bytes() const { return gauges_.budget_bytes != 0 ? gauges_.budget_bytes : budget_; }
  uint64_t lagged() const { return lagged_; }
  uint64_t requests_seen() const { return requests_seen_; }

 private:
  bool connected_ = false;
  std::string why_ = "connecting";
  std::string proxy_url_, proxy_base_, version_;
  int pid_ = 0;
  uint64_t budget_ = 0;
  control::Gauges gauges_;
  std::map<std::string, nlohmann::json> children_;
  std::vector<nlohmann::json> catalog_;
  std::map<std::string, std::deque<control::RequestEvent>> recent_;  // child (or model) -> last records
  uint64_t lagged_ = 0;
  uint64_t requests_seen_ = 0;
};

// "1.2G", "640M", "12K", "0".
std::string HumanBytes(uint64_t bytes);
// "12s", "3m05s", "2h01m".
std::string HumanDuration(int64_t seconds);

}  // namespace corral::tui
