// The control-plane API: the JSON shapes of requests and answers, and the error codes the
// CLI maps to its exit codes. Management JSON is built and parsed here and in the route
// table (control/routes.h), which answers each route below.
//
// Routes (HTTP/1.1 over the Unix socket RuntimeDir()/corral.sock, version prefix /v1):
//   GET  /v1/status                         daemon, proxy, memory, models
//   GET  /v1/ps                             {"models":[Model...]}
//   POST /v1/models/start                   StartRequest → {"model":Model} (dry_run: {"plan":...})
//   GET  /v1/models/{name}                  {"model":Model}
//   GET  /v1/models/{name}/wait?generation=G&timeout_ms=T   long poll → {"model":Model}
//   POST /v1/models/{name}/stop             {"model":Model}
//   POST /v1/models/stop-all                {"stopped":[name...]}
//   POST /v1/models/{name}/pin|unpin|unload {"model":Model,"pinned":B}
//   GET  /v1/logs?name=N&lines=K            {"name":..,"path":..,"text":..}
//   GET  /v1/logs/follow?name=N&lines=K     NDJSON stream (daemon/log_follow.h)
//   GET  /v1/events                         NDJSON stream: hello, then the feed (control/feed.h)
//   GET  /v1/bench, POST /v1/bench/run, GET /v1/bench/reports/{id}   the Bench page (web.md)
//   POST /v1/reload                         the reload's outcome (400 with it when rejected)
//   POST /v1/catalog/refresh                {"ok":true}; the catalog is rescanned
//   POST /v1/shutdown                       {"ok":true}; the daemon then drains
// Errors: any status >= 400 with {"error":{"code":"<ErrorCode>","message":"..."}}.
//
// Thread-safety: stateless functions over plain values.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "supervisor/supervisor.h"

namespace corral::control {

enum class ErrorCode {
  kBadRequest,      // malformed request, owned flag in raw args, bad name   → exit 64
  kNotRunning,      // no child by that name                                 → exit 66
  kModelReference,  // the model reference matched none or several          → exit 66
  kLaunchFailed,    // spawn failed, load failed, name already live          → exit 67
  kAdmission,       // memory budget                                         → exit 67
  kStopFailed,      // the child would not die                               → exit 68
  kEngineMissing,   // no llama-server                                       → exit 70
  kShuttingDown,    // the daemon is draining                                → exit 65
  kInternal,        //                                                       → exit 71
};
std::string_view to_string(ErrorCode c);
std::optional<ErrorCode> ErrorCodeFromString(std::string_view s);
int HttpStatusFor(ErrorCode c);
// The process exit code the CLI uses for an error code (cli/exit_codes.h numbers).
int ExitCodeFor(ErrorCode c);

// An error answer: {"error":{"code":...,"message":...}}.
nlohmann::json ErrorBody(ErrorCode code, std::string_view message);

// A parsed error answer; nullopt when `body` is not one.
struct ApiError {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};
std::optional<ApiError> ParseError(std::string_view body);

// Bounds for JSON the control plane parses: request bodies, the daemon's answers, the state
// file. Plain value.
struct JsonLimits {
  size_t max_bytes = size_t{1} << 20;
  size_t max_depth = 16;  // arrays and objects nested at most this deep
};
inline constexpr JsonLimits kRequestJsonLimits{size_t{1} << 20, 8};
inline constexpr JsonLimits kReplyJsonLimits{size_t{64} << 20, 64};

// Parses `text` as one JSON value within `limits`. Too large or too deep: kResourceExhausted;
// not JSON: kCorrupt; the message says which. The depth is measured by a flat scan before
// the parser runs, so nothing recursive (parser, destructor, dump) ever meets a deep
// document. Iterative and O(size).
Result<nlohmann::json> ParseJsonBounded(std::string_view text, JsonLimits limits);

struct StartRequest {
  std::string model;  // reference: name, alias, substring or .gguf path
  std::string name;   // "" = derived from the model
  uint32_t ctx = 0;   // 0 = llama-server's default
  int port = 0;       // 0 = any free port
  std::vector<std::string> raw_args;
  std::vector<std::string> env;  // "K=V"; empty = the daemon's environment
  bool force = false;            // skip admission
  bool dry_run = false;          // plan only: argv, env, memory; nothing launched
  bool restart = false;          // restart with backoff if it crashes after being ready
};
// Bounded (kRequestJsonLimits), strict parse of a start request body: known fields with
// their types; model and name without control characters (fuzzed: fuzz_control).
Result<StartRequest> ParseStartRequest(std::string_view body);
nlohmann::json ToJson(const StartRequest& r);

// A request target split into path and query parameters ("%xx" and '+' decoded).
struct Target {
  std::string path;
  std::map<std::string, std::string> query;
};
// Bounded parse (fuzzed: fuzz_control).
Result<Target> ParseTarget(std::string_view target);
// "%2F" encoding for path segments and query values.
std::string UrlEncode(std::string_view s);

// A child as JSON (ps, start, stop, wait answers) and back (CLI side).
nlohmann::json ToJson(const supervisor::ChildInfo& info);

}  // namespace corral::control
