// `corral bench` reports and quick runs for the web dashboard (issue 16, docs/web.md).
//
// Reports: each `corral bench` run writes OUT/<timestamp>/results.json (bench/report.h). The
// daemon lists the run directories of a few known folders (its own state folder, where runs
// started from a dashboard write, then `bench_results_dir` when set, e.g. a checkout's
// bench/results) and serves one report by its id: the directory's name, which must match
// [A-Za-z0-9][A-Za-z0-9._-]{0,127} and be one the listing found (a real directory holding a
// regular results.json, no symbolic link). A request never names a path.
//
// Runs: one at a time, `corral bench` as a child process in its own process group (quick
// suite C on a running model: the TUI's `b` pane runs the same command), watched by one
// thread that publishes {"t":"bench","run":{...}} on the event feed when it starts and ends.
// Stop() (and the destructor) kills a run in progress and joins the thread.
//
// Thread-safety: every public method is safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace corral::daemon {

inline constexpr size_t kMaxBenchReports = 200;                   // listed, newest first
inline constexpr uint64_t kMaxBenchReportBytes = 64ULL << 20;     // results.json read at most
inline constexpr size_t kMaxBenchRequestsShown = 4000;            // per-request points per suite
inline constexpr uint64_t kMaxBenchMarkdownBytes = 256ULL << 10;  // report.md shown at most

// Whether `id` has the shape of a report id (see above). Says nothing about existence.
bool IsBenchReportId(std::string_view id);

struct BenchReportEntry {
  std::string id;
  std::string dir;      // the folder it was found in (not sent to the page)
  int64_t mtime_s = 0;  // results.json's modification time
  uint64_t bytes = 0;
};
// The reports under `dirs` (first folder wins for a name found twice), newest first, at most
// kMaxBenchReports. Missing folders are skipped.
std::vector<BenchReportEntry> ListBenchReports(const std::vector<std::string>& dirs);

// What the page shows of a results.json: run, host and provenance facts, and per suite its
// cells (medians, p10, p90 of TTFT, decode tok/s, e2e), hop summary, checks and up to
// kMaxBenchRequestsShown per-request points (target, TTFT, decode tok/s). Tolerant: fields
// that are missing or of another type are left out.
nlohmann::json SummarizeBenchReport(const nlohmann::json& report);

// The summary of report `id` (+ "markdown": report.md, bounded): kInvalidArgument for a bad
// id, kNotFound when no listed report has it, kResourceExhausted / kCorrupt for a file too
// large or not JSON.
Result<nlohmann::json> LoadBenchReport(const std::vector<std::string>& dirs, std::string_view id);

struct BenchRunsOptions {
  std::vector<std::string> report_dirs;           // first: where runs write (created when a run starts)
  std::vector<std::string> command;               // the corral binary and its global flags ("bench ..." follows)
  std::function<void(std::string line)> publish;  // one feed line; may be empty
  std::chrono::seconds run_timeout{900};
};

class BenchRuns {
 public:
  explicit BenchRuns(BenchRunsOptions options);
  ~BenchRuns();  // Stop()
  BenchRuns(const BenchRuns&) = delete;
  BenchRuns& operator=(const BenchRuns&) = delete;

  // {"reports":[{id, mtime_s, bytes}...], "run": Run()}
  nlohmann::json List() const;
  Result<nlohmann::json> Report(std::string_view id) const { return LoadBenchReport(options_.report_dirs, id); }
  // The last run: {"state":"none|running|done|failed|cancelled", model, runs, started_ms,
  // finished_ms, id (done), error (failed)}.
  nlohmann::json Run() const;
  // Starts quick suite C on `model` (a running child) at `direct_url` and via `proxy_url`,
  // `runs` measured requests per target (1..100). kFailedPrecondition while a run is going.
  Status Start(const std::string& model, const std::string& direct_url, const std::string& proxy_url, int runs);
  // Kills a run in progress (its state becomes "cancelled") and joins the watcher.
  void Stop();

 private:
  void Watch(int pid, const std::string& output_path, const std::vector<std::string>& before);
  void Finish(nlohmann::json run);

  const BenchRunsOptions options_;
  mutable Mutex mu_;
  std::condition_variable cv_;  // Stop() wakes the watcher
  nlohmann::json run_ CORRAL_GUARDED_BY(mu_);
  bool running_ CORRAL_GUARDED_BY(mu_) = false;
  bool stop_ CORRAL_GUARDED_BY(mu_) = false;
  std::thread watcher_;  // started by Start, joined by Start (a finished one) or Stop; both under start_mu_
  Mutex start_mu_;       // serialises Start and Stop (the watcher_ handle)
};

}  // namespace corral::daemon
