// The seam between the proxy (data plane) and whoever owns llama-server children.
//
// The proxy never sees supervisor internals. It sees two things:
//   1. a RoutingTable (routing_table.h): an immutable snapshot of "model name -> upstream
//      endpoint" for models that are ready now, read without a lock on every request;
//   2. a ModelProvider (this file): the slow path. Listing models, starting a model on
//      demand, in-flight accounting for eviction and LRU, and unloading.
//
// The daemon implements ModelProvider over the supervisor; StaticProvider
// (static_provider.h) is a fixed map for tests and `corral proxy --upstream`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace corral::proxy {

// Where a ready model answers: an IP literal (v4 or v6) and a TCP port. Plain value.
struct Endpoint {
  std::string host;  // "127.0.0.1"; an IP literal, never a name (no resolver on the hot path)
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  std::string ToString() const;  // "127.0.0.1:8080" / "[::1]:8080"
};

// The lifecycle state a model is reported in (/v1/models, /api/ps).
enum class ModelState { kStopped, kStarting, kLoading, kReady, kStopping, kFailed };
std::string_view to_string(ModelState state);

// One row of the model list. Plain value.
struct ModelInfo {
  std::string name;  // the name clients use in "model"
  ModelState state = ModelState::kStopped;
  uint32_t context = 0;                                // the running context size (n_ctx); 0 = unknown / not running
  uint64_t size_bytes = 0;                             // file size (Ollama /api/tags "size"); 0 = unknown
  uint64_t memory_bytes = 0;                           // resident estimate while running (Ollama /api/ps); 0 = unknown
  uint64_t vram_bytes = 0;                             // of which in GPU memory (Ollama size_vram); 0 = none / unknown
  std::string family;                                  // "llama"; may be empty
  std::string quantization;                            // "Q8_0"; may be empty
  int64_t modified_unix_s = 0;                         // file mtime (Ollama /api/tags "modified_at"); 0 = unknown
  std::chrono::system_clock::time_point expires_at{};  // idle unload time while running; {} = none
  // The other names that reach this model (issue 14; the rules of catalog/names.h).
  std::vector<std::string> aliases;  // from the config
  std::string stem;                  // the file stem ("bar-tiny"); may be empty
  std::string origin;                // "llama3.2:3b", "owner/repo"; may be empty
  // Header facts for Ollama's /api/show.
  uint64_t n_params = 0;
  uint32_t context_length = 0;            // trained context; 0 = unknown
  std::vector<std::string> capabilities;  // "completion", "tools", "thinking", "vision", "embedding"; empty = unknown
};

// The model `ref` names in `models` by the catalog's name rules (catalog/names.h: canonical
// name, alias, stem, owner/repo:QUANT, hf.co/..., :latest, unique substring), never a path;
// nullptr when none or several (then `why`, if given, says which). For the proxy's own
// answers (/api/show, /v1/models/{id}).
const ModelInfo* FindModel(std::string_view ref, const std::vector<ModelInfo>& models, std::string* why = nullptr);
// Every name a client may send for `m`, canonical first (/v1/models "names", /api/tags).
std::vector<std::string> NamesOf(const ModelInfo& m);
// One finished request, for the daemon's event feed (control/feed.h): what happened, never
// prompt or answer text. Plain value; the views point into the proxy's own buffers and are
// valid only during the OnRequestFinished call.
struct RequestRecord {
  std::string_view route;        // the request path, e.g. "/v1/chat/completions"
  int status = 0;                // HTTP status sent to the client; 0 = the client left first
  int64_t ttft_us = -1;          // upstream timings.prompt_ms (time to first token); -1 = unknown
  int64_t tokens = -1;           // upstream timings.predicted_n; -1 = unknown
  int64_t tok_per_s_milli = -1;  // upstream timings.predicted_per_second x 1000; -1 = unknown
  int64_t duration_us = 0;       // request fully read -> response ended
  int64_t proxy_added_us = -1;   // request fully read -> written upstream; -1 = never sent
  int64_t draft_tokens = -1;     // upstream timings.draft_n (speculative decoding); -1 = none
  int64_t draft_accepted = -1;   // upstream timings.draft_n_accepted; -1 = none
  std::string_view client;       // the client's IP address (the dashboard's activity rows); "" = unknown
};

// Why EnsureReady could not produce an endpoint.
enum class EnsureErrorCode {
  kNotFound,     // no model has that name; `close_matches` may name candidates   -> 404
  kStartFailed,  // the model exists but could not be started; `message` says why -> 503
  kQueueFull,    // too many requests are already waiting for starts              -> 429
  kTimeout,      // the deadline passed before the model became ready             -> 503
  kUnavailable,  // shutting down, or admission refused (memory budget, pinned)  -> 503
};
std::string_view to_string(EnsureErrorCode code);

struct EnsureError {
  EnsureErrorCode code = EnsureErrorCode::kNotFound;
  std::string message;                     // for humans; goes into the API error body
  std::vector<std::string> close_matches;  // kNotFound: names close to the requested one
  int retry_after_s = 0;                   // kQueueFull/kTimeout/kUnavailable: Retry-After; 0 = omit
};

// The outcome of EnsureReady: an endpoint to forward to, or an error.
using EnsureResult = std::variant<Endpoint, EnsureError>;

// The slow path of routing. Implemented by the daemon over the supervisor.
//
// Thread-safety: every method may be called concurrently from any proxy worker thread and
// must not block (no waiting on a child, no disk I/O on the caller's thread; a short
// mutex is fine). Ownership: the owner (daemon) outlives the Proxy that holds a reference.
class ModelProvider {
 public:
  virtual ~ModelProvider() = default;

  // Every model clients may name, with its state. For /v1/models, /api/tags, /api/ps and
  // close-match suggestions. Called per listing request, not per inference request.
  virtual std::vector<ModelInfo> ListModels() const = 0;

  // Asks for `model` to be ready by `deadline` and calls `done` exactly once with its
  // endpoint or an error. The proxy calls this when the RoutingTable has no entry for the
  // model (or its entry failed to connect). The implementation:
  //   - answers at once (possibly inline, on the caller's thread) when the model is ready;
  //   - otherwise starts it: memory admission, evicting idle models least-recently-used
  //     first and never one with requests in flight (OnRequestStart/End) nor a pinned one;
  //   - shares one start among concurrent callers for the same model (one child, many
  //     waiters) and answers every waiter with the same failure reason if the start fails;
  //   - bounds the number of waiters (kQueueFull with retry_after_s) and honours
  //     `deadline` (kTimeout), never leaving `done` uncalled;
  //   - signals readiness without polling delay (the first token of a cold request should
  //     come <= 30 ms after llama-server itself is ready).
  // `done` may be called from any thread; the proxy posts back to its own worker.
  // Shutdown: Proxy::Stop() waits until every outstanding `done` has been called, so the
  // daemon must answer pending waiters (kUnavailable) when it shuts down, before or while
  // it stops the proxy; `done` must never be called after Stop() returned.
  virtual void EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                           std::function<void(EnsureResult)> done) = 0;

  // In-flight accounting: the proxy calls OnRequestStart once a request is routed to
  // `model` at `upstream` and OnRequestEnd (same model, same upstream: the accounting follows
  // the child that really serves the request, even if routes change meanwhile) exactly once
  // when its response ended (completed, failed, or
  // the client left). A model with requests in flight must never be evicted; the end
  // time feeds least-recently-used order and TTL expiry. Must be cheap (per request).
  virtual void OnRequestStart(const std::string& model, const Endpoint& upstream) = 0;
  virtual void OnRequestEnd(const std::string& model, const Endpoint& upstream) = 0;
  // The proxy ends a request with this call instead of OnRequestEnd: the same accounting,
  // plus what the request did (the event feed). The default is OnRequestEnd alone.
  virtual void OnRequestFinished(const std::string& model, const Endpoint& upstream, const RequestRecord& record) {
    (void)record;
    OnRequestEnd(model, upstream);
  }

  // Ollama "keep_alive": 0 unloads the model once its in-flight requests end; a positive
  // duration sets its idle TTL from now; negative = keep loaded until told otherwise.
  // Returns false when the model is unknown. Non-blocking: the stop happens in the background.
  virtual bool SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) = 0;

  // Unloads `model` now (Ollama keep_alive 0 with no request). Same as SetKeepAlive(0s).
  bool Unload(const std::string& model) { return SetKeepAlive(model, std::chrono::seconds(0)); }
};

// Up to `limit` names from `candidates` close to `name` (case-insensitive substring or
// small edit distance), best first. Used for "unknown model" 404s. Pure function.
std::vector<std::string> CloseMatches(std::string_view name, const std::vector<std::string>& candidates,
                                      size_t limit = 3);

}  // namespace corral::proxy
