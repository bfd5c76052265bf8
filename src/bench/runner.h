// Workloads, the alternating request runner and the aggregation of its records into cells
// (one cell = one workload at one concurrency on one target) and A-vs-B comparisons.
//
// Method (docs/bench.md): warm-up runs are sent and discarded; the targets are alternated
// run by run in ABBA order (A B, B A, A B, ...) so drift on a shared machine hits every
// target alike; every stream decodes exactly max_tokens (ignore_eos + n_predict), temperature
// 0, fixed seed. Failed requests are kept, counted and shown, never averaged in.
// Thread-safety: RunRequests blocks its calling thread; everything else is pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/stats.h"
#include "bench/types.h"
#include "common/status.h"

namespace corral::bench {

// The workloads the bench knows, in report order.
const std::vector<std::string>& WorkloadNames();

// Loads a named workload's prompt from `dir` (bench/workloads). `smoke` shrinks it to a
// fast harness check (fewer tokens, burst levels 1 and 4 only).
Result<Workload> LoadWorkload(const std::string& dir, const std::string& name, bool smoke);

// The bench/workloads directory: `flag` when given, else $CORRAL_BENCH_WORKLOADS, else the
// source tree this binary was built from, else ./bench/workloads.
std::string WorkloadDir(const std::string& flag);

// HEAD of the source tree this binary was built from ("abc123def456", "+dirty" when the
// tree has changes), or "" when that tree is not a git checkout any more.
std::string SourceTreeCommit();

struct RunOptions {
  int runs = 20;
  int warmup = 2;
  uint64_t seed = 42;  // sampling seed sent to the servers and bootstrap seed
  std::chrono::milliseconds request_timeout{std::chrono::minutes(5)};
  double noisy_cv = 0.10;  // a cell metric with a coefficient of variation above this is flagged
  int bootstrap_resamples = 2000;
};

// The JSON body of one streaming chat completion for `workload` sent to `target`.
std::string ChatBody(const Workload& workload, const Target& target, uint64_t seed);

// Progress callback: one line per run ("chat_turn run 3/20: llama-server ok").
using Progress = std::function<void(const std::string&)>;

// Runs every workload against every target, alternating, and returns all records
// (warm-up ones included, marked). Stops early, returning what it has, on interrupt.
std::vector<RequestRecord> RunRequests(const std::vector<Target>& targets, const std::vector<Workload>& workloads,
                                       const RunOptions& options, const Progress& progress);

// The metrics every cell summarises, in table order.
const std::vector<std::string>& MetricNames();
// The value of a metric on one record; < 0 when the record has none.
double MetricValue(const RequestRecord& r, const std::string& metric);
// Whether a larger value is better ("decode_tps") or worse ("ttft_ms").
bool HigherIsBetter(const std::string& metric);

struct Cell {
  std::string workload;  // label ("chat_turn", "burst@8")
  std::string target;
  int concurrency = 1;
  int requests = 0;  // measured (non-warm-up) requests
  int errors = 0;
  std::vector<std::string> error_samples;  // the first few distinct errors
  std::map<std::string, Summary> metrics;  // by MetricNames()
  Summary aggregate_tps;                   // per run: total completion tokens / run wall time
  std::vector<std::string> noisy;          // metrics whose CV exceeds the threshold
};

struct CellComparison {
  std::string workload;
  std::string baseline;  // the first target
  std::string target;
  std::string metric;
  Comparison result;  // target relative to baseline (unpaired: medians of the two groups)
  // Paired: the target's request and the baseline's request of the same run and stream were
  // sent back to back (ABBA), so their ratio cancels drift that hits both. Median of the
  // per-pair ratios (target / baseline) with its bootstrap interval over pairs.
  int pairs = 0;
  Interval paired_ratio;
};

struct Aggregate {
  std::vector<Cell> cells;
  std::vector<CellComparison> comparisons;
};

// Summarises the non-warm-up records. Comparisons: every target against the first one,
// unpaired and paired by (run, stream),
// for ttft_ms, decode_tps, itl_p50_ms, e2e_ms (and aggregate_tps when concurrent).
Aggregate Summarise(const std::vector<RequestRecord>& records, const std::vector<Target>& targets,
                    const RunOptions& options);

}  // namespace corral::bench
