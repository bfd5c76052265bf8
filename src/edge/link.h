// The link between the keeper (the daemon: supervisor, router, control plane) and the proxy
// process (the network-facing part that parses every request). Crash isolation: the proxy
// process may die on a hostile request and come back without the llama-server children.
//
// Transport: one AF_UNIX SOCK_SEQPACKET socketpair (message boundaries kept by the kernel,
// each send atomic, so proxy workers send concurrently without a lock). A logical message
// longer than one frame is split: every frame starts with one byte, '+' (more follows) or
// '.' (last frame), then at most kMaxFramePayload bytes.
//
// Up (proxy process -> keeper) is the untrusted direction: the proxy process parses hostile
// input, so the keeper reads only small single-frame text messages with a strict parser
// (ParseUp, fuzzed). The model name is always the last field and may hold any byte but
// control characters.
//   R                          ready: the proxy listens (sent once)
//   E <id> <deadline_ms> <model>   EnsureReady; the answer carries the same id
//   S <host> <port> <model>    OnRequestStart
//   D <host> <port> <model>    OnRequestEnd
//   K <seconds> <model>        SetKeepAlive (negative = forever)
//   F <host> <port> <status> <ttft_us> <tokens> <tok_per_s_milli> <duration_us> <added_us>
//     <draft_tokens> <draft_accepted> <route> <model>
//                              OnRequestFinished: D plus the request's record for the event
//                              feed (numbers, -1 = unknown; route a printable token; never text);
//                              the draft pair is both -1 or 0 <= accepted <= drafted
// Down (keeper -> proxy process) is trusted: JSON objects with a "t" member:
//   options (first, once), routes, models, answer, limits. Bounded all the same.
//
// Thread-safety: free functions are pure; a FrameAssembler belongs to one reader.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proxy/model_provider.h"
#include "proxy/proxy.h"
#include "proxy/routing_table.h"

namespace corral::edge {

inline constexpr size_t kMaxFramePayload = 32U << 10;   // well under the default socket buffer
inline constexpr size_t kMaxUpMessageBytes = 8U << 10;  // one frame; a model name fits easily
inline constexpr size_t kMaxModelNameBytes = 4U << 10;  // longer names are refused up front
inline constexpr size_t kMaxDownMessageBytes = 64U << 20;

// Splits `message` into frames (at least one).
std::vector<std::string> Frame(std::string_view message);

// Joins frames into messages, refusing any message longer than `max_bytes`.
class FrameAssembler {
 public:
  explicit FrameAssembler(size_t max_bytes) : max_bytes_(max_bytes) {}
  // A whole message when `frame` was its last one; nullopt when more frames must follow.
  // kInvalidArgument for a bad frame or an oversized message (the link is then unusable).
  Result<std::optional<std::string>> Add(std::string_view frame);

 private:
  size_t max_bytes_;
  std::string partial_;
};

enum class UpKind { kReady, kEnsure, kStart, kEnd, kKeepAlive, kFinish };

inline constexpr size_t kMaxRouteBytes = 128;

// kFinish: proxy::RequestRecord with owned strings.
struct FinishFields {
  std::string route;  // 1..kMaxRouteBytes printable ASCII, no space; "-" when unknown
  int status = 0;     // 0..999
  int64_t ttft_us = -1, tokens = -1, tok_per_s_milli = -1, duration_us = 0, proxy_added_us = -1;
  int64_t draft_tokens = -1, draft_accepted = -1;  // speculative decoding; both -1 = none
  std::string client;  // the client's IP literal; "" = unknown (on the wire: "@IP" or "@-" after the route)
};
// A route as the link carries it: printable ASCII without spaces, else "-".
std::string CleanRoute(std::string_view route);

struct UpMessage {
  UpKind kind = UpKind::kReady;
  uint64_t id = 0;           // kEnsure
  int64_t value = 0;         // kEnsure: deadline in ms from now (>= 0); kKeepAlive: seconds
  proxy::Endpoint endpoint;  // kStart, kEnd: an IP literal and a port
  std::string model;         // every kind but kReady: non-empty, no control characters
  FinishFields finish;       // kFinish (with endpoint)
};

std::string EncodeUp(const UpMessage& m);
// Strict: exact verbs, decimal numbers in range, an IP literal host, a clean model name.
Result<UpMessage> ParseUp(std::string_view text);

// Down messages.
std::string EncodeOptions(const proxy::ProxyOptions& options);
std::string EncodeRoutes(const proxy::RouteMap& routes);
std::string EncodeModels(const std::vector<proxy::ModelInfo>& models);
std::string EncodeAnswer(uint64_t id, const proxy::EnsureResult& result);
std::string EncodeLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                         std::chrono::milliseconds upstream_timeout);

// One decoded down message; which members are set depends on `type`.
struct DownMessage {
  enum class Type { kOptions, kRoutes, kModels, kAnswer, kLimits } type = Type::kOptions;
  proxy::ProxyOptions options;                    // kOptions (listen_fd not included)
  proxy::RouteMap routes;                         // kRoutes
  std::vector<proxy::ModelInfo> models;           // kModels
  uint64_t id = 0;                                // kAnswer
  proxy::EnsureResult answer;                     // kAnswer
  uint64_t max_body_bytes = 0;                    // kLimits
  std::chrono::milliseconds client_timeout{0};    // kLimits
  std::chrono::milliseconds upstream_timeout{0};  // kLimits
};
Result<DownMessage> ParseDown(std::string_view text);

// True when `name` is a model name the link carries: 1..kMaxModelNameBytes bytes, no
// control characters (C0, DEL).
bool IsCleanModelName(std::string_view name);

}  // namespace corral::edge
