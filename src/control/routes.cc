#include "control/routes.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <utility>

#include "common/fs.h"
#include "common/log.h"
#include "common/version.h"

namespace corral::control {
namespace {

using nlohmann::json;

constexpr int kMaxLogLines = 10000;
constexpr uint64_t kMaxLogWindow = 8ULL << 20;
// Live log watchers (GET /v1/logs/follow, the web dashboard): each holds a control thread.
constexpr int kMaxLogFollowers = 16;
constexpr std::chrono::milliseconds kMaxLongPoll{5000};

Response Error(ErrorCode code, const std::string& message) {
  return {HttpStatusFor(code), ErrorBody(code, message)};
}

// A control error for a failed ChildForReference.
Response ReferenceError(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) return Error(ErrorCode::kBadRequest, s.message());
  if (s.code() == StatusCode::kAmbiguous) return Error(ErrorCode::kModelReference, s.message());
  return Error(ErrorCode::kNotRunning, s.message());
}

// Splits "/a/b/c" into {"a","b","c"}; "/a/" gives {"a",""}.
std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.starts_with('/')) path.remove_prefix(1);
  for (;;) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    path.remove_prefix(slash + 1);
  }
}

// Whether `path` matches `pattern` (routes.h); the "{name}" or "{rest}" segment goes to `name`.
bool Match(std::string_view pattern, std::string_view path, Routes::Params& params) {
  const auto want = Segments(pattern);
  const auto got = Segments(path);
  for (size_t k = 0; k < want.size(); ++k) {
    if (want[k] == "{rest}") {
      if (k >= got.size()) return false;
      const size_t at = static_cast<size_t>(got[k].data() - path.data());
      params.name = std::string(path.substr(at));
      return true;
    }
    if (k >= got.size()) return false;
    if (want[k] == "{name}") {
      params.name = std::string(got[k]);
    } else if (want[k] != got[k]) {
      return false;
    }
  }
  return want.size() == got.size();
}

}  // namespace

json ToJson(const ReloadOutcome& r) {
  if (!r.file) return {{"ok", false}, {"trigger", r.trigger}, {"error", r.error}};
  json changed = json::array();
  json applied = json::array();
  json needs_restart = json::array();
  for (const auto& c : r.changes) {
    changed.push_back({{"key", c.key}, {"before", c.before}, {"after", c.after}});
    if (c.needs_restart) {
      needs_restart.push_back({{"key", c.key}, {"running", c.before}, {"configured", c.after}});
    } else {
      applied.push_back(c.key);
    }
  }
  json j = {{"trigger", r.trigger},           {"file", *r.file},        {"changed", changed}, {"applied", applied},
            {"needs_restart", needs_restart}, {"warnings", r.warnings}, {"ok", r.ok}};
  if (!r.ok) j["error"] = r.error;
  return j;
}

// One entry per route. Order matters only where a literal and "{name}" could both match:
// the literal comes first (POST /v1/models/stop-all before POST /v1/models/{name}/...).
const Routes::Entry Routes::kTable[] = {
    {"GET", "/v1/status", &Routes::DaemonStatus},
    {"GET", "/v1/ps", &Routes::Ps},
    {"POST", "/v1/models/start", &Routes::Start},
    {"POST", "/v1/models/stop-all", &Routes::StopAll},
    {"GET", "/v1/logs", &Routes::Logs},
    {"GET", "/v1/logs/follow", &Routes::FollowLogs},
    {"GET", "/v1/bench", &Routes::BenchList},
    {"POST", "/v1/bench/run", &Routes::BenchRun},
    {"GET", "/v1/bench/reports/{rest}", &Routes::BenchReport},
    {"GET", "/v1/events", &Routes::Events},
    {"POST", "/v1/reload", &Routes::Reload},
    {"POST", "/v1/catalog/refresh", &Routes::RefreshCatalog},
    {"POST", "/v1/shutdown", &Routes::Shutdown},
    {"GET", "/v1/models/{name}", &Routes::Get},
    {"GET", "/v1/models/{name}/wait", &Routes::Wait},
    {"POST", "/v1/models/{name}/stop", &Routes::Stop},
    {"POST", "/v1/models/{name}/pin", &Routes::Pin},
    {"POST", "/v1/models/{name}/unpin", &Routes::Unpin},
    {"POST", "/v1/models/{name}/unload", &Routes::Unload},
};

Response Routes::Handle(const Request& req) {
  for (const Entry& e : kTable) {
    Params params;
    if (req.method == e.method && Match(e.pattern, req.target.path, params)) return (this->*e.fn)(req, params);
  }
  return Error(ErrorCode::kBadRequest, "no route " + req.method + " " + req.target.path);
}

json Routes::ModelJson(const supervisor::ChildInfo& i) {
  json j = ToJson(i);
  if (i.started_at.time_since_epoch().count() != 0) {
    j["uptime_s"] =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - i.started_at).count();
  }
  const SpecView view = services_.Spec(i);
  json spec;
  if (view.totals) {
    spec["draft_tokens"] = view.totals->drafted;
    spec["draft_accepted"] = view.totals->accepted;
    const double acceptance = view.totals->drafted == 0 ? 0
                                                        : static_cast<double>(view.totals->accepted) /
                                                              static_cast<double>(view.totals->drafted);
    spec["acceptance"] = std::round(acceptance * 1000) / 1000;
  }
  if (view.fallback) spec["fallback"] = *view.fallback;
  if (!spec.is_null()) j["spec"] = std::move(spec);
  return j;
}

json Routes::ModelsJson() {
  json models = json::array();
  for (const auto& i : services_.Children()) models.push_back(ModelJson(i));
  return models;
}

Response Routes::DaemonStatus(const Request& /*req*/, const Params& /*params*/) {
  json models = ModelsJson();
  const DaemonFacts f = services_.Facts();
  json process = nullptr;
  if (f.proxy_process) {
    process = {{"pid", f.proxy_process->pid},
               {"restarts", f.proxy_process->restarts},
               {"last_exit", f.proxy_process->last_exit}};
  }
  json last = f.reload.last ? ToJson(*f.reload.last) : json(nullptr);
  json reload = {{"file", f.config_file},
                 {"reloads", f.reload.reloads},
                 {"applied", f.reload.applied},
                 {"by_trigger", f.reload.by_trigger},
                 {"last", last},
                 {"watching", f.reload.watching}};
  json j = {{"daemon",
             {{"pid", ::getpid()},
              {"version", kCorralVersion},
              {"uptime_s", f.uptime_s},
              {"socket", f.socket},
              {"state_file", f.state_file},
              {"log_dir", f.log_dir},
              {"llama_server", f.llama_server},
              {"engine_error", f.engine_error}}},
            {"proxy",
             {{"listen", f.listen},
              {"url", f.proxy_url + "/v1"},
              {"base_url", f.proxy_url},
              {"running", f.proxy_running},
              {"process", process},
              {"lan_warnings", f.lan_warnings}}},
            {"memory",
             {{"total_bytes", f.total_memory_bytes},
              {"budget_bytes", f.budget_bytes},
              {"reserved_bytes", f.reserved_bytes},
              {"budget_source", f.budget_source}}},
            {"config", reload},
            {"models", models},
            {"notices", f.notices}};
  return {200, j};
}

// The first line of GET /v1/events: what a dashboard shows before anything changes.
json Routes::FeedHello() {
  json models = ModelsJson();
  json catalog = json::array();
  for (const auto& m : services_.Catalog()) {
    catalog.push_back({{"name", m.name},
                       {"state", m.state},
                       {"context", m.context},
                       {"context_length", m.context_length},
                       {"size_bytes", m.size_bytes},
                       {"memory_bytes", m.memory_bytes},
                       {"family", m.family},
                       {"quant", m.quant}});
  }
  const DaemonFacts f = services_.Facts();
  return {
      {"daemon", {{"pid", ::getpid()}, {"version", kCorralVersion}, {"uptime_s", f.uptime_s}}},
      {"proxy", {{"url", f.proxy_url + "/v1"}, {"base_url", f.proxy_url}}},
      {"memory",
       {{"total_bytes", f.total_memory_bytes}, {"budget_bytes", f.budget_bytes}, {"reserved_bytes", f.reserved_bytes}}},
      {"models", models},
      {"catalog", catalog}};
}

Response Routes::Ps(const Request& /*req*/, const Params& /*params*/) {
  return {200, {{"models", ModelsJson()}}};
}

Response Routes::Start(const Request& req, const Params& /*params*/) {
  if (services_.ShuttingDown()) return Error(ErrorCode::kShuttingDown, "the daemon is shutting down");
  auto parsed = ParseStartRequest(req.body);
  if (!parsed.ok()) return Error(ErrorCode::kBadRequest, parsed.status().message());
  if (Status s = supervisor::CheckRawArgs(parsed->raw_args); !s.ok()) {
    return Error(ErrorCode::kBadRequest, s.message());
  }
  StartAnswer answer = services_.Start(*parsed);
  if (const auto* err = std::get_if<ApiError>(&answer)) return Error(err->code, err->message);
  if (const auto* started = std::get_if<Started>(&answer)) {
    return {200, {{"model", ModelJson(started->child)}, {"already_running", started->already_running}}};
  }
  const auto& p = std::get<StartPlan>(answer);
  json plan = {{"name", p.name},
               {"model", p.model},
               {"model_path", p.model_path},
               {"argv", p.argv},
               {"env", p.env.empty() ? json("inherited from the daemon") : json(p.env)},
               {"reserved_bytes", p.reserved_bytes},
               {"budget_bytes", p.budget_bytes},
               {"already_reserved_bytes", p.already_reserved_bytes},
               {"health_timeout_ms", p.health_timeout_ms},
               {"log_path", p.log_path},
               {"spec", p.spec},
               {"engine_error", p.engine_error}};
  return {200, {{"plan", plan}}};
}

Response Routes::StopAll(const Request& /*req*/, const Params& /*params*/) {
  json stopped = json::array();
  std::string failures;
  for (const auto& i : services_.Children()) {
    auto r = services_.Stop(i.name);
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
std::variant<Routes::LogTarget, Response> Routes::ResolveLog(const Request& req) {
  auto it = req.target.query.find("name");
  if (it == req.target.query.end()) return Error(ErrorCode::kBadRequest, "logs: name is required");
  auto child = services_.ChildForReference(it->second, /*for_logs=*/true);
  // A child gone and outside the catalog (started from a path): its log keeps its name.
  if (!child.ok() && supervisor::CheckChildName(it->second).ok() &&
      ::access((services_.LogDir() + "/" + it->second + ".log").c_str(), R_OK) == 0) {
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
  t.path = services_.LogDir() + "/" + t.name + ".log";
  auto info = services_.Child(t.name);
  if (info.ok()) t.path = info->log_path;
  t.running = info.ok();
  return t;
}

Response Routes::Logs(const Request& req, const Params& /*params*/) {
  auto resolved = ResolveLog(req);
  if (auto* err = std::get_if<Response>(&resolved)) return std::move(*err);
  const LogTarget& t = std::get<LogTarget>(resolved);
  auto tail = TailFile(t.path, static_cast<size_t>(t.lines), kMaxLogWindow);
  if (!tail.ok()) return Error(ErrorCode::kNotRunning, "no log for '" + t.name + "': " + tail.status().message());
  return {200, {{"name", t.name}, {"path", t.path}, {"text", *tail}, {"running", t.running}}};
}

// GET /v1/logs/follow?name=N&lines=K: the log's last K lines, then each new line, as NDJSON
// until the watcher leaves or the daemon drains (daemon/log_follow.h).
Response Routes::FollowLogs(const Request& req, const Params& /*params*/) {
  auto resolved = ResolveLog(req);
  if (auto* err = std::get_if<Response>(&resolved)) return std::move(*err);
  const LogTarget& t = std::get<LogTarget>(resolved);
  if (::access(t.path.c_str(), R_OK) != 0) return Error(ErrorCode::kNotRunning, "no log for '" + t.name + "' yet");
  if (log_followers_.fetch_add(1) >= kMaxLogFollowers) {
    log_followers_.fetch_sub(1);
    return Error(ErrorCode::kShuttingDown, "too many live log watchers (" + std::to_string(kMaxLogFollowers) + ")");
  }
  Response r = services_.FollowLog(t.name, t.path, t.running, static_cast<size_t>(t.lines));
  // The count drops when the stream ends (or never starts: the response is dropped).
  auto release = std::shared_ptr<void>(nullptr, [this](void*) { log_followers_.fetch_sub(1); });
  r.stream = [inner = std::move(r.stream), release](const std::function<bool(std::string_view)>& write) {
    inner(write);
  };
  return r;
}

Response Routes::BenchList(const Request& /*req*/, const Params& /*params*/) {
  return {200, services_.BenchList()};
}

// GET /v1/bench/reports/{id}: a report's summary; the id is checked against the listing.
Response Routes::BenchReport(const Request& /*req*/, const Params& params) {
  auto report = services_.BenchReport(params.name);
  if (report.ok()) return {200, std::move(*report)};
  const StatusCode code = report.status().code();
  return Error(code == StatusCode::kNotFound          ? ErrorCode::kNotRunning
               : code == StatusCode::kInvalidArgument ? ErrorCode::kBadRequest
                                                      : ErrorCode::kInternal,
               report.status().message());
}

// POST /v1/bench/run {"model":REF,"runs":N}: quick suite C on a ready model, in the
// background; its end is published on the event feed ({"t":"bench"}).
Response Routes::BenchRun(const Request& req, const Params& /*params*/) {
  if (services_.ShuttingDown()) return Error(ErrorCode::kShuttingDown, "the daemon is shutting down");
  auto body = ParseJsonBounded(req.body, kRequestJsonLimits);
  if (!body.ok() || !body->is_object() || !body->contains("model") || !(*body)["model"].is_string()) {
    return Error(ErrorCode::kBadRequest, "bench: expected {\"model\": NAME, \"runs\": N}");
  }
  int runs = 10;
  if (auto r = body->find("runs"); r != body->end()) {
    if (!r->is_number_integer()) return Error(ErrorCode::kBadRequest, "bench: runs must be an integer 1..100");
    runs = static_cast<int>(std::clamp<int64_t>(r->get<int64_t>(), -1, 1000));
  }
  auto child = services_.ChildForReference((*body)["model"].get<std::string>(), /*for_logs=*/false);
  if (!child.ok()) return ReferenceError(child.status());
  auto info = services_.Child(*child);
  if (!info.ok() || info->state != supervisor::ChildState::kReady || info->port == 0) {
    return Error(ErrorCode::kNotRunning, "bench: '" + *child + "' is not ready: load it first");
  }
  const std::string proxy_url = services_.Facts().proxy_url;
  if (proxy_url.empty()) return Error(ErrorCode::kInternal, "bench: the proxy has no address");
  Status s = services_.StartBench(*child, "http://127.0.0.1:" + std::to_string(info->port), proxy_url, runs);
  if (!s.ok()) return Error(ErrorCode::kBadRequest, "bench: " + s.message());
  Log("bench: quick suite C on %s (%d runs), started from the control API", child->c_str(), runs);
  return {202, {{"run", services_.BenchRun()}}};
}

Response Routes::Events(const Request& /*req*/, const Params& /*params*/) {
  return services_.Events(FeedHello());
}

Response Routes::Reload(const Request& /*req*/, const Params& /*params*/) {
  const ReloadOutcome outcome = services_.Reload("control");
  json result = ToJson(outcome);
  if (outcome.ok) return {200, result};
  json body = ErrorBody(ErrorCode::kBadRequest, outcome.error);
  body["reload"] = result;
  return {HttpStatusFor(ErrorCode::kBadRequest), body};
}

Response Routes::RefreshCatalog(const Request& /*req*/, const Params& /*params*/) {
  services_.RefreshCatalog();
  return {200, {{"ok", true}}};
}

Response Routes::Shutdown(const Request& /*req*/, const Params& /*params*/) {
  services_.RequestShutdown();
  return {200, {{"ok", true}}};
}

Response Routes::Get(const Request& /*req*/, const Params& params) {
  auto child = services_.ChildForReference(params.name, /*for_logs=*/false);
  if (!child.ok()) return ReferenceError(child.status());
  auto i = services_.Child(*child);
  if (!i.ok()) return Error(ErrorCode::kNotRunning, i.status().message());
  return {200, {{"model", ModelJson(*i)}}};
}

Response Routes::Wait(const Request& req, const Params& params) {
  auto child = services_.ChildForReference(params.name, /*for_logs=*/false);
  if (!child.ok()) return ReferenceError(child.status());
  uint64_t gen = 0;
  int64_t timeout_ms = 1000;
  try {
    if (auto it = req.target.query.find("generation"); it != req.target.query.end()) gen = std::stoull(it->second);
    if (auto it = req.target.query.find("timeout_ms"); it != req.target.query.end()) {
      timeout_ms = std::stoll(it->second);
    }
  } catch (...) {
    return Error(ErrorCode::kBadRequest, "generation and timeout_ms must be numbers");
  }
  timeout_ms = std::clamp<int64_t>(timeout_ms, 0, kMaxLongPoll.count());
  auto i = services_.WaitForChange(*child, gen, std::chrono::milliseconds(timeout_ms));
  if (!i.ok()) return Error(ErrorCode::kNotRunning, i.status().message());
  return {200, {{"model", ModelJson(*i)}}};
}

Response Routes::Stop(const Request& /*req*/, const Params& params) {
  auto child = services_.ChildForReference(params.name, /*for_logs=*/false);
  if (!child.ok()) return ReferenceError(child.status());
  auto i = services_.Stop(*child);
  if (!i.ok()) {
    if (i.status().code() == StatusCode::kNotFound) return Error(ErrorCode::kNotRunning, i.status().message());
    return Error(ErrorCode::kStopFailed, i.status().message());
  }
  Log("stopped %s", child->c_str());
  return {200, {{"model", ModelJson(*i)}}};
}

// pin / unpin: the router's pin (never evicted, no TTL); unload: unpin, then unload once
// its requests in flight are done (the Ollama keep_alive 0 path; never cuts a stream).
Response Routes::PinVerb(const std::string& name, std::string_view verb) {
  auto i = services_.Child(name);
  if (!i.ok() || supervisor::IsTerminal(i->state)) {
    return Error(ErrorCode::kNotRunning, "no running model '" + name + "'");
  }
  services_.SetPinned(name, verb == "pin");
  if (verb == "unload") services_.UnloadWhenIdle(name);
  Log("%s %s", verb == "pin" ? "pinned" : verb == "unpin" ? "unpinned" : "unloading", name.c_str());
  return {200, {{"model", ModelJson(*i)}, {"pinned", verb == "pin"}}};
}

Response Routes::Pin(const Request& /*req*/, const Params& params) {
  return PinVerb(params.name, "pin");
}
Response Routes::Unpin(const Request& /*req*/, const Params& params) {
  return PinVerb(params.name, "unpin");
}
Response Routes::Unload(const Request& /*req*/, const Params& params) {
  return PinVerb(params.name, "unload");
}

}  // namespace corral::control
