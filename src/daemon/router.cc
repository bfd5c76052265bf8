#include "daemon/router.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/log.h"
#include "common/paths.h"
#include "daemon/models.h"
#include "supervisor/launch.h"

namespace corral::daemon {
namespace {

using supervisor::ChildInfo;
using supervisor::ChildState;

constexpr std::chrono::seconds kIdleCheckInterval{1};
// The longest TTL and the "never" of /api/ps: a century. Clock arithmetic is in nanoseconds
// (int64: ±292 years around 1970), so a larger TTL from a config or keep_alive would overflow.
constexpr std::chrono::seconds kFarFuture = std::chrono::hours(24 * 365 * 100);
constexpr int kQueueFullRetryAfterS = 2;
constexpr uint64_t kDefaultKvBudget = uint64_t{4} << 30;  // kv_keep_budget's default
constexpr int kTimeoutRetryAfterS = 5;

proxy::Endpoint EndpointOf(const ChildInfo& c) {
  return {"127.0.0.1", static_cast<uint16_t>(c.port)};
}

proxy::EnsureError Err(proxy::EnsureErrorCode code, std::string message, int retry_after_s = 0,
                       std::vector<std::string> close = {}) {
  proxy::EnsureError e;
  e.code = code;
  e.message = std::move(message);
  e.retry_after_s = retry_after_s;
  e.close_matches = std::move(close);
  return e;
}

proxy::ModelState StateOf(ChildState s) {
  switch (s) {
    case ChildState::kStarting: return proxy::ModelState::kStarting;
    case ChildState::kLoading: return proxy::ModelState::kLoading;
    case ChildState::kReady: return proxy::ModelState::kReady;
    case ChildState::kStopping: return proxy::ModelState::kStopping;
    case ChildState::kStopped: return proxy::ModelState::kStopped;
    case ChildState::kFailed:
    case ChildState::kRestartPending: return proxy::ModelState::kFailed;  // clients see it so (control/api.cc)
  }
  return proxy::ModelState::kStopped;
}

// On its way to ready by itself: a start under way, or a restart the supervisor's policy will
// make. Requests for it wait; nothing needs to start it.
bool ComingUp(ChildState s) {
  return s == ChildState::kStarting || s == ChildState::kLoading || s == ChildState::kRestartPending;
}

// Why a child failed, for a client: the kind and the exit code or signal, never the child's
// own words (they may quote the file it was given) nor paths. The daemon log has the rest.
std::string ClientReason(const supervisor::Failure& f) {
  using supervisor::FailureKind;
  switch (f.kind) {
    case FailureKind::kSpawn: return "llama-server could not be started";
    case FailureKind::kExited: return "llama-server exited with code " + std::to_string(f.exit_code);
    case FailureKind::kSignaled: {
      const char* abbrev = ::sigabbrev_np(f.signal);
      return std::string("llama-server was killed by ") +
             (abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(f.signal));
    }
    case FailureKind::kOomKilled: return "llama-server was killed by SIGKILL (likely out of memory)";
    case FailureKind::kHealthTimeout: return "llama-server was not ready before the health timeout";
    case FailureKind::kUnresponsive: return "llama-server stopped answering its health check and was killed";
    case FailureKind::kNone: break;
  }
  return "llama-server stopped";
}

// The context a child runs with: its -c/--ctx-size argument, else `fallback` (llama-server
// then uses the model's native context).
uint32_t ContextOf(const ChildInfo& c, uint32_t fallback) {
  for (size_t i = 0; i + 1 < c.argv.size(); ++i) {
    if (c.argv[i] == "-c" || c.argv[i] == "--ctx-size") {
      try {
        long v = std::stol(c.argv[i + 1]);
        if (v > 0) return static_cast<uint32_t>(v);
      } catch (...) {
        return fallback;
      }
    }
  }
  return fallback;
}

}  // namespace

ModelRouter::ModelRouter(const config::Config& config, supervisor::ChildControl& supervisor,
                         proxy::RoutingTable& routes, const RouterOptions& options)
    : supervisor_(supervisor), routes_(routes), options_(options), config_(config), idle_ttl_(options.idle_ttl) {
  RefreshCatalog();
  starter_ = std::thread([this] { StarterLoop(); });
}

ModelRouter::~ModelRouter() {
  Shutdown();
}

void ModelRouter::Shutdown() {
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    quit_ = true;
    const proxy::EnsureResult bye =
        Err(proxy::EnsureErrorCode::kUnavailable, "corral is shutting down", kTimeoutRetryAfterS);
    while (!pending_.empty()) AnswerAllLocked(pending_.begin()->first, bye, answers);
  }
  cv_.notify_all();
  if (starter_.joinable()) starter_.join();
  Deliver(answers);
}

void ModelRouter::Deliver(std::vector<Answer>& answers) {
  for (auto& [done, result] : answers) done(std::move(result));
  answers.clear();
}

const ChildInfo* ModelRouter::ChildServingLocked(const std::string& path, const std::string& preferred,
                                                 const std::vector<ChildInfo>& children) const {
  if (path.empty()) return nullptr;
  const auto named = names_.find(preferred);
  auto rank = [&](const ChildInfo& c) CORRAL_REQUIRES(mu_) {
    if (named != names_.end() && c.name == named->second && !supervisor::IsTerminal(c.state)) return 4;
    if (RoutableLocked(c)) return 3;
    return supervisor::IsTerminal(c.state) ? 1 : 2;
  };
  const ChildInfo* best = nullptr;
  int best_rank = 0;
  for (const auto& c : children) {
    if (c.model_path != path) continue;
    const int r = rank(c);
    if (r > best_rank) {
      best = &c;
      best_rank = r;
    }
  }
  return best;
}

bool ModelRouter::MayRouteLocked(const std::string& name, const ChildInfo& c) const {
  const catalog::Model* m = catalog_.FindExact(name);
  return m == nullptr || m->path == c.model_path;
}

bool ModelRouter::RoutableLocked(const ChildInfo& c) const {
  if (c.state != ChildState::kReady || c.port <= 0) return false;
  auto u = usage_.find(c.name);
  return u == usage_.end() || !u->second.evicting;
}

bool ModelRouter::RoutableAsLocked(const std::string& name, const ChildInfo& c) const {
  return RoutableLocked(c) && MayRouteLocked(name, c);
}

ModelRouter::Target ModelRouter::TargetForLocked(const std::string& name,
                                                 const std::vector<ChildInfo>& children) const {
  Target t;
  t.key = name;
  auto serving = [&](const catalog::Model& m) CORRAL_REQUIRES(mu_) {
    t.key = m.name;
    t.path = m.path;
    t.child = ChildServingLocked(m.path, m.name, children);
    return t;
  };
  // 1. A name the catalog gives a file (canonical, alias): that file and nothing else.
  if (const catalog::Model* m = catalog_.FindExact(name)) return serving(*m);
  // 2. A running child by its own name, a name registered for it, or its model's name.
  auto by_child = [&](const std::string& child) -> const ChildInfo* {
    for (const auto& c : children) {
      if (c.name == child) return &c;
    }
    return nullptr;
  };
  const ChildInfo* c = nullptr;
  if (auto it = names_.find(name); it != names_.end()) c = by_child(it->second);
  if (c == nullptr) c = by_child(name);
  if (c == nullptr) {
    for (const auto& ci : children) {
      if (ci.model == name && (c == nullptr || RoutableLocked(ci))) c = &ci;
    }
  }
  if (c != nullptr) {
    t.path = c->model_path;
    t.child = c;
    return t;
  }
  // 3. An origin, or a unique substring of a catalog name, alias or origin.
  auto m = catalog_.ResolveName(name);
  if (m.ok()) return serving(*m);
  return t;
}

bool ModelRouter::PinnedLocked(const ChildInfo& c) {
  if (usage_[c.name].pinned) return true;
  const config::ModelSettings* s = SettingsForLocked(c.model_path);
  return s != nullptr && s->pinned;
}

std::vector<std::string> ModelRouter::KnownNamesLocked() const {
  std::vector<std::string> out;
  for (const auto& m : catalog_.models()) {
    out.push_back(m.name);
    out.insert(out.end(), m.aliases.begin(), m.aliases.end());
  }
  for (const auto& c : children_) out.push_back(c.name);
  return out;
}

void ModelRouter::RegisterStarted(const std::string& child, const std::vector<std::string>& names, bool pinned) {
  auto children = supervisor_.List();
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    for (const auto& n : names) {
      if (!n.empty()) names_[n] = child;
    }
    Usage& u = usage_[child];
    u.pinned = pinned;
    if (pinned) u.keep_alive.reset();  // `corral start`: stays until stopped
    u.last_used = Now();
    SettleLocked(children, answers);
  }
  Deliver(answers);
}

void ModelRouter::Poke() {
  cv_.notify_all();
}

void ModelRouter::OnSupervisorChange() {
  auto children = supervisor_.List();
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    SettleLocked(children, answers);
  }
  Deliver(answers);
}

void ModelRouter::SettleLocked(const std::vector<ChildInfo>& children, std::vector<Answer>& out) {
  children_ = children;
  const auto now = Now();
  std::map<std::string, const ChildInfo*> by_name;
  for (const auto& c : children_) {
    by_name[c.name] = &c;
    auto [u, inserted] = usage_.try_emplace(c.name);
    if (inserted) u->second.last_used = now;
  }
  std::erase_if(usage_, [&](const auto& kv) { return by_name.count(kv.first) == 0; });
  std::erase_if(names_, [&](const auto& kv) { return by_name.count(kv.second) == 0; });
  spec_.ForgetChildren([&](const std::string& name) { return by_name.count(name) != 0; });

  // Routes: every ready child by its name, its model's name and registered names, except
  // names the catalog gives another file; then every catalog name and alias to the child
  // serving its file (a name belongs to one file).
  proxy::RouteMap map;
  for (const auto& c : children_) {
    if (RoutableAsLocked(c.name, c)) map.routes[c.name] = EndpointOf(c);
    if (!c.model.empty() && RoutableAsLocked(c.model, c)) map.routes.try_emplace(c.model, EndpointOf(c));
  }
  for (const auto& [client, child] : names_) {
    const ChildInfo* c = by_name[child];
    if (c != nullptr && RoutableAsLocked(client, *c)) map.routes[client] = EndpointOf(*c);
  }
  for (const auto& m : catalog_.models()) {
    const ChildInfo* c = ChildServingLocked(m.path, m.name, children_);
    if (c == nullptr || !RoutableLocked(*c)) continue;  // serves m.path: every name of m may route to it
    map.routes[m.name] = EndpointOf(*c);
    for (const auto& a : m.aliases) map.routes[a] = EndpointOf(*c);
  }
  routes_.Publish(std::move(map));

  // Parked requests whose child is now ready or failed.
  std::vector<std::pair<std::string, proxy::EnsureResult>> settled;
  for (const auto& [key, pending] : pending_) {
    const Target t = TargetForLocked(key, children_);
    std::optional<proxy::EnsureResult> result;
    if (t.child == nullptr) {
      QueueStartLocked(key);  // its child went away (stopped, evicted): start again
    } else {
      result = OutcomeLocked(key, *t.child, now);
    }
    if (result) settled.emplace_back(key, std::move(*result));
  }
  for (const auto& [key, result] : settled) AnswerAllLocked(key, result, out);
}

std::optional<proxy::EnsureResult> ModelRouter::OutcomeLocked(const std::string& key, const ChildInfo& c,
                                                              Clock::time_point now) {
  if (RoutableLocked(c)) return EndpointOf(c);
  switch (c.state) {
    case ChildState::kFailed: {
      // The client learns the kind of failure; `corral logs` and the daemon log say more.
      const std::string why = "model '" + key + "' failed to start: " + ClientReason(c.failure) +
                              " (its log: `corral logs " + c.name + "`)";
      failed_[c.model_path] = {now, why};
      return Err(proxy::EnsureErrorCode::kStartFailed, why, static_cast<int>(options_.failed_backoff.count()));
    }
    case ChildState::kStopped:
      QueueStartLocked(key);  // stopped under us (evicted, unloaded): start again
      return std::nullopt;
    case ChildState::kRestartPending:  // the restart policy brings it back: the deadline bounds the wait
    case ChildState::kStarting:
    case ChildState::kLoading:
    case ChildState::kReady:  // being evicted (a start follows once it is stopped) or not listening yet
    case ChildState::kStopping: return std::nullopt;
  }
  return std::nullopt;
}

void ModelRouter::EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                              std::function<void(proxy::EnsureResult)> done) {
  if (Status s = catalog::CheckReference(model); !s.ok()) {
    done(Err(proxy::EnsureErrorCode::kNotFound, "no such model: " + s.message()));
    return;
  }
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    if (quit_) {
      answers.emplace_back(std::move(done),
                           Err(proxy::EnsureErrorCode::kUnavailable, "corral is shutting down", kTimeoutRetryAfterS));
    } else {
      // Every spelling of a model waits under its canonical name: one start, one backoff.
      const Target t = TargetForLocked(model, children_);
      const ChildInfo* c = t.child;
      const size_t waiting = WaitingLocked();
      if (c != nullptr && RoutableLocked(*c)) {
        answers.emplace_back(std::move(done), EndpointOf(*c));
      } else if (waiting >= options_.max_waiters) {
        answers.emplace_back(
            std::move(done),
            Err(proxy::EnsureErrorCode::kQueueFull,
                std::to_string(waiting) + " requests are already waiting for models to start", kQueueFullRetryAfterS));
      } else {
        pending_[t.key].waiters.push_back({deadline, std::move(done)});
        // A child on its way up (or whose restart is pending) answers through the settle;
        // anything else (none, failed, stopping, being evicted) needs a start.
        if (c == nullptr || !ComingUp(c->state)) QueueStartLocked(t.key);
      }
    }
  }
  Deliver(answers);
}

std::string ModelRouter::ChildAtLocked(const proxy::Endpoint& upstream) const {
  for (const auto& c : children_) {
    if (c.port == upstream.port && !supervisor::IsTerminal(c.state)) return c.name;
  }
  return "";
}

void ModelRouter::OnRequestStart(const std::string& /*model*/, const proxy::Endpoint& upstream) {
  MutexLock lock(mu_);
  const std::string child = ChildAtLocked(upstream);
  if (child.empty()) return;
  Usage& u = usage_[child];
  ++u.in_flight;
  u.last_used = Now();
}

void ModelRouter::OnRequestEnd(const std::string& /*model*/, const proxy::Endpoint& upstream) {
  MutexLock lock(mu_);
  const std::string child = ChildAtLocked(upstream);
  if (child.empty()) return;  // the child is gone; its usage went with it
  Usage& u = usage_[child];
  u.in_flight = std::max(0, u.in_flight - 1);
  u.last_used = Now();
  if (u.in_flight == 0 && u.keep_alive && u.keep_alive->count() == 0) cv_.notify_one();
}

void ModelRouter::OnRequestFinished(const std::string& model, const proxy::Endpoint& upstream,
                                    const proxy::RequestRecord& record) {
  OnRequestEnd(model, upstream);
  std::string child;
  std::optional<std::string> spec_off;
  {
    MutexLock lock(mu_);
    child = ChildAtLocked(upstream);
    if (record.draft_tokens > 0) {
      for (const auto& c : children_) {
        if (c.name != child) continue;
        spec_off = spec_.Observe(child, c.started_at.time_since_epoch().count(), c.model_path, record.draft_tokens,
                                 record.draft_accepted);
      }
    }
  }
  if (spec_off) LogWarn("speculative decoding for %s: %s", child.c_str(), spec_off->c_str());
  if (on_request_) on_request_(model, child, record);
}

std::optional<std::string> ModelRouter::SpecFallbackReason(const std::string& model_path) const {
  MutexLock lock(mu_);
  return spec_.DisabledReason(model_path);
}

std::optional<SpecStats::Totals> ModelRouter::SpecTotals(const std::string& child) const {
  MutexLock lock(mu_);
  return spec_.ForChild(child);
}

void ModelRouter::SetRequestObserver(RequestObserver observer) {
  on_request_ = std::move(observer);
}

size_t ModelRouter::waiting() const {
  MutexLock lock(mu_);
  return WaitingLocked();
}

size_t ModelRouter::WaitingLocked() const {
  size_t n = 0;
  for (const auto& [key, pending] : pending_) n += pending.waiters.size();
  return n;
}

bool ModelRouter::SetPinned(const std::string& child, bool pinned) {
  MutexLock lock(mu_);
  for (const auto& c : children_) {
    if (c.name != child || supervisor::IsTerminal(c.state)) continue;
    Usage& u = usage_[child];
    u.pinned = pinned;
    u.last_used = Now();  // an unpinned model gets its whole TTL from now
    cv_.notify_one();
    return true;
  }
  return false;
}

std::vector<ModelRouter::UsageRow> ModelRouter::UsageSnapshot() const {
  MutexLock lock(mu_);
  std::vector<UsageRow> rows;
  const auto now = Now();
  for (const auto& c : children_) {
    UsageRow r;
    r.child = c.name;
    auto it = usage_.find(c.name);
    const Usage u = it != usage_.end() ? it->second : Usage();
    r.in_flight = u.in_flight;
    const config::ModelSettings* s = SettingsForLocked(c.model_path);
    r.pinned = u.pinned || (s != nullptr && s->pinned);
    // The same rule as ExpireIdle (IdleTtlLocked: pinned, keep_alive, the model's ttl, model_ttl_s).
    const std::optional<std::chrono::seconds> ttl = IdleTtlLocked(c);
    if (ttl && c.state == ChildState::kReady) {
      auto idle = u.in_flight > 0 ? Clock::duration::zero() : now - u.last_used;
      r.ttl_left_s = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(*ttl - idle).count());
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

void ModelRouter::QueueStartLocked(const std::string& key) {
  auto it = pending_.find(key);
  if (it == pending_.end() || it->second.start_order != 0) return;  // nobody waits, or queued already
  it->second.start_order = next_start_order_++;
  cv_.notify_one();
}

std::optional<std::string> ModelRouter::NextStartLocked() {
  Pending* first = nullptr;
  std::optional<std::string> key;
  for (auto& [k, pending] : pending_) {
    if (pending.start_order != 0 && (first == nullptr || pending.start_order < first->start_order)) {
      first = &pending;
      key = k;
    }
  }
  if (first != nullptr) first->start_order = 0;
  return key;
}

void ModelRouter::AnswerAllLocked(const std::string& key, const proxy::EnsureResult& result, std::vector<Answer>& out) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  for (auto& w : it->second.waiters) out.emplace_back(std::move(w.done), result);
  pending_.erase(it);
}

bool ModelRouter::SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) {
  if (!catalog::CheckReference(model).ok()) return false;
  MutexLock lock(mu_);
  const Target t = TargetForLocked(model, children_);
  if (t.child == nullptr || supervisor::IsTerminal(t.child->state)) {
    return !t.path.empty();  // not running: nothing to unload; known if the catalog has it
  }
  // Pinned (`corral start`, or the config): stays until stopped; a request's keep_alive
  // neither unloads it nor gives it a TTL.
  if (PinnedLocked(*t.child)) return true;
  Usage& u = usage_[t.child->name];
  u.keep_alive = keep_alive;
  u.last_used = Now();
  cv_.notify_one();
  return true;
}

std::vector<proxy::ModelInfo> ModelRouter::ListModels() const {
  MutexLock lock(mu_);
  std::vector<proxy::ModelInfo> out;
  std::map<std::string, bool> listed;
  for (const auto& m : catalog_.models()) {
    proxy::ModelInfo info;
    info.name = m.name;
    info.size_bytes = m.size_bytes;
    info.modified_unix_s = m.mtime_s;  // Ollama /api/tags modified_at
    info.family = m.architecture;
    info.quantization = m.quant;
    info.aliases = m.aliases;
    info.stem = m.stem;
    info.origin = m.origin;
    info.n_params = m.n_params;
    info.context_length = m.n_ctx_train;
    info.capabilities = catalog::Capabilities(m);
    // The child its name routes to (by file: a name in another file's metadata is not this model).
    if (const ChildInfo* c = ChildServingLocked(m.path, m.name, children_)) {
      info.state = StateOf(c->state);
      info.context = ContextOf(*c, m.n_ctx_train);
      info.memory_bytes = c->rss_bytes != 0 ? c->rss_bytes : c->reserved_bytes;
      if (c->state == ChildState::kReady) info.expires_at = ExpiresAtLocked(*c);
      listed[c->name] = true;
    }
    out.push_back(std::move(info));
    listed[m.name] = true;
  }
  for (const auto& c : children_) {  // second instances and models outside the catalog
    if (listed.count(c.name) != 0) continue;
    proxy::ModelInfo info;
    info.name = c.name;
    info.state = StateOf(c.state);
    info.context = ContextOf(c, 0);
    info.memory_bytes = c.rss_bytes != 0 ? c.rss_bytes : c.reserved_bytes;
    if (c.state == ChildState::kReady) info.expires_at = ExpiresAtLocked(c);
    out.push_back(std::move(info));
  }
  return out;
}

catalog::Catalog ModelRouter::CatalogSnapshot() const {
  MutexLock lock(mu_);
  return catalog_;
}

config::Config ModelRouter::ConfigCopy() const {
  MutexLock lock(mu_);
  return config_;
}

void ModelRouter::RefreshCatalog() {
  const config::Config config = ConfigCopy();
  auto cat = catalog::Catalog::Load(config);
  // Each `models:` key names a model the way a request does; the settings then follow the file.
  std::map<std::string, config::ModelSettings> by_path;
  std::vector<std::string> warnings;
  if (cat.ok()) {
    for (const auto& m : config.models) {
      auto model = cat->Resolve(m.ref);
      if (!model.ok()) {
        warnings.push_back("models." + m.ref + " (line " + std::to_string(m.line) +
                           "): applies to no model: " + model.status().message());
        continue;
      }
      auto [it, inserted] = by_path.try_emplace(model->path, m);
      if (!inserted) {
        warnings.push_back("models." + m.ref + " (line " + std::to_string(m.line) + ") names " + model->name +
                           ", already set by models." + it->second.ref + "; the first one applies");
      }
    }
  }
  MutexLock lock(mu_);
  if (cat.ok()) {
    catalog_ = std::move(*cat);
    settings_by_path_ = std::move(by_path);
    settings_warnings_ = std::move(warnings);
  }
  catalog_loaded_ = Now();
}

std::vector<std::string> ModelRouter::UpdateConfig(const config::Config& config) {
  std::map<std::string, std::string> before_aliases;
  {
    MutexLock lock(mu_);
    if (config_.aliases) before_aliases = *config_.aliases;
    config_ = config;
    idle_ttl_ = std::chrono::seconds(config.model_ttl_s);
    failed_.clear();  // the new config may be what fixes a start that failed
    spec_.Clear();    // ... or a draft that did not pay
  }
  RefreshCatalog();
  auto children = supervisor_.List();
  std::vector<Answer> answers;
  std::vector<std::string> warnings;
  {
    MutexLock lock(mu_);
    // An alias that is gone or now names another model no longer routes to the child it
    // used to; the child itself keeps running (and serving what is in flight).
    const std::map<std::string, std::string> none;
    const auto& after = config_.aliases ? *config_.aliases : none;
    for (const auto& [alias, ref] : before_aliases) {
      auto it = after.find(alias);
      if (it == after.end() || it->second != ref) names_.erase(alias);
    }
    SettleLocked(children, answers);
    warnings = settings_warnings_;
  }
  cv_.notify_all();  // new TTLs apply at the next idle check
  Deliver(answers);
  return warnings;
}

const config::ModelSettings* ModelRouter::SettingsForLocked(const std::string& model_path) const {
  auto it = settings_by_path_.find(model_path);
  return it == settings_by_path_.end() ? nullptr : &it->second;
}

LaunchSettings ModelRouter::LaunchSettingsFor(const std::string& model_path) const {
  MutexLock lock(mu_);
  LaunchSettings out;
  const config::ModelSettings* s = SettingsForLocked(model_path);
  if (s != nullptr) out.model = *s;
  const bool keep = s != nullptr && s->kv_keep ? *s->kv_keep : config_.kv_keep;
  if (keep) {
    out.kv_root = StateDir() + "/kv";
    auto budget = supervisor::ParseByteSize(config_.kv_keep_budget);
    if (!budget.ok()) {
      LogWarn("kv_keep_budget '%s': %s; using 4GiB", config_.kv_keep_budget.c_str(), budget.status().message().c_str());
    }
    out.kv_budget_bytes = budget.ok() ? *budget : kDefaultKvBudget;
  }
  // A draft that did not pay (SpecStats' fallback mark) is left off at this start; `corral ps`
  // shows why, and a config reload clears the mark.
  if (spec_.DisabledReason(model_path)) {
    out.spec_setting = "off";
  } else {
    out.spec_setting = s != nullptr && !s->spec.empty() ? s->spec : config_.spec;
  }
  return out;
}

std::vector<std::string> ModelRouter::SettingsWarnings() const {
  MutexLock lock(mu_);
  return settings_warnings_;
}

void ModelRouter::StarterLoop() {
  MutexLock lock(mu_);
  Clock::time_point next_idle_check = Now() + kIdleCheckInterval;
  while (!quit_) {
    const auto now = Now();
    // Deadlines of parked requests.
    std::vector<Answer> answers;
    Clock::time_point wake = now + kIdleCheckInterval;
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto& parked = it->second.waiters;
      for (auto w = parked.begin(); w != parked.end();) {
        if (w->deadline <= now) {
          answers.emplace_back(
              std::move(w->done),
              Err(proxy::EnsureErrorCode::kTimeout,
                  "model '" + it->first + "' was not ready before the request's deadline", kTimeoutRetryAfterS));
          w = parked.erase(w);
        } else {
          wake = std::min(wake, w->deadline);
          ++w;
        }
      }
      it = parked.empty() ? pending_.erase(it) : std::next(it);  // nobody waits: no start either
    }
    if (!answers.empty()) {
      lock.Unlock();
      Deliver(answers);
      lock.Lock();
      continue;
    }
    if (std::optional<std::string> model = NextStartLocked()) {
      lock.Unlock();
      StartOnDemand(*model);
      lock.Lock();
      continue;
    }
    bool unload_now = false;
    for (const auto& c : children_) {
      if (c.state != ChildState::kReady) continue;
      const Usage& u = usage_[c.name];
      unload_now =
          unload_now || (u.in_flight == 0 && !u.evicting && !u.pinned && u.keep_alive && u.keep_alive->count() == 0);
    }
    if (now >= next_idle_check || unload_now) {
      next_idle_check = now + kIdleCheckInterval;
      const bool refresh = now - catalog_loaded_ >= options_.catalog_refresh;
      lock.Unlock();
      ExpireIdle();
      if (refresh) RefreshCatalog();
      lock.Lock();
      continue;
    }
    // A wait for a duration, not until a time point: the injected clock of a test need not
    // be the steady clock.
    cv_.wait_for(lock.native(), std::min(wake, next_idle_check) - now);
  }
}

void ModelRouter::StartOnDemand(const std::string& model) {
  std::vector<Answer> answers;
  // `model` is a waiters' key: a canonical name, or a name the snapshot did not know.
  auto fail_all = [&](const proxy::EnsureError& error, const std::string& remember_path) {
    MutexLock lock(mu_);
    AnswerAllLocked(model, error, answers);
    if (!remember_path.empty()) failed_[remember_path] = {Now(), error.message};
  };

  // The work; every early return still delivers the answers collected so far.
  auto run = [&] {
    std::vector<ChildInfo> children = supervisor_.List();
    Result<ResolvedModel> resolved = NotFound("");
    bool stale = false;
    {
      MutexLock lock(mu_);
      if (pending_.count(model) == 0) return;  // nobody waits any more
      const Target t = TargetForLocked(model, children);
      if (t.child != nullptr && (!supervisor::IsTerminal(t.child->state) || ComingUp(t.child->state))) {
        SettleLocked(children, answers);  // already starting, ready or restart pending: the settle answers
        return;
      }
      // Catalog names only, from the snapshot (no disk on a hit).
      resolved = ResolveRequestModel(catalog_, model);
      stale = Now() - catalog_loaded_ >= options_.catalog_miss_refresh;
    }
    if (!resolved.ok() && resolved.status().code() == StatusCode::kNotFound && stale) {
      RefreshCatalog();  // a model downloaded since the last load
      MutexLock lock(mu_);
      resolved = ResolveRequestModel(catalog_, model);
    }
    if (!resolved.ok()) {
      std::vector<std::string> close;
      {
        MutexLock lock(mu_);
        close = proxy::CloseMatches(model, KnownNamesLocked());
      }
      fail_all(Err(proxy::EnsureErrorCode::kNotFound, resolved.status().message(), 0, close), "");
      return;
    }
    {
      // Failure backoff, per file: every spelling of the model shares it.
      std::optional<proxy::EnsureError> backoff;
      {
        MutexLock lock(mu_);
        if (auto f = failed_.find(resolved->path); f != failed_.end()) {
          const auto since = Now() - f->second.at;
          if (since < options_.failed_backoff) {
            const auto left = std::chrono::duration_cast<std::chrono::seconds>(options_.failed_backoff - since);
            backoff = Err(proxy::EnsureErrorCode::kStartFailed, f->second.why, static_cast<int>(left.count()) + 1);
          }
        }
      }
      if (backoff) {
        fail_all(*backoff, "");
        return;
      }
    }

    // Named by an alias or a substring: a live child may already serve that file.
    for (const auto& c : children) {
      if (!supervisor::IsTerminal(c.state) && c.model_path == resolved->path) {
        OnSupervisorChange();
        return;
      }
    }

    LaunchRequest request;
    request.name = ChildNameFor(resolved->name);
    for (int n = 2; n < 100; ++n) {
      auto taken = supervisor_.Get(request.name);
      if (!taken.ok()) break;
      if (supervisor::IsTerminal(taken->state)) {
        (void)supervisor_.Stop(request.name);  // forget the failed child; this start replaces it
        break;
      }
      request.name = ChildNameFor(resolved->name) + "-" + std::to_string(n);
    }
    // The same builder as `corral start` (no flags here: the `models:` settings decide).
    // Speculative decoding (docs/spec.md): a named draft that does not fit refuses the start.
    const LaunchSettings settings = LaunchSettingsFor(resolved->path);
    auto plan = BuildLaunchSpec(ConfigCopy(), *resolved, settings, request, CatalogSnapshot());
    if (!plan.ok()) {
      fail_all(
          Err(proxy::EnsureErrorCode::kStartFailed, "cannot start '" + resolved->name + "': " + plan.status().message(),
              static_cast<int>(options_.failed_backoff.count())),
          resolved->path);
      return;
    }
    const supervisor::LaunchSpec& spec = plan->spec;
    for (;;) {
      auto started = supervisor_.Start(spec);
      if (started.ok()) break;
      const StatusCode code = started.status().code();
      if (code == StatusCode::kResourceExhausted && EvictOne(spec.name)) continue;
      // Admission and name clashes speak of names and sizes; anything else (a spawn error
      // names the engine's path) is summarised for the client: the daemon log has it.
      const bool no_room = code == StatusCode::kResourceExhausted;
      const std::string why = no_room || code == StatusCode::kAlreadyExists
                                  ? started.status().message()
                                  : "llama-server could not be started (the daemon log says why)";
      fail_all(Err(no_room ? proxy::EnsureErrorCode::kUnavailable : proxy::EnsureErrorCode::kStartFailed,
                   "cannot start '" + resolved->name + "': " + why, static_cast<int>(options_.failed_backoff.count())),
               no_room ? std::string() : resolved->path);
      return;
    }
    RegisterStarted(spec.name, {resolved->name}, /*pinned=*/settings.model && settings.model->pinned);
  };
  run();
  Deliver(answers);
}

bool ModelRouter::EvictOne(const std::string& except_child) {
  std::string victim;
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& c : children_) {
      if (c.name == except_child || c.state != ChildState::kReady) continue;
      const Usage& u = usage_[c.name];
      if (u.pinned || u.in_flight > 0 || u.evicting) continue;
      if (const config::ModelSettings* s = SettingsForLocked(c.model_path); s != nullptr && s->pinned) continue;
      if (u.last_used < oldest) {
        oldest = u.last_used;
        victim = c.name;
      }
    }
    if (victim.empty()) return false;
    usage_[victim].evicting = true;  // unroute first, so no new request picks it
    SettleLocked(children_, answers);
    Log("evicting %s (least recently used, idle %llds) to make room for %s", victim.c_str(),
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(Now() - oldest).count()),
        except_child.c_str());
  }
  Deliver(answers);
  (void)supervisor_.Stop(victim);
  OnSupervisorChange();
  return true;
}

std::optional<std::chrono::seconds> ModelRouter::IdleTtlLocked(const ChildInfo& c) const {
  // Pinned (by `corral start` or the config) wins: it stays until stopped; then
  // keep_alive (Ollama); then the model's own ttl from the config; then model_ttl_s.
  // Read now, so a reload applies to children already running.
  auto it = usage_.find(c.name);
  const Usage none;
  const Usage& u = it != usage_.end() ? it->second : none;
  const config::ModelSettings* s = SettingsForLocked(c.model_path);
  std::chrono::seconds ttl = idle_ttl_;
  if (u.pinned || (s != nullptr && s->pinned)) {
    return std::nullopt;
  } else if (u.keep_alive) {
    ttl = *u.keep_alive;
  } else if (s != nullptr && s->ttl_s) {
    ttl = std::chrono::seconds(*s->ttl_s);
  }
  if (!u.keep_alive && ttl.count() == 0) return std::nullopt;  // 0 = never
  if (ttl.count() < 0) return std::nullopt;                    // keep loaded
  return std::min(ttl, kFarFuture);                            // time arithmetic in nanoseconds must not overflow
}

std::chrono::system_clock::time_point ModelRouter::ExpiresAtLocked(const ChildInfo& c) const {
  const auto now = std::chrono::system_clock::now();
  const std::optional<std::chrono::seconds> ttl = IdleTtlLocked(c);
  // Never: Ollama answers "now + the longest duration" (Go's time: year 2318). The
  // nanosecond system clock ends in 2262 (UBSan caught the overflow), so "far future" here is
  // a century from now, and every TTL is capped there too: a config or a keep_alive may ask
  // for more than the clock can hold.
  if (!ttl) return now + kFarFuture;
  const std::chrono::seconds capped = std::min(*ttl, kFarFuture);  // IdleTtlLocked caps it already
  auto it = usage_.find(c.name);
  if (it == usage_.end() || it->second.in_flight > 0) return now + capped;  // busy: the clock starts when it ends
  const auto left = it->second.last_used + capped - Now();
  return now + std::chrono::duration_cast<std::chrono::system_clock::duration>(std::max(left, Clock::duration::zero()));
}

void ModelRouter::ExpireIdle() {
  std::vector<std::string> expired;
  std::vector<Answer> answers;
  {
    MutexLock lock(mu_);
    const auto now = Now();
    for (const auto& c : children_) {
      if (c.state != ChildState::kReady) continue;
      Usage& u = usage_[c.name];
      if (u.in_flight > 0 || u.evicting) continue;
      const std::optional<std::chrono::seconds> ttl = IdleTtlLocked(c);
      if (!ttl) continue;
      if (now - u.last_used >= *ttl) {
        u.evicting = true;
        expired.push_back(c.name);
        Log("unloading %s: idle for %llds, its TTL is %llds", c.name.c_str(),
            static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(now - u.last_used).count()),
            static_cast<long long>(ttl->count()));
      }
    }
    if (!expired.empty()) SettleLocked(children_, answers);
  }
  Deliver(answers);
  for (const auto& name : expired) (void)supervisor_.Stop(name);
  if (!expired.empty()) OnSupervisorChange();
}

}  // namespace corral::daemon
