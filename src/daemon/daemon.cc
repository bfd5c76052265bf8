#include "daemon/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <variant>

#include "common/fs.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/thread_annotations.h"
#include "common/version.h"
#include "control/api.h"
#include "control/transport.h"
#include "daemon/activity.h"
#include "daemon/bench_runs.h"
#include "daemon/config_watch.h"
#include "daemon/lan.h"
#include "daemon/log_follow.h"
#include "daemon/models.h"
#include "daemon/proxy_options.h"
#include "daemon/router.h"
#include "daemon/state_file.h"
#include "edge/host.h"
#include "engine/engine.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

extern char** environ;

namespace corral::daemon {
namespace {

using control::ErrorBody;
using control::ErrorCode;
using control::Request;
using control::Response;
using nlohmann::json;

constexpr int kMaxLogLines = 10000;
constexpr uint64_t kMaxLogWindow = 8ULL << 20;
// Live log watchers (GET /v1/logs/follow, the web dashboard): each holds a control thread.
constexpr int kMaxLogFollowers = 16;
constexpr std::chrono::milliseconds kMaxLongPoll{5000};
constexpr std::chrono::milliseconds kSpawnTimeout{15000};
constexpr std::chrono::milliseconds kLockWait{10000};
constexpr std::chrono::milliseconds kStateLockWait{2000};

Response Error(ErrorCode code, const std::string& message) {
  return {control::HttpStatusFor(code), ErrorBody(code, message)};
}

ErrorCode CodeForStart(const Status& s) {
  switch (s.code()) {
    case StatusCode::kResourceExhausted: return ErrorCode::kAdmission;
    case StatusCode::kInvalidArgument: return ErrorCode::kBadRequest;
    default: return ErrorCode::kLaunchFailed;
  }
}

// True when `pid` exists and is not a zombie (a killed child waits for init to reap it).
bool ProcessLives(int pid) {
  auto stat = ReadFileBounded("/proc/" + std::to_string(pid) + "/stat", 1 << 16);
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

class Daemon {
 public:
  explicit Daemon(const config::Config& config) : config_(config), started_(std::chrono::system_clock::now()) {
    SetLogLevel(config.log_level);
  }
  // Also on an early return from Init: the same order as Finish (router last), so an
  // on_change still running on the monitor thread never meets a destroyed router.
  ~Daemon() {
    router_ptr_.store(nullptr);
    if (router_) router_->Shutdown();
    if (activity_) activity_->Close();
    proxy_.reset();
    proxy_host_.reset();
    supervisor_.reset();
    router_.reset();
    activity_.reset();
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Status Init() {
    const config::Config config = CurrentConfig();  // Init runs before any other thread
    CORRAL_RETURN_IF_ERROR(ValidateDaemonConfig(config));
    auto total = supervisor::TotalMemoryBytes();
    total_memory_ = total.ok() ? *total : 0;
    CORRAL_ASSIGN_OR_RETURN(const uint64_t budget, MemoryBudgetBytes(config, total_memory_));
    {
      MutexLock lock(config_mu_);
      budget_ = budget;
    }
    auto engine = engine::Locate(config, /*query_version=*/false);
    if (engine.ok()) {
      llama_server_ = engine->llama_server;
      Log("llama-server: %s (%s)", llama_server_.c_str(), engine->source.c_str());
    } else {
      engine_error_ = engine.status().message();
      LogWarn("%s; starts will fail until one is installed", engine_error_.c_str());
    }
    LoadPreviousState();

    supervisor::SupervisorOptions opts;
    opts.llama_server = llama_server_;
    opts.log_dir = ModelLogDir();
    opts.memory_budget_bytes = budget;
    opts.health_timeout_base = std::chrono::seconds(config.health_timeout_s);
    opts.health_timeout_per_gib = std::chrono::seconds(config.health_timeout_per_gib_s);
    opts.stop_grace = std::chrono::seconds(config.stop_timeout_s);
    opts.liveness_timeout = std::chrono::seconds(config.liveness_timeout_s);
    opts.on_change = [this] { OnChange(); };
    supervisor_ = std::make_unique<supervisor::Supervisor>(opts);
    sup_ = supervisor_.get();

    // The data plane: the proxy reads routes_ lock-free and asks the router (over the
    // supervisor) for models that are not ready.
    RouterOptions ropts;
    ropts.idle_ttl = std::chrono::seconds(config.model_ttl_s);
    router_ = std::make_unique<ModelRouter>(config, *supervisor_, routes_, ropts);
    router_ptr_.store(router_.get());
    for (const auto& w : router_->SettingsWarnings()) LogWarn("config: %s", w.c_str());
    // The event feed (GET /v1/events): child changes, finished requests, gauges.
    Activity::Sources sources;
    sources.children = [this] { return supervisor_->List(); };
    sources.budget_bytes = [this] { return supervisor_->memory_budget_bytes(); };
    sources.reserved_bytes = [this] { return supervisor_->reserved_bytes(); };
    sources.router = router_.get();
    activity_ = std::make_unique<Activity>(std::move(sources));
    activity_ptr_.store(activity_.get());
    // The web dashboard's Bench page: reports on disk and quick runs (daemon/bench_runs.h).
    BenchRunsOptions bopts;
    bopts.report_dirs = {StateDir() + "/bench"};
    if (!config.bench_results_dir.empty()) bopts.report_dirs.push_back(config.bench_results_dir);
    bopts.command = {"/proc/self/exe"};
    if (!config.config_file.empty() && ::access(config.config_file.c_str(), R_OK) == 0) {
      bopts.command.insert(bopts.command.end(), {"--config", config.config_file});
    }
    bopts.publish = [a = activity_.get()](std::string line) { a->Publish(std::move(line)); };
    bench_ = std::make_unique<BenchRuns>(std::move(bopts));
    router_->SetRequestObserver(
        [a = activity_.get()](const std::string& model, const std::string& child, const proxy::RequestRecord& r) {
          a->OnRequest(model, child, r);
        });
    proxy::ProxyOptions popts = ProxyOptionsFor(config);
    popts.version = kCorralVersion;
    // POST /api/pull (issue 14): `corral pull --json` as a child of the proxy (in either
    // process); a finished pull asks POST /v1/catalog/refresh before it says "success".
    popts.pull_command = {"/proc/self/exe"};
    if (!config.config_file.empty() && ::access(config.config_file.c_str(), R_OK) == 0) {
      popts.pull_command.insert(popts.pull_command.end(), {"--config", config.config_file});
    }
    popts.pull_command.insert(popts.pull_command.end(), {"pull", "--json"});
    popts.control_socket = SocketPath();  // the web dashboard's bridge (issue 16, proxy/ui.h)
    std::vector<std::string> lan_notes;   // issue 13: open door, TLS, keys
    // The stock llama.cpp web UI under /llama/ (docs/proxy.md).
    auto llama_ui = engine::LlamaUiDir(config.llama_ui);
    if (!llama_ui.ok()) return llama_ui.status();
    popts.llama_ui_dir = *llama_ui;
    if (Status s = PrepareLan(config, popts, &lan_notes); !s.ok()) return s;
    for (const auto& note : lan_notes) {
      if (note.starts_with("WARNING")) {
        lan_warnings_.push_back(note);  // shown by status (and the dashboards) too
        LogWarn("%s", note.c_str());
      } else {
        Log("%s", note.c_str());
      }
    }
    uint16_t port = 0;
    if (config.proxy_process) {
      // Crash isolation: the proxy parses every network byte in its own process, restarted
      // if it dies; the children, the router and the control plane stay here.
      edge::ProxyHostOptions hopts;
      hopts.exe = "/proc/self/exe";
      hopts.proxy = popts;
      proxy_host_ = std::make_unique<edge::ProxyHost>(hopts, *router_, routes_);
      if (Status s = proxy_host_->Start(); !s.ok()) {
        return s.WithContext("starting the proxy on " + config.listen + " (set --listen or CORRAL_LISTEN)");
      }
      port = proxy_host_->port();
    } else {
      proxy_ = std::make_unique<proxy::Proxy>(popts, *router_, routes_);
      if (Status s = proxy_->Start(); !s.ok()) {
        return s.WithContext("starting the proxy on " + config.listen + " (set --listen or CORRAL_LISTEN)");
      }
      port = proxy_->port();
    }
    proxy_url_ = FirstProxyUrl(config.listen, port);
    Log("proxy listening on %s (OpenAI: %s/v1)%s", proxy_url_.c_str(), proxy_url_.c_str(),
        proxy_host_ ? ", in its own process" : "");
    SaveState();
    return Status::Ok();
  }

  Response Handle(const Request& req) {
    const std::string& p = req.target.path;
    const bool get = req.method == "GET";
    const bool post = req.method == "POST";
    if (get && p == "/v1/status") return Status_();
    if (get && p == "/v1/ps") return Ps();
    if (post && p == "/v1/models/start") return Start(req);
    if (post && p == "/v1/models/stop-all") return StopAll();
    if (get && p == "/v1/logs") return Logs(req);
    if (get && p == "/v1/logs/follow") return FollowLogs(req);
    if (p.starts_with("/v1/bench") && !bench_) return Error(ErrorCode::kShuttingDown, "the daemon is not serving");
    if (get && p == "/v1/bench") return {200, bench_->List()};
    if (post && p == "/v1/bench/run") return StartBench(req);
    if (get && p.starts_with("/v1/bench/reports/"))
      return BenchReport(p.substr(std::string_view("/v1/bench/reports/").size()));
    if (get && p == "/v1/events") return activity_->Stream(FeedHello());
    if (post && p == "/v1/reload") {
      json result = ReloadConfig("control");
      if (result.value("ok", false)) return {200, result};
      json body = ErrorBody(ErrorCode::kBadRequest, result.value("error", std::string("reload failed")));
      body["reload"] = result;
      return {control::HttpStatusFor(ErrorCode::kBadRequest), body};
    }
    if (post && p == "/v1/catalog/refresh") {  // `corral pull` finished (issue 14): rescan the catalog now
      MutexLock lock(reload_mu_);
      router_->UpdateConfig(CurrentConfig());
      return {200, {{"ok", true}}};
    }
    if (post && p == "/v1/shutdown") {
      RequestShutdown();
      return {200, {{"ok", true}}};
    }
    static constexpr std::string_view kModels = "/v1/models/";
    if (p.starts_with(kModels)) {
      std::string rest = p.substr(kModels.size());
      size_t slash = rest.find('/');
      std::string name = rest.substr(0, slash);
      std::string verb = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (get && verb.empty()) return Get(name);
      if (get && verb == "wait") return Wait(name, req);
      if (post && verb == "stop") return Stop(name);
      if (post && (verb == "pin" || verb == "unpin" || verb == "unload")) return Pin(name, verb);
    }
    return Error(ErrorCode::kBadRequest, "no route " + req.method + " " + p);
  }

  // Reads config.yaml (and the environment) again and applies what a running daemon can:
  // aliases, the catalog's paths and caches, TTLs, the memory budget, health and stop
  // timeouts, log_level and the per-model settings. Options owned by the proxy's data plane
  // and the listen address keep their running value and are reported as needing a restart.
  // A file that does not parse or validate changes nothing. Never touches a running child
  // or a request in flight. Any thread; reloads are serialised.
  json ReloadConfig(const std::string& trigger) {
    MutexLock reload_lock(reload_mu_);
    if (shutting_down_.load()) return {{"ok", false}, {"trigger", trigger}, {"error", "the daemon is shutting down"}};
    const config::Config running = CurrentConfig();
    json result = {{"trigger", trigger},       {"file", running.config_file},    {"changed", json::array()},
                   {"applied", json::array()}, {"needs_restart", json::array()}, {"warnings", json::array()}};
    auto reject = [&](const Status& s) {
      result["ok"] = false;
      result["error"] = s.message();
      LogWarn("config reload (%s) rejected, the running config stays: %s", trigger.c_str(), s.message().c_str());
      RecordReload(result);
      return result;
    };
    auto loaded = config::Reload(running);
    if (!loaded.ok()) return reject(loaded.status());
    config::Config next = std::move(*loaded);
    if (Status s = ValidateDaemonConfig(next); !s.ok()) return reject(s);
    auto budget = MemoryBudgetBytes(next, total_memory_);
    if (!budget.ok()) return reject(budget.status());

    const std::vector<config::ConfigChange> changes = config::Diff(running, next);
    config::KeepRestartOptions(next, running);
    for (const auto& c : changes) {
      result["changed"].push_back({{"key", c.key}, {"before", c.before}, {"after", c.after}});
      if (c.reload == config::OnReload::kRestart) {
        result["needs_restart"].push_back({{"key", c.key}, {"running", c.before}, {"configured", c.after}});
        LogWarn("config: %s changed (%s -> %s) but needs a restart; still %s", c.key.c_str(), c.before.c_str(),
                c.after.c_str(), c.before.c_str());
      } else {
        result["applied"].push_back(c.key);
        Log("config: %s: %s -> %s", c.key.c_str(), c.before.empty() ? "(unset)" : c.before.c_str(),
            c.after.empty() ? "(unset)" : c.after.c_str());
      }
    }

    // Apply: limits first (later starts), then the router (catalog, aliases, settings, TTLs).
    supervisor::Supervisor::Limits limits;
    limits.memory_budget_bytes = *budget;
    limits.health_timeout_base = std::chrono::seconds(next.health_timeout_s);
    limits.health_timeout_per_gib = std::chrono::seconds(next.health_timeout_per_gib_s);
    limits.stop_grace = std::chrono::seconds(next.stop_timeout_s);
    supervisor_->SetLimits(limits);
    const proxy::ProxyOptions live = ProxyOptionsFor(next);
    if (proxy_) proxy_->SetLimits(live.max_body_bytes, live.client_timeout, live.upstream_timeout);
    if (proxy_host_) proxy_host_->SetLimits(live.max_body_bytes, live.client_timeout, live.upstream_timeout);
    {
      MutexLock lock(config_mu_);
      config_ = next;
      SetLogLevel(next.log_level);
      budget_ = *budget;
    }
    for (const auto& w : router_->UpdateConfig(next)) {
      result["warnings"].push_back(w);
      LogWarn("config: %s", w.c_str());
    }
    result["ok"] = true;
    Log("config reloaded (%s): %zu change(s), %zu applied, %zu need a restart", trigger.c_str(), changes.size(),
        result["applied"].size(), result["needs_restart"].size());
    RecordReload(result);
    return result;
  }

  void SetWatching(bool watching) {
    MutexLock lock(mu_);
    watching_ = watching;
  }

  void RequestShutdown() {
    shutting_down_.store(true);
    ::kill(::getpid(), SIGTERM);
  }

  void Drain() {
    shutting_down_.store(true);
    // Answer parked requests first (the proxy's Stop waits for them), then stop taking
    // requests, then stop the children.
    if (router_) router_->Shutdown();
    if (bench_) bench_->Stop();         // a quick bench in progress: killed, its watcher joined
    if (activity_) activity_->Close();  // ends every feed stream, so the control server can join them
    if (proxy_) proxy_->Stop();
    if (proxy_host_) proxy_host_->Stop();
    auto live = supervisor_->List();
    Log("draining: stopping %zu model(s)", live.size());
    supervisor_->StopAll();
  }

  void Finish() {
    finishing_.store(true);
    router_ptr_.store(nullptr);
    // The destructor joins the monitor thread; an on_change callback still running on it
    // sees finishing_ and returns. The object stays whole until that join.
    // Order: the proxy (calls the router), then the supervisor (its destructor joins the
    // monitor thread, the only caller of on_change left), then the router.
    proxy_.reset();
    proxy_host_.reset();
    supervisor_.reset();
    sup_ = nullptr;
    router_.reset();
    bench_.reset();  // publishes on the feed: goes first
    activity_ptr_.store(nullptr);
    activity_.reset();
    SaveState();
  }

 private:
  json ModelJson(const supervisor::ChildInfo& i) const {
    json j = control::ToJson(i);
    if (i.started_at.time_since_epoch().count() != 0) {
      j["uptime_s"] =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - i.started_at).count();
    }
    if (json spec = SpecJson(i); !spec.is_null()) j["spec"] = std::move(spec);
    return j;
  }

  // Speculative decoding (issue 17): the child's draft acceptance since it started, and the
  // fallback mark of its model file (the next start runs without the draft). null = neither.
  json SpecJson(const supervisor::ChildInfo& i) const {
    json spec;
    if (auto t = router_->SpecTotals(i.name)) {
      spec["draft_tokens"] = t->drafted;
      spec["draft_accepted"] = t->accepted;
      spec["acceptance"] = std::round(t->acceptance() * 1000) / 1000;
    }
    if (auto why = router_->SpecFallbackReason(i.model_path)) spec["fallback"] = *why;
    return spec;
  }

  config::Config CurrentConfig() const {
    MutexLock lock(config_mu_);
    return config_;
  }

  // The proxy process (proxy_process: true): its pid, restarts and how the last one ended.
  json ProxyProcessJson() const {
    if (!proxy_host_) return nullptr;
    edge::ProxyProcessInfo i = proxy_host_->info();
    return {{"pid", i.pid}, {"restarts", i.restarts}, {"last_exit", i.last_exit}};
  }

  void RecordReload(const json& result) {
    MutexLock lock(mu_);
    ++reloads_;
    ++reloads_by_trigger_[result.value("trigger", std::string("?"))];
    if (result.value("ok", false)) ++reloads_applied_;
    last_reload_ = result;
  }

  Response Status_() {
    const config::Config config = CurrentConfig();
    uint64_t budget = 0;
    {
      MutexLock lock(config_mu_);
      budget = budget_;
    }
    json reload;
    json models = json::array();
    for (const auto& i : supervisor_->List()) models.push_back(ModelJson(i));
    json notices = json::array();
    {
      MutexLock lock(mu_);
      for (const auto& n : notices_) notices.push_back(n);
      reload = {{"file", config.config_file},        {"reloads", reloads_},  {"applied", reloads_applied_},
                {"by_trigger", reloads_by_trigger_}, {"last", last_reload_}, {"watching", watching_}};
    }
    json j = {{"daemon",
               {{"pid", ::getpid()},
                {"version", kCorralVersion},
                {"uptime_s",
                 std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - started_).count()},
                {"socket", SocketPath()},
                {"state_file", StateFilePath()},
                {"log_dir", ModelLogDir()},
                {"llama_server", llama_server_},
                {"engine_error", engine_error_}}},
              {"proxy",
               {{"listen", config.listen},
                {"url", proxy_url_ + "/v1"},
                {"base_url", proxy_url_},
                {"running", proxy_ != nullptr || proxy_host_ != nullptr},
                {"process", ProxyProcessJson()},
                {"lan_warnings", lan_warnings_}}},
              {"memory",
               {{"total_bytes", total_memory_},
                {"budget_bytes", budget},
                {"reserved_bytes", supervisor_->reserved_bytes()},
                {"budget_source", config.memory_budget}}},
              {"config", reload},
              {"models", models},
              {"notices", notices}};
    return {200, j};
  }

  // The first line of GET /v1/events: what a dashboard shows before anything changes.
  json FeedHello() {
    json models = json::array();
    for (const auto& i : supervisor_->List()) models.push_back(ModelJson(i));
    json catalog = json::array();
    for (const auto& m : router_->ListModels()) {
      catalog.push_back({{"name", m.name},
                         {"state", proxy::to_string(m.state)},
                         {"context", m.context},
                         {"context_length", m.context_length},
                         {"size_bytes", m.size_bytes},
                         {"memory_bytes", m.memory_bytes},
                         {"family", m.family},
                         {"quant", m.quantization}});
    }
    uint64_t budget = 0;
    {
      MutexLock lock(config_mu_);
      budget = budget_;
    }
    return {
        {"daemon",
         {{"pid", ::getpid()},
          {"version", kCorralVersion},
          {"uptime_s",
           std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - started_).count()}}},
        {"proxy", {{"url", proxy_url_ + "/v1"}, {"base_url", proxy_url_}}},
        {"memory",
         {{"total_bytes", total_memory_}, {"budget_bytes", budget}, {"reserved_bytes", supervisor_->reserved_bytes()}}},
        {"models", models},
        {"catalog", catalog}};
  }

  // pin / unpin: the router's pin (never evicted, no TTL); unload: unpin, then unload once
  // its requests in flight are done (the Ollama keep_alive 0 path; never cuts a stream).
  Response Pin(const std::string& name, const std::string& verb) {
    auto i = supervisor_->Get(name);
    if (!i.ok() || supervisor::IsTerminal(i->state))
      return Error(ErrorCode::kNotRunning, "no running model '" + name + "'");
    router_->SetPinned(name, verb == "pin");
    if (verb == "unload") router_->SetKeepAlive(name, std::chrono::seconds(0));
    Log("%s %s", verb == "pin" ? "pinned" : verb == "unpin" ? "unpinned" : "unloading", name.c_str());
    return {200, {{"model", ModelJson(*i)}, {"pinned", verb == "pin"}}};
  }

  Response Ps() {
    json models = json::array();
    for (const auto& i : supervisor_->List()) models.push_back(ModelJson(i));
    return {200, {{"models", models}}};
  }

  // The child a reference from the CLI names (`corral stop|logs|ps NAME`, the one resolver):
  // a child's own name; else the model the catalog resolves it to (name, alias, stem,
  // owner/repo:QUANT, Ollama name, unique substring, path) and the child serving that file;
  // else a unique substring of a child's name. `for_logs`: a model that is not running
  // gives its default child name (its log outlives it). Errors name the candidates.
  Result<std::string> ChildForReference(const std::string& ref, bool for_logs = false) {
    if (supervisor_->Get(ref).ok()) return ref;
    CORRAL_RETURN_IF_ERROR(catalog::CheckReference(ref));
    const auto children = supervisor_->List();
    const catalog::Catalog cat = router_->CatalogSnapshot();
    auto model = cat.Resolve(ref);
    if (model.ok()) {
      std::vector<std::string> live, any;
      for (const auto& c : children) {
        if (c.model_path != model->path) continue;
        any.push_back(c.name);
        if (!supervisor::IsTerminal(c.state)) live.push_back(c.name);
      }
      const auto& hits = !live.empty() ? live : any;
      if (hits.size() == 1) return hits[0];
      if (hits.size() > 1) {
        std::string msg =
            "'" + ref + "' is " + model->name + ", served by " + std::to_string(hits.size()) + " children:";
        for (size_t k = 0; k < hits.size(); ++k) msg += (k == 0 ? " " : ", ") + hits[k];
        return Status(StatusCode::kAmbiguous, msg);
      }
      if (for_logs) return ChildNameFor(model->name);
      return NotFound("model " + model->name + " is not running" + (ref != model->name ? " ('" + ref + "')" : ""));
    }
    std::vector<std::string> hits;
    std::string lref = ref;
    for (char& ch : lref) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const auto& c : children) {
      std::string lname = c.name;
      for (char& ch : lname) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lname.find(lref) != std::string::npos) hits.push_back(c.name);
    }
    if (hits.size() == 1) return hits[0];
    return model.status();
  }

  // A control error for a failed ChildForReference.
  static Response ReferenceError(const Status& s) {
    if (s.code() == StatusCode::kInvalidArgument) return Error(ErrorCode::kBadRequest, s.message());
    if (s.code() == StatusCode::kAmbiguous) return Error(ErrorCode::kModelReference, s.message());
    return Error(ErrorCode::kNotRunning, s.message());
  }

  Response Get(const std::string& ref) {
    auto child = ChildForReference(ref);
    if (!child.ok()) return ReferenceError(child.status());
    const std::string& name = *child;
    auto i = supervisor_->Get(name);
    if (!i.ok()) return Error(ErrorCode::kNotRunning, i.status().message());
    return {200, {{"model", ModelJson(*i)}}};
  }

  Response Wait(const std::string& ref, const Request& req) {
    auto child = ChildForReference(ref);
    if (!child.ok()) return ReferenceError(child.status());
    const std::string& name = *child;
    uint64_t gen = 0;
    int64_t timeout_ms = 1000;
    try {
      if (auto it = req.target.query.find("generation"); it != req.target.query.end()) gen = std::stoull(it->second);
      if (auto it = req.target.query.find("timeout_ms"); it != req.target.query.end())
        timeout_ms = std::stoll(it->second);
    } catch (...) {
      return Error(ErrorCode::kBadRequest, "generation and timeout_ms must be numbers");
    }
    timeout_ms = std::clamp<int64_t>(timeout_ms, 0, kMaxLongPoll.count());
    auto i = supervisor_->WaitForChange(name, gen, std::chrono::milliseconds(timeout_ms));
    if (!i.ok()) return Error(ErrorCode::kNotRunning, i.status().message());
    return {200, {{"model", ModelJson(*i)}}};
  }

  Response Stop(const std::string& ref) {
    auto child = ChildForReference(ref);
    if (!child.ok()) return ReferenceError(child.status());
    const std::string& name = *child;
    auto i = supervisor_->Stop(name);
    if (!i.ok()) {
      if (i.status().code() == StatusCode::kNotFound) return Error(ErrorCode::kNotRunning, i.status().message());
      return Error(ErrorCode::kStopFailed, i.status().message());
    }
    Log("stopped %s", name.c_str());
    return {200, {{"model", ModelJson(*i)}}};
  }

  Response StopAll() {
    json stopped = json::array();
    std::string failures;
    for (const auto& i : supervisor_->List()) {
      auto r = supervisor_->Stop(i.name);
      if (r.ok()) {
        stopped.push_back(i.name);
      } else if (r.status().code() != StatusCode::kNotFound) {
        failures += (failures.empty() ? "" : "; ") + r.status().message();
      }
    }
    if (!failures.empty()) return Error(ErrorCode::kStopFailed, failures);
    return {200, {{"stopped", stopped}}};
  }

  // The log a /v1/logs request names: its child name, file and whether it runs; or the error.
  struct LogTarget {
    std::string name, path;
    bool running = false;
    int lines = 50;
  };
  std::variant<LogTarget, Response> ResolveLog(const Request& req) {
    auto it = req.target.query.find("name");
    if (it == req.target.query.end()) return Error(ErrorCode::kBadRequest, "logs: name is required");
    auto child = ChildForReference(it->second, /*for_logs=*/true);
    // A child gone and outside the catalog (started from a path): its log keeps its name.
    if (!child.ok() && supervisor::CheckChildName(it->second).ok() &&
        ::access((ModelLogDir() + "/" + it->second + ".log").c_str(), R_OK) == 0) {
      child = it->second;
    }
    if (!child.ok()) return ReferenceError(child.status());
    LogTarget t;
    t.name = *child;
    if (Status s = supervisor::CheckChildName(t.name); !s.ok()) return Error(ErrorCode::kBadRequest, s.message());
    if (auto l = req.target.query.find("lines"); l != req.target.query.end()) {
      try {
        t.lines = std::stoi(l->second);
      } catch (...) {
        return Error(ErrorCode::kBadRequest, "lines must be a number");
      }
    }
    t.lines = std::clamp(t.lines, 0, kMaxLogLines);
    t.path = ModelLogDir() + "/" + t.name + ".log";
    auto info = supervisor_->Get(t.name);
    if (info.ok()) t.path = info->log_path;
    t.running = info.ok();
    return t;
  }

  Response Logs(const Request& req) {
    auto resolved = ResolveLog(req);
    if (auto* err = std::get_if<Response>(&resolved)) return std::move(*err);
    const LogTarget& t = std::get<LogTarget>(resolved);
    auto tail = TailFile(t.path, static_cast<size_t>(t.lines), kMaxLogWindow);
    if (!tail.ok()) return Error(ErrorCode::kNotRunning, "no log for '" + t.name + "': " + tail.status().message());
    return {200, {{"name", t.name}, {"path", t.path}, {"text", *tail}, {"running", t.running}}};
  }

  // GET /v1/logs/follow?name=N&lines=K: the log's last K lines, then each new line, as NDJSON
  // until the watcher leaves or the daemon drains (daemon/log_follow.h).
  Response FollowLogs(const Request& req) {
    auto resolved = ResolveLog(req);
    if (auto* err = std::get_if<Response>(&resolved)) return std::move(*err);
    const LogTarget& t = std::get<LogTarget>(resolved);
    if (::access(t.path.c_str(), R_OK) != 0) return Error(ErrorCode::kNotRunning, "no log for '" + t.name + "' yet");
    if (log_followers_.fetch_add(1) >= kMaxLogFollowers) {
      log_followers_.fetch_sub(1);
      return Error(ErrorCode::kShuttingDown, "too many live log watchers (" + std::to_string(kMaxLogFollowers) + ")");
    }
    Response r =
        FollowLog(t.name, t.path, t.running, static_cast<size_t>(t.lines), [this] { return shutting_down_.load(); });
    // The count drops when the stream ends (or never starts: the response is dropped).
    auto release = std::shared_ptr<void>(nullptr, [this](void*) { log_followers_.fetch_sub(1); });
    r.stream = [inner = std::move(r.stream), release](const std::function<bool(std::string_view)>& write) {
      inner(write);
    };
    return r;
  }

  // GET /v1/bench/reports/{id}: a report's summary; the id is checked against the listing.
  Response BenchReport(const std::string& id) {
    auto report = bench_->Report(id);
    if (report.ok()) return {200, std::move(*report)};
    const StatusCode code = report.status().code();
    return Error(code == StatusCode::kNotFound          ? ErrorCode::kNotRunning
                 : code == StatusCode::kInvalidArgument ? ErrorCode::kBadRequest
                                                        : ErrorCode::kInternal,
                 report.status().message());
  }

  // POST /v1/bench/run {"model":REF,"runs":N}: quick suite C on a ready model, in the
  // background; its end is published on the event feed ({"t":"bench"}).
  Response StartBench(const Request& req) {
    if (shutting_down_.load()) return Error(ErrorCode::kShuttingDown, "the daemon is shutting down");
    auto body = control::ParseJsonBounded(req.body, control::kRequestJsonLimits);
    if (!body.ok() || !body->is_object() || !body->contains("model") || !(*body)["model"].is_string()) {
      return Error(ErrorCode::kBadRequest, "bench: expected {\"model\": NAME, \"runs\": N}");
    }
    int runs = 10;
    if (auto r = body->find("runs"); r != body->end()) {
      if (!r->is_number_integer()) return Error(ErrorCode::kBadRequest, "bench: runs must be an integer 1..100");
      runs = static_cast<int>(std::clamp<int64_t>(r->get<int64_t>(), -1, 1000));
    }
    auto child = ChildForReference((*body)["model"].get<std::string>());
    if (!child.ok()) return ReferenceError(child.status());
    auto info = supervisor_->Get(*child);
    if (!info.ok() || info->state != supervisor::ChildState::kReady || info->port == 0) {
      return Error(ErrorCode::kNotRunning, "bench: '" + *child + "' is not ready: load it first");
    }
    if (proxy_url_.empty()) return Error(ErrorCode::kInternal, "bench: the proxy has no address");
    Status s = bench_->Start(*child, "http://127.0.0.1:" + std::to_string(info->port), proxy_url_, runs);
    if (!s.ok()) return Error(ErrorCode::kBadRequest, "bench: " + s.message());
    Log("bench: quick suite C on %s (%d runs), started from the control API", child->c_str(), runs);
    return {202, {{"run", bench_->Run()}}};
  }

  Response Start(const Request& req) {
    if (shutting_down_.load()) return Error(ErrorCode::kShuttingDown, "the daemon is shutting down");
    auto parsed = control::ParseStartRequest(req.body);
    if (!parsed.ok()) return Error(ErrorCode::kBadRequest, parsed.status().message());
    const control::StartRequest& r = *parsed;
    if (Status s = supervisor::CheckRawArgs(r.raw_args); !s.ok()) return Error(ErrorCode::kBadRequest, s.message());
    const config::Config config = CurrentConfig();
    auto model = ResolveModel(config, r.model);
    if (!model.ok()) return Error(ErrorCode::kModelReference, model.status().message());
    std::string name = r.name.empty() ? ChildNameFor(model->name) : r.name;
    if (r.name.empty()) {
      // The default name is taken by another file with the same canonical name (two copies,
      // two quantisations named alike): count up rather than refuse.
      for (int n = 2; n < 100; ++n) {
        auto taken = supervisor_->Get(name);
        if (!taken.ok() || supervisor::IsTerminal(taken->state) || taken->model_path == model->path) break;
        name = ChildNameFor(model->name) + "-" + std::to_string(n);
      }
    }
    if (Status s = supervisor::CheckChildName(name); !s.ok()) return Error(ErrorCode::kBadRequest, s.message());

    // The same builder as on-demand starts (daemon/models.h): the flags win, the config's
    // `models:` settings fill in the rest. Speculative decoding (docs/spec.md): a named draft
    // that is missing or does not fit refuses the start. Chosen over a fresh catalog (as
    // ResolveModel read it): a draft just written or downloaded counts.
    LaunchRequest request;
    request.name = name;
    request.ctx = r.ctx;
    request.port = r.port;
    request.raw_args = r.raw_args;
    request.env = r.env;
    request.restart = r.restart;
    request.force = r.force;
    auto fresh = catalog::Catalog::Load(config);
    auto built = BuildLaunchSpec(config, *model, router_->LaunchSettingsFor(model->path), request,
                                 fresh.ok() ? *fresh : router_->CatalogSnapshot());
    if (!built.ok()) {
      const StatusCode code = built.status().code();
      return Error(code == StatusCode::kNotFound || code == StatusCode::kAmbiguous ? ErrorCode::kModelReference
                                                                                   : ErrorCode::kBadRequest,
                   built.status().message());
    }
    supervisor::LaunchSpec& spec = built->spec;
    if (!spec.spec_note.empty()) Log("%s: speculative decoding %s", name.c_str(), spec.spec_note.c_str());

    if (r.dry_run) {
      std::string exe = llama_server_.empty() ? std::string("llama-server") : llama_server_;
      json plan = {{"name", name},
                   {"model", model->name},
                   {"model_path", model->path},
                   {"argv", supervisor::BuildArgv(exe, spec)},
                   {"env", r.env.empty() ? json("inherited from the daemon") : json(r.env)},
                   {"reserved_bytes", spec.reserved_bytes},
                   {"budget_bytes", supervisor_->memory_budget_bytes()},
                   {"already_reserved_bytes", supervisor_->reserved_bytes()},
                   {"health_timeout_ms", supervisor_->HealthTimeoutFor(model->size_bytes).count()},
                   {"log_path", ModelLogDir() + "/" + name + ".log"},
                   {"spec", catalog::SpecJson(built->spec_choice)},
                   {"engine_error", engine_error_}};
      return {200, {{"plan", plan}}};
    }
    if (llama_server_.empty()) return Error(ErrorCode::kEngineMissing, engine_error_);

    // Idempotent start: the same model under its default name is already live.
    if (r.name.empty()) {
      auto existing = supervisor_->Get(name);
      if (existing.ok() && !supervisor::IsTerminal(existing->state) && existing->model_path == model->path) {
        router_->RegisterStarted(name, {name}, /*pinned=*/true);  // loaded on demand before: pinned now
        json j = {{"model", ModelJson(*existing)}, {"already_running", true}};
        return {200, j};
      }
    }
    auto started = supervisor_->Start(spec);
    if (!started.ok()) {
      LogWarn("start %s refused: %s", name.c_str(), started.status().message().c_str());
      return Error(CodeForStart(started.status()), started.status().message());
    }
    Log("started %s (pid %d): %s", name.c_str(), started->pid, supervisor::ShellQuote(started->argv).c_str());
    {
      // Started by hand: pinned (never evicted or unloaded by TTL), reachable through the
      // proxy by its name, its model's canonical name and the model's aliases.
      std::vector<std::string> names = {name, model->name};
      if (model->catalog) names.insert(names.end(), model->catalog->aliases.begin(), model->catalog->aliases.end());
      router_->RegisterStarted(name, names, /*pinned=*/true);
    }
    return {200, {{"model", ModelJson(*started)}, {"already_running", false}}};
  }

  void OnChange() {
    if (finishing_.load()) return;
    if (ModelRouter* r = router_ptr_.load()) r->OnSupervisorChange();
    if (Activity* a = activity_ptr_.load()) a->OnChildren(sup_->List());
    // Log transitions once, then persist.
    for (const auto& i : sup_->List()) {
      MutexLock lock(mu_);
      auto& last = last_state_[i.name];
      if (last == i.state && last_gen_[i.name] != 0) continue;
      last_gen_[i.name] = i.generation;
      last = i.state;
      if (i.state == supervisor::ChildState::kReady) {
        Log("%s ready on http://127.0.0.1:%d after %.0f ms", i.name.c_str(), i.port, i.ready_ms);
      } else if (i.state == supervisor::ChildState::kFailed) {
        LogError("%s failed: %s", i.name.c_str(), i.failure.message.c_str());
      }
    }
    SaveState();
  }

  void SaveState() {
    StateFile state;
    state.daemon_pid = ::getpid();
    if (sup_ != nullptr) {
      for (const auto& i : sup_->List()) {
        if (supervisor::IsTerminal(i.state)) continue;
        state.models.push_back(
            {i.name, i.model, i.model_path, i.pid, i.port, std::string(supervisor::to_string(i.state)), i.argv});
      }
    }
    MutexLock lock(state_mu_);
    Status s = MakeDirs(StateDir(), 0700);
    if (s.ok()) s = WriteStateFile(StateFilePath(), state);
    if (!s.ok()) LogError("cannot write the state file: %s", s.message().c_str());
  }

  // Never fatal: a bad file is moved aside with a notice (state_file.h).
  void LoadPreviousState() {
    StateRead read = ReadStateFile(StateFilePath(), std::time(nullptr));
    if (!read.notice.empty()) {
      LogWarn("%s", read.notice.c_str());
      MutexLock lock(mu_);
      notices_.push_back(read.notice);
    }
    if (!read.state) return;
    std::string names;
    for (const auto& m : read.state->models) {
      const bool alive = m.pid > 0 && ProcessLives(m.pid);
      names += (names.empty() ? "" : ", ") + (m.name.empty() ? std::string("?") : m.name) +
               (alive ? " (pid " + std::to_string(m.pid) + " still alive!)" : "");
    }
    if (!names.empty()) {
      std::string n = "the previous daemon (pid " + std::to_string(read.state->daemon_pid) +
                      ") ended without draining; its models went with it: " + names;
      Log("%s", n.c_str());
      MutexLock lock(mu_);
      notices_.push_back(n);
    }
  }

  mutable Mutex config_mu_;
  config::Config config_ CORRAL_GUARDED_BY(config_mu_);  // replaced by ReloadConfig
  Mutex reload_mu_;  // serialises ReloadConfig (SIGHUP, /v1/reload, the file watcher)
  const std::chrono::system_clock::time_point started_;
  std::unique_ptr<supervisor::Supervisor> supervisor_;
  proxy::RoutingTable routes_;
  std::unique_ptr<ModelRouter> router_;
  std::atomic<ModelRouter*> router_ptr_{nullptr};  // for on_change on the monitor thread
  std::unique_ptr<proxy::Proxy> proxy_;            // proxy_process: false
  std::unique_ptr<edge::ProxyHost> proxy_host_;    // proxy_process: true (the default)
  std::unique_ptr<Activity> activity_;             // the event feed; outlives the proxy and the supervisor
  std::atomic<Activity*> activity_ptr_{nullptr};   // for on_change on the monitor thread
  std::string proxy_url_;
  std::vector<std::string> lan_warnings_;  // e.g. a routable address served with no key (issue 13)
  // The same object for the monitor thread's on_change callback, which may run while
  // Finish() is destroying supervisor_ (unique_ptr::reset nulls the pointer first).
  supervisor::Supervisor* sup_ = nullptr;
  std::atomic<bool> finishing_{false};
  std::string llama_server_;
  std::string engine_error_;
  uint64_t total_memory_ = 0;
  uint64_t budget_ CORRAL_GUARDED_BY(config_mu_) = 0;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> log_followers_{0};
  std::unique_ptr<BenchRuns> bench_;  // the Bench page's runs (killed at drain)  // GET /v1/logs/follow streams open
  Mutex mu_;
  std::vector<std::string> notices_ CORRAL_GUARDED_BY(mu_);
  std::map<std::string, supervisor::ChildState> last_state_ CORRAL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> last_gen_ CORRAL_GUARDED_BY(mu_);
  uint64_t reloads_ CORRAL_GUARDED_BY(mu_) = 0;
  uint64_t reloads_applied_ CORRAL_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> reloads_by_trigger_ CORRAL_GUARDED_BY(mu_);
  json last_reload_ CORRAL_GUARDED_BY(mu_);
  bool watching_ CORRAL_GUARDED_BY(mu_) = false;  // config.yaml watched
  Mutex state_mu_;                                // serialises state-file writes
};

}  // namespace

std::string SocketPath() {
  return RuntimeDir() + "/corral.sock";
}
std::string LockPath() {
  return RuntimeDir() + "/corral.lock";
}
std::string StateLockPath() {
  return StateDir() + "/corral.lock";
}
std::string StateFilePath() {
  return StateDir() + "/state.json";
}
std::string DaemonLogPath() {
  return StateDir() + "/daemon.log";
}
std::string ModelLogDir() {
  return StateDir() + "/logs";
}

Status Run(const config::Config& config) {
  CORRAL_RETURN_IF_ERROR(control::PrepareSocketDir(RuntimeDir()));
  int lock_fd = ::open(LockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return ErrnoError("open " + LockPath(), errno);
  // A daemon that was just SIGKILLed can hold the lock a little longer than it takes to
  // look dead (its threads are torn down after the leader turns zombie): while nobody
  // answers on the socket, wait for the lock instead of giving up at once.
  auto deadline = std::chrono::steady_clock::now() + kLockWait;
  auto delay = std::chrono::milliseconds(5);
  while (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    control::ControlClient probe(SocketPath());
    if (std::chrono::steady_clock::now() >= deadline || probe.Ping()) {
      ::close(lock_fd);
      return Status(StatusCode::kAlreadyExists, "a Corral daemon is already running (lock " + LockPath() + ")");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }

  // One daemon per state directory too: two daemons with different runtime dirs (another
  // XDG_RUNTIME_DIR) but one state dir would overwrite each other's state and logs.
  int state_lock_fd = -1;
  if (Status s = MakeDirs(StateDir(), 0700); !s.ok()) {
    ::close(lock_fd);
    return s;
  }
  state_lock_fd = ::open(StateLockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (state_lock_fd < 0) {
    const int e = errno;
    ::close(lock_fd);
    return ErrnoError("open " + StateLockPath(), e);
  }
  // A daemon SIGKILLed a moment ago releases this lock with its runtime lock, but not at the
  // same instant: wait a little (kStateLockWait) before calling it another daemon's.
  const auto state_deadline = std::chrono::steady_clock::now() + kStateLockWait;
  delay = std::chrono::milliseconds(5);
  while (::flock(state_lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() >= state_deadline) {
      ::close(state_lock_fd);
      ::close(lock_fd);
      return Status(StatusCode::kAlreadyExists,
                    "another Corral daemon uses the state directory " + StateDir() + " (lock " + StateLockPath() + ")");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  auto release_locks = [&] {
    ::close(state_lock_fd);
    ::close(lock_fd);
  };

  // Signals: blocked in every thread (threads inherit the mask), taken here with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Daemon d(config);
  Status init = d.Init();
  if (!init.ok()) {
    release_locks();
    return init;
  }
  control::ControlServer server([&d](const Request& r) { return d.Handle(r); });
  Status listen = server.Listen(SocketPath());
  if (!listen.ok()) {
    release_locks();
    return listen;
  }
  // config.yaml changes on disk reload the config (as SIGHUP and `corral daemon reload` do).
  ConfigWatcher watcher(config.config_file, [&d] { d.ReloadConfig("file"); });
  if (Status w = watcher.Start(); w.ok()) {
    d.SetWatching(true);
  } else {
    LogWarn("not watching %s for changes (%s); reload with SIGHUP or `corral daemon reload`",
            config.config_file.c_str(), w.message().c_str());
  }
  server.Start();
  Log("daemon pid %d listening on %s", ::getpid(), SocketPath().c_str());

  int sig = 0;
  for (;;) {
    if (::sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    d.ReloadConfig("SIGHUP");  // hang-up: reload, as daemons do; never a stop
  }
  Log("%s: draining", sig == SIGINT ? "interrupt" : "terminate");
  watcher.Stop();
  d.Drain();
  server.Stop();
  d.Finish();
  release_locks();
  Log("stopped cleanly");
  return Status::Ok();
}

Status SpawnBackground(const std::string& exe, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(StateDir(), 0700));
  std::vector<std::string> argv_s = {exe, "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = DaemonLogPath();
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return ErrnoError("open " + log, errno);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the grandchild is adopted by init: no zombie, no tty
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::chdir("/") != 0) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::close(log_fd);
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) return ErrnoError("fork", errno);
  int st = 0;
  ::waitpid(pid, &st, 0);

  // Wait for the socket to answer: a short doubling backoff, bounded by `timeout`.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(2);
  control::ControlClient client(SocketPath());
  while (std::chrono::steady_clock::now() < deadline) {
    if (client.Ping()) return Status::Ok();
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  auto tail = ReadFileBounded(log, 1 << 20);
  std::string last;
  if (tail.ok()) last = tail->size() > 2000 ? tail->substr(tail->size() - 2000) : *tail;
  return Unavailable("the background daemon did not come up within " + std::to_string(timeout.count()) +
                     " ms; its log " + log + " ends with:\n" + last);
}

Result<std::unique_ptr<control::ControlClient>> Connect(bool spawn, const std::vector<std::string>& serve_args) {
  auto client = std::make_unique<control::ControlClient>(SocketPath());
  if (client->Ping()) return client;
  if (!spawn)
    return Unavailable("no Corral daemon is running (socket " + SocketPath() + "); start one with `corral serve`");
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return ErrnoError("readlink /proc/self/exe", errno);
  exe[n] = '\0';
  CORRAL_RETURN_IF_ERROR(SpawnBackground(exe, serve_args, kSpawnTimeout));
  client = std::make_unique<control::ControlClient>(SocketPath());
  return client;
}

}  // namespace corral::daemon
