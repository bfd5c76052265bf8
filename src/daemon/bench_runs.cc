#include "daemon/bench_runs.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>

#include "common/clock.h"
#include "common/fs.h"
#include "common/subprocess.h"
#include "control/api.h"

namespace corral::daemon {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxListed = 100;  // entries of a small array (checks, command, hop summary)
constexpr std::chrono::milliseconds kWatchInterval{200};
constexpr std::chrono::seconds kStopGrace{2};
constexpr size_t kOutputTailLines = 400;
constexpr uint64_t kOutputTailBytes = 1ULL << 20;
constexpr const char* kRunOutputFile = ".last-run.log";  // not an id: ids start with a letter or digit

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool IsRegularFile(const std::string& path, struct stat* st) {
  return ::lstat(path.c_str(), st) == 0 && S_ISREG(st->st_mode);
}

// `value` when it is a number, string or bool; null otherwise.
json Scalar(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !(it->is_primitive())) return nullptr;
  return *it;
}

// An object's scalar members (nested values dropped).
json Flat(const json& obj) {
  json out = json::object();
  if (!obj.is_object()) return out;
  for (const auto& [k, v] : obj.items()) {
    if (v.is_primitive() && !v.is_null()) out[k] = v;
  }
  return out;
}

// Up to kMaxListed entries of an array, each flattened (objects) or kept (scalars).
json FlatArray(const json& obj, const char* key) {
  json out = json::array();
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_array()) return out;
  for (const auto& v : obj[key]) {
    if (out.size() >= kMaxListed) break;
    out.push_back(v.is_object() ? Flat(v) : v.is_primitive() ? v : json(nullptr));
  }
  return out;
}

json Cells(const json& suite) {
  json out = json::array();
  if (!suite.contains("cells") || !suite["cells"].is_array()) return out;
  for (const auto& c : suite["cells"]) {
    if (!c.is_object() || out.size() >= kMaxListed) continue;
    json cell = {{"target", Scalar(c, "target")},
                 {"workload", Scalar(c, "workload")},
                 {"concurrency", Scalar(c, "concurrency")},
                 {"errors", Scalar(c, "errors")},
                 {"metrics", json::object()}};
    const json& m = c.contains("metrics") ? c["metrics"] : json();
    for (const char* metric : {"ttft_ms", "decode_tps", "e2e_ms", "aggregate_tps"}) {
      if (!m.is_object() || !m.contains(metric) || !m[metric].is_object()) continue;
      const json& s = m[metric];
      cell["metrics"][metric] = {
          {"median", Scalar(s, "median")}, {"p10", Scalar(s, "p10")}, {"p90", Scalar(s, "p90")}, {"n", Scalar(s, "n")}};
    }
    out.push_back(std::move(cell));
  }
  return out;
}

json Requests(const json& suite) {
  json out = json::array();
  if (!suite.contains("requests") || !suite["requests"].is_array()) return out;
  for (const auto& r : suite["requests"]) {
    if (out.size() >= kMaxBenchRequestsShown) break;
    if (!r.is_object() || (r.contains("warmup") && r["warmup"] == true)) continue;
    out.push_back({{"target", Scalar(r, "target")},
                   {"workload", Scalar(r, "workload")},
                   {"concurrency", Scalar(r, "concurrency")},
                   {"ok", Scalar(r, "ok")},
                   {"ttft_ms", Scalar(r, "ttft_ms")},
                   {"decode_tps", Scalar(r, "decode_tps")}});
  }
  return out;
}

// The model a suite measured: its first target's.
json SuiteModel(const json& suite) {
  if (!suite.contains("targets") || !suite["targets"].is_array() || suite["targets"].empty()) return nullptr;
  return Scalar(suite["targets"][0], "model");
}

// The report id a finished run wrote: from the --json summary's "dir", else the one new folder.
std::string NewReportId(const std::string& output, const std::vector<std::string>& before,
                        const std::vector<BenchReportEntry>& after) {
  constexpr std::string_view kKey = "\"dir\": \"";  // `corral bench --json` prints dump(2)
  std::string id;
  for (size_t at = output.find(kKey); at != std::string::npos; at = output.find(kKey, at + 1)) {
    const size_t start = at + kKey.size();
    const size_t end = output.find('"', start);
    if (end == std::string::npos) break;
    std::string_view dir = std::string_view(output).substr(start, end - start);
    id = std::string(dir.substr(dir.rfind('/') + 1));
  }
  for (const auto& e : after) {
    if (!id.empty() && e.id == id) return id;
  }
  for (const auto& e : after) {
    if (std::find(before.begin(), before.end(), e.id) == before.end()) return e.id;
  }
  return "";
}

// The last few lines of a failed run's output (its error).
std::string TailLines(const std::string& text, int lines) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  size_t cut = t.size();
  for (int i = 0; i < lines && cut != std::string::npos && cut > 0; ++i) cut = t.rfind('\n', cut - 1);
  std::string tail = cut == std::string::npos ? t : t.substr(cut + 1);
  return tail.size() > 2000 ? tail.substr(tail.size() - 2000) : tail;
}

}  // namespace

bool IsBenchReportId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes || id[0] == '.' || id[0] == '-' || id[0] == '_') return false;
  if (id.find("..") != std::string_view::npos) return false;
  return std::all_of(id.begin(), id.end(), IsIdChar);
}

std::vector<BenchReportEntry> ListBenchReports(const std::vector<std::string>& dirs) {
  std::map<std::string, BenchReportEntry> found;
  for (const auto& dir : dirs) {
    if (dir.empty()) continue;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    size_t seen = 0;
    while (const dirent* e = ::readdir(d)) {
      if (++seen > 100'000) break;  // a folder no one made by hand: stop reading it
      const std::string name = e->d_name;
      if (!IsBenchReportId(name) || found.contains(name)) continue;
      struct stat st {};
      const std::string run_dir = dir + "/" + name;
      if (::lstat(run_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      if (!IsRegularFile(run_dir + "/results.json", &st)) continue;
      found[name] = {name, dir, static_cast<int64_t>(st.st_mtime), static_cast<uint64_t>(st.st_size)};
    }
    ::closedir(d);
  }
  std::vector<BenchReportEntry> out;
  out.reserve(found.size());
  for (auto& [name, e] : found) out.push_back(std::move(e));
  std::sort(out.begin(), out.end(), [](const BenchReportEntry& a, const BenchReportEntry& b) {
    return a.mtime_s != b.mtime_s ? a.mtime_s > b.mtime_s : a.id > b.id;
  });
  if (out.size() > kMaxBenchReports) out.resize(kMaxBenchReports);
  return out;
}

json SummarizeBenchReport(const json& report) {
  json out = json::object();
  if (!report.is_object()) return out;
  for (const char* k : {"schema_version", "tool", "created_utc", "finished_utc"}) out[k] = Scalar(report, k);
  for (const char* k : {"options", "build", "host", "provenance"}) {
    out[k] = Flat(report.contains(k) ? report[k] : json());
  }
  out["command"] = FlatArray(report, "command");
  out["suites"] = json::array();
  if (!report.contains("suites") || !report["suites"].is_array()) return out;
  for (const auto& s : report["suites"]) {
    if (!s.is_object() || out["suites"].size() >= kMaxListed) continue;
    out["suites"].push_back({{"suite", Scalar(s, "suite")},
                             {"title", Scalar(s, "title")},
                             {"status", Scalar(s, "status")},
                             {"reason", Scalar(s, "reason")},
                             {"model", SuiteModel(s)},
                             {"cells", Cells(s)},
                             {"hop_summary", FlatArray(s, "hop_summary")},
                             {"checks", FlatArray(s, "checks")},
                             {"requests", Requests(s)}});
  }
  return out;
}

Result<json> LoadBenchReport(const std::vector<std::string>& dirs, std::string_view id) {
  if (!IsBenchReportId(id)) {
    return InvalidArgument("not a bench report id: '" + std::string(id.substr(0, 64)) +
                           "' (letters, digits, '.', '_', '-'; as the list gives them)");
  }
  std::string dir;
  for (const auto& e : ListBenchReports(dirs)) {
    if (e.id == id) dir = e.dir + "/" + e.id;
  }
  if (dir.empty()) return Status(StatusCode::kNotFound, "no bench report '" + std::string(id) + "'");
  auto text = ReadFileBounded(dir + "/results.json", kMaxBenchReportBytes);
  if (!text.ok()) return text.status();
  auto parsed = control::ParseJsonBounded(*text, control::JsonLimits{kMaxBenchReportBytes, 64});
  if (!parsed.ok()) return parsed.status().WithContext("bench report '" + std::string(id) + "'");
  json out = SummarizeBenchReport(*parsed);
  out["id"] = std::string(id);
  struct stat st {};
  if (IsRegularFile(dir + "/report.md", &st)) {
    auto md = ReadFileBounded(dir + "/report.md", kMaxBenchMarkdownBytes);
    if (md.ok()) out["markdown"] = *md;
  }
  return out;
}

BenchRuns::BenchRuns(BenchRunsOptions options) : options_(std::move(options)) {
  MutexLock lock(mu_);
  run_ = {{"state", "none"}};
}

BenchRuns::~BenchRuns() {
  Stop();
}

json BenchRuns::List() const {
  json reports = json::array();
  for (const auto& e : ListBenchReports(options_.report_dirs)) {
    reports.push_back({{"id", e.id}, {"mtime_s", e.mtime_s}, {"bytes", e.bytes}});
  }
  return {{"reports", reports}, {"run", Run()}};
}

json BenchRuns::Run() const {
  MutexLock lock(mu_);
  return run_;
}

Status BenchRuns::Start(const std::string& model, const std::string& direct_url, const std::string& proxy_url,
                        int runs) {
  MutexLock start(start_mu_);
  {
    MutexLock lock(mu_);
    if (running_) {
      return Status(StatusCode::kFailedPrecondition,
                    "a bench is already running (" + run_.value("model", std::string("?")) + ")");
    }
  }
  if (watcher_.joinable()) watcher_.join();  // the last run's watcher, finished
  if (runs < 1 || runs > 100) return InvalidArgument("runs must be 1..100");
  if (options_.report_dirs.empty() || options_.command.empty()) {
    return Status(StatusCode::kFailedPrecondition, "this daemon cannot run corral bench");
  }
  const std::string out_dir = options_.report_dirs.front();
  CORRAL_RETURN_IF_ERROR(MakeDirs(out_dir, 0755));
  std::vector<std::string> before;
  for (const auto& e : ListBenchReports({out_dir})) before.push_back(e.id);
  // Quick: one workload, few runs, none of the slow phases (nginx, idle connections, load,
  // cold starts: a cold start would stop the model). The TUI's `b` runs the same.
  std::vector<std::string> argv = options_.command;
  argv.insert(argv.end(), {"bench",
                           "--suite",
                           "C",
                           "--direct-url",
                           direct_url,
                           "--proxy-url",
                           proxy_url,
                           "--model",
                           model,
                           "--workload",
                           "chat_turn",
                           "--runs",
                           std::to_string(runs),
                           "--warmup",
                           "1",
                           "--no-nginx",
                           "--idle-connections",
                           "0",
                           "--load-streams",
                           "0",
                           "--cold-starts",
                           "0",
                           "--allow-debug",
                           "--json",
                           "--out",
                           out_dir});
  const std::string output = out_dir + "/" + kRunOutputFile;
  auto pid = SpawnToLog(argv, output, /*append=*/false, /*own_group=*/true);
  if (!pid.ok()) return pid.status().WithContext("starting corral bench");
  json run = {{"state", "running"}, {"model", model}, {"runs", runs}, {"started_ms", UnixNowMs()}};
  {
    MutexLock lock(mu_);
    running_ = true;
    stop_ = false;
    run_ = run;
  }
  if (options_.publish) options_.publish(json{{"t", "bench"}, {"run", run}}.dump());
  watcher_ = std::thread([this, p = *pid, output, before = std::move(before)] { Watch(p, output, before); });
  return Status::Ok();
}

void BenchRuns::Watch(int pid, const std::string& output_path, const std::vector<std::string>& before) {
  const auto deadline = Clock::now() + options_.run_timeout;
  int status = 0;
  std::string why;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      why = "lost track of the bench process";
      break;
    }
    MutexLock lock(mu_);
    if (stop_) {
      why = "cancelled";
      break;
    }
    if (Clock::now() >= deadline) {
      why = "timed out after " + std::to_string(options_.run_timeout.count()) + " s";
      break;
    }
    cv_.wait_for(lock.native(), kWatchInterval);
  }
  if (!why.empty()) StopProcessGroup(pid, kStopGrace);  // kills the group and reaps
  ::kill(-pid, SIGKILL);                                // anything of its group left behind
  json run = Run();
  run["finished_ms"] = UnixNowMs();
  auto output = TailFile(output_path, kOutputTailLines, kOutputTailBytes);
  const std::string text = output.ok() ? *output : "";
  if (why.empty()) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    run["exit_code"] = code;
    std::string id = NewReportId(text, before, ListBenchReports({options_.report_dirs.front()}));
    if (!id.empty()) {
      run["state"] = "done";
      run["id"] = id;
      return Finish(std::move(run));
    }
    why = "corral bench exited with code " + std::to_string(code) + " and wrote no report";
  }
  run["state"] = why == "cancelled" ? "cancelled" : "failed";
  run["error"] = why + (text.empty() ? "" : ": " + TailLines(text, 3));
  Finish(std::move(run));
}

void BenchRuns::Finish(json run) {
  {
    MutexLock lock(mu_);
    run_ = run;
    running_ = false;
  }
  if (options_.publish)
    options_.publish(json{{"t", "bench"}, {"run", run}}.dump(-1, ' ', false, json::error_handler_t::replace));
}

void BenchRuns::Stop() {
  MutexLock start(start_mu_);
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace corral::daemon
