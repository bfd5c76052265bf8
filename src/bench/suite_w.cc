// Suite W (issue 17): what the next turn of a long conversation costs after its model was
// swapped out for another and back, and what a cold start costs - Corral against
// llama-server's own router mode. It replaces scripts/bench-swap.py.
//
// Method: two models of the same shape in a private folder; three isolated Corral daemons
// (their own XDG dirs, socket and state; the real corral binary) with a memory budget that
// holds one model: kv_keep on, kv_keep off (both with the same budget), and a router-mode
// llama-server (--models-dir, --models-max 1) on the same folder. Per round, the four modes
// in ABBA order:
//   warm        the first turn on A, then the next turn on A (A never unloaded: the floor)
//   kv-restore  the first turn on A, one request to B (A is evicted, its slots saved), the
//               next turn on A (A starts again, its slots restored before it is routed)
//   kv-off      the same swap on the kv_keep-off daemon: A prefills the whole conversation
//   router      the same swap through router mode
// The measured request is the next turn (streamed, 2 tokens): its TTFT, model start
// included for the swapped modes, with llama-server's timings (prompt_n, cache_n,
// prompt_ms) beside it. Each round's first turn starts with its own tag, so no round reuses
// another's cache. Cold starts: nothing loaded, then one short request to A; Corral's
// kv_keep-off daemon starting it on demand vs router mode's autoload, alternated.
//
// Ownership: every process is owned by an RAII holder (SwapDaemon stops its daemon and any
// child it left; LocalServer kills the router's process group; WorkDir removes the files),
// so a failure, an early return or Ctrl+C (the loops check Interrupted()) leaves nothing.
// Thread-safety: RunSuiteW blocks its caller.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench/client.h"
#include "bench/suites.h"
#include "bench/system.h"
#include "common/interrupt.h"
#include "common/subprocess.h"

namespace corral::bench {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr auto kCorralTimeout = std::chrono::minutes(5);
constexpr auto kRouterStartTimeout = std::chrono::seconds(120);
constexpr auto kUnloadTimeout = std::chrono::seconds(60);
constexpr auto kDaemonExitGrace = std::chrono::seconds(10);
constexpr int kTurnTokens = 2;  // two, so the first token's (possibly empty) piece never leaves no content
constexpr const char* kNextTurn = "swap_next_turn";
constexpr const char* kColdStart = "cold_start";
constexpr const char* kModelA = "swapa";
constexpr const char* kModelB = "swapb";

bool Alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

// Waits up to `grace` for `pid` (not our child) to go away; then SIGKILL.
void EnsureGone(pid_t pid, std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (Alive(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (Alive(pid)) ::kill(pid, SIGKILL);
}

// A fresh private directory, removed with everything in it on destruction.
class WorkDir {
 public:
  static Result<std::unique_ptr<WorkDir>> Make() {
    std::string tmpl = (fs::temp_directory_path() / "corral-swap-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError("mkdtemp", errno);
    return std::unique_ptr<WorkDir>(new WorkDir(tmpl));
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit WorkDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// One isolated Corral daemon (its own XDG dirs under `root`), run as a user would: the CLI
// with that environment. Stopped on destruction, with any llama-server child it left.
class SwapDaemon {
 public:
  struct Config {
    std::string corral, llama_server, root, models_dir;
    bool kv_keep = true;
    uint64_t budget = 0;  // 0 = the daemon's default
    int ctx = 0;
  };
  static Result<std::unique_ptr<SwapDaemon>> Start(const Config& c) {
    std::unique_ptr<SwapDaemon> d(new SwapDaemon(c));
    CORRAL_RETURN_IF_ERROR(d->WriteConfig(c));
    d->started_ = true;  // from here on the destructor runs `daemon stop`, even after a failed start
    CORRAL_ASSIGN_OR_RETURN(json ignored, d->Corral({"daemon", "start"}, /*want_json=*/false));
    (void)ignored;
    CORRAL_ASSIGN_OR_RETURN(json status, d->Corral({"status", "--json"}));
    d->pid_ = status.contains("daemon") && status["daemon"].is_object() ? status["daemon"].value("pid", -1) : -1;
    if (status.contains("proxy") && status["proxy"].is_object()) {
      d->url_ = status["proxy"].value("base_url", std::string());
    }
    if (d->url_.empty()) return Unavailable("the daemon reported no proxy address: " + status.dump());
    return d;
  }
  ~SwapDaemon() {
    try {
      Stop();
    } catch (const std::exception&) {  // a destructor must not throw; the kill below still runs
      if (Alive(pid_)) ::kill(pid_, SIGKILL);
    }
  }
  SwapDaemon(const SwapDaemon&) = delete;
  SwapDaemon& operator=(const SwapDaemon&) = delete;

  // Runs `corral ARGS` against this daemon; parses the JSON it prints (from the first '{').
  Result<json> Corral(const std::vector<std::string>& args, bool want_json = true) const {
    std::vector<std::string> argv = {"env"};
    argv.insert(argv.end(), env_.begin(), env_.end());
    argv.push_back(corral_);
    argv.insert(argv.end(), args.begin(), args.end());
    CORRAL_ASSIGN_OR_RETURN(CaptureResult r, RunCapture(argv, kCorralTimeout));
    std::string cmd = "corral";
    for (const auto& a : args) cmd += " " + a;
    if (r.exit_code != 0) {
      return Unavailable(cmd + " failed (exit " + std::to_string(r.exit_code) + "): " + r.output.substr(0, 2000));
    }
    if (!want_json) return json::object();
    const size_t brace = r.output.find('{');
    json j = brace == std::string::npos ? json() : json::parse(r.output.substr(brace), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Unavailable(cmd + " printed no JSON: " + r.output.substr(0, 500));
    return j;
  }

  void Stop() {
    if (!started_) return;
    started_ = false;
    std::vector<pid_t> children = pid_ > 0 ? ChildPids(pid_) : std::vector<pid_t>{};
    (void)Corral({"daemon", "stop"}, false);
    if (pid_ > 0) EnsureGone(pid_, kDaemonExitGrace);
    for (pid_t c : children) {
      if (Alive(c)) ::kill(c, SIGTERM);
    }
    for (pid_t c : children) EnsureGone(c, kDaemonExitGrace);
  }

  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  std::string state_dir() const { return root_ + "/state/corral"; }

 private:
  explicit SwapDaemon(const Config& c) : corral_(c.corral), root_(c.root) {
    for (const char* sub : {"run", "state", "config/corral", "data", "home", "cache"}) {
      std::error_code ec;
      fs::create_directories(root_ + "/" + sub, ec);
    }
    env_ = {"XDG_RUNTIME_DIR=" + root_ + "/run",
            "XDG_STATE_HOME=" + root_ + "/state",
            "XDG_CONFIG_HOME=" + root_ + "/config",
            "XDG_DATA_HOME=" + root_ + "/data",
            "HOME=" + root_ + "/home",
            "CORRAL_CACHE_DIR=" + root_ + "/cache",
            "CORRAL_LLAMA_SERVER=" + c.llama_server,
            "CORRAL_LISTEN=127.0.0.1:0",
            std::string("CORRAL_KV_KEEP=") + (c.kv_keep ? "true" : "false")};
    if (c.budget > 0) env_.push_back("CORRAL_MEMORY_BUDGET=" + std::to_string(c.budget));
  }

  Status WriteConfig(const Config& c) const {
    std::ofstream f(root_ + "/config/corral/config.yaml");
    f << "model_paths: [\"" << c.models_dir << "\"]\nmodels:\n";
    for (const char* name : {kModelA, kModelB}) f << "  " << name << ":\n    ctx: " << c.ctx << "\n";
    f.close();
    return f ? Status::Ok() : Unavailable("cannot write " + root_ + "/config/corral/config.yaml");
  }

  std::string corral_, root_, url_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
  bool started_ = false;
};

// Puts `from` at `to`: a hard link when on the same file system, else a copy.
Status PlaceModel(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (!ec) return Status::Ok();
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  return ec ? Unavailable("cannot copy " + from + " to " + to + ": " + ec.message()) : Status::Ok();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

// One streamed request; the record's `ok` follows the bench's usual checks.
RequestRecord Send(const std::string& url, const std::string& body, const RunOptions& options) {
  RequestRecord r;
  auto ep = ParseHttpUrl(url);
  if (!ep.ok()) {
    r.error = ep.status().message();
    return r;
  }
  std::vector<StreamTrace> traces =
      RunStreams(*ep, {StreamRequest{"/v1/chat/completions", body}}, options.request_timeout);
  FinishRecord(traces.front(), kTurnTokens, r);
  return r;
}

// Router mode's ids for the two models (it names them after the files).
struct RouterIds {
  std::string a, b;
};
Result<RouterIds> AskRouterIds(const std::string& url) {
  CORRAL_ASSIGN_OR_RETURN(Endpoint ep, ParseHttpUrl(url));
  CORRAL_ASSIGN_OR_RETURN(HttpReply reply, HttpRequest(ep, "/v1/models", "", std::chrono::seconds(10)));
  const json j = json::parse(reply.body, nullptr, false);
  RouterIds ids;
  if (j.is_object() && j.contains("data") && j["data"].is_array()) {
    for (const auto& m : j["data"]) {
      const std::string id = m.is_object() ? m.value("id", std::string()) : std::string();
      if (id.find(kModelA) != std::string::npos) ids.a = id;
      if (id.find(kModelB) != std::string::npos) ids.b = id;
    }
  }
  if (ids.a.empty() || ids.b.empty()) return Unavailable("router mode does not list both models: " + reply.body);
  return ids;
}

// Router mode: unloads `id` (if loaded) and waits until /models says so.
Status RouterUnload(const std::string& url, const std::string& id) {
  CORRAL_ASSIGN_OR_RETURN(Endpoint ep, ParseHttpUrl(url));
  (void)HttpRequest(ep, "/models/unload", json{{"model", id}}.dump(), std::chrono::seconds(10));
  const auto deadline = std::chrono::steady_clock::now() + kUnloadTimeout;
  while (std::chrono::steady_clock::now() < deadline && !Interrupted()) {
    auto reply = HttpRequest(ep, "/models", "", std::chrono::seconds(10));
    const json j = reply.ok() ? json::parse(reply->body, nullptr, false) : json();
    std::string state;
    if (j.is_object() && j.contains("data") && j["data"].is_array()) {
      for (const auto& m : j["data"]) {
        if (m.is_object() && m.value("id", std::string()) == id && m.contains("status") && m["status"].is_object()) {
          state = m["status"].value("value", std::string());
        }
      }
    }
    if (state == "unloaded" || state == "failed") return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status(StatusCode::kTimeout, "router mode did not unload " + id);
}

// Where each mode sends its requests, and the model names it uses.
struct Way {
  std::string target;  // "warm", "kv-restore", "kv-off", "router"
  std::string url;
  std::string model_a, model_b;
  bool swap = true;   // send B between the turns
  pid_t parent = -1;  // the daemon or router whose child serves A
};

// `parent`'s llama-server child that serves model A (its file is swapa.gguf) and its argv;
// pid -1 when none is running.
struct ChildOfA {
  pid_t pid = -1;
  std::vector<std::string> argv;
};
ChildOfA FindChildOfA(pid_t parent) {
  if (parent <= 0) return {};
  for (pid_t child : ChildPids(parent)) {
    auto argv = ReadCmdline(child);
    if (!argv.ok()) continue;
    for (const auto& arg : *argv) {
      if (arg.ends_with(std::string("/") + kModelA + ".gguf")) return {child, *argv};
    }
  }
  return {};
}

// One swap round of one mode: the first turn, maybe B, then the measured next turn.
RequestRecord SwapTurn(const Way& way, const std::string& history, int round, const RunOptions& options) {
  // The setup requests only need an answer (a 200): their tokens are not measured.
  RequestRecord first = Send(way.url, SwapBody(way.model_a, history, false, kTurnTokens, options.seed), options);
  std::string why = first.http_status == 200 ? "" : "the first turn: " + first.error;
  if (why.empty() && way.swap) {
    RequestRecord other = Send(way.url, SwapBody(way.model_b, "hi", false, kTurnTokens, options.seed), options);
    if (other.http_status != 200) why = "the request to B: " + other.error;
  }
  RequestRecord r;
  if (why.empty()) {
    r = Send(way.url, SwapBody(way.model_a, history, true, kTurnTokens, options.seed), options);
  } else {
    r.error = why;
  }
  r.target = way.target;
  r.workload = kNextTurn;
  r.run = round;
  return r;
}

struct Servers {
  std::unique_ptr<WorkDir> work;
  std::unique_ptr<SwapDaemon> on, off;
  std::unique_ptr<LocalServer> router;
  RouterIds router_ids;
};

// The daemons' budget: a probe daemon's planned reservation for A, times the factor.
Status PlanBudget(const SuiteWOptions& w, const SwapDaemon::Config& base, SwapSummary& out) {
  SwapDaemon::Config c = base;
  c.root = base.root + "/probe";
  CORRAL_ASSIGN_OR_RETURN(std::unique_ptr<SwapDaemon> probe, SwapDaemon::Start(c));
  CORRAL_ASSIGN_OR_RETURN(json plan, probe->Corral({"start", kModelA, "--dry-run", "--json"}));
  const json& p = plan.contains("plan") ? plan["plan"] : plan;
  const double reserved = p.value("reserved_bytes", 0.0);
  if (reserved <= 0) return Unavailable("the dry run gave no reserved_bytes: " + plan.dump().substr(0, 500));
  out.budget_bytes = static_cast<uint64_t>(reserved * w.budget_factor);
  return Status::Ok();
}

Status StartServers(const SuiteWOptions& w, Servers& s, SwapSummary& out, const Progress& progress) {
  CORRAL_ASSIGN_OR_RETURN(s.work, WorkDir::Make());
  out.work_dir = s.work->path();
  const std::string models = s.work->path() + "/models";
  fs::create_directories(models);
  const std::pair<const std::string*, const char*> files[] = {{&w.model_a, kModelA}, {&w.model_b, kModelB}};
  uint64_t seed = 1;
  for (const auto& [given, name] : files) {
    const std::string to = models + "/" + name + ".gguf";
    if (given->empty() && !w.make_model) return InvalidArgument("no model given and no way to make one");
    if (progress) progress(given->empty() ? std::string("synthesising ") + name : "placing " + *given);
    CORRAL_RETURN_IF_ERROR(given->empty() ? w.make_model(to, name, seed) : PlaceModel(*given, to));
    out.models.push_back(given->empty() ? to : *given);
    ++seed;
  }
  SwapDaemon::Config c{w.corral, w.llama_server, s.work->path(), models, true, 0, w.ctx};
  if (progress) progress("planning the memory budget (room for one model)");
  CORRAL_RETURN_IF_ERROR(PlanBudget(w, c, out));
  c.budget = out.budget_bytes;
  if (progress) progress("starting the kv_keep on and off daemons");
  c.root = s.work->path() + "/on";
  CORRAL_ASSIGN_OR_RETURN(s.on, SwapDaemon::Start(c));
  if (auto plan = s.on->Corral({"start", kModelA, "--dry-run", "--json"}); plan.ok()) {
    const json& p = plan->contains("plan") ? (*plan)["plan"] : *plan;
    out.model_argv = p.value("argv", std::vector<std::string>{});
  }
  c.root = s.work->path() + "/off";
  c.kv_keep = false;
  CORRAL_ASSIGN_OR_RETURN(s.off, SwapDaemon::Start(c));
  if (!w.router) return Status::Ok();
  if (progress) progress("starting llama-server router mode (--models-max 1)");
  out.router_argv = {
      w.llama_server, "--models-dir",       models, "--models-max", "1", "--host", "127.0.0.1", "--port", "0",
      "-c",           std::to_string(w.ctx)};
  CORRAL_ASSIGN_OR_RETURN(s.router, LocalServer::Start(out.router_argv, kRouterStartTimeout));
  CORRAL_ASSIGN_OR_RETURN(s.router_ids, AskRouterIds(s.router->url()));
  return Status::Ok();
}

std::vector<Way> SwapWays(const Servers& s) {
  std::vector<Way> ways = {{"warm", s.on->url(), kModelA, kModelB, false, s.on->pid()},
                           {"kv-restore", s.on->url(), kModelA, kModelB, true, s.on->pid()},
                           {"kv-off", s.off->url(), kModelA, kModelB, true, s.off->pid()}};
  if (s.router) ways.push_back({"router", s.router->url(), s.router_ids.a, s.router_ids.b, true, s.router->pid()});
  return ways;
}

// Rounds of the four modes; `child_argv` gets, per mode, the argv of the child that served
// A's next turn (the first round where it was seen), so the report shows what each ran.
void RunSwapRounds(const Servers& s, const SuiteWOptions& w, const RunOptions& options, const Progress& progress,
                   std::vector<RequestRecord>& records, std::map<std::string, ChildOfA>& child_argv) {
  const std::string conversation = SwapConversation(w.words);
  const std::vector<Way> ways = SwapWays(s);
  for (int round = 0; round < w.rounds; ++round) {
    std::vector<size_t> order(ways.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (round % 2 == 1) std::reverse(order.begin(), order.end());  // ABBA
    for (size_t i : order) {
      if (Interrupted()) return;
      const std::string history = "round " + std::to_string(round) + " " + ways[i].target + ": " + conversation;
      RequestRecord r = SwapTurn(ways[i], history, round, options);
      if (child_argv[ways[i].target].pid <= 0) child_argv[ways[i].target] = FindChildOfA(ways[i].parent);
      if (progress) {
        progress("swap round " + std::to_string(round + 1) + "/" + std::to_string(w.rounds) + " " + ways[i].target +
                 ": " +
                 (r.ok ? "ttft " + std::to_string(static_cast<int>(r.ttft_ms)) + " ms, prompt_n " +
                             std::to_string(static_cast<int64_t>(r.server_prompt_n)) + ", cache_n " +
                             std::to_string(r.server_cache_n)
                       : "failed (" + r.error + ")"));
      }
      records.push_back(std::move(r));
    }
  }
}

// One cold start on one side: nothing loaded, then a short request to A.
RequestRecord ColdOnce(const Servers& s, bool router, int round, const RunOptions& options) {
  RequestRecord r;
  Status stopped = Status::Ok();
  std::string url, model;
  if (router) {
    for (const std::string& id : {s.router_ids.a, s.router_ids.b}) {
      if (stopped.ok()) stopped = RouterUnload(s.router->url(), id);
    }
    url = s.router->url();
    model = s.router_ids.a;
  } else {
    for (const char* name : {kModelA, kModelB}) (void)s.off->Corral({"stop", name, "--json"});
    url = s.off->url();
    model = kModelA;
  }
  if (stopped.ok()) {
    r = Send(url, SwapBody(model, "cold " + std::to_string(round) + ": hello", false, kTurnTokens, options.seed),
             options);
  } else {
    r.error = stopped.message();
  }
  r.target = router ? "router-autoload" : "corral-on-demand";
  r.workload = kColdStart;
  r.run = round;
  return r;
}

void RunColdStarts(const Servers& s, const SuiteWOptions& w, const RunOptions& options, const Progress& progress,
                   std::vector<RequestRecord>& records) {
  for (int round = 0; round < w.cold_starts; ++round) {
    std::vector<bool> sides = {false};
    if (s.router) sides.push_back(true);
    if (round % 2 == 1) std::reverse(sides.begin(), sides.end());
    for (bool router : sides) {
      if (Interrupted()) return;
      RequestRecord r = ColdOnce(s, router, round, options);
      if (progress) {
        progress("cold start " + std::to_string(round + 1) + "/" + std::to_string(w.cold_starts) + " " + r.target +
                 ": " +
                 (r.ok ? "ttft " + std::to_string(static_cast<int>(r.ttft_ms)) + " ms" : "failed (" + r.error + ")"));
      }
      records.push_back(std::move(r));
    }
  }
}

std::vector<Target> SwapTargets(const Servers& s) {
  auto make = [](const std::string& name, const std::string& url, const std::string& kind,
                 const std::string& compare_to) {
    Target t;
    t.name = name;
    t.url = url;
    t.kind = kind;
    t.mode = "swap";
    t.compare_to = compare_to;
    return t;
  };
  std::vector<Target> t = {make("warm", s.on->url(), "corral", ""), make("kv-restore", s.on->url(), "corral", ""),
                           make("kv-off", s.off->url(), "corral", "kv-restore"),
                           make("corral-on-demand", s.off->url(), "corral", "")};
  for (auto& target : t) {  // the daemon each Corral mode went through
    target.pid = target.url == s.on->url() ? s.on->pid() : s.off->pid();
    if (auto argv = ReadCmdline(target.pid); argv.ok()) target.argv = *argv;
  }
  if (s.router) {
    Target r = make("router", s.router->url(), "llama-server-router", "kv-restore");
    r.pid = s.router->pid();
    if (auto argv = ReadCmdline(r.pid); argv.ok()) r.argv = *argv;
    t.push_back(r);
    Target c = r;
    c.name = "router-autoload";
    c.compare_to = "corral-on-demand";
    t.push_back(c);
  }
  return t;
}

}  // namespace

std::string SwapConversation(int words) {
  static const char* const kVocab[] = {"river",  "stone",  "amber",  "violet", "quartz", "meadow",  "lantern",
                                       "harbor", "copper", "willow", "ember",  "falcon", "granite", "juniper",
                                       "kettle", "marble", "nectar", "orchid", "pepper", "saffron"};
  constexpr int kVocabSize = sizeof(kVocab) / sizeof(kVocab[0]);
  std::string out;
  for (int i = 0; i < words; ++i) {
    if (i > 0) out += ' ';
    out += i % 5 != 0 ? kVocab[(i * 7 + i / 13) % kVocabSize] : std::to_string(i);
  }
  return out;
}

std::string SwapBody(const std::string& model, const std::string& history, bool next_turn, int max_tokens,
                     uint64_t seed) {
  json messages = json::array({{{"role", "user"}, {"content", history}}});
  if (next_turn) {
    messages.push_back({{"role", "assistant"}, {"content", "Noted."}});
    messages.push_back({{"role", "user"}, {"content", "and then?"}});
  }
  const json body = {{"model", model},           {"messages", messages},
                     {"stream", true},           {"stream_options", {{"include_usage", true}}},
                     {"temperature", 0},         {"seed", seed},
                     {"max_tokens", max_tokens}, {"n_predict", max_tokens},
                     {"ignore_eos", true},       {"cache_prompt", true}};
  return body.dump();
}

std::vector<SwapRow> SummariseSwap(const std::vector<RequestRecord>& records) {
  std::vector<SwapRow> rows;
  std::map<std::pair<std::string, std::string>, std::vector<std::vector<double>>> values;  // ttft, pn, cn, pms
  for (const auto& r : records) {
    if (r.warmup) continue;
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const SwapRow& row) { return row.workload == r.workload && row.target == r.target; });
    if (it == rows.end()) {
      rows.push_back(SwapRow{r.workload, r.target});
      it = rows.end() - 1;
    }
    ++it->requests;
    auto& v = values[{r.workload, r.target}];
    v.resize(4);
    if (!r.ok) {
      ++it->errors;
      continue;
    }
    if (r.ttft_ms >= 0) v[0].push_back(r.ttft_ms);
    if (r.has_server_timings) {
      v[1].push_back(r.server_prompt_n);
      if (r.server_cache_n >= 0) v[2].push_back(static_cast<double>(r.server_cache_n));
      v[3].push_back(r.server_prompt_ms);
    }
  }
  for (auto& row : rows) {
    auto& v = values[{row.workload, row.target}];
    row.ttft_ms = Summarize(v[0]);
    row.prompt_n = v[1].empty() ? -1 : Median(v[1]);
    row.cache_n = v[2].empty() ? -1 : Median(v[2]);
    row.prompt_ms = v[3].empty() ? -1 : Median(v[3]);
  }
  return rows;
}

SuiteResult RunSuiteW(const SuiteWOptions& w, const RunOptions& options, const Progress& progress) {
  SuiteResult s;
  s.suite = "W";
  s.title = "swap";
  if (w.corral.empty() || w.llama_server.empty()) {
    s.status = "failed";
    s.reason = "suite W needs the corral binary and a llama-server";
    return s;
  }
  SwapSummary sw;
  sw.words = w.words;
  sw.ctx = w.ctx;
  sw.rounds = w.rounds;
  sw.cold_starts = w.cold_starts;
  Servers servers;  // everything started; stopped when this function returns, on every path
  if (Status st = StartServers(w, servers, sw, progress); !st.ok()) {
    s.status = "failed";
    s.reason = st.message();
    s.swap = std::move(sw);
    return s;
  }
  s.targets = SwapTargets(servers);
  std::map<std::string, ChildOfA> children;
  RunSwapRounds(servers, w, options, progress, s.records, children);
  for (auto& t : s.targets) {
    if (auto it = children.find(t.name); it != children.end() && it->second.pid > 0) {
      t.child_pid = it->second.pid;
      t.child_argv = it->second.argv;
    }
  }
  RunColdStarts(servers, w, options, progress, s.records);
  s.aggregate = Summarise(s.records, s.targets, options);
  // Two-token replies have no decode rate worth comparing: keep the time comparisons.
  std::erase_if(s.aggregate.comparisons,
                [](const CellComparison& c) { return c.metric != "ttft_ms" && c.metric != "e2e_ms"; });
  sw.rows = SummariseSwap(s.records);
  for (const auto& r : s.records) {
    if (r.target == "warm" && r.ok && r.has_server_timings && r.server_cache_n >= 0) {
      sw.conversation_tokens = static_cast<int64_t>(r.server_prompt_n) + r.server_cache_n;
    }
  }
  for (const auto& row : sw.rows) {
    if (row.target == "kv-restore" && row.requests > 0) {
      s.checks.push_back({"the restored model served the conversation from its cache (cache_n > prompt_n)",
                          row.cache_n > row.prompt_n && row.cache_n > 0,
                          "median cache_n " + std::to_string(static_cast<int64_t>(row.cache_n)) + ", prompt_n " +
                              std::to_string(static_cast<int64_t>(row.prompt_n))});
    }
    if (row.target == "kv-off" && row.requests > 0) {
      s.checks.push_back({"kv_keep off re-prefilled the conversation (cache_n 0)", row.cache_n == 0 && row.prompt_n > 0,
                          "median cache_n " + std::to_string(static_cast<int64_t>(row.cache_n)) + ", prompt_n " +
                              std::to_string(static_cast<int64_t>(row.prompt_n))});
    }
  }
  servers.on->Stop();  // the daemon's shutdown does not save: what is on disk is what the swaps saved
  sw.kv_state_bytes = DirBytes(servers.on->state_dir() + "/kv");
  s.swap = std::move(sw);
  s.status = "ran";
  return s;
}

}  // namespace corral::bench
