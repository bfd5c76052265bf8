// The daemon's side of the control routes (control/routes.h).
// Job: answer the routes' questions over the daemon's parts (supervisor, router, catalog,
// config, bench runs, event feed) with plain values; no JSON is built here.
//
// Thread-safety: every method from any control thread; the parts are thread-safe and the
// facts fixed at Init are read-only.
// Ownership: refers to parts the daemon owns; the daemon destroys it before them (after the
// control server stopped).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "control/routes.h"

namespace corral::edge {
class ProxyHost;
}

namespace corral::daemon {

class Activity;
class BenchRuns;
class ConfigReloader;
class ModelRouter;

class ControlServices final : public control::Services {
 public:
  struct Parts {
    supervisor::Supervisor& supervisor;
    ModelRouter& router;
    ConfigReloader& reloader;
    BenchRuns& bench;
    Activity& activity;
    const edge::ProxyHost* proxy_host;  // null when the proxy runs in the daemon
    const std::atomic<bool>& shutting_down;
    std::function<void()> request_shutdown;
  };
  // What Init learnt and never changes afterwards.
  struct Fixed {
    std::chrono::system_clock::time_point started;
    std::string llama_server;  // empty: none found (engine_error says why)
    std::string engine_error;
    uint64_t total_memory_bytes = 0;
    std::string proxy_url;  // "http://HOST:PORT"
    std::vector<std::string> lan_warnings;
    std::vector<std::string> notices;  // about the previous daemon (state_file.h)
  };
  ControlServices(Parts parts, Fixed fixed) : parts_(std::move(parts)), fixed_(std::move(fixed)) {}

  std::vector<supervisor::ChildInfo> Children() override;
  Result<supervisor::ChildInfo> Child(const std::string& name) override;
  Result<supervisor::ChildInfo> WaitForChange(const std::string& name, uint64_t generation,
                                              std::chrono::milliseconds timeout) override;
  Result<supervisor::ChildInfo> Stop(const std::string& name) override;
  Result<std::string> ChildForReference(const std::string& ref, bool for_logs) override;
  control::SpecView Spec(const supervisor::ChildInfo& child) override;
  control::StartAnswer Start(const control::StartRequest& request) override;
  void SetPinned(const std::string& child, bool pinned) override;
  void UnloadWhenIdle(const std::string& child) override;
  std::vector<control::CatalogRow> Catalog() override;
  control::DaemonFacts Facts() override;
  control::ReloadOutcome Reload(const std::string& trigger) override;
  void RefreshCatalog() override;
  void RequestShutdown() override { parts_.request_shutdown(); }
  bool ShuttingDown() override { return parts_.shutting_down.load(); }
  std::string LogDir() override;
  control::Response FollowLog(const std::string& name, const std::string& path, bool running, size_t lines) override;
  nlohmann::json BenchList() override;
  Result<nlohmann::json> BenchReport(const std::string& id) override;
  Status StartBench(const std::string& child, const std::string& direct_url, const std::string& proxy_url,
                    int runs) override;
  nlohmann::json BenchRun() override;
  control::Response Events(nlohmann::json hello) override;

 private:
  Parts parts_;
  const Fixed fixed_;
};

}  // namespace corral::daemon
