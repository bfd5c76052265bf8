#include "daemon/reloader.h"

#include <utility>

#include "common/log.h"
#include "daemon/models.h"
#include "daemon/proxy_options.h"
#include "daemon/router.h"
#include "supervisor/supervisor.h"

namespace corral::daemon {

ConfigReloader::ConfigReloader(config::Config running, uint64_t total_memory_bytes, uint64_t budget, Parts parts)
    : total_memory_(total_memory_bytes), parts_(std::move(parts)), config_(std::move(running)), budget_(budget) {}

config::Config ConfigReloader::Current() const {
  MutexLock lock(config_mu_);
  return config_;
}

uint64_t ConfigReloader::Budget() const {
  MutexLock lock(config_mu_);
  return budget_;
}

control::ReloadStats ConfigReloader::Stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void ConfigReloader::SetWatching(bool watching) {
  MutexLock lock(mu_);
  stats_.watching = watching;
}

void ConfigReloader::RefreshCatalog() {
  MutexLock lock(reload_mu_);
  parts_.router.UpdateConfig(Current());
}

control::ReloadOutcome ConfigReloader::Reload(const std::string& trigger) {
  MutexLock reload_lock(reload_mu_);
  if (parts_.shutting_down.load()) {
    control::ReloadOutcome refused;
    refused.trigger = trigger;
    refused.error = "the daemon is shutting down";
    return refused;  // not counted: the daemon drains
  }
  control::ReloadOutcome outcome = Apply(trigger);
  if (!outcome.ok) {
    LogWarn("config reload (%s) rejected, the running config stays: %s", trigger.c_str(), outcome.error.c_str());
  }
  Record(outcome);
  return outcome;
}

control::ReloadOutcome ConfigReloader::Apply(const std::string& trigger) {
  const config::Config running = Current();
  control::ReloadOutcome outcome;
  outcome.trigger = trigger;
  outcome.file = running.config_file;
  auto reject = [&](const Status& s) {
    outcome.error = s.message();
    return outcome;
  };
  auto loaded = config::Reload(running);
  if (!loaded.ok()) return reject(loaded.status());
  config::Config next = std::move(*loaded);
  if (Status s = ValidateDaemonConfig(next); !s.ok()) return reject(s);
  auto budget = MemoryBudgetBytes(next, total_memory_);
  if (!budget.ok()) return reject(budget.status());

  const std::vector<config::ConfigChange> changes = config::Diff(running, next);
  config::KeepRestartOptions(next, running);
  size_t needs_restart = 0;
  for (const auto& c : changes) {
    const bool restart = c.reload == config::OnReload::kRestart;
    outcome.changes.push_back({c.key, c.before, c.after, restart});
    if (restart) {
      ++needs_restart;
      LogWarn("config: %s changed (%s -> %s) but needs a restart; still %s", c.key.c_str(), c.before.c_str(),
              c.after.c_str(), c.before.c_str());
    } else {
      Log("config: %s: %s -> %s", c.key.c_str(), c.before.empty() ? "(unset)" : c.before.c_str(),
          c.after.empty() ? "(unset)" : c.after.c_str());
    }
  }

  // Apply: limits first (later starts), then the router (catalog, aliases, settings, TTLs).
  parts_.supervisor.SetLimits(SupervisorLimitsFor(next, *budget));
  if (parts_.proxy_limits) {
    const proxy::ProxyOptions live = ProxyOptionsFor(next);
    parts_.proxy_limits(live.max_body_bytes, live.client_timeout, live.upstream_timeout);
  }
  {
    MutexLock lock(config_mu_);
    config_ = next;
    SetLogLevel(next.log_level);
    budget_ = *budget;
  }
  for (const auto& w : parts_.router.UpdateConfig(next)) {
    outcome.warnings.push_back(w);
    LogWarn("config: %s", w.c_str());
  }
  outcome.ok = true;
  Log("config reloaded (%s): %zu change(s), %zu applied, %zu need a restart", trigger.c_str(), changes.size(),
      changes.size() - needs_restart, needs_restart);
  return outcome;
}

void ConfigReloader::Record(const control::ReloadOutcome& outcome) {
  MutexLock lock(mu_);
  ++stats_.reloads;
  ++stats_.by_trigger[outcome.trigger];
  if (outcome.ok) ++stats_.applied;
  stats_.last = outcome;
}

}  // namespace corral::daemon
