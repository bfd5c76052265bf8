#include "proxy/key_metrics.h"

#include <charconv>

namespace corral::proxy {

KeyCounters& KeyMetrics::For(const std::string& key_name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = keys_.find(key_name);
  if (it != keys_.end()) return *it->second;
  const std::string& name = keys_.size() < kMaxKeySeries ? key_name : std::string("other");
  auto& slot = keys_[name];
  if (!slot) slot = std::make_unique<KeyCounters>();
  return *slot;
}

std::string KeyMetrics::Render() const {
  std::string out;
  out += "# HELP corral_auth_failures_total Requests refused for a missing or invalid API key (401).\n";
  out += "# TYPE corral_auth_failures_total counter\n";
  out += "corral_auth_failures_total " + std::to_string(auth_failures.load(std::memory_order_relaxed)) + "\n";
  out += "# HELP corral_auth_delayed_total Failed-auth answers held back (repeated failures from one address).\n";
  out += "# TYPE corral_auth_delayed_total counter\n";
  out += "corral_auth_delayed_total " + std::to_string(auth_delayed.load(std::memory_order_relaxed)) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  if (keys_.empty()) return out;
  auto family = [&](const char* name, const char* help, auto field) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
    for (const auto& [k, c] : keys_) {
      out += std::string(name) + "{key=\"" + k + "\"} " + std::to_string((c.get()->*field).load()) + "\n";
    }
  };
  // Key names are [A-Za-z0-9._@-] (auth/keys.cc): safe in a label without escaping.
  family("corral_key_requests_total", "Requests authenticated with this API key.", &KeyCounters::requests);
  family("corral_key_refused_total", "Requests of this key outside its scope (403).", &KeyCounters::refused);
  family("corral_key_prompt_tokens_total", "Prompt tokens of this key's inference requests.",
         &KeyCounters::prompt_tokens);
  family("corral_key_completion_tokens_total", "Generated tokens of this key's inference requests.",
         &KeyCounters::completion_tokens);
  return out;
}

namespace {
int64_t LastNumberAfter(std::string_view tail, std::string_view key) {
  size_t at = tail.rfind(key);
  if (at == std::string_view::npos) return -1;
  size_t i = at + key.size();
  while (i < tail.size() && (tail[i] == ' ' || tail[i] == ':')) ++i;
  int64_t v = -1;
  auto r = std::from_chars(tail.data() + i, tail.data() + tail.size(), v);
  return r.ec == std::errc() ? v : -1;
}
}  // namespace

TokenCounts ParseTokenCounts(std::string_view tail) {
  TokenCounts t;
  t.prompt = LastNumberAfter(tail, "\"prompt_n\"");
  t.completion = LastNumberAfter(tail, "\"predicted_n\"");
  if (t.prompt < 0) t.prompt = LastNumberAfter(tail, "\"prompt_tokens\"");
  if (t.completion < 0) t.completion = LastNumberAfter(tail, "\"completion_tokens\"");
  return t;
}

}  // namespace corral::proxy
