// Config reload: the running config, and a changed config.yaml applied to the running parts.
// Job: own the running config and apply a new one (SIGHUP, POST /v1/reload, the watcher).
//
// Reload reads config.yaml (and the environment) again and applies what a running daemon
// can: aliases, the catalog's paths and caches, TTLs, the memory budget, health and stop
// timeouts, log_level and the per-model settings. Options owned by the proxy's data plane
// and the listen address keep their running value and are reported as needing a restart
// (the proxy's body limit and timeouts are applied through `proxy_limits`). A file that does
// not parse or validate changes nothing. Never touches a running child or a request in
// flight.
//
// Thread-safety: every method from any thread; reloads (and catalog refreshes) are
// serialised by `reload_mu_`; the running config and the counters are read under their own
// mutexes, never while a reload holds the parts.
// Ownership: refers to the supervisor and router, which must outlive it (the daemon destroys
// it first).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/thread_annotations.h"
#include "config/options.h"
#include "control/routes.h"

namespace corral::supervisor {
class Supervisor;
}

namespace corral::daemon {

class ModelRouter;

class ConfigReloader {
 public:
  // The proxy's limits a reload may change at once (max_body_bytes, client and upstream timeouts).
  using ProxyLimits = std::function<void(uint64_t, std::chrono::milliseconds, std::chrono::milliseconds)>;
  struct Parts {
    supervisor::Supervisor& supervisor;
    ModelRouter& router;
    ProxyLimits proxy_limits;
    const std::atomic<bool>& shutting_down;  // true: every reload is refused
  };
  // `running`: the config the parts were built from; `budget`: its memory budget in bytes.
  ConfigReloader(config::Config running, uint64_t total_memory_bytes, uint64_t budget, Parts parts);
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  control::ReloadOutcome Reload(const std::string& trigger) CORRAL_EXCLUDES(reload_mu_, config_mu_, mu_);
  // `corral pull` finished: the router rescans the catalog with the running config.
  void RefreshCatalog() CORRAL_EXCLUDES(reload_mu_, config_mu_);

  config::Config Current() const CORRAL_EXCLUDES(config_mu_);
  uint64_t Budget() const CORRAL_EXCLUDES(config_mu_);
  control::ReloadStats Stats() const CORRAL_EXCLUDES(mu_);
  void SetWatching(bool watching) CORRAL_EXCLUDES(mu_);

 private:
  control::ReloadOutcome Apply(const std::string& trigger) CORRAL_REQUIRES(reload_mu_);
  void Record(const control::ReloadOutcome& outcome) CORRAL_EXCLUDES(mu_);

  const uint64_t total_memory_;
  Parts parts_;
  Mutex reload_mu_;  // serialises Reload and RefreshCatalog
  mutable Mutex config_mu_;
  config::Config config_ CORRAL_GUARDED_BY(config_mu_);
  uint64_t budget_ CORRAL_GUARDED_BY(config_mu_);
  mutable Mutex mu_;
  control::ReloadStats stats_ CORRAL_GUARDED_BY(mu_);
};

}  // namespace corral::daemon
