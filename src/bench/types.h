// The plain data the bench passes between its parts: targets, workloads, per-request records.
// Thread-safety: plain values. Ownership: values, copied freely.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace corral::bench {

// One server under test, reached over HTTP.
struct Target {
  std::string name;                          // label in tables ("llama-server", "router", "corral", ...)
  std::string url;                           // base URL, "http://127.0.0.1:8080"
  std::string model;                         // the `model` field sent; "" = none sent
  std::string kind;                          // detected or given: "llama-server", "llama-server-router", "openai", ...
  std::string version;                       // what the tool reports about itself, when it does
  std::string mode;                          // "defaults" or "normalized" (or "external" for a server we did not start)
  pid_t pid = -1;                            // the serving process, when known
  std::vector<std::string> argv;             // exact argv from /proc/<pid>/cmdline, when known
  pid_t child_pid = -1;                      // router mode: the model's child llama-server
  std::vector<std::string> child_argv;       // its exact argv
  std::string model_path;                    // the GGUF file the tool serves, when it says
  std::string model_sha256;                  // SHA-256 of model_path, when readable
  std::map<std::string, std::string> knobs;  // normalized settings applied (ctx, batch, ...)
  std::vector<std::string> unfair_knobs;     // settings this target could not be given
  // TLS and API keys (issue 13): the CA file an https:// URL is verified against ("" = the
  // system's roots), and the key sent as `Authorization: Bearer` ("" = none). The key is a
  // secret: reports say only where it came from (api_key_source, "env CORRAL_BENCH_KEY").
  std::string ca_file;
  std::string api_key;
  std::string api_key_source;
  // Besides the first target, also compare this one against the target named here (suite C:
  // the TLS proxy against the plain proxy, not only against direct llama-server).
  std::string compare_to;
};

// One named request shape.
struct Workload {
  std::string name;         // "chat_turn", "rag_prefill", "agent_decode", "parallel_4", "burst"
  std::string prompt_file;  // path under bench/workloads/ it was read from
  std::string prompt;       // the user message text
  int max_tokens = 64;      // tokens to decode (ignore_eos makes every run decode exactly this)
  int concurrency = 1;      // streams sent at once per run
  std::vector<int> levels;  // burst only: the concurrency levels, each its own cell
};

// What the client measured for one streamed request. Times in milliseconds from the
// steady clock; -1 when the event did not happen.
struct RequestRecord {
  std::string target;
  std::string workload;  // cell label: "chat_turn", or "burst@8"
  int run = 0;           // run index; warm-up runs are negative
  int stream = 0;        // index of the stream within a concurrent run
  int concurrency = 1;
  bool warmup = false;
  bool ok = false;
  std::string error;  // why it failed, when !ok
  int http_status = 0;

  double connect_ms = -1;    // TCP connect, plus the TLS handshake over TLS (not part of TTFT)
  double handshake_ms = -1;  // TLS handshake alone; -1 over plain HTTP
  bool tls_resumed = false;  // TLS: resumed with the previous connection's session ticket
  double ttft_ms = -1;       // request written → first content event
  double e2e_ms = -1;        // request written → end of response
  double decode_ms = -1;     // first → last content event
  double decode_tps = -1;    // (completion_tokens - 1) / decode time
  double prompt_tps = -1;    // prompt_tokens / TTFT
  double itl_p50_ms = -1;    // inter-token (content event) gaps of this request
  double itl_p99_ms = -1;
  int64_t prompt_tokens = -1;      // from the final usage
  int64_t completion_tokens = -1;  // from the final usage
  int content_events = 0;
  int64_t response_bytes = 0;

  bool has_server_timings = false;  // llama-server's own `timings`
  double server_prompt_n = 0, server_prompt_ms = 0, server_predicted_n = 0, server_predicted_ms = 0;
  int64_t server_draft_n = -1, server_draft_accepted = -1;  // speculative decoding; -1 = none
  int64_t server_cache_n = -1;  // timings.cache_n: prompt tokens served from the cache; -1 = none
};

}  // namespace corral::bench
