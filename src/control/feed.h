// The event feed: everything the daemon knows that changes, pushed to watchers (the terminal
// dashboard, the web dashboard) instead of polled. Built once here; docs/feed.md has the
// wire format and the rules.
//
// Wire: `GET /v1/events` on the control socket answers 200 with Content-Type
// application/x-ndjson and no length (the body ends when the connection closes); then one
// JSON object per line, each with "t":
//   hello    first line: daemon, proxy URL, memory, running models, catalog, feed limits
//   model    a child changed (state, pid, failure...): {"t":"model","model":{...as /v1/ps}}
//   gone     a child was forgotten (stopped): {"t":"gone","name":"..."}
//   request  one finished request: route, model, status, ttft_ms, tokens, tok_s,
//            duration_ms, proxy_added_us, and with speculative decoding draft_tokens and
//            draft_accepted (numbers only, never prompt or answer text)
//   gauges   once a second: req_per_s, streams, queue, memory, per-model in-flight/RSS/TTL
//   lagged   this watcher fell behind and `dropped` records were not sent to it
// After hello, the last `history` request records are replayed (oldest first), so a
// dashboard opened late still has a minute of numbers.
//
// Bounds: at most `max_subscribers` watchers (the next one gets 503); each has a queue of
// `queue_records` lines; when a watcher's socket does not drain and its queue is full, new
// records for it are dropped and counted (it gets one "lagged" line when it catches up), so a
// stuck watcher costs a fixed amount of memory and never slows a publisher. A publisher
// (the supervisor's monitor thread, the proxy host's thread, the gauge ticker) takes one
// mutex for a few pointer pushes; each line is serialised once for every watcher.
//
// Thread-safety: EventFeed and Subscription methods are safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "common/status.h"

namespace corral::control {

inline constexpr int kFeedVersion = 1;
inline constexpr size_t kMaxFeedLineBytes = 1U << 20;  // a hello with a large catalog fits

struct FeedOptions {
  size_t max_subscribers = 16;
  size_t queue_records = 2048;  // per watcher: ~2 s of a busy proxy
  size_t history = 256;         // request records replayed to a new watcher
  std::chrono::milliseconds gauge_interval{1000};
};

// One finished request (control's copy of proxy::RequestRecord). Plain value.
struct RequestEvent {
  int64_t ts_ms = 0;  // wall clock, Unix ms, when it finished
  std::string route;
  std::string model;    // as the client named it
  std::string child;    // the running model that served it; "" = unknown
  int status = 0;       // 499: cut mid-response (client left or upstream broke)
  double ttft_ms = -1;  // -1 = unknown
  int64_t tokens = -1;
  double tok_s = -1;
  double duration_ms = 0;
  int64_t proxy_added_us = -1;
  int64_t draft_tokens = -1;    // speculative decoding: timings.draft_n; -1 = none (then not sent)
  int64_t draft_accepted = -1;  // timings.draft_n_accepted
  std::string client;           // the client's IP address; "" = unknown
};
std::string EncodeRequest(const RequestEvent& e);

// One model's row in the gauges. Plain value.
struct ModelGauge {
  std::string name;
  int in_flight = 0;
  uint64_t rss_bytes = 0;
  bool pinned = false;
  int64_t ttl_left_s = -1;  // -1 = no TTL (pinned, or never unloaded)
  uint64_t requests = 0;    // finished requests since the daemon started
};
struct Gauges {
  int64_t ts_ms = 0;
  double req_per_s = 0;
  int streams = 0;  // requests in flight, all models
  int queue = 0;    // requests waiting for a model to start
  uint64_t budget_bytes = 0, reserved_bytes = 0, used_bytes = 0;
  uint64_t dropped_total = 0;  // records dropped for slow watchers since start
  std::vector<ModelGauge> models;
};
std::string EncodeGauges(const Gauges& g);

// A decoded feed line (client side: the TUI, tests). `model` and `hello` stay JSON: they
// carry the control API's own shapes (ToJson(ChildInfo), /v1/status parts).
// The implicit moves are nlohmann::json's, string's and vector's, all noexcept; clang-tidy's
// exception-escape cannot see through json's invariant assertions.
struct FeedEvent {  // NOLINT(bugprone-exception-escape)
  enum class Type { kHello, kModel, kGone, kRequest, kGauges, kLagged, kUnknown } type = Type::kUnknown;
  nlohmann::json body;   // kHello: the whole line; kModel: the "model" object
  std::string name;      // kGone
  RequestEvent request;  // kRequest
  Gauges gauges;         // kGauges
  uint64_t dropped = 0;  // kLagged
};
// Strict, bounded (kMaxFeedLineBytes, depth 16) parse of one line without its '\n'. Types
// it does not know are kUnknown (a newer daemon), never an error; wrong member types are
// kCorrupt. Fuzzed: fuzz_feed.
Result<FeedEvent> ParseFeedLine(std::string_view line);

// Splits a byte stream into lines; refuses a line longer than kMaxFeedLineBytes.
class LineSplitter {
 public:
  // Appends bytes; complete lines go to `out` (without '\n'). kResourceExhausted for an
  // oversized line (the stream is then unusable).
  Status Add(std::string_view bytes, std::vector<std::string>& out);

 private:
  std::string partial_;
};

class EventFeed {
 public:
  // A watcher's end. Destroying it unsubscribes.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // Waits up to `timeout` for lines and returns them joined ("...\n...\n"), with a
    // "lagged" line first if records were dropped since the last call. "" on timeout;
    // nullopt once the feed is closed.
    std::optional<std::string> Next(std::chrono::milliseconds timeout);

   private:
    friend class EventFeed;
    struct State;
    Subscription(EventFeed* feed, std::shared_ptr<State> state) : feed_(feed), state_(std::move(state)) {}
    EventFeed* feed_;
    std::shared_ptr<State> state_;  // shared with the feed's list; the list drops its copy on unsubscribe
  };

  // `gauges` is called on the feed's ticker thread once per interval while anyone watches.
  explicit EventFeed(FeedOptions options = {}, std::function<Gauges()> gauges = nullptr);
  ~EventFeed();  // Close()
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  // nullptr when `max_subscribers` already watch, or when closed. `hello` is the first line.
  std::unique_ptr<Subscription> Subscribe(std::string hello);
  // One line (no '\n'), to every watcher. Request lines also go to the replay history.
  void Publish(std::string line);
  void PublishRequest(const RequestEvent& e);
  size_t subscribers() const;
  uint64_t dropped_total() const;
  // Wakes every watcher (Next returns nullopt) and stops the ticker. Idempotent.
  void Close();

 private:
  using Line = std::shared_ptr<const std::string>;
  void PublishLocked(const Line& line);
  void Unsubscribe(const std::shared_ptr<Subscription::State>& s);
  void Ticker();

  const FeedOptions options_;
  std::function<Gauges()> gauges_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                            // watchers wait here
  std::condition_variable tick_cv_;                       // the ticker waits here
  std::list<std::shared_ptr<Subscription::State>> subs_;  // GUARDED_BY(mu_)
  std::deque<Line> history_;                              // GUARDED_BY(mu_)
  uint64_t dropped_total_ = 0;                            // GUARDED_BY(mu_)
  bool closed_ = false;                                   // GUARDED_BY(mu_)
  std::thread ticker_;
};

}  // namespace corral::control
