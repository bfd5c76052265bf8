#include "daemon/activity.h"

#include "common/clock.h"
#include "control/api.h"
#include "daemon/router.h"

namespace corral::daemon {

Activity::Activity(Sources sources, control::FeedOptions options)
    : sources_(std::move(sources)), feed_(options, [this] { return GaugesNow(); }) {}

Activity::~Activity() {
  Close();
}

void Activity::Close() {
  feed_.Close();
}

void Activity::OnRequest(const std::string& model, const std::string& child, const proxy::RequestRecord& r) {
  control::RequestEvent e;
  e.ts_ms = UnixNowMs();
  e.route = std::string(r.route);
  e.model = model;
  e.child = child;
  e.status = r.status;
  e.ttft_ms = r.ttft_us >= 0 ? static_cast<double>(r.ttft_us) / 1000.0 : -1;
  e.tokens = r.tokens;
  e.tok_s = r.tok_per_s_milli >= 0 ? static_cast<double>(r.tok_per_s_milli) / 1000.0 : -1;
  e.duration_ms = static_cast<double>(r.duration_us) / 1000.0;
  e.proxy_added_us = r.proxy_added_us;
  e.draft_tokens = r.draft_tokens;
  e.draft_accepted = r.draft_accepted;
  e.client = std::string(r.client.substr(0, 64));
  {
    MutexLock lock(mu_);
    ++total_requests_;
    if (!child.empty() && (requests_.size() < 1024 || requests_.contains(child))) ++requests_[child];
  }
  feed_.PublishRequest(e);
}

void Activity::OnChildren(const std::vector<supervisor::ChildInfo>& children) {
  std::vector<std::string> lines;
  {
    MutexLock lock(mu_);
    std::map<std::string, uint64_t> seen;
    for (const auto& c : children) {
      seen[c.name] = c.generation;
      auto it = last_generation_.find(c.name);
      if (it != last_generation_.end() && it->second == c.generation) continue;
      lines.push_back(nlohmann::json{{"t", "model"}, {"model", control::ToJson(c)}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    for (const auto& [name, gen] : last_generation_) {
      if (!seen.contains(name)) {
        lines.push_back(nlohmann::json{{"t", "gone"}, {"name", name}}.dump());
        requests_.erase(name);
      }
    }
    last_generation_ = std::move(seen);
  }
  for (auto& l : lines) feed_.Publish(std::move(l));
}

control::Gauges Activity::GaugesNow() {
  control::Gauges g;
  g.ts_ms = UnixNowMs();
  const auto children = sources_.children();
  std::vector<ModelRouter::UsageRow> usage;
  if (sources_.router != nullptr) {
    usage = sources_.router->UsageSnapshot();
    g.queue = static_cast<int>(sources_.router->waiting());
  }
  g.budget_bytes = sources_.budget_bytes();
  g.reserved_bytes = sources_.reserved_bytes();
  {
    MutexLock lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (rate_at_ != std::chrono::steady_clock::time_point{}) {
      double secs = std::chrono::duration<double>(now - rate_at_).count();
      if (secs > 0) g.req_per_s = static_cast<double>(total_requests_ - rate_base_) / secs;
    }
    rate_base_ = total_requests_;
    rate_at_ = now;
    for (const auto& c : children) {
      control::ModelGauge m;
      m.name = c.name;
      m.rss_bytes = c.rss_bytes;
      g.used_bytes += c.rss_bytes;
      if (auto it = requests_.find(c.name); it != requests_.end()) m.requests = it->second;
      for (const auto& u : usage) {
        if (u.child != c.name) continue;
        m.in_flight = u.in_flight;
        m.pinned = u.pinned;
        m.ttl_left_s = u.ttl_left_s;
      }
      g.streams += m.in_flight;
      g.models.push_back(std::move(m));
    }
  }
  g.dropped_total = feed_.dropped_total();
  return g;
}

control::Response Activity::Stream(nlohmann::json hello) {
  hello["t"] = "hello";
  hello["v"] = control::kFeedVersion;
  auto sub = feed_.Subscribe(hello.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!sub) {
    return {503, control::ErrorBody(control::ErrorCode::kShuttingDown,
                                    "too many event-feed watchers (or the daemon is shutting down)")};
  }
  control::Response r;
  r.stream = [s = std::shared_ptr<control::EventFeed::Subscription>(std::move(sub))](
                 const std::function<bool(std::string_view)>& write) {
    for (;;) {
      auto text = s->Next(std::chrono::milliseconds(1000));
      if (!text) return;  // the feed closed: the daemon drains
      if (text->empty()) continue;
      if (!write(*text)) return;  // the watcher left (or its socket stayed full past the send timeout)
    }
  };
  return r;
}

}  // namespace corral::daemon
