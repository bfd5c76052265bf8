// `corral bench`: fair, reproducible benchmarks of wrapper (A), cross-tool (B), proxy-hop (C),
// speculative-decoding (S) and swap (W) costs. Writes results.json, report.md and SVG charts under
// --out/<timestamp>/.
// Method and metrics: docs/bench.md.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "bench/client.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/suites.h"
#include "bench/system.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/paths.h"
#include "common/subprocess.h"
#include "common/version.h"
#include "engine/engine.h"
#include "supervisor/launch.h"
#include "synth/synth.h"

namespace corral::cli {
namespace {

struct BenchArgs {
  std::string suite = "all";
  std::vector<std::string> targets;
  std::vector<std::string> workloads;
  int runs = -1;    // -1: 20, or 2 with --smoke
  int warmup = -1;  // -1: 2, or 1 with --smoke
  std::string out = "bench/results";
  bool smoke = false;
  bool allow_debug = false;
  std::string model;
  std::string draft;                                // suite S: the draft model's GGUF
  int draft_max = supervisor::kDraftTokensPerStep;  // suite S: --spec-draft-n-max (0 = llama-server's default)
  std::string model2;                               // suite W: the model swapped in (with --model: the conversation's)
  int words = -1;                                   // suite W: words in the first turn (3200, or 150 with --smoke)
  bool ctx_given = false;
  bool no_raw = false;
  bool no_router = false;
  std::string mode = "normalized";
  bench::NormalizedKnobs knobs;
  uint64_t seed = 42;
  double noisy_cv = 0.10;
  int timeout_s = 300;
  std::string workloads_dir;
  std::string child_args;  // raw llama-server args for the children suites A and C start
  // Suite C: bare URLs (no daemon parts), nginx, footprint and cold-start sizes (-1 = default).
  std::string direct_url, proxy_url;
  bool no_nginx = false;
  std::vector<std::string> extra_proxies;  // suite C: NAME=URL[,model=ID][,pid=PID]
  std::string nginx;
  int idle_connections = -1;  // 1000, or 50 with --smoke
  double idle_hold_s = -1;    // 5, or 0.5 with --smoke
  int load_streams = -1;      // 64, or 4 with --smoke
  int cold_starts = -1;       // 5, or 1 with --smoke
  // Suite A until the supervisor lands.
  std::string wrapped_url, manual_url;
  int wrapped_pid = -1, manual_pid = -1, daemon_pid = -1;
  std::vector<std::string> command;
};

std::string UtcNow(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

void LoudDebugWarning(const std::string& description) {
  std::fprintf(stderr,
               "\n"
               "**********************************************************************\n"
               "*  WARNING: corral was built WITHOUT optimisation or WITH assertions  *\n"
               "*  (%s).\n"
               "*  Benchmark numbers from this build are NOT representative.          *\n"
               "*  Build with `make build` (release preset) for real measurements.    *\n"
               "**********************************************************************\n\n",
               description.c_str());
}

std::string DefaultBenchModel() {
  return DefaultModelDir() + "/corral-tiny-spm-q8_0.gguf";
}

bench::Target UrlTarget(const std::string& name, const std::string& url, int pid) {
  bench::Target t;
  t.name = name;
  t.url = url;
  t.pid = pid;
  t.mode = "external";
  return t;
}

// --- Suites A and C against the daemon: the model is started through the control plane
// exactly as a user would (`corral start`), so the numbers cover the real path.

// Runs this corral binary with `args` and parses the JSON it prints (the first '{' on).
Result<nlohmann::json> CorralJson(const std::vector<std::string>& args) {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return Unavailable("cannot find this corral binary (/proc/self/exe)");
  exe[n] = '\0';
  std::vector<std::string> argv = {exe};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCapture(argv, std::chrono::minutes(5));
  if (!r.ok()) return r.status();
  size_t brace = r->output.find('{');
  nlohmann::json j =
      brace == std::string::npos ? nlohmann::json() : nlohmann::json::parse(r->output.substr(brace), nullptr, false);
  if (r->exit_code != 0 || j.is_discarded() || !j.is_object()) {
    std::string cmd = "corral";
    for (const auto& a : args) cmd += " " + a;
    return Unavailable(cmd + " failed (exit " + std::to_string(r->exit_code) + "): " + r->output.substr(0, 2000));
  }
  return j;
}

// What the A and C providers started, stopped again when the run ends.
struct DaemonHarness {
  std::vector<std::string> child_args;     // `corral start MODEL -- child_args...`
  std::vector<std::string> started_names;  // children to stop with `corral stop`
  pid_t manual_pid = -1;                   // the by-hand llama-server of suite A
  std::string manual_log;

  ~DaemonHarness() { StopAll(); }

  // Stops what was started so far (suite A's two children before suite C runs: a second
  // instance of the same model would serve suite C's cold-start request).
  void StopAll() {
    for (const auto& name : started_names) {
      try {
        (void)CorralJson({"stop", name, "--json"});
      } catch (const std::exception&) {  // a destructor must not throw; the daemon reaps it anyway
      }
    }
    started_names.clear();
    if (manual_pid > 0) {
      ::kill(manual_pid, SIGTERM);
      int st = 0;
      ::waitpid(manual_pid, &st, 0);
      manual_pid = -1;
    }
    if (!manual_log.empty()) ::unlink(manual_log.c_str());
    manual_log.clear();
  }

  // `corral start MODEL [--name NAME] --json`: the child, and the proxy's base URL.
  Result<nlohmann::json> Start(const std::string& model, const std::string& name) {
    std::vector<std::string> args = {"start", model, "--json"};
    if (!name.empty()) args.insert(args.end(), {"--name", name});
    if (!child_args.empty()) {
      args.emplace_back("--");
      args.insert(args.end(), child_args.begin(), child_args.end());
    }
    CORRAL_ASSIGN_OR_RETURN(nlohmann::json j, CorralJson(args));
    if (!j.contains("model") || !j["model"].is_object() || j["model"].value("port", 0) <= 0) {
      return Unavailable("corral start gave no running model: " + j.dump());
    }
    if (!j.value("already_running", false)) started_names.push_back(j["model"].value("name", std::string()));
    return j;
  }

  // Launches `argv` by hand (this process's environment, like a user's shell), waits for
  // its port in the log and /health 200, and returns its base URL.
  Result<std::string> LaunchByHand(const std::vector<std::string>& argv) {
    char tmpl[] = "/tmp/corral-bench-manual.XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) return ErrnoError("mkstemp", errno);
    ::close(fd);
    manual_log = tmpl;
    // As a shell would: same environment, same process group handling as a foreground job.
    CORRAL_ASSIGN_OR_RETURN(manual_pid, SpawnToLog(argv, manual_log, /*append=*/false, /*own_group=*/false));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    int port = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(manual_pid, &st, WNOHANG) == manual_pid) {
        manual_pid = -1;
        return Unavailable("the by-hand llama-server exited during start; log " + manual_log);
      }
      if (port == 0) {
        auto text = ReadFileBounded(manual_log, 64U << 20);
        if (text.ok()) port = supervisor::ParseListeningPort(*text);
      }
      if (port != 0) {
        auto health =
            RunCapture({"curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + "/health"},
                       std::chrono::seconds(5));
        if (health.ok() && health->exit_code == 0) return "http://127.0.0.1:" + std::to_string(port);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status(StatusCode::kTimeout, "the by-hand llama-server was not ready in 2 minutes; log " + manual_log);
  }
};

std::string BaseUrl(std::string url) {
  if (url.ends_with("/v1")) url.resize(url.size() - 3);
  return url;
}

// Suite W's options from the command line: sizes (smaller with --smoke), the two models
// (given, or synthesised into the suite's own folder), this binary for its daemons.
Result<bench::SuiteWOptions> SwapOptions(const BenchArgs& a, const std::string& llama_server, int runs,
                                         int cold_starts) {
  bench::SuiteWOptions w;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return Unavailable("cannot find this corral binary (/proc/self/exe)");
  w.corral.assign(exe, static_cast<size_t>(n));
  w.llama_server = llama_server;
  w.words = a.words > 0 ? a.words : (a.smoke ? 150 : 3200);
  w.ctx = a.ctx_given ? a.knobs.ctx : (a.smoke ? 1024 : 12288);
  if (w.ctx < 256 || w.ctx > 1 << 20) return InvalidArgument("--ctx must be 256..1048576");
  w.rounds = a.runs >= 0 ? runs : (a.smoke ? 1 : 5);
  w.cold_starts = cold_starts;
  w.router = !a.no_router;
  for (const std::string* m : {&a.model, &a.model2}) {
    std::error_code ec;
    if (!m->empty() && !std::filesystem::is_regular_file(*m, ec)) return InvalidArgument("model " + *m + " not found");
  }
  w.model_a = a.model;
  w.model_b = a.model2;
  const bool small = a.smoke;
  const int ctx = w.ctx;
  w.make_model = [small, ctx](const std::string& path, const std::string& name, uint64_t seed) -> Status {
    synth::Options o;
    o.out_path = path;
    o.name = name;
    o.seed = seed;
    o.force = true;
    o.overrides.n_ctx = static_cast<uint32_t>(ctx);
    if (small) o.overrides = {64, 2, 4, 0, 128, static_cast<uint32_t>(ctx)};  // seconds to make and load
    auto r = synth::Synthesize(o);
    return r.ok() ? Status::Ok() : r.status();
  };
  return w;
}

int RunBench(const GlobalOptions& global, BenchArgs& a) {
  const bool want_a = a.suite == "A" || a.suite == "all";
  const bool want_b = a.suite == "B" || a.suite == "all";
  const bool want_c = a.suite == "C" || a.suite == "all";
  // Suite S needs a draft model: part of "all" only when --draft names one.
  const bool want_s = a.suite == "S" || (a.suite == "all" && !a.draft.empty());
  // Suite W starts three daemons and a router and takes minutes at its real size: asked by name.
  const bool want_w = a.suite == "W";
  if (!want_a && !want_b && !want_c && !want_s && !want_w) {
    return Fail(ExitCode::kUsage, "bench: --suite must be A, B, C, S, W or all");
  }
  if (want_w && a.model.empty() != a.model2.empty()) {
    return Fail(ExitCode::kUsage, "bench: suite W takes both --model and --model2 (same shape), or neither");
  }
  if (a.words != -1 && (a.words < 1 || a.words > 200000))
    return Fail(ExitCode::kUsage, "bench: --words must be 1..200000");
  if (want_s && a.draft.empty()) return Fail(ExitCode::kUsage, "bench: suite S needs --draft PATH (a GGUF)");
  if (a.draft_max < 0 || a.draft_max > 1024) return Fail(ExitCode::kUsage, "bench: --draft-max must be 0..1024");
  if (a.mode != "normalized" && a.mode != "defaults") {
    return Fail(ExitCode::kUsage, "bench: --mode must be normalized or defaults");
  }
  if (!bench::BuiltOptimized()) {
    if (!a.allow_debug) {
      return Fail(ExitCode::kUsage, "bench: this corral was built without optimisation or with assertions on (" +
                                        bench::BuildDescription() +
                                        "); its numbers would mislead. Use `make build`, or pass --allow-debug.");
    }
    LoudDebugWarning(bench::BuildDescription());
  }
  InstallInterruptHandlers();
  if (auto argv = bench::ReadCmdline(::getpid()); argv.ok()) a.command = *argv;  // the exact command line

  // Start time and machine state are taken before any request (the load average is the point).
  const std::string started_utc = UtcNow("%Y-%m-%dT%H:%M:%SZ");
  const std::string run_dir_name = UtcNow("%Y%m%dT%H%M%SZ");
  const bench::HostInfo host = bench::ProbeHost();

  bench::RunOptions opt;
  opt.runs = a.runs >= 0 ? a.runs : (a.smoke ? 2 : 20);
  opt.warmup = a.warmup >= 0 ? a.warmup : (a.smoke ? 1 : 2);
  opt.seed = a.seed;
  opt.noisy_cv = a.noisy_cv;
  opt.request_timeout = std::chrono::seconds(a.timeout_s);
  if (opt.runs < 1 || opt.runs > 100000 || opt.warmup < 0 || opt.warmup > 1000 || a.timeout_s < 1) {
    return Fail(ExitCode::kUsage, "bench: --runs must be 1..100000, --warmup 0..1000, --timeout >= 1");
  }
  bench::SuiteCOptions copt;
  copt.nginx = !a.no_nginx;
  copt.nginx_binary = a.nginx;
  for (const auto& spec : a.extra_proxies) {
    auto t = bench::ParseTargetSpec(spec);
    if (!t.ok()) return Fail(ExitCode::kUsage, "bench: --extra-proxy: " + t.status().message());
    copt.extra_proxies.push_back(*t);
  }
  copt.idle_connections = a.idle_connections >= 0 ? a.idle_connections : (a.smoke ? 50 : 1000);
  copt.idle_hold_s = a.idle_hold_s >= 0 ? a.idle_hold_s : (a.smoke ? 0.5 : 5.0);
  copt.footprint_streams = a.load_streams >= 0 ? a.load_streams : (a.smoke ? 4 : 64);
  copt.cold_starts = a.cold_starts >= 0 ? a.cold_starts : (a.smoke ? 1 : 5);
  if (copt.idle_connections > 100000 || copt.footprint_streams > 4096 || copt.cold_starts > 1000 ||
      copt.idle_hold_s > 50) {
    return Fail(ExitCode::kUsage,
                "bench: --idle-connections must be 0..100000, --load-streams 0..4096, --cold-starts 0..1000, "
                "--idle-hold 0..50 (below the proxy's 60 s idle timeout)");
  }

  // Workloads.
  std::vector<std::string> names = a.workloads;
  if (names.empty() && a.suite == "S") {
    names = {"agent_decode"};  // speculative decoding is about decode speed: the long-decode workload
  } else if (names.empty()) {
    names = a.smoke ? std::vector<std::string>{"chat_turn", "parallel_4"}
                    : std::vector<std::string>{"chat_turn", "rag_prefill", "agent_decode", "parallel_4"};
  }
  const std::string wdir = bench::WorkloadDir(a.workloads_dir);
  std::vector<bench::Workload> workloads;
  for (const auto& n : names) {
    auto w = bench::LoadWorkload(wdir, n, a.smoke);
    if (!w.ok()) return Fail(ExitCode::kUsage, "bench: " + w.status().message());
    workloads.push_back(std::move(w).value());
  }

  // Provenance and the llama-server the bench starts.
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  bench::Provenance prov;
  prov.corral_version = kCorralVersion;
  prov.corral_commit = kCorralGitCommit;
  prov.corral_source_commit = bench::SourceTreeCommit();
  prov.llama_cpp_pinned_commit = engine::kPinnedCommit;
  auto engine = engine::Locate(*config, /*query_version=*/true);
  if (engine.ok()) {
    prov.llama_server = engine->llama_server;
    prov.llama_server_commit = engine->commit;
    prov.llama_server_version = engine->version_line;
  }

  std::vector<bench::Target> targets;
  for (const auto& spec : a.targets) {
    auto t = bench::ParseTargetSpec(spec);
    if (!t.ok()) return Fail(ExitCode::kUsage, "bench: " + t.status().message());
    targets.push_back(std::move(t).value());
  }
  auto progress = [&global](const std::string& line) {
    if (!global.json) std::fprintf(stderr, "bench: %s\n", line.c_str());
  };

  std::vector<bench::SuiteResult> suites;
  DaemonHarness harness;                            // children suites A and C start; stopped when the run ends
  for (size_t at = 0; at < a.child_args.size();) {  // split on blanks: "-t 1 -np 8"
    size_t start = a.child_args.find_first_not_of(" \t", at);
    if (start == std::string::npos) break;
    size_t end = a.child_args.find_first_of(" \t", start);
    if (end == std::string::npos) end = a.child_args.size();
    harness.child_args.push_back(a.child_args.substr(start, end - start));
    at = end;
  }
  if (want_a) {
    bench::WrapperProvider provider = [&a, &harness]() -> Result<bench::WrapperEndpoints> {
      bench::WrapperEndpoints e;
      if (!a.wrapped_url.empty() || !a.manual_url.empty()) {  // two children the user started
        if (a.wrapped_url.empty() || a.manual_url.empty()) {
          return Status(StatusCode::kInvalidArgument, "give both --wrapped-url and --manual-url, or neither");
        }
        e.wrapped = UrlTarget("corral", a.wrapped_url, a.wrapped_pid);
        e.manual = UrlTarget("by-hand", a.manual_url, a.manual_pid);
        e.daemon_pid = a.daemon_pid;
        return e;
      }
      // `corral start` through the daemon, then the very argv it launched, by hand.
      const std::string model = a.model.empty() ? DefaultBenchModel() : a.model;
      CORRAL_ASSIGN_OR_RETURN(nlohmann::json started, harness.Start(model, "bench-wrapper"));
      const nlohmann::json& m = started["model"];
      std::vector<std::string> argv = m.value("argv", std::vector<std::string>{});
      if (argv.empty()) return Unavailable("the daemon reported no argv for its child");
      CORRAL_ASSIGN_OR_RETURN(std::string manual_url, harness.LaunchByHand(argv));
      CORRAL_ASSIGN_OR_RETURN(nlohmann::json status, CorralJson({"status", "--json"}));
      e.wrapped = UrlTarget("corral", "http://127.0.0.1:" + std::to_string(m.value("port", 0)), m.value("pid", -1));
      e.manual = UrlTarget("by-hand", manual_url, harness.manual_pid);
      e.daemon_pid = status.contains("daemon") ? status["daemon"].value("pid", -1) : -1;
      return e;
    };
    suites.push_back(bench::RunSuiteA(provider, workloads, opt, progress));
    harness.StopAll();
  }
  if (want_b) {
    bench::SuiteBOptions b;
    b.targets = targets;
    b.mode = a.mode;
    b.knobs = a.knobs;
    b.start_raw = !a.no_raw;
    b.start_router = !a.no_router;
    if (b.start_raw || b.start_router) {
      if (!engine.ok()) return Fail(ExitCode::kEngineMissing, "bench: " + engine.status().message());
      b.llama_server = engine->llama_server;
      b.model_path = a.model.empty() ? DefaultBenchModel() : a.model;
      std::error_code ec;
      if (!std::filesystem::is_regular_file(b.model_path, ec)) {
        return Fail(ExitCode::kUsage, "bench: model " + b.model_path +
                                          " not found; give --model PATH (e.g. one made by `corral model synth`)");
      }
    }
    suites.push_back(bench::RunSuiteB(b, workloads, opt, progress));
  }
  if (want_s) {
    bench::SuiteSOptions so;
    so.mode = a.mode;
    so.knobs = a.knobs;
    so.draft_path = a.draft;
    so.draft_max = a.draft_max;
    if (!engine.ok()) return Fail(ExitCode::kEngineMissing, "bench: " + engine.status().message());
    so.llama_server = engine->llama_server;
    so.model_path = a.model.empty() ? DefaultBenchModel() : a.model;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(so.model_path, ec)) {
      return Fail(ExitCode::kUsage, "bench: model " + so.model_path + " not found; give --model PATH");
    }
    suites.push_back(bench::RunSuiteS(so, workloads, opt, progress));
  }
  if (want_w) {
    if (!engine.ok()) return Fail(ExitCode::kEngineMissing, "bench: " + engine.status().message());
    auto w = SwapOptions(a, engine->llama_server, opt.runs, copt.cold_starts);
    if (!w.ok()) return Fail(ExitCode::kUsage, "bench: " + w.status().message());
    suites.push_back(bench::RunSuiteW(*w, opt, progress));
  }
  if (want_c) {
    bench::HopProvider provider = [&a, &harness]() -> Result<bench::HopEndpoints> {
      bench::HopEndpoints e;
      if (!a.direct_url.empty() || !a.proxy_url.empty()) {  // a child and a proxy the user runs
        if (a.direct_url.empty() || a.proxy_url.empty()) {
          return Status(StatusCode::kInvalidArgument, "give both --direct-url and --proxy-url, or neither");
        }
        e.direct = UrlTarget("direct", a.direct_url, -1);
        e.proxied = UrlTarget("proxy", a.proxy_url, -1);
        // --model names what the requests ask for (the proxy routes by it; without it each
        // target's first /v1/models entry, which on a proxy may be another model).
        e.direct.model = a.model;
        e.proxied.model = a.model;
        return e;
      }
      // One child started through the daemon, reached directly and through its proxy.
      const std::string model = a.model.empty() ? DefaultBenchModel() : a.model;
      CORRAL_ASSIGN_OR_RETURN(nlohmann::json started, harness.Start(model, ""));
      const nlohmann::json& m = started["model"];
      const std::string name = m.value("name", std::string());
      e.direct = UrlTarget("direct", "http://127.0.0.1:" + std::to_string(m.value("port", 0)), m.value("pid", -1));
      e.direct.model = name;
      e.proxied = UrlTarget("proxy", BaseUrl(started.value("proxy_url", std::string())), -1);
      e.proxied.model = name;
      // The daemon's parts: its pid (RSS), the child's log and a way to stop the child.
      CORRAL_ASSIGN_OR_RETURN(nlohmann::json status, CorralJson({"status", "--json"}));
      e.daemon_pid = status.contains("daemon") ? status["daemon"].value("pid", -1) : -1;
      e.child_log_path = m.value("log_path", std::string());
      // Requests name catalog models, never files: the cold start asks for the model's name.
      e.cold_start_model = m.value("model", name);
      const std::string model_path = m.value("model_path", std::string());
      e.model_was_running = started.value("already_running", false);
      // A request can start only a catalog model (never a file by path): a --model file
      // outside the catalog's folders cannot be timed cold through the proxy.
      bool in_catalog = false;
      if (auto listing = CorralJson({"list", "--json"}); listing.ok() && listing->contains("models")) {
        for (const auto& row : (*listing)["models"]) {
          for (const auto& f : row.value("files", nlohmann::json::array())) {
            in_catalog = in_catalog || (f.is_string() && f.get<std::string>() == model_path);
          }
        }
      }
      if (!in_catalog) {
        e.cold_start_skip =
            "the model file is not in the catalog, and requests can start only catalog models; "
            "add its folder to model_paths to time cold starts";
      }
      // A cold start needs this child to be the only instance of its file: the daemon routes
      // a request for the file to any running instance rather than starting one.
      std::string others;
      if (auto ps = CorralJson({"ps", "--json"}); ps.ok()) {
        const nlohmann::json& list = ps->is_object() && ps->contains("models") ? (*ps)["models"] : *ps;
        if (list.is_array()) {
          for (const auto& c : list) {
            if (c.is_object() && c.value("model_path", std::string()) == model_path &&
                c.value("name", std::string()) != name) {
              others += (others.empty() ? "" : ", ") + c.value("name", std::string());
            }
          }
        }
      }
      e.stop_model = [name, others]() -> Status {
        if (!others.empty()) {
          return Status(StatusCode::kFailedPrecondition,
                        "another instance of the model is running (" + others +
                            "): a request for the file would be served by it; stop it to time cold starts");
        }
        auto stopped = CorralJson({"stop", name, "--json"});
        return stopped.ok() ? Status::Ok() : stopped.status();
      };
      return e;
    };
    suites.push_back(bench::RunSuiteC(provider, copt, workloads, opt, progress));
  }

  bench::RunInfo run;
  run.created_utc = started_utc;
  run.finished_utc = UtcNow("%Y-%m-%dT%H:%M:%SZ");
  run.command = a.command;
  run.options = opt;
  run.smoke = a.smoke;
  run.mode = a.mode;
  run.allow_debug = a.allow_debug;
  const nlohmann::json report = bench::ReportJson(run, host, prov, workloads, suites);
  const std::string dir = a.out + "/" + run_dir_name;
  Status st = bench::WriteReportFiles(dir, report);
  if (!st.ok()) return Fail(ExitCode::kOther, "bench: writing the report: " + st.message());

  // Exit status: a failed suite, or (in a smoke run) any failed request, is a failure.
  bool failed = false;
  std::string why;
  for (const auto& s : suites) {
    if (s.status == "failed") {
      failed = true;
      why = "suite " + s.suite + " failed: " + s.reason;
    }
    // nginx is a reference, not the product: its errors (a 502 on a stale upstream
    // keep-alive, say) are counted and shown in the report but do not fail the run.
    std::set<std::string> reference_targets;
    for (const auto& t : s.targets) {
      if (t.kind == "nginx") reference_targets.insert(t.name);
    }
    int measured = 0, errors = 0;
    for (const auto& c : s.aggregate.cells) {
      if (reference_targets.count(c.target) != 0) continue;
      measured += c.requests;
      errors += c.errors;
    }
    if (s.status == "ran" && (measured == 0 || errors == measured || (a.smoke && errors > 0))) {
      failed = true;
      why = "suite " + s.suite + ": " + std::to_string(errors) + " of " + std::to_string(measured) + " requests failed";
    }
    if (s.footprint && s.footprint->status == "failed") {
      failed = true;
      why = "suite C footprint failed: " + s.footprint->reason;
    } else if (a.smoke && s.footprint && s.footprint->status == "ran" &&
               (s.footprint->opened < s.footprint->requested || s.footprint->answered_again < s.footprint->opened ||
                s.footprint->stream_errors > 0)) {
      failed = true;
      why = "suite C footprint: " + std::to_string(s.footprint->opened) + "/" + std::to_string(s.footprint->requested) +
            " idle connections held, " + std::to_string(s.footprint->answered_again) + " answered again, " +
            std::to_string(s.footprint->stream_errors) + " stream errors " + s.footprint->connection_error +
            s.footprint->stream_error_sample;
    }
    if (s.cold_start && s.cold_start->status == "failed") {
      failed = true;
      why = "suite C cold start failed: " + s.cold_start->reason;
    }
  }
  if (global.json) {
    nlohmann::json out = {{"dir", dir}, {"ok", !failed}, {"suites", nlohmann::json::array()}};
    for (const auto& s : report["suites"]) {
      nlohmann::json brief = {{"suite", s["suite"]},
                              {"status", s["status"]},
                              {"reason", s["reason"]},
                              {"cells", s["cells"]},
                              {"comparisons", s["comparisons"]}};
      for (const char* part : {"hop_summary", "load", "nginx", "footprint", "cold_start", "spec", "swap"}) {
        if (s.contains(part)) brief[part] = s[part];
      }
      out["suites"].push_back(std::move(brief));
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << bench::RenderMarkdown(report) << "\nwrote " << dir
              << "/{results.json,report.md,decode_tps.svg,ttft_ms.svg}\n";
  }
  if (Interrupted()) return Fail(ExitCode::kOther, "bench: interrupted; partial results in " + dir);
  if (failed) return Fail(ExitCode::kOther, "bench: " + why + " (report in " + dir + ")");
  return 0;
}

}  // namespace

static void RegisterBench(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto args = std::make_shared<BenchArgs>();
  BenchArgs& a = *args;
  auto* b = app.add_subcommand(
      "bench", "Benchmark wrapper (A), cross-tool (B), proxy-hop (C) overhead and speculative decoding (S)");
  b->add_option("--suite", a.suite,
                "A (wrapper), B (cross-tool), C (proxy hop), S (speculative: --model with vs without --draft), "
                "W (swap: a long conversation's next turn after a model swap, KV restored vs not vs router mode; "
                "and cold starts) or all (A, B, C; S with --draft)")
      ->capture_default_str();
  b->add_option("--target", a.targets, "Suite B target NAME=URL[,model=ID][,pid=PID] (repeatable)");
  b->add_option("--workload", a.workloads,
                "chat_turn, rag_prefill, agent_decode, parallel_4, burst (repeatable; default: all but burst)")
      ->delimiter(',');
  b->add_option("--runs", a.runs, "Measured runs per target and cell (default 20; 2 with --smoke)");
  b->add_option("--warmup", a.warmup, "Discarded warm-up runs per target and cell (default 2; 1 with --smoke)");
  b->add_option("--out", a.out, "Results directory; each run writes OUT/<timestamp>/")->capture_default_str();
  b->add_flag("--smoke", a.smoke, "A tiny run that checks the harness end to end (not a measurement)");
  b->add_flag("--json", global.json, "Print a JSON summary instead of the Markdown report");
  b->add_flag("--allow-debug", a.allow_debug, "Run even on a build without optimisation (with a loud warning)");
  b->add_option("--model", a.model,
                "GGUF the bench's own llama-server targets serve (default: the tiny default model); with "
                "--direct-url/--proxy-url, the model name the requests carry");
  b->add_option("--draft", a.draft,
                "Suite S: the draft model's GGUF; the model (--model) runs without and with it, alternated");
  b->add_option("--model2", a.model2,
                "Suite W: the model swapped in (same shape as --model); neither given: two synthetic models");
  b->add_option("--words", a.words,
                "Suite W: words in the conversation's first turn (default 3200, ~8k tokens; 150 with --smoke)");
  b->add_option("--draft-max", a.draft_max,
                "Suite S: tokens drafted per step (--spec-draft-n-max); default: what Corral launches (8); 0 = "
                "llama-server's own (3)");
  b->add_flag("--no-raw", a.no_raw, "Suite B: do not start a raw llama-server target");
  b->add_flag("--no-router", a.no_router, "Suite B: do not start a llama-server router-mode target");
  b->add_option("--mode", a.mode, "normalized (same ctx/batch/KV/threads/layers for all) or defaults")
      ->capture_default_str();
  auto* ctx_opt = b->add_option("--ctx", a.knobs.ctx,
                                "Normalized context size (suite W: -c of its models, "
                                "default 12288; 1024 with --smoke)")
                      ->capture_default_str();
  b->add_option("--threads", a.knobs.threads, "Normalized thread count (0 = all cores)")->capture_default_str();
  b->add_option("--child-args", a.child_args,
                "Suites A and C: raw llama-server args for the child they start, e.g. --child-args='-t 1' "
                "(what `corral start MODEL -- ARGS` takes; on-demand cold starts use the model's configured args)");
  b->add_option("--parallel", a.knobs.parallel, "Normalized server slots (-np)")->capture_default_str();
  b->add_option("--seed", a.seed, "Sampling and bootstrap seed")->capture_default_str();
  b->add_option("--noisy-cv", a.noisy_cv, "Flag a cell metric whose coefficient of variation exceeds this")
      ->capture_default_str();
  b->add_option("--timeout", a.timeout_s, "Per-request timeout, seconds")->capture_default_str();
  b->add_option("--workloads-dir", a.workloads_dir, "Directory of the workload prompt files (bench/workloads)");
  b->add_option("--direct-url", a.direct_url, "Suite C: the llama-server reached directly");
  b->add_option("--proxy-url", a.proxy_url, "Suite C: the same llama-server through the proxy");
  b->add_option("--extra-proxy", a.extra_proxies,
                "Suite C: another proxy in front of the same child, NAME=URL[,pid=PID] (repeatable; e.g. an older "
                "build's `corral proxy --upstream`), alternated with the others");
  b->add_flag("--no-nginx", a.no_nginx, "Suite C: do not add nginx (buffering off) as the reference proxy");
  b->add_option("--nginx", a.nginx, "Suite C: the nginx binary (default: PATH, then /usr/sbin/nginx)");
  b->add_option("--idle-connections", a.idle_connections,
                "Suite C: idle keep-alive connections held on the proxy (default 1000; 50 with --smoke; 0 = skip)");
  b->add_option("--idle-hold", a.idle_hold_s, "Suite C: seconds they sit idle before the RSS reading (default 5)");
  b->add_option("--load-streams", a.load_streams,
                "Suite C: concurrent streams for the daemon's peak RSS (default 64; 4 with --smoke)");
  b->add_option("--cold-starts", a.cold_starts,
                "Suite C: cold starts timed against llama-server's readiness (default 5; 1 with --smoke; 0 = skip); "
                "suite W: cold starts per side (default 5)");
  b->add_option("--wrapped-url", a.wrapped_url, "Suite A: the child started by `corral start`");
  b->add_option("--wrapped-pid", a.wrapped_pid, "Suite A: its pid");
  b->add_option("--manual-url", a.manual_url, "Suite A: the same argv started by hand");
  b->add_option("--manual-pid", a.manual_pid, "Suite A: its pid");
  b->add_option("--daemon-pid", a.daemon_pid, "Suite A: the corral daemon's pid (idle RSS)");
  b->callback([&global, &run, args, ctx_opt] {
    args->ctx_given = ctx_opt->count() > 0;
    run = [&global, args] { return RunBench(global, *args); };
  });
}

CORRAL_REGISTER_COMMAND(RegisterBench);

}  // namespace corral::cli
