// StaticProvider: a fixed map model name -> upstream URL, for tests and for
// `corral proxy --upstream NAME=http://127.0.0.1:PORT`. Every model is always "ready";
// nothing is started or stopped. Publishes its map into a RoutingTable once.
//
// Thread-safety: all methods are safe from any thread (the map is immutable after
// construction; counters are atomics / a mutex). Ownership: plain object, caller owns.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "proxy/model_provider.h"
#include "proxy/routing_table.h"

namespace corral::proxy {

// Parses "http://HOST:PORT" (HOST an IP literal or "localhost"; optional trailing '/').
Result<Endpoint> ParseUpstreamUrl(std::string_view url);

class StaticProvider final : public ModelProvider {
 public:
  // `upstreams`: model name -> endpoint. Context sizes are unknown (0).
  explicit StaticProvider(std::map<std::string, Endpoint> upstreams);

  // Parses "NAME=http://HOST:PORT" specs (the --upstream flag).
  static Result<std::map<std::string, Endpoint>> ParseSpecs(const std::vector<std::string>& specs);

  // Publishes the fixed map into `table`.
  void PublishTo(RoutingTable& table) const;

  std::vector<ModelInfo> ListModels() const override;
  void EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                   std::function<void(EnsureResult)> done) override;
  void OnRequestStart(const std::string& model, const Endpoint& upstream) override;
  void OnRequestEnd(const std::string& model, const Endpoint& upstream) override;
  bool SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) override;

  // Test hooks: requests in flight for `model`, total starts seen, last keep-alive asked for.
  int InFlight(const std::string& model) const;
  uint64_t RequestsStarted() const { return started_.load(); }
  std::vector<std::pair<std::string, int64_t>> KeepAliveCalls() const;

 private:
  const std::map<std::string, Endpoint> upstreams_;
  mutable std::mutex mu_;
  std::map<std::string, int> in_flight_;                     // guarded by mu_
  std::vector<std::pair<std::string, int64_t>> keep_alive_;  // guarded by mu_
  std::atomic<uint64_t> started_{0};
};

}  // namespace corral::proxy
