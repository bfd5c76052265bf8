#include "daemon/control_services.h"

#include <cctype>
#include <utility>

#include "catalog/catalog.h"
#include "catalog/spec.h"
#include "common/log.h"
#include "common/paths.h"
#include "daemon/activity.h"
#include "daemon/bench_runs.h"
#include "daemon/daemon.h"
#include "daemon/log_follow.h"
#include "daemon/models.h"
#include "daemon/reloader.h"
#include "daemon/router.h"
#include "edge/host.h"
#include "supervisor/supervisor.h"

namespace corral::daemon {
namespace {

using control::ApiError;
using control::ErrorCode;

ErrorCode CodeForStart(const Status& s) {
  switch (s.code()) {
    case StatusCode::kResourceExhausted: return ErrorCode::kAdmission;
    case StatusCode::kInvalidArgument: return ErrorCode::kBadRequest;
    default: return ErrorCode::kLaunchFailed;
  }
}

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

std::vector<supervisor::ChildInfo> ControlServices::Children() {
  return parts_.supervisor.List();
}

Result<supervisor::ChildInfo> ControlServices::Child(const std::string& name) {
  return parts_.supervisor.Get(name);
}

Result<supervisor::ChildInfo> ControlServices::WaitForChange(const std::string& name, uint64_t generation,
                                                             std::chrono::milliseconds timeout) {
  return parts_.supervisor.WaitForChange(name, generation, timeout);
}

Result<supervisor::ChildInfo> ControlServices::Stop(const std::string& name) {
  return parts_.supervisor.Stop(name);
}

// The child a reference from the CLI names (`corral stop|logs|ps NAME`, the one resolver):
// a child's own name; else the model the catalog resolves it to (name, alias, stem,
// owner/repo:QUANT, Ollama name, unique substring, path) and the child serving that file;
// else a unique substring of a child's name.
Result<std::string> ControlServices::ChildForReference(const std::string& ref, bool for_logs) {
  if (parts_.supervisor.Get(ref).ok()) return ref;
  CORRAL_RETURN_IF_ERROR(catalog::CheckReference(ref));
  const auto children = parts_.supervisor.List();
  const catalog::Catalog cat = parts_.router.CatalogSnapshot();
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
      std::string msg = "'" + ref + "' is " + model->name + ", served by " + std::to_string(hits.size()) + " children:";
      for (size_t k = 0; k < hits.size(); ++k) msg += (k == 0 ? " " : ", ") + hits[k];
      return Status(StatusCode::kAmbiguous, msg);
    }
    if (for_logs) return ChildNameFor(model->name);
    return NotFound("model " + model->name + " is not running" + (ref != model->name ? " ('" + ref + "')" : ""));
  }
  std::vector<std::string> hits;
  const std::string lref = Lower(ref);
  for (const auto& c : children) {
    if (Lower(c.name).find(lref) != std::string::npos) hits.push_back(c.name);
  }
  if (hits.size() == 1) return hits[0];
  return model.status();
}

control::SpecView ControlServices::Spec(const supervisor::ChildInfo& child) {
  control::SpecView view;
  if (auto t = parts_.router.SpecTotals(child.name)) view.totals = control::SpecView::Totals{t->drafted, t->accepted};
  view.fallback = parts_.router.SpecFallbackReason(child.model_path);
  return view;
}

control::StartAnswer ControlServices::Start(const control::StartRequest& r) {
  const config::Config config = parts_.reloader.Current();
  auto model = ResolveModel(config, r.model);
  if (!model.ok()) return ApiError{ErrorCode::kModelReference, model.status().message()};
  std::string name = r.name.empty() ? ChildNameFor(model->name) : r.name;
  if (r.name.empty()) {
    // The default name is taken by another file with the same canonical name (two copies,
    // two quantisations named alike): count up rather than refuse.
    for (int n = 2; n < 100; ++n) {
      auto taken = parts_.supervisor.Get(name);
      if (!taken.ok() || supervisor::IsTerminal(taken->state) || taken->model_path == model->path) break;
      name = ChildNameFor(model->name) + "-" + std::to_string(n);
    }
  }
  if (Status s = supervisor::CheckChildName(name); !s.ok()) return ApiError{ErrorCode::kBadRequest, s.message()};

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
  auto built = BuildLaunchSpec(config, *model, parts_.router.LaunchSettingsFor(model->path), request,
                               fresh.ok() ? *fresh : parts_.router.CatalogSnapshot());
  if (!built.ok()) {
    const StatusCode code = built.status().code();
    return ApiError{code == StatusCode::kNotFound || code == StatusCode::kAmbiguous ? ErrorCode::kModelReference
                                                                                    : ErrorCode::kBadRequest,
                    built.status().message()};
  }
  supervisor::LaunchSpec& spec = built->spec;
  if (!spec.spec_note.empty()) Log("%s: speculative decoding %s", name.c_str(), spec.spec_note.c_str());

  if (r.dry_run) {
    control::StartPlan plan;
    plan.name = name;
    plan.model = model->name;
    plan.model_path = model->path;
    plan.argv =
        supervisor::BuildArgv(fixed_.llama_server.empty() ? std::string("llama-server") : fixed_.llama_server, spec);
    plan.env = r.env;
    plan.reserved_bytes = spec.reserved_bytes;
    plan.budget_bytes = parts_.supervisor.memory_budget_bytes();
    plan.already_reserved_bytes = parts_.supervisor.reserved_bytes();
    plan.health_timeout_ms = parts_.supervisor.HealthTimeoutFor(model->size_bytes).count();
    plan.log_path = ModelLogDir() + "/" + name + ".log";
    plan.spec = catalog::SpecJson(built->spec_choice);
    plan.engine_error = fixed_.engine_error;
    return plan;
  }
  if (fixed_.llama_server.empty()) return ApiError{ErrorCode::kEngineMissing, fixed_.engine_error};

  // Idempotent start: the same model under its default name is already live.
  if (r.name.empty()) {
    auto existing = parts_.supervisor.Get(name);
    if (existing.ok() && !supervisor::IsTerminal(existing->state) && existing->model_path == model->path) {
      parts_.router.RegisterStarted(name, {name}, /*pinned=*/true);  // loaded on demand before: pinned now
      return control::Started{*existing, /*already_running=*/true};
    }
  }
  auto started = parts_.supervisor.Start(spec);
  if (!started.ok()) {
    LogWarn("start %s refused: %s", name.c_str(), started.status().message().c_str());
    return ApiError{CodeForStart(started.status()), started.status().message()};
  }
  Log("started %s (pid %d): %s", name.c_str(), started->pid, supervisor::ShellQuote(started->argv).c_str());
  // Started by hand: pinned (never evicted or unloaded by TTL), reachable through the proxy
  // by its name, its model's canonical name and the model's aliases.
  std::vector<std::string> names = {name, model->name};
  if (model->catalog) names.insert(names.end(), model->catalog->aliases.begin(), model->catalog->aliases.end());
  parts_.router.RegisterStarted(name, names, /*pinned=*/true);
  return control::Started{*started, /*already_running=*/false};
}

void ControlServices::SetPinned(const std::string& child, bool pinned) {
  parts_.router.SetPinned(child, pinned);
}

void ControlServices::UnloadWhenIdle(const std::string& child) {
  parts_.router.SetKeepAlive(child, std::chrono::seconds(0));
}

std::vector<control::CatalogRow> ControlServices::Catalog() {
  std::vector<control::CatalogRow> rows;
  for (const auto& m : parts_.router.ListModels()) {
    rows.push_back({m.name, std::string(proxy::to_string(m.state)), m.context, m.context_length, m.size_bytes,
                    m.memory_bytes, m.family, m.quantization});
  }
  return rows;
}

control::DaemonFacts ControlServices::Facts() {
  const config::Config config = parts_.reloader.Current();
  control::DaemonFacts f;
  f.uptime_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - fixed_.started).count();
  f.socket = SocketPath();
  f.state_file = StateFilePath();
  f.log_dir = ModelLogDir();
  f.llama_server = fixed_.llama_server;
  f.engine_error = fixed_.engine_error;
  f.config_file = config.config_file;
  f.listen = config.listen;
  f.budget_source = config.memory_budget;
  f.proxy_url = fixed_.proxy_url;
  f.proxy_running = true;  // from Init to the drain; the control server stops before Finish
  if (parts_.proxy_host != nullptr) {
    edge::ProxyProcessInfo i = parts_.proxy_host->info();
    f.proxy_process = control::DaemonFacts::ProxyProcess{i.pid, i.restarts, i.last_exit};
  }
  f.lan_warnings = fixed_.lan_warnings;
  f.total_memory_bytes = fixed_.total_memory_bytes;
  f.budget_bytes = parts_.reloader.Budget();
  f.reserved_bytes = parts_.supervisor.reserved_bytes();
  f.notices = fixed_.notices;
  f.reload = parts_.reloader.Stats();
  return f;
}

control::ReloadOutcome ControlServices::Reload(const std::string& trigger) {
  return parts_.reloader.Reload(trigger);
}

void ControlServices::RefreshCatalog() {
  parts_.reloader.RefreshCatalog();
}

std::string ControlServices::LogDir() {
  return ModelLogDir();
}

control::Response ControlServices::FollowLog(const std::string& name, const std::string& path, bool running,
                                             size_t lines) {
  return daemon::FollowLog(name, path, running, lines, [this] { return parts_.shutting_down.load(); });
}

nlohmann::json ControlServices::BenchList() {
  return parts_.bench.List();
}

Result<nlohmann::json> ControlServices::BenchReport(const std::string& id) {
  return parts_.bench.Report(id);
}

Status ControlServices::StartBench(const std::string& child, const std::string& direct_url,
                                   const std::string& proxy_url, int runs) {
  return parts_.bench.Start(child, direct_url, proxy_url, runs);
}

nlohmann::json ControlServices::BenchRun() {
  return parts_.bench.Run();
}

control::Response ControlServices::Events(nlohmann::json hello) {
  return parts_.activity.Stream(std::move(hello));
}

}  // namespace corral::daemon
