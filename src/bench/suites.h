// The three bench suites and the seams where the supervisor and the proxy plug in.
//
//   A  wrapper     a model started by `corral start` vs the same argv started by hand; the
//                  client hits each child directly. Also compares the two children's argv
//                  and environment byte for byte, and reports the daemon's idle RSS.
//   B  cross-tool  any targets named on the command line, plus raw llama-server and
//                  llama-server's router mode that the bench can start itself.
//   C  proxy hop   one running llama-server reached directly and through Corral's proxy.
//
// Suites A and C get their endpoints from a provider function: today the command line
// (--wrapped-url/--manual-url, --direct-url/--proxy-url), later the daemon (the lead wires
// WrapperProvider to `corral start` and HopProvider to the proxy's listen address).
// Thread-safety: each Run* call blocks its thread and owns the servers it starts.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/runner.h"
#include "bench/types.h"
#include "common/status.h"

namespace corral::bench {

struct Check {
  std::string name;  // "argv identical", "environment identical", "daemon idle RSS"
  bool ok = false;
  std::string detail;
};

struct SuiteResult {
  std::string suite;   // "A", "B" or "C"
  std::string title;   // "wrapper", "cross-tool", "proxy hop"
  std::string status;  // "ran", "skipped" or "failed"
  std::string reason;  // why skipped or failed
  std::vector<Target> targets;
  std::vector<RequestRecord> records;
  Aggregate aggregate;
  std::vector<Check> checks;
  std::optional<uint64_t> daemon_idle_rss_bytes;
};

// Suite A's seam: the child `corral start` launched and the same argv launched by hand.
struct WrapperEndpoints {
  Target wrapped;         // url + pid of the supervised child
  Target manual;          // url + pid of the hand-started child
  pid_t daemon_pid = -1;  // the corral daemon, for its idle RSS; -1 = unknown
};
using WrapperProvider = std::function<Result<WrapperEndpoints>()>;

// Suite C's seam: the same llama-server reached directly and through the proxy.
struct HopEndpoints {
  Target direct;
  Target proxied;
};
using HopProvider = std::function<Result<HopEndpoints>()>;

// Knobs given to every target the bench starts in "normalized" mode.
struct NormalizedKnobs {
  int ctx = 9216;  // room for rag_prefill's ~8k-token prompt (the KV cache is unified)
  int batch = 2048;
  int ubatch = 512;
  std::string kv_type = "f16";
  int threads = 0;  // 0 = the usable cores
  int gpu_layers = 0;
  int parallel = 4;
};

struct SuiteBOptions {
  std::vector<Target> targets;      // from --target, detected before running
  std::string llama_server;         // binary for the targets the bench starts
  std::string model_path;           // GGUF the bench-started targets serve
  bool start_raw = true;            // start "llama-server" (raw, single model)
  bool start_router = true;         // start "router" (llama-server --models-dir)
  std::string mode = "normalized";  // "defaults" or "normalized"
  NormalizedKnobs knobs;
};

// Asks a running server what it is (llama-server, router, Ollama, other OpenAI-compatible),
// fills kind, version, model (when empty), model_path and model_sha256 where it says, and
// argv from /proc when pid is set.
void DetectTarget(Target& target);

// Parses "NAME=URL[,model=ID][,pid=PID]".
Result<Target> ParseTargetSpec(const std::string& spec);

SuiteResult RunSuiteA(const WrapperProvider& provider, const std::vector<Workload>& workloads,
                      const RunOptions& options, const Progress& progress);
SuiteResult RunSuiteB(const SuiteBOptions& b, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress);
SuiteResult RunSuiteC(const HopProvider& provider, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress);

// A result for a suite that could not run, with the reason shown in the report.
SuiteResult SkippedSuite(const std::string& suite, const std::string& reason);

}  // namespace corral::bench
