#include "proxy/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace corral::proxy {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

namespace {
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
std::string Label(std::string_view labels, std::string_view extra) {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return "{" + std::string(extra) + "}";
  if (extra.empty()) return "{" + std::string(labels) + "}";
  return "{" + std::string(labels) + "," + std::string(extra) + "}";
}
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

void Histogram::Render(std::string& out, std::string_view name, std::string_view labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::string le = i < bounds_.size() ? Num(bounds_[i]) : "+Inf";
    out += std::string(name) + "_bucket" + Label(labels, "le=\"" + le + "\"") + " " + std::to_string(cumulative) + "\n";
  }
  out += std::string(name) + "_sum" + Label(labels, "") + " " + Num(sum_.load()) + "\n";
  out += std::string(name) + "_count" + Label(labels, "") + " " + std::to_string(count_.load()) + "\n";
}

ModelMetrics::ModelMetrics()
    : ttft_ms({5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}),
      tokens_per_s({1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000}) {}

Metrics::Metrics() : proxy_added_us_({10, 25, 50, 100, 250, 500, 1000, 2500, 10000}) {}

ModelMetrics& Metrics::For(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  // Names come from clients (any unique substring of a model routes): past the cap, new
  // spellings share one series instead of growing the map and /metrics without bound.
  auto& slot = models_.size() < kMaxModelSeries || models_.contains(model) ? models_[model] : models_[kOtherModels];
  if (!slot) slot = std::make_unique<ModelMetrics>();
  return *slot;
}

std::string_view to_string(Refusal r) {
  switch (r) {
    case Refusal::kConnections: return "connections";
    case Refusal::kClientConnections: return "client_connections";
    case Refusal::kBodyBudget: return "body_budget";
    case Refusal::kFraming: return "framing";
    case Refusal::kHost: return "host";
    case Refusal::kOrigin: return "origin";
    case Refusal::kJsonDepth: return "json_depth";
    case Refusal::kModelName: return "model_name";
    case Refusal::kAuth: return "auth";
  }
  return "unknown";
}

UpstreamTimings ParseTimingsTail(std::string_view tail) {
  UpstreamTimings t;
  size_t at = tail.rfind("\"timings\"");
  if (at == std::string_view::npos) return t;
  std::string_view obj = tail.substr(at);
  size_t close = obj.find('}');
  if (close != std::string_view::npos) obj = obj.substr(0, close);
  auto read = [&](std::string_view key) -> double {
    size_t k = obj.find(key);
    if (k == std::string_view::npos) return -1;
    size_t colon = obj.find(':', k + key.size());
    if (colon == std::string_view::npos) return -1;
    std::string num(obj.substr(colon + 1, 40));
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    return end == num.c_str() ? -1 : v;
  };
  t.prompt_ms = read("\"prompt_ms\"");
  t.predicted_per_second = read("\"predicted_per_second\"");
  t.predicted_n = read("\"predicted_n\"");
  // The key's closing quote keeps "draft_n" from matching "draft_n_accepted". A missing key
  // reads -1 and fails the range check like any other bad value: both stay -1.
  const double drafted = read("\"draft_n\"");
  const double accepted = read("\"draft_n_accepted\"");
  auto whole = [](double v) { return std::isfinite(v) && v >= 0 && v <= kMaxDraftTokens && v == std::floor(v); };
  if (whole(drafted) && whole(accepted) && accepted <= drafted) {
    t.draft_n = static_cast<int64_t>(drafted);
    t.draft_accepted = static_cast<int64_t>(accepted);
  }
  return t;
}

std::string Metrics::Render() const {
  std::string out;
  out += "# HELP corral_proxy_connections_total Client connections accepted.\n";
  out += "# TYPE corral_proxy_connections_total counter\n";
  out += "corral_proxy_connections_total " + std::to_string(connections_total.load()) + "\n";
  out += "# TYPE corral_proxy_connections_open gauge\n";
  out += "corral_proxy_connections_open " + std::to_string(connections_open.load()) + "\n";
  out += "# TYPE corral_proxy_requests_unrouted_total counter\n";
  out += "corral_proxy_requests_unrouted_total " + std::to_string(requests_unrouted.load()) + "\n";
  out += "# TYPE corral_proxy_upstream_retries_total counter\n";
  out += "corral_proxy_upstream_retries_total " + std::to_string(upstream_retries.load()) + "\n";
  out += "# HELP corral_proxy_accept_pauses_total Times accepting paused for lack of descriptors or memory.\n";
  out += "# TYPE corral_proxy_accept_pauses_total counter\n";
  out += "corral_proxy_accept_pauses_total " + std::to_string(accept_pauses.load()) + "\n";
  out += "# HELP corral_proxy_max_open_files The open-file limit the proxy runs with.\n";
  out += "# TYPE corral_proxy_max_open_files gauge\n";
  out += "corral_proxy_max_open_files " + std::to_string(max_open_files.load()) + "\n";
  out += "# TYPE corral_proxy_queue_depth gauge\n";
  out += "corral_proxy_queue_depth " + std::to_string(queue_depth.load()) + "\n";
  out += "# HELP corral_proxy_buffered_body_bytes Request body bytes buffered (max_buffered_body_bytes).\n";
  out += "# TYPE corral_proxy_buffered_body_bytes gauge\n";
  out += "corral_proxy_buffered_body_bytes " + std::to_string(buffered_body_bytes.load()) + "\n";
  out += "# HELP corral_proxy_refused_total Connections and requests refused by a limit or a hostile-input check.\n";
  out += "# TYPE corral_proxy_refused_total counter\n";
  for (size_t i = 0; i < kRefusalKinds; ++i) {
    out += "corral_proxy_refused_total{reason=\"" + std::string(to_string(static_cast<Refusal>(i))) + "\"} " +
           std::to_string(refused_[i].load()) + "\n";
  }
  out += "# HELP corral_proxy_added_latency_us Time from a request fully read to it written upstream.\n";
  out += "# TYPE corral_proxy_added_latency_us histogram\n";
  proxy_added_us_.Render(out, "corral_proxy_added_latency_us", "");
  std::lock_guard<std::mutex> lock(mu_);
  const char* kHeads[][2] = {{"requests_total", "counter"}, {"errors_total", "counter"}, {"in_flight", "gauge"}};
  for (auto& head : kHeads) {
    out += std::string("# TYPE corral_model_") + head[0] + " " + head[1] + "\n";
    for (const auto& [name, m] : models_) {
      std::string v = head[0][0] == 'r'   ? std::to_string(m->requests.load())
                      : head[0][0] == 'e' ? std::to_string(m->errors.load())
                                          : std::to_string(m->in_flight.load());
      out += std::string("corral_model_") + head[0] + "{model=\"" + Escape(name) + "\"} " + v + "\n";
    }
  }
  out += "# HELP corral_model_ttft_ms Upstream time to first token (timings.prompt_ms).\n";
  out += "# TYPE corral_model_ttft_ms histogram\n";
  for (const auto& [name, m] : models_)
    m->ttft_ms.Render(out, "corral_model_ttft_ms", "model=\"" + Escape(name) + "\"");
  out += "# HELP corral_model_tokens_per_second Upstream decode speed (timings.predicted_per_second).\n";
  out += "# TYPE corral_model_tokens_per_second histogram\n";
  for (const auto& [name, m] : models_) {
    m->tokens_per_s.Render(out, "corral_model_tokens_per_second", "model=\"" + Escape(name) + "\"");
  }
  // Speculative decoding: acceptance = rate(accepted) / rate(draft_tokens).
  out += "# HELP corral_model_draft_tokens_total Tokens proposed by speculative decoding (timings.draft_n).\n";
  out += "# TYPE corral_model_draft_tokens_total counter\n";
  for (const auto& [name, m] : models_) {
    out += "corral_model_draft_tokens_total{model=\"" + Escape(name) + "\"} " + std::to_string(m->draft_tokens.load()) +
           "\n";
  }
  out += "# HELP corral_model_draft_accepted_total Proposed tokens the model accepted (timings.draft_n_accepted).\n";
  out += "# TYPE corral_model_draft_accepted_total counter\n";
  for (const auto& [name, m] : models_) {
    out += "corral_model_draft_accepted_total{model=\"" + Escape(name) + "\"} " +
           std::to_string(m->draft_accepted.load()) + "\n";
  }
  return out;
}

}  // namespace corral::proxy
