// The control routes: one table entry per route (method, path pattern, handler), each
// handler parsing its request, asking the daemon through `Services` and building its JSON
// answer (the wire shapes of control/api.h). Job: turn control requests into answers.
//
// `Services` is the narrow interface through which the routes reach the daemon's parts
// (supervisor, router, catalog, config, bench runs, event feed); the daemon implements it
// (daemon/control_services.h) and hands `Routes::Handle` to the ControlServer. The values
// crossing it are plain structs: management JSON is built here and in api.cc only (bench
// reports and the catalog's speculative-decoding choice are passed through as their owners
// wrote them).
//
// Thread-safety: Handle runs on any control connection thread; Routes keeps only an atomic
// counter (live log followers). Services must be callable from those threads.
// Ownership: Routes holds a reference to the Services, which must outlive it (the daemon
// stops the control server before tearing its parts down).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "control/api.h"
#include "control/transport.h"
#include "supervisor/supervisor.h"

namespace corral::control {

// A child's speculative decoding (issue 17): draft acceptance since it started, and the
// fallback mark of its model file. Both absent: no "spec" field.
struct SpecView {
  struct Totals {
    uint64_t drafted = 0;
    uint64_t accepted = 0;
  };
  std::optional<Totals> totals;
  std::optional<std::string> fallback;
};

// A catalog model as the event feed's hello shows it.
struct CatalogRow {
  std::string name;
  std::string state;  // proxy::to_string(ModelState)
  uint32_t context = 0;
  uint32_t context_length = 0;
  uint64_t size_bytes = 0;
  uint64_t memory_bytes = 0;
  std::string family;
  std::string quant;
};

// One config reload (SIGHUP, POST /v1/reload, the file watcher) and its outcome.
struct ReloadOutcome {
  struct Change {
    std::string key, before, after;
    bool needs_restart = false;  // kept at its running value until a restart
  };
  std::string trigger;              // "SIGHUP", "control", "file"
  std::optional<std::string> file;  // absent: refused before reading (the daemon drains)
  bool ok = false;
  std::string error;  // when !ok
  std::vector<Change> changes;
  std::vector<std::string> warnings;
};
nlohmann::json ToJson(const ReloadOutcome& r);

// The reload counters GET /v1/status shows.
struct ReloadStats {
  uint64_t reloads = 0;
  uint64_t applied = 0;
  std::map<std::string, uint64_t> by_trigger;
  std::optional<ReloadOutcome> last;
  bool watching = false;  // config.yaml watched for changes
};

// What GET /v1/status and the feed's hello say about the daemon beside its children.
struct DaemonFacts {
  int64_t uptime_s = 0;
  std::string socket, state_file, log_dir;
  std::string llama_server, engine_error;
  std::string config_file, listen, budget_source;
  std::string proxy_url;  // "http://127.0.0.1:11450" (no /v1)
  bool proxy_running = false;
  struct ProxyProcess {
    int pid = 0;
    uint64_t restarts = 0;
    std::string last_exit;
  };
  std::optional<ProxyProcess> proxy_process;  // proxy_process: true
  std::vector<std::string> lan_warnings;
  uint64_t total_memory_bytes = 0, budget_bytes = 0, reserved_bytes = 0;
  std::vector<std::string> notices;
  ReloadStats reload;
};

// A dry run's plan (POST /v1/models/start with dry_run).
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's special members may throw.
struct StartPlan {
  std::string name, model, model_path;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // empty: inherited from the daemon
  uint64_t reserved_bytes = 0, budget_bytes = 0, already_reserved_bytes = 0;
  int64_t health_timeout_ms = 0;
  std::string log_path;
  nlohmann::json spec;  // catalog::SpecJson of the draft choice
  std::string engine_error;
};
struct Started {
  supervisor::ChildInfo child;
  bool already_running = false;
};
using StartAnswer = std::variant<StartPlan, Started, ApiError>;

// The daemon as the routes see it. Every call may come from any control thread.
class Services {
 public:
  virtual ~Services() = default;

  // Children (the supervisor).
  virtual std::vector<supervisor::ChildInfo> Children() = 0;
  virtual Result<supervisor::ChildInfo> Child(const std::string& name) = 0;
  virtual Result<supervisor::ChildInfo> WaitForChange(const std::string& name, uint64_t generation,
                                                      std::chrono::milliseconds timeout) = 0;
  virtual Result<supervisor::ChildInfo> Stop(const std::string& name) = 0;
  // The child a CLI reference names (the one resolver); `for_logs`: a model that is not
  // running gives its default child name (its log outlives it). Errors name the candidates.
  virtual Result<std::string> ChildForReference(const std::string& ref, bool for_logs) = 0;
  virtual SpecView Spec(const supervisor::ChildInfo& child) = 0;
  // `corral start`: resolve, name, build the launch spec, admit, register with the router.
  virtual StartAnswer Start(const StartRequest& request) = 0;
  // The router's pin; UnloadWhenIdle: keep_alive 0 (unloaded once its requests are done).
  virtual void SetPinned(const std::string& child, bool pinned) = 0;
  virtual void UnloadWhenIdle(const std::string& child) = 0;

  virtual std::vector<CatalogRow> Catalog() = 0;
  virtual DaemonFacts Facts() = 0;
  virtual ReloadOutcome Reload(const std::string& trigger) = 0;
  virtual void RefreshCatalog() = 0;  // `corral pull` finished: rescan now
  virtual void RequestShutdown() = 0;
  virtual bool ShuttingDown() = 0;

  // Logs: the folder of the children's logs and a live follower (NDJSON stream) that ends
  // when the watcher leaves or the daemon drains.
  virtual std::string LogDir() = 0;
  virtual Response FollowLog(const std::string& name, const std::string& path, bool running, size_t lines) = 0;

  // The web dashboard's Bench page (reports and quick runs, as the bench runner wrote them).
  virtual nlohmann::json BenchList() = 0;
  virtual Result<nlohmann::json> BenchReport(const std::string& id) = 0;
  virtual Status StartBench(const std::string& child, const std::string& direct_url, const std::string& proxy_url,
                            int runs) = 0;
  virtual nlohmann::json BenchRun() = 0;

  // GET /v1/events: `hello` first, then the feed until the watcher leaves or the daemon drains.
  virtual Response Events(nlohmann::json hello) = 0;
};

class Routes {
 public:
  explicit Routes(Services& services) : services_(services) {}
  Routes(const Routes&) = delete;
  Routes& operator=(const Routes&) = delete;

  // The answer to one request; "no route" (bad_request) when no entry matches.
  Response Handle(const Request& req);

  // A route: "GET" or "POST", a path whose segments are literal or "{name}" (one segment,
  // possibly empty) or, last, "{rest}" (the remainder, slashes included).
  struct Params {
    std::string name;
  };
  using Fn = Response (Routes::*)(const Request&, const Params&);
  struct Entry {
    std::string_view method;
    std::string_view pattern;
    Fn fn;
  };

 private:
  Response DaemonStatus(const Request&, const Params&);
  Response Ps(const Request&, const Params&);
  Response Start(const Request&, const Params&);
  Response StopAll(const Request&, const Params&);
  Response Logs(const Request&, const Params&);
  Response FollowLogs(const Request&, const Params&);
  Response BenchList(const Request&, const Params&);
  Response BenchRun(const Request&, const Params&);
  Response BenchReport(const Request&, const Params&);
  Response Events(const Request&, const Params&);
  Response Reload(const Request&, const Params&);
  Response RefreshCatalog(const Request&, const Params&);
  Response Shutdown(const Request&, const Params&);
  Response Get(const Request&, const Params&);
  Response Wait(const Request&, const Params&);
  Response Stop(const Request&, const Params&);
  Response Pin(const Request&, const Params&);
  Response Unpin(const Request&, const Params&);
  Response Unload(const Request&, const Params&);

  nlohmann::json ModelJson(const supervisor::ChildInfo& i);
  nlohmann::json ModelsJson();
  nlohmann::json FeedHello();
  Response PinVerb(const std::string& name, std::string_view verb);
  struct LogTarget {
    std::string name, path;
    bool running = false;
    int lines = 50;
  };
  std::variant<LogTarget, Response> ResolveLog(const Request& req);

  static const Entry kTable[];
  Services& services_;
  std::atomic<int> log_followers_{0};  // GET /v1/logs/follow streams open
};

}  // namespace corral::control
