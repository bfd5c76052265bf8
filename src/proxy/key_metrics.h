// Per-API-key counters for /metrics (issue 13): requests and tokens by key name (never the
// secret). Series are bounded (kMaxKeySeries); beyond it keys share the "other" series.
//
// Thread-safety: thread-safe. For() takes a mutex (once per authenticated request, never
// per token); the counters are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace corral::proxy {

struct KeyCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> refused{0};  // valid key, route or model outside its scope
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> completion_tokens{0};
};

class KeyMetrics {
 public:
  static constexpr size_t kMaxKeySeries = 1000;
  KeyCounters& For(const std::string& key_name);
  std::atomic<uint64_t> auth_failures{0};  // missing or invalid credentials (401)
  std::atomic<uint64_t> auth_delayed{0};   // of those, answers held back (repeated failures)
  // Prometheus text (appended to /metrics).
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<KeyCounters>> keys_;  // guarded by mu_
};

struct TokenCounts {
  int64_t prompt = -1;
  int64_t completion = -1;
};
// The token counts in the last `timings` (llama-server: prompt_n, predicted_n) or OpenAI
// `usage` (prompt_tokens, completion_tokens) object found in `tail`. -1 when absent.
TokenCounts ParseTokenCounts(std::string_view tail);

}  // namespace corral::proxy
