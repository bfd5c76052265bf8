// The Ollama API on top of llama-server, and the proxy's own listing answers.
//
// /api/chat and /api/generate become llama-server's OpenAI /v1/chat/completions
// (/v1/completions for generate with raw=true); /api/embed and /api/embeddings become
// /v1/embeddings. Responses come back in Ollama's shape: NDJSON lines while streaming,
// Ollama's field names, durations in nanoseconds from llama-server's `timings`.
// This path parses JSON (it must translate); the pass-through path never does.
//
// Thread-safety: free functions are pure; an OllamaResponseTranslator belongs to one
// connection (one thread).
#pragma once

#include <chrono>
#include <memory>

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proxy/model_provider.h"
#include "proxy/request_routing.h"
#include "proxy/translation.h"

namespace corral::proxy {

// GET /v1/models: {"object":"list","data":[{"id","object":"model","owned_by":"corral",
// "created", "meta":{"state","n_ctx"}}]}
// Each entry also says "names": the other names a request may use for it (issue 14).
std::string OpenAIModelList(const std::vector<ModelInfo>& models);
// GET /v1/models/{id}: one entry of the list.
std::string OpenAIModel(const ModelInfo& model);
nlohmann::json OpenAIModelJson(const ModelInfo& model);

// The Ollama API version Corral answers on /api/version: the Ollama release whose API the
// proxy implements for clients that gate on it (Codex `--oss` needs >= 0.13.4 to use
// /v1/responses, which Corral forwards to llama-server). Corral's own version goes in the
// `x-corral-version` response field.
inline constexpr std::string_view kOllamaApiVersion = "0.13.5";
std::string OllamaVersion(const std::string& version);
std::string OllamaTags(const std::vector<ModelInfo>& models);
std::string OllamaPs(const std::vector<ModelInfo>& models);  // running models only
std::string OllamaShow(const ModelInfo& model);
// The "model" (or legacy "name") of an Ollama request body; empty when absent or bad JSON.
std::string OllamaRequestModel(std::string_view body);

// Parses an Ollama duration: a number of seconds, or text like "5m", "1h30m", "10s",
// "0", "-1" (negative = forever).
Result<std::chrono::seconds> ParseOllamaDuration(std::string_view text);

// What an Ollama inference request becomes upstream.
struct OllamaPlan {
  std::string model;
  bool load_only = false;  // no prompt/messages/input: just load (or unload) the model
  bool stream = true;
  std::optional<std::chrono::seconds> keep_alive;
  std::string upstream_target;  // "/v1/chat/completions"
  std::string upstream_body;    // OpenAI-shaped JSON
};
// Bounds of the translation (issue 11): what it parses and what it builds. The proxy
// refuses too-deep bodies before calling it; the translation checks again on its own
// (it is fuzzed alone) and bounds what the parsed document and the built body may cost.
struct OllamaLimits {
  size_t max_depth = 128;  // levels of arrays/objects (json_guard.h, option max_json_depth)
  // Values in the request (containers + separators): the parsed document costs ~50-100
  // bytes per value, so this bounds it to ~100 MiB whatever the body's size.
  uint64_t max_values = uint64_t{1} << 20;
  uint64_t max_upstream_bytes = 32ULL << 20;  // the translated body (images grow by a data: prefix)
};
// Errors (InvalidArgument, answered 400): not a JSON object, too deep, too many values,
// translated body too large, bad field types.
Result<OllamaPlan> PlanOllamaRequest(RouteKind kind, std::string_view body, const OllamaLimits& limits = {});

// The answer to a load-only request.
std::string OllamaLoadAnswer(RouteKind kind, const std::string& model, bool unloaded);

// Turns llama-server's OpenAI-shaped response (SSE when streaming, one JSON otherwise)
// into Ollama's. Feed() takes de-chunked upstream body bytes as they arrive and returns
// NDJSON to send now (streaming); Finish() returns what is left (the final "done" line,
// or the whole body when not streaming). Bounded: one SSE line <= kMaxSseLineBytes, a
// non-streaming body <= kMaxBuffered (beyond either: an error line, nothing else), and
// events nested deeper than kMaxEventDepth are dropped unparsed.
class OllamaResponseTranslator {
 public:
  OllamaResponseTranslator(RouteKind kind, std::string model, bool stream);
  void SetUpstreamStatus(int status) { upstream_status_ = status; }
  bool streaming() const { return stream_; }
  int final_status() const { return upstream_status_; }
  std::string Feed(std::string_view bytes);
  std::string Finish();

 private:
  std::string TranslateEvent(std::string_view json);
  std::string FinalLine();

  static constexpr size_t kMaxBuffered = 64U << 20;     // a non-streaming body
  static constexpr size_t kMaxSseLineBytes = 8U << 20;  // one SSE line while streaming
  // llama-server's events nest a handful of levels; anything deeper is not parsed.
  static constexpr size_t kMaxEventDepth = 128;

  RouteKind kind_;
  std::string model_;
  bool stream_;
  int upstream_status_ = 200;
  std::string buffer_;  // partial SSE line, or the whole non-streaming body
  bool done_sent_ = false;
  bool overflow_ = false;
  std::string done_reason_ = "stop";
  double prompt_n_ = 0, prompt_ms_ = 0, predicted_n_ = 0, predicted_ms_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// The Ollama answer behind the proxy's translation hook (translation.h): an
// OllamaResponseTranslator plus the client's head and framing (translation.cc).
std::unique_ptr<ResponseTranslation> NewOllamaTranslation(RouteKind kind, std::string model, bool stream);

}  // namespace corral::proxy
