#include "control/feed.h"

#include <cmath>

#include "control/api.h"

namespace corral::control {
namespace {

using json = nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Rounded for the wire: three decimals are more than a dashboard shows.
double Round3(double v) {
  return v < 0 ? -1 : std::round(v * 1000) / 1000;
}

template <typename T>
T Get(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();  // wrong type: throws, caught at the edge (ParseFeedLine)
}

}  // namespace

std::string EncodeRequest(const RequestEvent& e) {
  json j = {{"t", "request"},
            {"ts_ms", e.ts_ms},
            {"route", e.route},
            {"model", e.model},
            {"child", e.child},
            {"status", e.status},
            {"ttft_ms", Round3(e.ttft_ms)},
            {"tokens", e.tokens},
            {"tok_s", Round3(e.tok_s)},
            {"duration_ms", Round3(e.duration_ms)},
            {"proxy_added_us", e.proxy_added_us},
            {"client", e.client}};
  if (e.draft_tokens >= 0) {  // only from a model that drafts: other lines keep their shape
    j["draft_tokens"] = e.draft_tokens;
    j["draft_accepted"] = e.draft_accepted;
  }
  return Dump(j);
}

std::string EncodeGauges(const Gauges& g) {
  json models = json::array();
  for (const auto& m : g.models) {
    models.push_back({{"name", m.name},
                      {"in_flight", m.in_flight},
                      {"rss_bytes", m.rss_bytes},
                      {"pinned", m.pinned},
                      {"ttl_left_s", m.ttl_left_s},
                      {"requests", m.requests}});
  }
  return Dump({{"t", "gauges"},
               {"ts_ms", g.ts_ms},
               {"req_per_s", Round3(g.req_per_s)},
               {"streams", g.streams},
               {"queue", g.queue},
               {"memory",
                {{"budget_bytes", g.budget_bytes}, {"reserved_bytes", g.reserved_bytes}, {"used_bytes", g.used_bytes}}},
               {"dropped_total", g.dropped_total},
               {"models", models}});
}

Result<FeedEvent> ParseFeedLine(std::string_view line) {
  auto parsed = ParseJsonBounded(line, JsonLimits{kMaxFeedLineBytes, 16});
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Status(StatusCode::kCorrupt, "feed line is not a JSON object");
  auto t = j.find("t");
  if (t == j.end() || !t->is_string()) return Status(StatusCode::kCorrupt, "feed line without \"t\"");
  const std::string type = t->get<std::string>();
  FeedEvent ev;
  try {
    if (type == "hello") {
      ev.type = FeedEvent::Type::kHello;
      if (Get<int>(j, "v", 0) < 1) return Status(StatusCode::kCorrupt, "hello without a version");
      ev.body = j;
    } else if (type == "model") {
      ev.type = FeedEvent::Type::kModel;
      const json& m = j.at("model");
      if (!m.is_object() || !m.contains("name") || !m["name"].is_string() || !m.contains("state") ||
          !m["state"].is_string()) {
        return Status(StatusCode::kCorrupt, "model line without name and state");
      }
      ev.body = m;
    } else if (type == "gone") {
      ev.type = FeedEvent::Type::kGone;
      ev.name = j.at("name").get<std::string>();
    } else if (type == "request") {
      ev.type = FeedEvent::Type::kRequest;
      RequestEvent& r = ev.request;
      r.ts_ms = Get<int64_t>(j, "ts_ms", 0);
      r.route = Get<std::string>(j, "route", "");
      r.model = j.at("model").get<std::string>();
      r.child = Get<std::string>(j, "child", "");
      r.status = Get<int>(j, "status", 0);
      r.ttft_ms = Get<double>(j, "ttft_ms", -1);
      r.tokens = Get<int64_t>(j, "tokens", -1);
      r.tok_s = Get<double>(j, "tok_s", -1);
      r.duration_ms = Get<double>(j, "duration_ms", 0);
      r.proxy_added_us = Get<int64_t>(j, "proxy_added_us", -1);
      r.draft_tokens = Get<int64_t>(j, "draft_tokens", -1);
      r.draft_accepted = Get<int64_t>(j, "draft_accepted", -1);
      r.client = Get<std::string>(j, "client", "");
    } else if (type == "gauges") {
      ev.type = FeedEvent::Type::kGauges;
      Gauges& g = ev.gauges;
      g.ts_ms = Get<int64_t>(j, "ts_ms", 0);
      g.req_per_s = Get<double>(j, "req_per_s", 0);
      g.streams = Get<int>(j, "streams", 0);
      g.queue = Get<int>(j, "queue", 0);
      g.dropped_total = Get<uint64_t>(j, "dropped_total", 0);
      if (auto mem = j.find("memory"); mem != j.end()) {
        if (!mem->is_object()) return Status(StatusCode::kCorrupt, "gauges: memory is not an object");
        g.budget_bytes = Get<uint64_t>(*mem, "budget_bytes", 0);
        g.reserved_bytes = Get<uint64_t>(*mem, "reserved_bytes", 0);
        g.used_bytes = Get<uint64_t>(*mem, "used_bytes", 0);
      }
      if (auto ms = j.find("models"); ms != j.end()) {
        if (!ms->is_array()) return Status(StatusCode::kCorrupt, "gauges: models is not an array");
        for (const auto& m : *ms) {
          if (!m.is_object()) return Status(StatusCode::kCorrupt, "gauges: a model is not an object");
          ModelGauge mg;
          mg.name = m.at("name").get<std::string>();
          mg.in_flight = Get<int>(m, "in_flight", 0);
          mg.rss_bytes = Get<uint64_t>(m, "rss_bytes", 0);
          mg.pinned = Get<bool>(m, "pinned", false);
          mg.ttl_left_s = Get<int64_t>(m, "ttl_left_s", -1);
          mg.requests = Get<uint64_t>(m, "requests", 0);
          g.models.push_back(std::move(mg));
        }
      }
    } else if (type == "lagged") {
      ev.type = FeedEvent::Type::kLagged;
      if (!j.at("dropped").is_number_unsigned()) return Status(StatusCode::kCorrupt, "lagged: bad count");
      ev.dropped = j.at("dropped").get<uint64_t>();
    } else {
      ev.type = FeedEvent::Type::kUnknown;
    }
  } catch (const json::exception& e) {
    return Status(StatusCode::kCorrupt, "feed line '" + type + "': " + e.what());
  }
  return ev;
}

Status LineSplitter::Add(std::string_view bytes, std::vector<std::string>& out) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    if (partial_.size() + piece.size() > kMaxFeedLineBytes) {
      partial_.clear();
      return Status(StatusCode::kResourceExhausted,
                    "feed line longer than " + std::to_string(kMaxFeedLineBytes) + " bytes");
    }
    partial_.append(piece);
    if (nl == std::string_view::npos) break;
    out.push_back(std::move(partial_));
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

// ---- EventFeed ----

struct EventFeed::Subscription::State {
  std::deque<Line> queue;  // GUARDED_BY(feed mu_)
  uint64_t dropped = 0;    // since the last Next(); GUARDED_BY(feed mu_)
};

EventFeed::Subscription::~Subscription() {
  feed_->Unsubscribe(state_);
}

std::optional<std::string> EventFeed::Subscription::Next(std::chrono::milliseconds timeout) {
  std::deque<Line> lines;
  uint64_t dropped = 0;
  {
    std::unique_lock<std::mutex> lock(feed_->mu_);
    feed_->cv_.wait_for(lock, timeout, [&] { return feed_->closed_ || !state_->queue.empty() || state_->dropped; });
    if (feed_->closed_) return std::nullopt;
    lines.swap(state_->queue);
    dropped = std::exchange(state_->dropped, 0);
  }
  std::string out;
  if (dropped != 0) out += Dump({{"t", "lagged"}, {"dropped", dropped}}) + "\n";
  for (const auto& l : lines) {
    out += *l;
    out += '\n';
  }
  return out;
}

EventFeed::EventFeed(FeedOptions options, std::function<Gauges()> gauges)
    : options_(options), gauges_(std::move(gauges)) {
  if (gauges_) ticker_ = std::thread([this] { Ticker(); });
}

EventFeed::~EventFeed() {
  Close();
}

void EventFeed::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  tick_cv_.notify_all();
  if (ticker_.joinable() && ticker_.get_id() != std::this_thread::get_id()) ticker_.join();
}

std::unique_ptr<EventFeed::Subscription> EventFeed::Subscribe(std::string hello) {
  auto state = std::make_shared<Subscription::State>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || subs_.size() >= options_.max_subscribers) return nullptr;
    state->queue.push_back(std::make_shared<const std::string>(std::move(hello)));
    for (const auto& h : history_) state->queue.push_back(h);
    subs_.push_back(state);
  }
  tick_cv_.notify_all();  // the ticker starts ticking for the first watcher
  return std::unique_ptr<Subscription>(new Subscription(this, std::move(state)));
}

void EventFeed::Unsubscribe(const std::shared_ptr<Subscription::State>& s) {
  std::lock_guard<std::mutex> lock(mu_);
  subs_.remove(s);
}

void EventFeed::PublishLocked(const Line& line) {
  for (auto& s : subs_) {
    if (s->queue.size() >= options_.queue_records) {
      ++s->dropped;
      ++dropped_total_;
    } else {
      s->queue.push_back(line);
    }
  }
}

void EventFeed::Publish(std::string line) {
  auto l = std::make_shared<const std::string>(std::move(line));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (subs_.empty()) return;
    PublishLocked(l);
  }
  cv_.notify_all();
}

void EventFeed::PublishRequest(const RequestEvent& e) {
  auto l = std::make_shared<const std::string>(EncodeRequest(e));
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    history_.push_back(l);
    while (history_.size() > options_.history) history_.pop_front();
    any = !subs_.empty();
    if (any) PublishLocked(l);
  }
  if (any) cv_.notify_all();
}

size_t EventFeed::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subs_.size();
}

uint64_t EventFeed::dropped_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_total_;
}

void EventFeed::Ticker() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    if (subs_.empty()) {  // nobody watches: no work at all
      tick_cv_.wait(lock, [&] { return closed_ || !subs_.empty(); });
      continue;
    }
    tick_cv_.wait_for(lock, options_.gauge_interval, [&] { return closed_; });
    if (closed_ || subs_.empty()) continue;
    lock.unlock();
    Gauges g = gauges_();  // the daemon's numbers; takes its own locks, never the feed's
    std::string line = EncodeGauges(g);
    lock.lock();
    if (closed_) break;
    PublishLocked(std::make_shared<const std::string>(std::move(line)));
    cv_.notify_all();
  }
}

}  // namespace corral::control
