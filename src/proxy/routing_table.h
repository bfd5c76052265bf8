// The routing snapshot: model name -> upstream endpoint for models that are ready now.
//
// Read on every request without a lock: the table is an immutable value behind a
// std::atomic<std::shared_ptr<const RouteMap>>; writers (the daemon's supervisor, or
// StaticProvider once) build a fresh map and swap it in with Publish(). A reader keeps the
// snapshot it loaded alive for as long as it holds the shared_ptr, so a swap never
// invalidates a lookup in progress.
//
// Thread-safety: all methods are safe from any thread. Ownership: the daemon owns the
// RoutingTable and outlives the Proxy that reads it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/model_provider.h"

namespace corral::proxy {

// An immutable snapshot (once published). Transparent lookup by string_view.
struct RouteMap {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Endpoint, Hash, std::equal_to<>> routes;
  uint64_t version = 0;  // increases with each Publish; for logs and tests
};

class RoutingTable {
 public:
  RoutingTable() : snapshot_(std::make_shared<const RouteMap>()) {}

  // The current snapshot; never null. Lock-free on the read side for practical purposes
  // (libstdc++ uses a short spin on the control block only while a swap is in progress).
  std::shared_ptr<const RouteMap> Load() const { return snapshot_.load(std::memory_order_acquire); }

  // Replaces the snapshot. `map.version` is set to the previous version + 1.
  void Publish(RouteMap map) {
    // Writers are rare (model state changes); serialise them so versions stay monotonic.
    std::shared_ptr<const RouteMap> prev = snapshot_.load(std::memory_order_acquire);
    for (;;) {
      map.version = prev->version + 1;
      auto next = std::make_shared<const RouteMap>(map);
      if (snapshot_.compare_exchange_weak(prev, next, std::memory_order_acq_rel)) return;
    }
  }

 private:
  std::atomic<std::shared_ptr<const RouteMap>> snapshot_;
};

}  // namespace corral::proxy
