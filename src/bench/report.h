// The bench's output: one versioned JSON document per run, and the Markdown report and SVG
// charts rendered from that document alone (so an old results.json can be re-rendered).
//
// Schema (schema_version 1), top-level keys:
//   schema_version, tool ("corral bench"), created_utc, finished_utc, command (argv of `corral bench`),
//   options {runs, warmup, seed, smoke, mode, noisy_cv, bootstrap_resamples, request_timeout_ms},
//   build {optimized, description, allow_debug}, host {cpu_model, logical_cores, usable_cores,
//   ram_bytes, gpu, kernel, hostname, load_average_1m}, provenance {corral_version,
//   corral_commit, llama_cpp_pinned_commit, llama_server, llama_server_commit,
//   llama_server_version}, workloads [{name, prompt_file, prompt_chars, max_tokens,
//   concurrency, levels}], suites [{suite, title, status, reason, targets [...], checks
//   [...], daemon_idle_rss_bytes, cells [...], comparisons [...], requests [...]}]; suite C adds
//   hop_summary [...], load {...}|null, nginx {...}, footprint {...}, cold_start {...} (each with
//   its status and a "method" text saying how it was measured).
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/suites.h"
#include "bench/system.h"
#include "common/status.h"

namespace corral::bench {

inline constexpr int kSchemaVersion = 1;

struct Provenance {
  std::string corral_version;
  std::string corral_commit;         // commit the binary was configured at (build time)
  std::string corral_source_commit;  // HEAD of the source tree at run time, "+dirty" if modified
  std::string llama_cpp_pinned_commit;
  std::string llama_server;          // the binary the bench starts
  std::string llama_server_commit;   // as the binary reports it
  std::string llama_server_version;  // its --version line
};

struct RunInfo {
  std::string created_utc;           // start of the run, 2026-11-24T07:15:00Z
  std::string finished_utc;          // end of the run
  std::vector<std::string> command;  // argv of this corral bench
  RunOptions options;
  bool smoke = false;
  std::string mode;  // "normalized" or "defaults"
  bool allow_debug = false;
};

nlohmann::json ReportJson(const RunInfo& run, const HostInfo& host, const Provenance& provenance,
                          const std::vector<Workload>& workloads, const std::vector<SuiteResult>& suites);

std::string RenderMarkdown(const nlohmann::json& report);

// A grouped bar chart of `metric` (cell median, whisker p10..p90) for every suite cell.
std::string RenderSvgChart(const nlohmann::json& report, const std::string& metric, const std::string& title);

// Writes results.json, report.md, decode_tps.svg and ttft_ms.svg into `dir` (created).
Status WriteReportFiles(const std::string& dir, const nlohmann::json& report);

}  // namespace corral::bench
