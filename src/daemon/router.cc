#include "daemon/router.h"

#include <algorithm>
#include <optional>

#include "daemon/models.h"
#include "supervisor/launch.h"

namespace corral::daemon {
namespace {

using supervisor::ChildInfo;
using supervisor::ChildState;

constexpr std::chrono::seconds kIdleCheckInterval{1};
constexpr int kQueueFullRetryAfterS = 2;
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
    case ChildState::kFailed: return proxy::ModelState::kFailed;
  }
  return proxy::ModelState::kStopped;
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

ModelRouter::ModelRouter(const config::Config& config, supervisor::Supervisor& supervisor, proxy::RoutingTable& routes,
                         RouterOptions options)
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
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
    for (auto& [name, parked] : waiters_) {
      for (auto& w : parked) {
        answers.emplace_back(std::move(w.done),
                             Err(proxy::EnsureErrorCode::kUnavailable, "corral is shutting down", kTimeoutRetryAfterS));
      }
    }
    waiters_.clear();
    n_waiters_ = 0;
  }
  cv_.notify_all();
  if (starter_.joinable()) starter_.join();
  Deliver(answers);
}

void ModelRouter::Deliver(std::vector<Answer>& answers) {
  for (auto& [done, result] : answers) done(std::move(result));
  answers.clear();
}

std::string ModelRouter::ChildForLocked(const std::string& name) const {
  if (auto it = names_.find(name); it != names_.end()) return it->second;
  const ChildInfo* by_model = nullptr;
  for (const auto& c : children_) {
    if (c.name == name) return c.name;
    if (c.model == name && (by_model == nullptr || c.state == ChildState::kReady)) by_model = &c;
  }
  return by_model != nullptr ? by_model->name : std::string();
}

std::vector<std::string> ModelRouter::KnownNamesLocked() const {
  std::vector<std::string> out;
  for (const auto& m : catalog_) {
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
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& n : names) {
      if (!n.empty()) names_[n] = child;
    }
    Usage& u = usage_[child];
    u.pinned = pinned;
    u.last_used = Clock::now();
    SettleLocked(children, answers);
  }
  Deliver(answers);
}

void ModelRouter::OnSupervisorChange() {
  auto children = supervisor_.List();
  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    SettleLocked(children, answers);
  }
  Deliver(answers);
}

void ModelRouter::SettleLocked(const std::vector<ChildInfo>& children, std::vector<Answer>& out) {
  children_ = children;
  const auto now = Clock::now();
  std::map<std::string, const ChildInfo*> by_name;
  for (const auto& c : children_) {
    by_name[c.name] = &c;
    auto [u, inserted] = usage_.try_emplace(c.name);
    if (inserted) u->second.last_used = now;
  }
  std::erase_if(usage_, [&](const auto& kv) { return by_name.count(kv.first) == 0; });
  std::erase_if(names_, [&](const auto& kv) { return by_name.count(kv.second) == 0; });

  // Routes: every ready child by its name, its model's canonical name, and registered names.
  proxy::RouteMap map;
  auto routable = [&](const ChildInfo& c) {
    return c.state == ChildState::kReady && c.port > 0 && !usage_[c.name].evicting;
  };
  for (const auto& c : children_) {
    if (!routable(c)) continue;
    map.routes[c.name] = EndpointOf(c);
    if (!c.model.empty()) map.routes.try_emplace(c.model, EndpointOf(c));
  }
  for (const auto& [client, child] : names_) {
    const ChildInfo* c = by_name[child];
    if (c != nullptr && routable(*c)) map.routes[client] = EndpointOf(*c);
  }
  routes_.Publish(std::move(map));

  // Parked requests whose child is now ready or failed.
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    const std::string child = ChildForLocked(it->first);
    auto found = by_name.find(child);
    if (child.empty() || found == by_name.end()) {
      QueueStartLocked(it->first);  // its child went away (stopped, evicted): start again
      ++it;
      continue;
    }
    const ChildInfo& c = *found->second;
    std::optional<proxy::EnsureResult> result;
    if (routable(c)) {
      result = EndpointOf(c);
    } else if (c.state == ChildState::kFailed && c.restart_in_ms >= 0) {
      // The restart policy brings it back: keep waiting (the request's deadline bounds it).
    } else if (c.state == ChildState::kFailed) {
      std::string why = "model '" + it->first + "' failed to start: " + c.failure.message;
      if (!c.last_log_lines.empty()) why += "\nlast log lines:\n" + c.last_log_lines;
      failed_at_[it->first] = now;
      failed_why_[it->first] = why;
      result = Err(proxy::EnsureErrorCode::kStartFailed, why, static_cast<int>(options_.failed_backoff.count()));
    } else if (c.state == ChildState::kStopped) {
      QueueStartLocked(it->first);  // stopped under us (evicted, unloaded): start again
    }
    if (!result) {
      ++it;
      continue;
    }
    for (auto& w : it->second) out.emplace_back(std::move(w.done), *result);
    n_waiters_ -= it->second.size();
    it = waiters_.erase(it);
  }
}

void ModelRouter::EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                              std::function<void(proxy::EnsureResult)> done) {
  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (quit_) {
      answers.emplace_back(std::move(done),
                           Err(proxy::EnsureErrorCode::kUnavailable, "corral is shutting down", kTimeoutRetryAfterS));
    } else {
      const std::string child = ChildForLocked(model);
      const ChildInfo* c = nullptr;
      for (const auto& ci : children_) {
        if (ci.name == child) c = &ci;
      }
      if (c != nullptr && c->state == ChildState::kReady && c->port > 0 && !usage_[c->name].evicting) {
        answers.emplace_back(std::move(done), EndpointOf(*c));
      } else if (n_waiters_ >= options_.max_waiters) {
        answers.emplace_back(std::move(done),
                             Err(proxy::EnsureErrorCode::kQueueFull,
                                 std::to_string(n_waiters_) + " requests are already waiting for models to start",
                                 kQueueFullRetryAfterS));
      } else {
        waiters_[model].push_back({deadline, std::move(done)});
        ++n_waiters_;
        // A child on its way up (or whose restart is pending) answers through the settle;
        // anything else (none, failed, stopping, being evicted) needs a start.
        const bool coming = c != nullptr && (c->state == ChildState::kStarting || c->state == ChildState::kLoading ||
                                             (c->state == ChildState::kReady && !usage_[c->name].evicting) ||
                                             (c->state == ChildState::kFailed && c->restart_in_ms >= 0));
        if (!coming) QueueStartLocked(model);
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
  std::lock_guard<std::mutex> lock(mu_);
  const std::string child = ChildAtLocked(upstream);
  if (child.empty()) return;
  Usage& u = usage_[child];
  ++u.in_flight;
  u.last_used = Clock::now();
}

void ModelRouter::OnRequestEnd(const std::string& /*model*/, const proxy::Endpoint& upstream) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string child = ChildAtLocked(upstream);
  if (child.empty()) return;  // the child is gone; its usage went with it
  Usage& u = usage_[child];
  u.in_flight = std::max(0, u.in_flight - 1);
  u.last_used = Clock::now();
  if (u.in_flight == 0 && u.keep_alive && u.keep_alive->count() == 0) cv_.notify_one();
}

void ModelRouter::QueueStartLocked(const std::string& model) {
  if (start_pending_[model]) return;
  start_pending_[model] = true;
  to_start_.push_back(model);
  cv_.notify_one();
}

bool ModelRouter::SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string child = ChildForLocked(model);
  if (child.empty()) {
    // Not running: nothing to unload; known if the catalog has it.
    for (const auto& m : catalog_) {
      if (m.name == model || std::find(m.aliases.begin(), m.aliases.end(), model) != m.aliases.end()) return true;
    }
    return false;
  }
  Usage& u = usage_[child];
  u.keep_alive = keep_alive;
  u.last_used = Clock::now();
  cv_.notify_one();
  return true;
}

std::vector<proxy::ModelInfo> ModelRouter::ListModels() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<proxy::ModelInfo> out;
  std::map<std::string, bool> listed;
  auto best_child = [&](const catalog::Model& m) -> const ChildInfo* {
    const ChildInfo* best = nullptr;
    for (const auto& c : children_) {
      if (c.model != m.name && c.model_path != m.path) continue;
      if (best == nullptr || (c.state == ChildState::kReady && best->state != ChildState::kReady)) best = &c;
    }
    return best;
  };
  for (const auto& m : catalog_) {
    proxy::ModelInfo info;
    info.name = m.name;
    info.size_bytes = m.size_bytes;
    info.family = m.architecture;
    info.quantization = m.quant;
    if (const ChildInfo* c = best_child(m)) {
      info.state = StateOf(c->state);
      info.context = ContextOf(*c, m.n_ctx_train);
      info.memory_bytes = c->rss_bytes != 0 ? c->rss_bytes : c->reserved_bytes;
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
    out.push_back(std::move(info));
  }
  return out;
}

config::Config ModelRouter::ConfigCopy() const {
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  if (cat.ok()) {
    catalog_ = cat->models();
    settings_by_path_ = std::move(by_path);
    settings_warnings_ = std::move(warnings);
  }
  catalog_loaded_ = Clock::now();
}

std::vector<std::string> ModelRouter::UpdateConfig(const config::Config& config) {
  std::map<std::string, std::string> before_aliases;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.aliases) before_aliases = *config_.aliases;
    config_ = config;
    idle_ttl_ = std::chrono::seconds(config.model_ttl_s);
    failed_at_.clear();  // the new config may be what fixes a start that failed
    failed_why_.clear();
  }
  RefreshCatalog();
  auto children = supervisor_.List();
  std::vector<Answer> answers;
  std::vector<std::string> warnings;
  {
    std::lock_guard<std::mutex> lock(mu_);
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

std::optional<config::ModelSettings> ModelRouter::SettingsFor(const std::string& model_path) const {
  std::lock_guard<std::mutex> lock(mu_);
  const config::ModelSettings* s = SettingsForLocked(model_path);
  if (s == nullptr) return std::nullopt;
  return *s;
}

std::vector<std::string> ModelRouter::SettingsWarnings() const {
  std::lock_guard<std::mutex> lock(mu_);
  return settings_warnings_;
}

void ModelRouter::StarterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  Clock::time_point next_idle_check = Clock::now() + kIdleCheckInterval;
  while (!quit_) {
    const auto now = Clock::now();
    // Deadlines of parked requests.
    std::vector<Answer> answers;
    Clock::time_point wake = now + kIdleCheckInterval;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      auto& parked = it->second;
      for (auto w = parked.begin(); w != parked.end();) {
        if (w->deadline <= now) {
          answers.emplace_back(
              std::move(w->done),
              Err(proxy::EnsureErrorCode::kTimeout,
                  "model '" + it->first + "' was not ready before the request's deadline", kTimeoutRetryAfterS));
          w = parked.erase(w);
          --n_waiters_;
        } else {
          wake = std::min(wake, w->deadline);
          ++w;
        }
      }
      it = parked.empty() ? waiters_.erase(it) : std::next(it);
    }
    if (!answers.empty()) {
      lock.unlock();
      Deliver(answers);
      lock.lock();
      continue;
    }
    if (!to_start_.empty()) {
      std::string model = std::move(to_start_.front());
      to_start_.pop_front();
      start_pending_.erase(model);
      lock.unlock();
      StartOnDemand(model);
      lock.lock();
      continue;
    }
    bool unload_now = false;
    for (const auto& c : children_) {
      if (c.state != ChildState::kReady) continue;
      const Usage& u = usage_[c.name];
      unload_now = unload_now || (u.in_flight == 0 && !u.evicting && u.keep_alive && u.keep_alive->count() == 0);
    }
    if (now >= next_idle_check || unload_now) {
      next_idle_check = now + kIdleCheckInterval;
      const bool refresh = now - catalog_loaded_ >= options_.catalog_refresh;
      lock.unlock();
      ExpireIdle();
      if (refresh) RefreshCatalog();
      lock.lock();
      continue;
    }
    cv_.wait_until(lock, std::min(wake, next_idle_check));
  }
}

void ModelRouter::StartOnDemand(const std::string& model) {
  std::vector<Answer> answers;
  auto fail_all = [&](const proxy::EnsureError& error, bool remember) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = waiters_.find(model); it != waiters_.end()) {
      for (auto& w : it->second) answers.emplace_back(std::move(w.done), error);
      n_waiters_ -= it->second.size();
      waiters_.erase(it);
    }
    if (remember) {
      failed_at_[model] = Clock::now();
      failed_why_[model] = error.message;
    }
  };

  // The work; every early return still delivers the answers collected so far.
  auto run = [&] {
    std::vector<ChildInfo> children = supervisor_.List();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiters_.find(model) == waiters_.end()) return;  // nobody waits any more
      const std::string child = ChildForLocked(model);
      for (const auto& c : children) {
        if (c.name == child && !supervisor::IsTerminal(c.state)) {
          SettleLocked(children, answers);  // already starting or ready: the settle answers
          return;
        }
      }
    }
    {
      // Restart backoff after a failed on-demand start.
      std::optional<proxy::EnsureError> backoff;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto f = failed_at_.find(model); f != failed_at_.end()) {
          const auto since = Clock::now() - f->second;
          if (since < options_.failed_backoff) {
            const auto left = std::chrono::duration_cast<std::chrono::seconds>(options_.failed_backoff - since);
            backoff = Err(proxy::EnsureErrorCode::kStartFailed, failed_why_[model], static_cast<int>(left.count()) + 1);
          }
        }
      }
      if (backoff) {
        fail_all(*backoff, false);
        return;
      }

      const config::Config config = ConfigCopy();
      auto resolved = ResolveModel(config, model);
      if (!resolved.ok()) {
        std::vector<std::string> close;
        {
          std::lock_guard<std::mutex> lock(mu_);
          close = proxy::CloseMatches(model, KnownNamesLocked());
        }
        fail_all(Err(proxy::EnsureErrorCode::kNotFound, resolved.status().message(), 0, close), false);
        return;
      }

      // Named by an alias or a substring: a live child may already serve that file.
      for (const auto& c : children) {
        if (!supervisor::IsTerminal(c.state) && c.model_path == resolved->path) {
          RegisterStarted(c.name, {model}, /*pinned=*/false);
          return;
        }
      }

      supervisor::LaunchSpec spec;
      spec.name = ChildNameFor(resolved->name);
      for (int n = 2; n < 100; ++n) {
        auto taken = supervisor_.Get(spec.name);
        if (!taken.ok()) break;
        if (supervisor::IsTerminal(taken->state)) {
          (void)supervisor_.Stop(spec.name);  // forget the failed child; this start replaces it
          break;
        }
        spec.name = ChildNameFor(resolved->name) + "-" + std::to_string(n);
      }
      spec.model = resolved->name;
      spec.model_path = resolved->path;
      spec.model_bytes = resolved->size_bytes;
      // The config's `models:` settings for this file: context, raw args, pinned.
      const std::optional<config::ModelSettings> settings = SettingsFor(resolved->path);
      if (settings) {
        spec.ctx = settings->ctx;
        spec.preset_args = settings->args;
      }
      spec.reserved_bytes = EstimateModelMemory(config, *resolved, spec.ctx);
      for (;;) {
        auto started = supervisor_.Start(spec);
        if (started.ok()) break;
        if (started.status().code() == StatusCode::kResourceExhausted && EvictOne(spec.name)) continue;
        const bool no_room = started.status().code() == StatusCode::kResourceExhausted;
        fail_all(Err(no_room ? proxy::EnsureErrorCode::kUnavailable : proxy::EnsureErrorCode::kStartFailed,
                     "cannot start '" + model + "': " + started.status().message(),
                     static_cast<int>(options_.failed_backoff.count())),
                 /*remember=*/!no_room);
        return;
      }
      RegisterStarted(spec.name, {model, resolved->name}, /*pinned=*/settings && settings->pinned);
    }
  };
  run();
  Deliver(answers);
}

bool ModelRouter::EvictOne(const std::string& except_child) {
  std::string victim;
  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
  }
  Deliver(answers);
  (void)supervisor_.Stop(victim);
  OnSupervisorChange();
  return true;
}

void ModelRouter::ExpireIdle() {
  std::vector<std::string> expired;
  std::vector<Answer> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    for (const auto& c : children_) {
      if (c.state != ChildState::kReady) continue;
      Usage& u = usage_[c.name];
      if (u.in_flight > 0 || u.evicting) continue;
      // keep_alive (Ollama) wins; then pinned (by `corral start` or the config); then the
      // model's own ttl from the config; then model_ttl_s. Read now, so a reload applies
      // to children already running.
      const config::ModelSettings* s = SettingsForLocked(c.model_path);
      std::chrono::seconds ttl = idle_ttl_;
      if (u.keep_alive) {
        ttl = *u.keep_alive;
      } else if (u.pinned || (s != nullptr && s->pinned)) {
        continue;
      } else if (s != nullptr && s->ttl_s) {
        ttl = std::chrono::seconds(*s->ttl_s);
      }
      if (!u.keep_alive && ttl.count() == 0) continue;  // 0 = never
      if (ttl.count() < 0) continue;                    // keep loaded
      if (now - u.last_used >= ttl) {
        u.evicting = true;
        expired.push_back(c.name);
      }
    }
    if (!expired.empty()) SettleLocked(children_, answers);
  }
  Deliver(answers);
  for (const auto& name : expired) (void)supervisor_.Stop(name);
  if (!expired.empty()) OnSupervisorChange();
}

}  // namespace corral::daemon
