// Request classification for the proxy: which route a request takes, which API's error
// shape it speaks, and the one field the proxy reads from a body: the top-level "model".
//
// Pure functions over bytes; no I/O. Thread-safety: stateless, safe from any thread.
// Fuzzed by tests/fuzz (fuzz_proxy_request).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral::proxy {

// Whose error shape a route answers in.
enum class Api { kOpenAI, kAnthropic, kOllama, kNative };

enum class RouteKind {
  kForward,         // forwarded byte for byte to the model's llama-server
  kHealth,          // GET /health
  kMetrics,         // GET /metrics
  kModels,          // GET /v1/models
  kModel,           // GET /v1/models/{id} (the id percent-decoded: ModelIdFromTarget)
  kOllamaRoot,      // GET/HEAD /
  kOllamaVersion,   // GET /api/version
  kOllamaTags,      // GET /api/tags
  kOllamaPs,        // GET /api/ps
  kOllamaShow,      // POST /api/show
  kOllamaChat,      // POST /api/chat      (translated)
  kOllamaGenerate,  // POST /api/generate  (translated)
  kOllamaEmbed,     // POST /api/embed, /api/embeddings (translated)
  kOllamaPull,      // POST /api/pull (ollama_pull.h)
  kRouterModels,    // GET /models: llama-server router mode's list (router_mode.h)
  kRouterLoad,      // POST /models/load
  kRouterUnload,    // POST /models/unload
  kRouterSse,       // GET /models/sse: status changes as server-sent events (router_mode.h)
  kRouterTools,     // GET/POST /tools: 403, as llama-server started without --tools
  kStreamsLookup,   // POST /v1/streams/lookup: [] (no resumable streams are kept)
  kUi,              // /ui and /ui/... : the web dashboard (proxy/ui.h)
  kLlamaUi,         // a file of the stock llama.cpp web UI under /llama/ (llama_ui.h; set by the
                    // proxy when it serves one, never by ClassifyRoute)
  kNotFound,        // no such route
  kBadMethod,       // the path exists, the method does not
};
std::string_view to_string(RouteKind kind);

// Where a forwarded route finds its model.
enum class ModelSource { kBody, kQuery, kBodyOrQuery };

struct Route {
  RouteKind kind = RouteKind::kNotFound;
  Api api = Api::kOpenAI;
  ModelSource model_source = ModelSource::kBody;
  // An inference route: replaying it on a fresh upstream connection has no side effect
  // upstream (used for the one stale-connection retry), and its response carries `timings`.
  bool replay_safe = false;
  bool inference = false;
};

// Classifies by method ("GET", "POST", ...) and request target (path + query).
Route ClassifyRoute(std::string_view method, std::string_view target);

// The value of query parameter `key` in `target` ("/props?model=a%20b" -> "a b").
// Empty when absent. Percent-decoding; '+' is a space.
std::string QueryParam(std::string_view target, std::string_view key);

// The {id} of GET /v1/models/{id}, percent-decoded ("/v1/models/hf.co%2Fa%2Fb:Q4" and
// "/v1/models/hf.co/a/b:Q4" both give "hf.co/a/b:Q4"); the query is ignored.
std::string ModelIdFromTarget(std::string_view target);

enum class ModelFieldStatus { kFound, kMissing, kNotString, kBadJson };
struct ModelField {
  ModelFieldStatus status = ModelFieldStatus::kMissing;
  std::string value;  // kFound: the decoded string
};

// Reads the top-level "model" member of a JSON object without building a document.
// Measured (bench/bench_proxy.cc, docs/proxy.md): simdjson on-demand is ~2x faster than
// the hand-written scanner when "model" comes after the messages, but its parser needs
// ~5 bytes of index per input byte; so bodies up to kSimdjsonMaxBytes go through simdjson
// (a per-thread parser and padded buffer, no allocation per request) and larger ones
// (vision payloads) through the scanner, which allocates nothing and is within ~20 % there.
// Only the bytes up to the model's value must be valid for the scanner; llama-server
// validates the rest. Duplicate "model" keys: the first wins.
inline constexpr size_t kSimdjsonMaxBytes = 64U << 10;
ModelField ExtractModelField(std::string_view json);

// The hand-written scanner alone: a single forward pass that skips other members' values
// (strings via memchr, containers by depth counting, no recursion) and stops at the first
// top-level "model". Keys with escapes are decoded before comparing.
ModelField ScanModelField(std::string_view json);

}  // namespace corral::proxy
