// The proxy's slow path over the supervisor (proxy::ModelProvider for the daemon): starts
// models on demand, parks requests until their model is ready, evicts idle models
// least-recently-used first when memory is short, unloads idle models after their TTL,
// counts requests in flight, and publishes the routing table the proxy reads lock-free.
//
// Threads:
//   - proxy workers call EnsureReady / OnRequestStart / OnRequestEnd / SetKeepAlive /
//     ListModels: they take `mu_` briefly and never block on a child or the disk;
//   - one "starter" thread owned by the router does everything slow: resolving a name
//     through the catalog, Supervisor::Start (admission) and Stop (eviction, TTL),
//     waiter deadlines;
//   - the supervisor's monitor thread calls OnSupervisorChange() after any child changed:
//     it republishes the routes and answers the waiters of models that became ready or failed
//     (those of a model whose restart is pending keep waiting, within their deadlines).
// Callbacks (`done`) are always called without `mu_` held.
//
// Pinned models: children started through the control plane (`corral start`) are pinned:
// never evicted, never unloaded by TTL, and an Ollama keep_alive (0 or any other) from a
// request changes nothing for them. Children started on demand by a request are not,
// unless the config's `models:` section says `pinned: true` for their model.
//
// Names from requests (EnsureReady, SetKeepAlive) name catalog models only: a canonical
// name, an alias, an origin or a unique substring (Catalog::ResolveName; never a path), or
// a running child's own name. A name belongs to one file: a name the catalog gives to
// file F (canonical or alias) routes only to a child serving F, whatever other children
// are called or what their metadata says. Every spelling of one model shares one start,
// one failure backoff (per file) and the routes of its canonical name and aliases; a
// spelling adds no route and no per-spelling state, so distinct spellings cannot grow
// memory. Errors for clients carry names, never paths, file bytes or log lines (the
// daemon log and `corral logs` have those).
//
// Config reload (UpdateConfig): the router keeps its own copy of the config under `mu_`.
// A new config refreshes the catalog, re-resolves the per-model settings (`models:` keys
// name models the way requests do), forgets routes by aliases that were removed or now
// point elsewhere (the child keeps running and keeps its streams in flight; it stays
// reachable by its own and its model's name) and takes the new TTLs at once, also for
// children already running.
//
// Ownership: the daemon owns the router, the supervisor and the routing table; the router
// must be shut down (Shutdown) before the supervisor is destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "common/thread_annotations.h"
#include "config/options.h"
#include "daemon/models.h"
#include "daemon/spec_stats.h"
#include "proxy/model_provider.h"
#include "proxy/routing_table.h"
#include "supervisor/supervisor.h"

namespace corral::daemon {

struct RouterOptions {
  std::chrono::seconds idle_ttl{0};          // unload on-demand models idle this long; 0 = never
  size_t max_waiters = 256;                  // requests parked for starts, all models together
  std::chrono::seconds failed_backoff{5};    // an on-demand start that failed is not retried sooner
  std::chrono::seconds catalog_refresh{30};  // ListModels' catalog snapshot is refreshed this often
  // A name the snapshot does not know reloads the catalog (a model just downloaded), at
  // most this often.
  std::chrono::milliseconds catalog_miss_refresh{1000};
  // The router's clock for deadlines, TTLs, backoff and LRU; empty = steady_clock::now.
  // Tests inject one and call Poke() after moving it.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class ModelRouter final : public proxy::ModelProvider {
 public:
  ModelRouter(const config::Config& config, supervisor::ChildControl& children, proxy::RoutingTable& routes,
              const RouterOptions& options);
  ~ModelRouter() override;  // Shutdown()
  ModelRouter(const ModelRouter&) = delete;
  ModelRouter& operator=(const ModelRouter&) = delete;

  // Answers every parked request with kUnavailable, stops the starter thread. Idempotent.
  void Shutdown();

  // The supervisor's on_change hook (monitor thread).
  void OnSupervisorChange();
  // Wakes the starter thread to look at deadlines and idle times again now (a test that
  // moved the injected clock). Production never needs it.
  void Poke();

  // A child started through the control plane: route `names` (its child name, the model's
  // canonical name, aliases) to it, pinned. A name the catalog gives another file is
  // kept but never routes to this child.
  void RegisterStarted(const std::string& child, const std::vector<std::string>& names, bool pinned);

  // A reloaded config (already validated). Loads the catalog (slow: call it off the data
  // plane). Returns warnings: `models:` keys that match no model or several.
  std::vector<std::string> UpdateConfig(const config::Config& config);

  // A copy of the catalog snapshot (control plane: the local user's references go through
  // Catalog::Resolve, paths included; copied so no file is read under the router's lock).
  catalog::Catalog CatalogSnapshot() const;

  // What a launch of the model file at `model_path` takes from the config, read under one
  // lock (daemon/models.h BuildLaunchSpec; `corral start`, its --dry-run and on-demand
  // starts all use it): its `models:` settings; the KV state kept across unloads
  // (docs/kv.md: kv_root = StateDir()/kv and the budget from kv_keep / kv_keep_budget and
  // the model's own `kv_keep`, or none when off); the `spec` setting (its `models:` entry's,
  // else the global one; "off" while the file carries the fallback mark of a draft that
  // did not pay, SpecFallbackReason).
  LaunchSettings LaunchSettingsFor(const std::string& model_path) const;
  // Warnings from resolving the `models:` keys at the last catalog load.
  std::vector<std::string> SettingsWarnings() const;
  // Speculative decoding (issue 17, daemon/spec_stats.h). The launch builder's join point:
  // why the next start of the model file at `model_path` should run without its draft
  // (acceptance stayed too low to pay); nullopt = no reason, add the draft as configured.
  // Marks are forgotten on a config reload.
  std::optional<std::string> SpecFallbackReason(const std::string& model_path) const;
  // A running child's drafted/accepted totals since it started (`corral ps`); nullopt when
  // it has drafted nothing.
  std::optional<SpecStats::Totals> SpecTotals(const std::string& child) const;

  // The event feed's view of the router (one row per child it knows). Any thread.
  struct UsageRow {
    std::string child;
    int in_flight = 0;
    bool pinned = false;
    int64_t ttl_left_s = -1;  // -1: no TTL applies (pinned, ttl 0, keep loaded)
  };
  std::vector<UsageRow> UsageSnapshot() const;
  size_t waiting() const;  // requests parked for starts
  // Pins (never evicted, never unloaded by TTL) or unpins a running child. False when unknown.
  bool SetPinned(const std::string& child, bool pinned);
  // Called (on the proxy host's or a proxy worker's thread) for every finished request.
  // `child`: the child that served it (by its upstream), "" when it is gone already.
  using RequestObserver =
      std::function<void(const std::string& model, const std::string& child, const proxy::RequestRecord&)>;
  void SetRequestObserver(RequestObserver observer);  // before the proxy starts

  // proxy::ModelProvider
  std::vector<proxy::ModelInfo> ListModels() const override;
  void EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                   std::function<void(proxy::EnsureResult)> done) override;
  void OnRequestStart(const std::string& model, const proxy::Endpoint& upstream) override;
  void OnRequestEnd(const std::string& model, const proxy::Endpoint& upstream) override;
  void OnRequestFinished(const std::string& model, const proxy::Endpoint& upstream,
                         const proxy::RequestRecord& record) override;
  bool SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiter {
    Clock::time_point deadline;
    std::function<void(proxy::EnsureResult)> done;
  };
  // One model that requests wait for, under the waiters' key (the catalog's canonical name,
  // else the name as given). It exists while requests wait: answering the last one erases it,
  // and with it any start still queued for it (nobody to start it for).
  struct Pending {
    std::vector<Waiter> waiters;  // never empty
    uint64_t start_order = 0;     // > 0: a start is queued; queued starts run in this order
  };
  // A model file's last failed start: a start of it within failed_backoff is answered with
  // `why` instead of being tried.
  struct FailedStart {
    Clock::time_point at;
    std::string why;
  };
  struct Usage {  // per child
    int in_flight = 0;
    Clock::time_point last_used{};
    bool pinned = false;
    bool evicting = false;                           // being stopped: unrouted, not counted as available
    std::optional<std::chrono::seconds> keep_alive;  // set by Ollama keep_alive
  };
  using Answer = std::pair<std::function<void(proxy::EnsureResult)>, proxy::EnsureResult>;

  void StarterLoop();
  // Starter thread: resolve and start `model`, or answer its waiters with the reason.
  void StartOnDemand(const std::string& model);
  // Stops the least-recently-used idle, unpinned child; false when there is none.
  bool EvictOne(const std::string& except_child);
  void ExpireIdle();
  // Loads the catalog for the current config and re-resolves the `models:` settings.
  void RefreshCatalog();
  const config::ModelSettings* SettingsForLocked(const std::string& model_path) const CORRAL_REQUIRES(mu_);
  config::Config ConfigCopy() const;
  // Rebuilds the routes from the supervisor's children and collects answers for waiters
  // whose child is ready or failed. mu_ held.
  void SettleLocked(const std::vector<supervisor::ChildInfo>& children, std::vector<Answer>& out) CORRAL_REQUIRES(mu_);
  // What a client's name means. mu_ held; `child` points into `children`.
  struct Target {
    std::string key;   // waiters, starts: the catalog's canonical name, else the name as given
    std::string path;  // the model file; "" when unknown
    const supervisor::ChildInfo* child = nullptr;  // the child serving it (ready first), or none
  };
  Target TargetForLocked(const std::string& name, const std::vector<supervisor::ChildInfo>& children) const
      CORRAL_REQUIRES(mu_);
  // The one rule for "`c` takes requests now": ready, listening, not being evicted (a
  // restart-pending child is not: it has no process). mu_ held.
  bool RoutableLocked(const supervisor::ChildInfo& c) const CORRAL_REQUIRES(mu_);
  // Routable, and `name` may route to it (MayRouteLocked). mu_ held.
  bool RoutableAsLocked(const std::string& name, const supervisor::ChildInfo& c) const CORRAL_REQUIRES(mu_);
  // What the requests parked under `key` get now that their child is `c`: an endpoint, a
  // failure, or nothing yet (keep waiting; a start is queued when `c` is gone). mu_ held.
  std::optional<proxy::EnsureResult> OutcomeLocked(const std::string& key, const supervisor::ChildInfo& c,
                                                   Clock::time_point now) CORRAL_REQUIRES(mu_);
  // The best child serving `path`: the one `preferred` names, else a routable one, else
  // launching, else a failed, restart-pending or stopped one. mu_ held.
  const supervisor::ChildInfo* ChildServingLocked(const std::string& path, const std::string& preferred,
                                                  const std::vector<supervisor::ChildInfo>& children) const
      CORRAL_REQUIRES(mu_);
  // False when the catalog gives `name` to a file other than `c`'s. mu_ held.
  bool MayRouteLocked(const std::string& name, const supervisor::ChildInfo& c) const CORRAL_REQUIRES(mu_);
  // The idle time after which `c` is unloaded; nullopt = never (pinned, ttl 0, keep_alive
  // negative). mu_ held.
  std::optional<std::chrono::seconds> IdleTtlLocked(const supervisor::ChildInfo& c) const CORRAL_REQUIRES(mu_);
  // When `c` will be unloaded if no request comes (Ollama /api/ps expires_at). mu_ held.
  std::chrono::system_clock::time_point ExpiresAtLocked(const supervisor::ChildInfo& c) const CORRAL_REQUIRES(mu_);
  // Pinned by `corral start` or by the config. mu_ held.
  bool PinnedLocked(const supervisor::ChildInfo& c) CORRAL_REQUIRES(mu_);
  // The child listening on `upstream`'s port, or "" (it may be gone already). mu_ held.
  std::string ChildAtLocked(const proxy::Endpoint& upstream) const CORRAL_REQUIRES(mu_);
  // Queues a start for the requests parked under `key` unless one is queued. mu_ held.
  void QueueStartLocked(const std::string& key) CORRAL_REQUIRES(mu_);
  // The key of the start queued first, dequeued; nullopt when none is. mu_ held.
  std::optional<std::string> NextStartLocked() CORRAL_REQUIRES(mu_);
  // Answers every request parked under `key` with `result` (into `out`) and forgets the key.
  void AnswerAllLocked(const std::string& key, const proxy::EnsureResult& result, std::vector<Answer>& out)
      CORRAL_REQUIRES(mu_);
  // Requests parked, all models together (the queue-full rule; waiting()). mu_ held.
  size_t WaitingLocked() const CORRAL_REQUIRES(mu_);
  std::vector<std::string> KnownNamesLocked() const CORRAL_REQUIRES(mu_);
  static void Deliver(std::vector<Answer>& answers);

  Clock::time_point Now() const { return options_.clock ? options_.clock() : Clock::now(); }

  supervisor::ChildControl& supervisor_;
  proxy::RoutingTable& routes_;
  const RouterOptions options_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  config::Config config_ CORRAL_GUARDED_BY(mu_);
  std::chrono::seconds idle_ttl_ CORRAL_GUARDED_BY(mu_) = std::chrono::seconds(0);
  std::map<std::string, config::ModelSettings> settings_by_path_ CORRAL_GUARDED_BY(mu_);  // model path -> settings
  std::vector<std::string> settings_warnings_ CORRAL_GUARDED_BY(mu_);
  bool quit_ CORRAL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> names_ CORRAL_GUARDED_BY(mu_);   // client name -> child name
  std::map<std::string, Usage> usage_ CORRAL_GUARDED_BY(mu_);         // child name -> usage
  std::map<std::string, Pending> pending_ CORRAL_GUARDED_BY(mu_);     // waiters' key -> its requests, its start
  uint64_t next_start_order_ CORRAL_GUARDED_BY(mu_) = 1;              // Pending::start_order of the next start
  std::map<std::string, FailedStart> failed_ CORRAL_GUARDED_BY(mu_);  // model file -> its last failed start
  catalog::Catalog catalog_ CORRAL_GUARDED_BY(mu_);
  Clock::time_point catalog_loaded_ CORRAL_GUARDED_BY(mu_);
  std::vector<supervisor::ChildInfo> children_ CORRAL_GUARDED_BY(mu_);  // last seen
  SpecStats spec_ CORRAL_GUARDED_BY(mu_);                               // draft acceptance and fallback marks
  std::thread starter_;
  RequestObserver on_request_;  // set once before the proxy starts, then read-only
};

}  // namespace corral::daemon
