#include "bench/suites.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/client.h"
#include "bench/nginx.h"
#include "bench/owned_target.h"
#include "bench/system.h"
#include "common/fs.h"
#include "common/interrupt.h"

namespace corral::bench {

namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(10);
constexpr auto kStartTimeout = std::chrono::seconds(120);
constexpr auto kRunPoll = std::chrono::milliseconds(50);
constexpr auto kNginxTimeout = std::chrono::seconds(15);
constexpr size_t kNginxErrorLogTailBytes = 4000;
constexpr uint64_t kMaxKeyFileBytes = 4096;

std::string Title(const std::string& suite) {
  if (suite == "A") return "wrapper";
  if (suite == "B") return "cross-tool";
  if (suite == "S") return "speculative";
  return "proxy hop";
}

nlohmann::json GetJson(const Endpoint& ep, const std::string& path) {
  auto r = HttpRequest(ep, path, "", kProbeTimeout);
  if (!r.ok() || r->status != 200) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

std::string StringAt(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void FillArgv(Target& t) {
  if (t.pid <= 0) return;
  if (auto argv = ReadCmdline(t.pid); argv.ok()) t.argv = *argv;
  auto children = ChildPids(t.pid);
  if (t.kind == "llama-server-router" && !children.empty()) {
    t.child_pid = children.front();
    if (auto argv = ReadCmdline(t.child_pid); argv.ok()) t.child_argv = *argv;
  }
}

void HashModel(Target& t) {
  if (t.model_path.empty() || t.model_path == "none" || !t.model_sha256.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(t.model_path, ec)) return;
  if (auto h = Sha256File(t.model_path); h.ok()) t.model_sha256 = *h;
}

// Router mode loads a model on demand; load it now and wait, so the first timed request
// does not pay the load (the warm-up would absorb it anyway; this makes it explicit).
Status WaitRouterModelLoaded(const Endpoint& ep, const std::string& model, std::chrono::seconds timeout) {
  nlohmann::json body = {{"model", model}};
  (void)HttpRequest(ep, "/models/load", body.dump(), kProbeTimeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    nlohmann::json models = GetJson(ep, "/v1/models");
    if (models.is_object() && models.contains("data") && models["data"].is_array()) {
      for (const auto& m : models["data"]) {
        if (StringAt(m, "id") != model || !m.contains("status") || !m["status"].is_object()) continue;
        const std::string v = StringAt(m["status"], "value");
        if (v == "loaded") return Status::Ok();
        if (m["status"].contains("failed")) return Unavailable("router mode failed to load " + model);
      }
    }
    std::this_thread::sleep_for(kRunPoll);
  }
  return Status(StatusCode::kTimeout, "router mode did not load " + model + " in time");
}

SuiteResult Finish(SuiteResult s, const std::vector<Workload>& workloads, const RunOptions& options,
                   const Progress& progress) {
  s.records = RunRequests(s.targets, workloads, options, progress);
  s.aggregate = Summarise(s.records, s.targets, options);
  s.status = "ran";
  return s;
}

}  // namespace

std::vector<std::string> NormalizedArgs(const NormalizedKnobs& k, std::map<std::string, std::string>& record) {
  const int threads = k.threads > 0 ? k.threads : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  record = {{"ctx", std::to_string(k.ctx)},           {"batch", std::to_string(k.batch)},
            {"ubatch", std::to_string(k.ubatch)},     {"kv_type", k.kv_type},
            {"threads", std::to_string(threads)},     {"gpu_layers", std::to_string(k.gpu_layers)},
            {"parallel", std::to_string(k.parallel)}, {"kv_unified", "on"}};
  return {"-c",   std::to_string(k.ctx),
          "-b",   std::to_string(k.batch),
          "-ub",  std::to_string(k.ubatch),
          "-ctk", k.kv_type,
          "-ctv", k.kv_type,
          "-t",   std::to_string(threads),
          "-ngl", std::to_string(k.gpu_layers),
          "-np",  std::to_string(k.parallel),
          "-kvu"};
}

SuiteResult SkippedSuite(const std::string& suite, const std::string& reason) {
  SuiteResult s;
  s.suite = suite;
  s.title = Title(suite);
  s.status = "skipped";
  s.reason = reason;
  return s;
}

Result<Target> StartOwnedTarget(const std::string& name, std::vector<std::string> argv,
                                const std::vector<std::string>& after_knobs, const OwnedTargetSetup& setup,
                                std::vector<std::unique_ptr<LocalServer>>& owned) {
  argv.insert(argv.end(), setup.knob_args.begin(), setup.knob_args.end());
  argv.insert(argv.end(), after_knobs.begin(), after_knobs.end());
  CORRAL_ASSIGN_OR_RETURN(std::unique_ptr<LocalServer> srv, LocalServer::Start(argv, setup.timeout));
  Target t;
  t.name = name;
  t.url = srv->url();
  t.pid = srv->pid();
  t.mode = setup.mode;
  t.knobs = setup.knobs;
  owned.push_back(std::move(srv));
  DetectTarget(t);
  return t;
}

Result<Target> ParseTargetSpec(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument("--target '" + spec + "': expected NAME=URL[,model=ID][,pid=PID]");
  }
  Target t;
  t.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  size_t comma = rest.find(',');
  t.url = rest.substr(0, comma);
  auto ep = ParseHttpUrl(t.url);
  if (!ep.ok()) return ep.status().WithContext("--target " + t.name);
  while (comma != std::string::npos) {
    rest = rest.substr(comma + 1);
    comma = rest.find(',');
    const std::string kv = rest.substr(0, comma);
    const size_t e = kv.find('=');
    const std::string key = kv.substr(0, e), value = e == std::string::npos ? "" : kv.substr(e + 1);
    if (key == "model" && !value.empty()) {
      t.model = value;
    } else if (key == "pid" && !value.empty() && value.size() < 10 &&
               value.find_first_not_of("0123456789") == std::string::npos) {
      t.pid = static_cast<pid_t>(std::stol(value));
    } else if (key == "ca" && !value.empty()) {
      if (!ep->tls) return InvalidArgument("--target " + t.name + ": ca= needs an https:// URL");
      if (::access(value.c_str(), R_OK) != 0) {
        return InvalidArgument("--target " + t.name + ": cannot read the CA file '" + value + "'");
      }
      t.ca_file = value;
    } else if (key == "key-env" && !value.empty()) {
      const char* secret = std::getenv(value.c_str());
      if (secret == nullptr || *secret == '\0') {
        return InvalidArgument("--target " + t.name + ": key-env=" + value + " but $" + value + " is not set");
      }
      t.api_key = secret;
      t.api_key_source = "env " + value;
    } else if (key == "key-file" && !value.empty()) {
      auto text = ReadFileBounded(value, kMaxKeyFileBytes);
      if (!text.ok()) return text.status().WithContext("--target " + t.name + ": key-file");
      std::string secret = *text;
      while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) secret.pop_back();
      if (secret.empty() || secret.find_first_of(" \t\r\n") != std::string::npos) {
        return InvalidArgument("--target " + t.name + ": key-file " + value + " does not hold one key");
      }
      t.api_key = secret;
      t.api_key_source = "file " + value;
    } else if (key == "vs" && !value.empty()) {
      t.compare_to = value;
    } else {
      return InvalidArgument("--target " + t.name + ": unknown or empty setting '" + kv +
                             "' (model=ID, pid=PID, ca=PEM, key-env=VAR, key-file=PATH or vs=NAME)");
    }
  }
  t.mode = "external";
  return t;
}

void DetectTarget(Target& t) {
  auto ep = EndpointOf(t);
  if (!ep.ok()) return;
  nlohmann::json props = GetJson(*ep, "/props");
  if (props.is_object() && StringAt(props, "role") == "router") {
    t.kind = "llama-server-router";
    t.version = StringAt(props, "build_info");
  } else if (props.is_object() && props.contains("build_info")) {
    t.kind = "llama-server";
    t.version = StringAt(props, "build_info");
    t.model_path = StringAt(props, "model_path");
  } else if (nlohmann::json v = GetJson(*ep, "/api/version"); v.is_object() && v.contains("version")) {
    // Corral's proxy speaks Ollama's routes too; its /metrics names it.
    auto metrics = HttpRequest(*ep, "/metrics", "", kProbeTimeout);
    const bool corral = metrics.ok() && metrics->status == 200 &&
                        metrics->body.find("corral_proxy_connections_total") != std::string::npos;
    t.kind = corral ? "corral" : "ollama";
    t.version = StringAt(v, "version");
  } else if (t.kind.empty()) {
    t.kind = "openai-compatible";
  }
  if (t.model.empty()) {
    nlohmann::json models = GetJson(*ep, "/v1/models");
    if (models.is_object() && models.contains("data") && models["data"].is_array() && !models["data"].empty()) {
      t.model = StringAt(models["data"][0], "id");
    }
  }
  if (t.kind == "llama-server-router" && !t.model.empty()) {
    nlohmann::json child = GetJson(*ep, "/props?model=" + t.model);
    if (t.model_path.empty()) t.model_path = StringAt(child, "model_path");
  }
  FillArgv(t);
  HashModel(t);
}

SuiteResult RunSuiteB(const SuiteBOptions& b, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress) {
  SuiteResult s;
  s.suite = "B";
  s.title = Title("B");
  struct DirGuard {  // removes router mode's models directory after the servers stopped
    std::string path;
    ~DirGuard() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
  } models_dir_guard;
  std::vector<std::unique_ptr<LocalServer>> started;  // owned here; stopped when the suite ends
  std::string& models_dir = models_dir_guard.path;
  auto fail = [&](const std::string& why) {
    s.status = "failed";
    s.reason = why;
    return s;
  };
  OwnedTargetSetup setup;
  if (b.mode == "normalized") setup.knob_args = NormalizedArgs(b.knobs, setup.knobs);
  setup.mode = b.mode;
  setup.timeout = kStartTimeout;
  if ((b.start_raw || b.start_router) && (b.llama_server.empty() || b.model_path.empty())) {
    return fail("starting llama-server needs a llama-server binary and --model");
  }
  // Starts one llama-server the bench owns (with the normalized knobs) as target `name`.
  auto start_target = [&](const std::string& name, std::vector<std::string> argv) -> Result<Target> {
    return StartOwnedTarget(name, std::move(argv), {}, setup, started);
  };
  if (b.start_raw) {
    if (progress) progress("starting raw llama-server");
    auto t = start_target("llama-server", {b.llama_server, "-m", b.model_path, "--host", "127.0.0.1", "--port", "0"});
    if (!t.ok()) return fail("raw llama-server: " + t.status().message());
    t->model.clear();  // single-model mode: no model field needed
    s.targets.push_back(std::move(t).value());
  }
  if (b.start_router) {
    char tmpl[] = "/tmp/corral-bench-models-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return fail("creating a models directory for router mode");
    models_dir = tmpl;
    const std::string file = std::filesystem::path(b.model_path).filename().string();
    std::error_code ec;
    std::filesystem::create_hard_link(b.model_path, models_dir + "/" + file, ec);
    if (ec) std::filesystem::copy_file(b.model_path, models_dir + "/" + file, ec);
    if (ec) return fail("placing the model in " + models_dir + ": " + ec.message());
    if (progress) progress("starting llama-server in router mode");
    auto started_router = start_target("router", {b.llama_server, "--models-dir", models_dir, "--models-max", "1",
                                                  "--host", "127.0.0.1", "--port", "0"});
    if (!started_router.ok()) return fail("router mode: " + started_router.status().message());
    Target t = std::move(started_router).value();
    if (t.model.empty()) return fail("router mode lists no model in " + models_dir);
    auto ep = ParseHttpUrl(t.url);
    Status st = WaitRouterModelLoaded(*ep, t.model, kStartTimeout);
    if (!st.ok()) return fail(st.message() + "; router log:\n" + started.back()->LogTail(2000));
    FillArgv(t);  // the child exists now
    t.model_path = StringAt(GetJson(*ep, "/props?model=" + t.model), "model_path");
    HashModel(t);
    s.targets.push_back(std::move(t));
  }
  for (Target t : b.targets) {
    DetectTarget(t);
    t.unfair_knobs.push_back("all: an external server runs with whatever settings it was started with");
    s.targets.push_back(std::move(t));
  }
  if (s.targets.empty()) return fail("no targets: give --target NAME=URL or --model to start llama-server");
  // Identical model bytes wherever the tool exposes the file.
  std::string first_sha;
  for (const auto& t : s.targets) {
    if (t.model_sha256.empty()) continue;
    if (first_sha.empty()) first_sha = t.model_sha256;
    Check c{"same model bytes: " + t.name, t.model_sha256 == first_sha, t.model_sha256};
    s.checks.push_back(std::move(c));
  }
  return Finish(std::move(s), workloads, options, progress);
}

SuiteResult RunSuiteC(const HopProvider& provider, const SuiteCOptions& c, const std::vector<Workload>& workloads,
                      const RunOptions& options, const Progress& progress) {
  auto hop = provider();
  if (!hop.ok()) return SkippedSuite("C", hop.status().message());
  SuiteResult s;
  s.suite = "C";
  s.title = Title("C");
  Target direct = hop->direct, proxied = hop->proxied;
  if (direct.name.empty()) direct.name = "direct";
  if (proxied.name.empty()) proxied.name = "proxy";
  DetectTarget(direct);
  // The same child through the proxy: the proxy is asked for the direct child's model (a
  // proxy lists every model; the first of its list may be another one).
  if (proxied.model.empty()) proxied.model = direct.model;
  DetectTarget(proxied);
  s.targets = {direct, proxied};

  // nginx in front of the same child, alternated with the other two.
  NginxReference ref;
  std::unique_ptr<NginxProxy> nginx;  // stopped when the suite ends
  const std::string binary = c.nginx ? FindNginx(c.nginx_binary) : "";
  auto direct_ep = ParseHttpUrl(direct.url);
  if (!c.nginx) {
    ref.status = "off";
    ref.reason = "--no-nginx";
  } else if (binary.empty()) {
    ref.status = "absent";
    ref.reason = (c.nginx_binary.empty() ? std::string("no nginx on PATH or in /usr/sbin, /usr/local/sbin")
                                         : "--nginx " + c.nginx_binary + " is not executable") +
                 "; to measure the reference proxy: " + kNginxInstallHint;
  } else if (!direct_ep.ok()) {
    ref.status = "failed";
    ref.reason = direct_ep.status().message();
  } else {
    ref.binary = binary;
    auto build = ProbeNginx(binary);
    if (!build.ok()) {
      ref.status = "failed";
      ref.reason = build.status().message();
    } else {
      ref.version = build->version;
      ref.version_line = build->line;
      if (progress) progress("starting nginx " + build->version + " in front of " + direct.url);
      auto started = NginxProxy::Start(binary, *build, direct_ep->host, std::stoi(direct_ep->port), kNginxTimeout);
      if (!started.ok()) {
        ref.status = "failed";
        ref.reason = started.status().message();
      } else {
        nginx = std::move(started).value();
        ref.status = "ran";
        ref.config = nginx->config();
        Target t;
        t.name = "nginx";
        t.url = nginx->url();
        t.pid = nginx->pid();
        DetectTarget(t);  // reaches the child through nginx: its props, model path and hash
        t.model = direct.model;
        t.kind = "nginx";
        t.version = build->line;
        t.mode = "reference (proxy_buffering off, keep-alive upstream)";
        s.targets.push_back(std::move(t));
      }
    }
  }
  // nginx over TLS with Corral's own server certificate, when a TLS extra proxy pins
  // Corral's local CA (ca=<dir>/ca.pem next to server.pem and server.key): the honest
  // reference for the TLS proxy is a TLS nginx doing the same handshake.
  std::unique_ptr<NginxProxy> nginx_tls;
  if (nginx) {
    for (const Target& t : c.extra_proxies) {
      if (t.url.rfind("https://", 0) != 0 || t.ca_file.empty()) continue;
      const std::filesystem::path dir = std::filesystem::path(t.ca_file).parent_path();
      NginxProxy::Tls tls{(dir / "server.pem").string(), (dir / "server.key").string(), t.ca_file};
      if (::access(tls.cert.c_str(), R_OK) != 0 || ::access(tls.key.c_str(), R_OK) != 0) continue;
      if (progress) progress("starting nginx over TLS with " + tls.cert);
      auto build = ProbeNginx(binary);
      auto started = build.ok() ? NginxProxy::Start(binary, *build, direct_ep->host, std::stoi(direct_ep->port),
                                                    kNginxTimeout, tls)
                                : Result<std::unique_ptr<NginxProxy>>(build.status());
      if (!started.ok()) {
        ref.reason += (ref.reason.empty() ? "" : "; ") + std::string("nginx over TLS: ") + started.status().message();
        break;
      }
      nginx_tls = std::move(started).value();
      Target nt;
      nt.name = "nginx-tls";
      nt.url = nginx_tls->url();
      nt.pid = nginx_tls->pid();
      nt.ca_file = t.ca_file;
      nt.model = direct.model;
      nt.kind = "nginx";
      nt.version = build->line;
      nt.mode = "reference over TLS (" + tls.cert + ")";
      nt.compare_to = "nginx";
      s.targets.push_back(std::move(nt));
      break;
    }
  }
  for (Target t : c.extra_proxies) {
    if (t.model.empty()) t.model = direct.model;
    DetectTarget(t);
    s.targets.push_back(std::move(t));
  }
  s = Finish(std::move(s), workloads, options, progress);
  if (nginx) ref.error_log = nginx->ErrorLogTail(kNginxErrorLogTailBytes);
  if (nginx_tls) ref.error_log += nginx_tls->ErrorLogTail(kNginxErrorLogTailBytes);
  s.nginx = ref;
  if (!workloads.empty() && !Interrupted()) {
    s.footprint = MeasureFootprint(*hop, c, workloads.front(), options, progress);
    // Last: it stops the child the direct and nginx targets point at.
    if (!Interrupted()) s.cold_start = MeasureColdStart(*hop, c, workloads.front(), options, progress);
  }
  return s;
}

SuiteResult RunSuiteA(const WrapperProvider& provider, const std::vector<Workload>& workloads,
                      const RunOptions& options, const Progress& progress) {
  auto ends = provider();
  if (!ends.ok()) return SkippedSuite("A", ends.status().message());
  SuiteResult s;
  s.suite = "A";
  s.title = Title("A");
  Target manual = ends->manual, wrapped = ends->wrapped;
  if (manual.name.empty()) manual.name = "by-hand";
  if (wrapped.name.empty()) wrapped.name = "corral";
  DetectTarget(manual);
  DetectTarget(wrapped);
  if (manual.pid > 0 && wrapped.pid > 0) {
    ProcessComparison pc = CompareProcesses(manual.pid, wrapped.pid);
    if (!pc.error.empty()) {
      s.checks.push_back({"argv and environment readable", false, pc.error});
    } else {
      std::string diffs;
      for (const auto& d : pc.differences) diffs += (diffs.empty() ? "" : "; ") + d;
      s.checks.push_back({"argv identical (byte for byte)", pc.cmdline_equal, pc.cmdline_equal ? pc.cmdline_a : diffs});
      s.checks.push_back(
          {"environment identical (byte for byte)", pc.environ_equal, pc.environ_equal ? "identical" : diffs});
      std::string ldiffs;
      for (const auto& d : pc.limit_differences) ldiffs += (ldiffs.empty() ? "" : "; ") + d;
      s.checks.push_back(
          {"resource limits identical (/proc/<pid>/limits)", pc.limits_equal, pc.limits_equal ? "identical" : ldiffs});
    }
  } else {
    s.checks.push_back(
        {"argv and environment compared", false, "give both pids to compare /proc/<pid>/cmdline and environ"});
  }
  if (ends->daemon_pid > 0) {
    auto rss = ReadDaemonRssBytes(ends->daemon_pid);
    if (rss.ok()) {
      s.daemon_idle_rss_bytes = *rss;
      s.checks.push_back({"daemon idle RSS <= 15 MiB", *rss <= 15ULL * 1024 * 1024,
                          std::to_string(*rss / 1024) + " KiB (VmRSS, before the requests)"});
    } else {
      s.checks.push_back({"daemon idle RSS", false, rss.status().message()});
    }
  }
  s.targets = {manual, wrapped};
  return Finish(std::move(s), workloads, options, progress);
}

}  // namespace corral::bench
