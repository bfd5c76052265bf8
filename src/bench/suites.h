// The three bench suites and the seams where the supervisor and the proxy plug in.
//
//   A  wrapper     a model started by `corral start` vs the same argv started by hand; the
//                  client hits each child directly. Also compares the two children's argv
//                  and environment byte for byte, and reports the daemon's idle RSS.
//   B  cross-tool  any targets named on the command line, plus raw llama-server and
//                  llama-server's router mode that the bench can start itself.
//   S  speculative the same model by raw llama-server without and with a draft model
//                  (issue 17), alternated: decode tok/s, the paired ratio and the draft's
//                  acceptance (llama-server's timings.draft_n / draft_n_accepted).
//   W  swap        the next turn of a long conversation after its model was swapped out and
//                  back (issue 17): Corral with kv_keep on (the KV state restored) vs off vs
//                  a model never unloaded vs llama-server's router mode doing the same swap;
//                  and cold starts, Corral on demand vs router mode autoload. The suite
//                  starts its own isolated daemons and router (suite_w.cc).
//   C  proxy hop   one running llama-server reached directly, through Corral's proxy and
//                  (when installed) through nginx with buffering off, alternated; then the
//                  daemon's footprint (idle keep-alive connections, RSS idle / with them /
//                  peak under N streams) and cold starts (first token after llama-server
//                  itself is ready). The last two need the daemon, not bare URLs.
//
// Suites A and C get their endpoints from a provider function: today the command line
// (--wrapped-url/--manual-url, --direct-url/--proxy-url), later the daemon (the lead wires
// WrapperProvider to `corral start` and HopProvider to the proxy's listen address).
// Thread-safety: each Run* call blocks its thread and owns the servers it starts.
#pragma once

#include <sys/types.h>

#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/runner.h"
#include "bench/stats.h"
#include "bench/types.h"
#include "common/status.h"

namespace corral::bench {

struct Check {
  std::string name;  // "argv identical", "environment identical", "daemon idle RSS"
  bool ok = false;
  std::string detail;
};

// Suite C's third target: nginx as a plain reverse proxy (buffering off) in front of the
// same child. status: "ran", "absent" (no binary; reason = install hint), "failed", "off".
struct NginxReference {
  std::string status;
  std::string reason;
  std::string binary;
  std::string version;       // "1.22.1"
  std::string version_line;  // "nginx version: nginx/1.22.1"
  std::string config;        // the exact nginx.conf it ran with
  std::string error_log;     // the end of nginx's error log after the requests (why a 502 came)
};

// Suite C's footprint of the daemon. Method: open `requested` idle HTTP/1.1 keep-alive
// connections to the proxy (each sends GET /health once, then waits), hold them idle for
// idle_hold_s, read the daemon's VmRSS; with them still held, run `streams` concurrent
// streams through the proxy while sampling VmRSS every few ms (peak); finally check that
// every idle connection is still open and answers one more GET /health.
// status: "ran", "skipped" (reason says why), "failed".
struct Footprint {
  std::string status;
  std::string reason;
  pid_t daemon_pid = -1;
  int requested = 0;                // idle connections asked for
  int opened = 0;                   // opened and answered 200
  int open_at_end = 0;              // not closed by the server after the idle hold and the streams
  int answered_again = 0;           // answered a second GET /health at the end
  std::string connection_error;     // the first connection failure, if any
  double idle_hold_s = 0;           // how long they sat idle before the RSS reading
  uint64_t nofile_soft_before = 0;  // this bench process's RLIMIT_NOFILE soft limit as found
  uint64_t nofile_soft = 0;         // ... after raising it (up to the hard limit)
  uint64_t nofile_hard = 0;
  uint64_t daemon_nofile_soft = 0;  // the daemon's, from /proc/<pid>/limits (0 = unknown)
  std::string nofile_note;          // said when a limit cannot hold the requested count
  uint64_t rss_idle_before = 0;     // VmRSS before any idle connection
  uint64_t rss_with_idle = 0;       // with the idle connections held (= the streams' baseline)
  uint64_t rss_peak_streams = 0;    // highest sample while the streams ran
  uint64_t rss_after_streams = 0;
  int rss_samples = 0;
  int streams = 0;
  int stream_errors = 0;
  std::string stream_error_sample;
  double per_idle_connection_bytes = 0;  // (with_idle - idle_before) / opened
  double per_stream_bytes = 0;           // (peak - with_idle) / streams
};

// One cold start: the model stopped, then one streamed request through the proxy.
// Times on this process's steady clock; NaN when an event was not seen. Differences may be
// negative (the first token can beat the bench's own /health probe on a busy machine).
struct ColdStartRun {
  static constexpr double kNotSeen = std::numeric_limits<double>::quiet_NaN();
  bool ok = false;
  std::string error;
  double send_to_first_token_ms = kNotSeen;       // (a) request written -> first content token
  double send_to_listening_ms = kNotSeen;         // request written -> "listening on" line in the child's log
  double listening_to_health_ms = kNotSeen;       // that line -> first /health 200 from the child, probed directly
  double listening_to_first_token_ms = kNotSeen;  // (b) first token - the listening line
  double health_to_first_token_ms = kNotSeen;     // (b) first token - the first /health 200
  // Splitting (b): llama-server's own prompt time for this request (its `timings`), so
  // (b) minus it is what the daemon and the hop add; and, on the child's own log clock,
  // its listening line -> the line where it started the request's task.
  double server_prompt_ms = kNotSeen;
  double listening_to_first_token_less_prompt_ms = kNotSeen;
  double child_log_listening_to_task_ms = kNotSeen;
};

// status: "ran", "skipped", "failed". Medians over the runs that completed.
struct ColdStart {
  std::string status;
  std::string reason;
  std::string model_ref;  // the `model` sent (the GGUF path, so the daemon must resolve and start it)
  std::string log_path;   // the child's log watched for the listening line
  std::string note;       // said when the cold starts restarted a model the user was running
  int repetitions = 0;
  std::vector<ColdStartRun> runs;
  Summary send_to_first_token_ms, listening_to_first_token_ms, health_to_first_token_ms, listening_to_health_ms;
  Summary listening_to_first_token_less_prompt_ms, child_log_listening_to_task_ms;
};

// In a llama-server log (lines stamped "M.SS.mmm.uuu"), the time from the "listening on
// http://" line to the first "launch_slot_" line after it (the first request's task
// starting), on llama-server's own clock; NaN when either line is missing.
double ChildListeningToFirstTaskMs(const std::string& log_text);

// Suite S's acceptance, per workload, over the measured requests of the draft target.
struct SpecRow {
  std::string workload;
  int requests = 0;        // measured requests of the draft target
  int with_counts = 0;     // ... whose timings carried draft counts
  int64_t drafted = 0;     // sum of timings.draft_n
  int64_t accepted = 0;    // sum of timings.draft_n_accepted
  double acceptance = -1;  // accepted / drafted; -1 when nothing was drafted
};
struct SpecSummary {
  std::string model_path;
  std::string draft_path;
  std::string draft_sha256;
  std::vector<std::string> draft_args;  // exactly what the draft target got beyond the baseline's argv
  std::vector<SpecRow> rows;
};

// Suite W's per-cell rows (the swap's next turn, the cold starts): the client's TTFT and
// llama-server's own timings (medians over the measured requests that have them).
struct SwapRow {
  std::string workload;  // "swap_next_turn" or "cold_start"
  std::string target;    // "warm", "kv-restore", "kv-off", "router", "corral-on-demand", "router-autoload"
  int requests = 0;
  int errors = 0;
  Summary ttft_ms;
  double prompt_n = -1;   // median timings.prompt_n (tokens evaluated); -1 = none reported
  double cache_n = -1;    // median timings.cache_n (tokens taken from the cache)
  double prompt_ms = -1;  // median timings.prompt_ms
};
struct SwapSummary {
  int words = 0;                        // words in the conversation's first turn
  int ctx = 0;                          // -c of every model
  int rounds = 0;                       // swap rounds (ABBA)
  int cold_starts = 0;                  // cold starts per side
  int64_t conversation_tokens = -1;     // prompt tokens of the measured next turn (warm: prompt_n + cache_n)
  uint64_t budget_bytes = 0;            // the daemons' memory budget: room for one model
  uint64_t kv_state_bytes = 0;          // the kv_keep daemon's saved state on disk at the end
  std::vector<std::string> model_argv;  // the argv the kv_keep daemon plans for model A (dry run)
  std::vector<std::string> router_argv;
  std::vector<std::string> models;  // the two GGUF files (as given or synthesised)
  std::string work_dir;             // the suite's private folder (removed at the end)
  std::vector<SwapRow> rows;
};

struct SuiteResult {
  std::string suite;   // "A", "B", "C", "S" or "W"
  std::string title;   // "wrapper", "cross-tool", "proxy hop", "speculative", "swap"
  std::string status;  // "ran", "skipped" or "failed"
  std::string reason;  // why skipped or failed
  std::vector<Target> targets;
  std::vector<RequestRecord> records;
  Aggregate aggregate;
  std::vector<Check> checks;
  std::optional<uint64_t> daemon_idle_rss_bytes;
  // Suite C only.
  std::optional<NginxReference> nginx;
  std::optional<Footprint> footprint;
  std::optional<ColdStart> cold_start;
  // Suite S only.
  std::optional<SpecSummary> spec;
  // Suite W only.
  std::optional<SwapSummary> swap;
};

// Suite A's seam: the child `corral start` launched and the same argv launched by hand.
struct WrapperEndpoints {
  Target wrapped;         // url + pid of the supervised child
  Target manual;          // url + pid of the hand-started child
  pid_t daemon_pid = -1;  // the corral daemon, for its idle RSS; -1 = unknown
};
using WrapperProvider = std::function<Result<WrapperEndpoints>()>;

// Suite C's seam: the same llama-server reached directly and through the proxy. The
// daemon fields are filled when the bench started the child through the daemon; without
// them the footprint and cold-start parts are skipped (bare URLs have no daemon to watch).
struct HopEndpoints {
  Target direct;
  Target proxied;
  pid_t daemon_pid = -1;               // for VmRSS and its RLIMIT_NOFILE
  std::string child_log_path;          // the child's log file (from `corral ps --json`)
  std::string cold_start_model;        // the `model` a cold-start request sends
  std::function<Status()> stop_model;  // stops the child (`corral stop`); empty = no cold start
  bool model_was_running = false;      // running before the bench: the cold starts restart it
  std::string cold_start_skip;         // non-empty: why a cold start cannot be timed here
};

struct SuiteCOptions {
  bool nginx = true;            // add nginx as a third target when found
  std::string nginx_binary;     // "" = search PATH and the usual places
  int idle_connections = 1000;  // 0 = no footprint part
  double idle_hold_s = 5;       // below the proxy's 60 s idle keep-alive timeout
  int footprint_streams = 64;   // concurrent streams for the peak RSS
  int cold_starts = 5;          // 0 = no cold-start part
  // More proxies in front of the same child, alternated with the others (e.g. another
  // build's `corral proxy --upstream`, for a before/after comparison in one run).
  std::vector<Target> extra_proxies;
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

// Suite S: both targets are raw llama-server on `model_path` with the same knobs; the second
// also gets `--spec-type draft-simple --spec-draft-model <draft_path>` and, when draft_max > 0,
// `--spec-draft-n-max <draft_max>` (the pinned llama-server's flags, common/arg.cpp).
struct SuiteSOptions {
  std::string llama_server;
  std::string model_path;
  std::string draft_path;
  int draft_max = 0;                // 0 = llama-server's default
  std::string mode = "normalized";  // "defaults" or "normalized"
  NormalizedKnobs knobs;
};
// The argv a draft target adds (suite S), in order.
std::vector<std::string> DraftArgs(const SuiteSOptions& s);
// Sums the draft target's measured records per workload (report order of first appearance).
std::vector<SpecRow> SummariseSpec(const std::vector<RequestRecord>& records, const std::string& draft_target);

// Suite W: two models, room for one, four ways to come back to a long conversation.
struct SuiteWOptions {
  std::string corral;        // the corral binary the daemons run (this one: /proc/self/exe)
  std::string llama_server;  // the pinned engine: the daemons' children and router mode
  std::string model_a;       // GGUF of the conversation's model; "" = make_model makes it
  std::string model_b;       // GGUF of the model swapped in; "" = make_model makes it
  // Writes a synthetic model to `path` (general.name `name`, `seed`), native context >= ctx.
  std::function<Status(const std::string& path, const std::string& name, uint64_t seed)> make_model;
  int words = 3200;            // words in the first turn (~2.5 tokens a word: ~8k tokens)
  int ctx = 12288;             // -c of every model
  int rounds = 5;              // swap rounds, the four modes alternated ABBA
  int cold_starts = 3;         // cold starts per side (0 = none)
  bool router = true;          // add llama-server's router mode
  double budget_factor = 1.5;  // memory budget = factor x one model's planned reservation
};
// The first turn's text: `words` words, deterministic and varied (words and numbers).
std::string SwapConversation(int words);
// The chat body of one swap request (streamed, ignore_eos, temperature 0): the history as
// one user turn, then, when `next_turn`, a fixed assistant reply and a short follow-up.
std::string SwapBody(const std::string& model, const std::string& history, bool next_turn, int max_tokens,
                     uint64_t seed);
// Per (workload, target) rows of suite W, in first-seen order, from the measured records.
std::vector<SwapRow> SummariseSwap(const std::vector<RequestRecord>& records);

// The knobs given to every target the bench starts in "normalized" mode, as llama-server
// flags; `record` gets them by name for the report.
std::vector<std::string> NormalizedArgs(const NormalizedKnobs& k, std::map<std::string, std::string>& record);

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

// Parses "NAME=URL[,model=ID][,pid=PID][,ca=PEM][,key-env=VAR|key-file=PATH][,vs=NAME]": URL
// http:// or https:// (ca= the CA file to verify against), the API key read from an
// environment variable or a file (never from the command line, which the report records),
// vs= another target this one is also compared against.
Result<Target> ParseTargetSpec(const std::string& spec);

SuiteResult RunSuiteA(const WrapperProvider& provider, const std::vector<Workload>& workloads,
                      const RunOptions& options, const Progress& progress);
SuiteResult RunSuiteB(const SuiteBOptions& b, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress);
SuiteResult RunSuiteS(const SuiteSOptions& s, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress);
SuiteResult RunSuiteW(const SuiteWOptions& w, const RunOptions& options, const Progress& progress);
SuiteResult RunSuiteC(const HopProvider& provider, const SuiteCOptions& c, const std::vector<Workload>& workloads,
                      const RunOptions& options, const Progress& progress);

// Suite C's parts, run after the alternated requests (the cold start last: it replaces the
// child the direct target points at).
Footprint MeasureFootprint(const HopEndpoints& hop, const SuiteCOptions& c, const Workload& workload,
                           const RunOptions& options, const Progress& progress);
ColdStart MeasureColdStart(const HopEndpoints& hop, const SuiteCOptions& c, const Workload& workload,
                           const RunOptions& options, const Progress& progress);

// A result for a suite that could not run, with the reason shown in the report.
SuiteResult SkippedSuite(const std::string& suite, const std::string& reason);

}  // namespace corral::bench
