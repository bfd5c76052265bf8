// Proxy metrics, rendered as Prometheus text on GET /metrics.
//
// Per-model counters and histograms are atomics inside a ModelMetrics that lives as long
// as the Metrics object; For() takes a mutex only to find or create one, and proxy workers
// cache the pointer per model, so a request touches no lock here and the per-token relay
// path touches nothing at all (timings are parsed once, from the end of a response).
//
// Thread-safety: all methods safe from any thread. Ownership: owned by the Proxy.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace corral::proxy {

// A fixed-bucket histogram (Prometheus "le" buckets, cumulative at render time).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  // Appends `name{labels,le="..."}` lines, _sum and _count.
  void Render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (+Inf)
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

struct ModelMetrics {
  ModelMetrics();
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};  // answered >= 400 by the proxy or upstream, or cut
  std::atomic<int64_t> in_flight{0};
  Histogram ttft_ms;       // upstream timings.prompt_ms (time to first token)
  Histogram tokens_per_s;  // upstream timings.predicted_per_second
  // Speculative decoding (issue 17): tokens the draft proposed and those the model accepted,
  // summed over responses whose timings carry draft_n / draft_n_accepted.
  std::atomic<uint64_t> draft_tokens{0};
  std::atomic<uint64_t> draft_accepted{0};
};

// The numbers the proxy reads from the upstream's final `timings` object.
struct UpstreamTimings {
  double prompt_ms = -1;
  double predicted_per_second = -1;
  double predicted_n = -1;  // tokens generated
  // Speculative decoding: llama-server adds draft_n and draft_n_accepted when a draft (or
  // MTP heads) proposed tokens for this response. Whole numbers, 0 <= accepted <= draft <=
  // kMaxDraftTokens; both -1 when absent or malformed (one missing, negative, fractional
  // garbage, not finite, accepted > drafted, or beyond the bound).
  int64_t draft_n = -1;
  int64_t draft_accepted = -1;
};
inline constexpr int64_t kMaxDraftTokens = int64_t{1} << 40;  // per response; far past any context
// Finds the last "timings" object in `tail` (the last bytes of a response) and reads its
// prompt_ms, predicted_per_second, predicted_n, draft_n and draft_n_accepted. Fields not
// found stay -1.
UpstreamTimings ParseTimingsTail(std::string_view tail);

// Why the proxy refused a connection or a request before forwarding it (issue 11):
// corral_proxy_refused_total{reason="..."}.
enum class Refusal {
  kConnections,        // max_connections: connection answered 503 and closed
  kClientConnections,  // max_connections_per_client
  kBodyBudget,         // max_buffered_body_bytes: 503
  kFraming,            // Transfer-Encoding / Content-Length smuggling attempt: 400
  kHost,               // Host not a loopback name on a loopback listener (DNS rebinding): 421
  kOrigin,             // Origin not allowed (CSRF from a web page): 403
  kJsonDepth,          // body nested deeper than max_json_depth: 400
  kModelName,          // control characters in the model name: 400
  kAuth,               // API key missing or invalid (401) or outside its scope (403) (issue 13)
};
inline constexpr size_t kRefusalKinds = 9;
std::string_view to_string(Refusal r);

class Metrics {
 public:
  static constexpr size_t kMaxModelSeries = 256;          // distinct model labels
  static constexpr const char* kOtherModels = "(other)";  // every name past the cap
  Metrics();
  ModelMetrics& For(const std::string& model);  // locks; cache the result
  void ObserveProxyAdded(double microseconds) { proxy_added_us_.Observe(microseconds); }
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> requests_unrouted{0};   // errors before a model was known
  std::atomic<uint64_t> upstream_retries{0};    // stale pooled connection replays
  std::atomic<uint64_t> accept_pauses{0};       // accept paused: out of descriptors or memory
  std::atomic<uint64_t> max_open_files{0};      // RLIMIT_NOFILE soft limit in force
  std::atomic<uint64_t> queue_depth{0};         // requests waiting on EnsureReady
  std::atomic<int64_t> buffered_body_bytes{0};  // request body bytes charged against max_buffered_body_bytes
  void CountRefusal(Refusal r) { refused_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t refusals(Refusal r) const { return refused_[static_cast<size_t>(r)].load(std::memory_order_relaxed); }
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ModelMetrics>> models_;  // guarded by mu_
  Histogram proxy_added_us_;
  std::atomic<uint64_t> refused_[kRefusalKinds] = {};
};

}  // namespace corral::proxy
