// The routing snapshot: model name -> upstream endpoint for models that are ready now.
//
// Read on every request without a lock: writers (the daemon's supervisor, or
// StaticProvider once) build a fresh immutable RouteMap and Publish() it, which bumps an
// atomic version. Each proxy worker holds a RouteReader: per request it compares one
// atomic version number with the one it cached and only when it changed (a model started
// or stopped) copies the new shared_ptr under the table's mutex. The steady state is one
// acquire load per request, no lock, no reference-count traffic shared between threads.
// A snapshot stays valid for as long as a reader holds it, so a swap never invalidates a
// lookup in progress.
//
// (std::atomic<std::shared_ptr> would also do; libstdc++ 12 implements it with a lock bit
// inside the pointer that ThreadSanitizer cannot model, and the proxy must be TSan-clean.)
//
// Thread-safety: RoutingTable is safe from any thread; a RouteReader belongs to one thread.
// Ownership: the daemon owns the RoutingTable and outlives the Proxy that reads it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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
  uint64_t version = 0;  // increases with each Publish; for readers, logs and tests
};

class RoutingTable {
 public:
  RoutingTable() : snapshot_(std::make_shared<const RouteMap>()) {}

  // The current snapshot; never null. Takes the mutex: for RouteReader and slow paths.
  std::shared_ptr<const RouteMap> Load() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshot_;
  }

  // The version of the current snapshot (one atomic load).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Replaces the snapshot; `map.version` is set to the previous version + 1. Then calls the
  // publish hook, if any, on this thread and without the lock.
  void Publish(RouteMap map) {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      map.version = snapshot_->version + 1;
      snapshot_ = std::make_shared<const RouteMap>(std::move(map));
      version_.store(snapshot_->version, std::memory_order_release);
      hook = hook_;
    }
    if (hook) hook();
  }

  // Called after every Publish (the proxy-process host pushes the routes to its process).
  // Must be quick and must not Publish; nullptr removes it.
  void SetPublishHook(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = std::move(hook);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RouteMap> snapshot_;  // guarded by mu_
  std::function<void()> hook_;                // guarded by mu_
  std::atomic<uint64_t> version_{0};
};

// One thread's cached view of a RoutingTable. Not thread-safe: one per worker thread.
class RouteReader {
 public:
  explicit RouteReader(const RoutingTable& table) : table_(table) {}
  // The current snapshot; refreshed (under the table's mutex) only after a Publish.
  const RouteMap& Get() {
    if (!cached_ || table_.version() != cached_->version) cached_ = table_.Load();
    return *cached_;
  }

 private:
  const RoutingTable& table_;
  std::shared_ptr<const RouteMap> cached_;
};

}  // namespace corral::proxy
