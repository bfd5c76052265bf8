// The bench load client: streams chat completions over HTTP/1.1 + SSE and timestamps every
// read with the steady clock.
//
// Plain HTTP or TLS (https://, OpenSSL 3 through Boost.Asio's ssl::stream): the exchange is
// one template over the stream type, so the plain path runs exactly the code it ran before
// TLS existed (no per-byte indirection). Over TLS the server's chain is verified against
// the endpoint's CA file (or the system's roots) and its name or address against the
// certificate; the session (ticket) of each finished stream is kept per CA file and
// host:port, so the next connection to that server resumes instead of doing a full
// handshake - as a real client reconnecting would. An API key goes as `Authorization: Bearer`.
//
// Threading model: RunStreams drives all of its streams on the calling thread with one
// Boost.Asio io_context (C++20 coroutines, non-blocking sockets); nothing else runs on that
// context, so the timestamps are taken on the thread that reads the socket, right after the
// read completes. Each stream opens its own TCP connection (connect time is recorded apart
// from TTFT and excluded from it). Boost exceptions are caught here, at the module edge.
// Thread-safety: functions are thread-safe; they share no state.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "bench/types.h"
#include "common/status.h"

namespace corral::bench {

// http://HOST[:PORT][/PREFIX] or https://HOST[:PORT][/PREFIX] (default ports 80 and 443).
struct Endpoint {
  std::string host;
  std::string port = "80";
  std::string prefix;   // path prefix without the trailing '/', usually ""
  bool tls = false;     // https://
  std::string ca_file;  // TLS: PEM file of the CA(s) to verify against; "" = the system's roots
  std::string api_key;  // sent as `Authorization: Bearer` when set; a secret: never logged
};
Result<Endpoint> ParseHttpUrl(std::string_view url);
// A target's URL with its CA file and API key.
Result<Endpoint> EndpointOf(const Target& target);

// The timestamps and facts one stream produced, before they are turned into a record.
struct StreamTrace {
  int http_status = 0;
  std::string error;               // transport, HTTP or server error; "" when none
  bool saw_done = false;           // "[DONE]" or a finish_reason arrived
  double connect_ms = -1;          // connect duration (TCP, plus the TLS handshake over TLS)
  double handshake_ms = -1;        // TLS: the handshake alone; -1 over plain HTTP
  bool tls_resumed = false;        // TLS: the server accepted the previous session's ticket
  double end_ms = -1;              // end of the response, from the send
  std::vector<double> content_ms;  // arrival of each content event, from the send
  int64_t prompt_tokens = -1, completion_tokens = -1;
  bool has_timings = false;
  double prompt_n = 0, prompt_ms = 0, predicted_n = 0, predicted_ms = 0;
  int64_t draft_n = -1, draft_accepted = -1;  // speculative decoding; -1 = none
  int64_t cache_n = -1;                       // prompt tokens served from the cache; -1 = none
  int64_t response_bytes = 0;
  int malformed_events = 0;
  // When the request was written (the origin of every *_ms above), for lining a stream up
  // with events seen elsewhere (suite C's cold start). Epoch value when never sent.
  std::chrono::steady_clock::time_point sent_at{};
};

// Fills the measured fields of `rec` from a trace; `expected_tokens` > 0 makes a different
// completion count an error (ignore_eos must make every run decode the same count).
void FinishRecord(const StreamTrace& trace, int expected_tokens, RequestRecord& rec);

// Feeds one SSE data payload into a trace, stamped `at_ms` after the send.
void ApplyEventData(std::string_view data, double at_ms, StreamTrace& trace);

struct StreamRequest {
  std::string path;  // "/v1/chat/completions", joined to the endpoint's prefix
  std::string body;  // JSON
};

// Forgets the TLS sessions kept for resumption (the next connections do full handshakes).
void ForgetTlsSessions();

// Sends every request at once (one connection each) and returns one trace per request, in
// order. Each stream fails on its own once `timeout` passes from the start.
std::vector<StreamTrace> RunStreams(const Endpoint& endpoint, const std::vector<StreamRequest>& requests,
                                    std::chrono::milliseconds timeout);

struct HttpReply {
  int status = 0;
  std::string body;  // at most 4 MiB
};
// One blocking request (GET when body is empty, else POST JSON), for detection and probes.
Result<HttpReply> HttpRequest(const Endpoint& endpoint, std::string_view path, std::string_view body,
                              std::chrono::milliseconds timeout);

// A set of idle HTTP/1.1 keep-alive connections (suite C's footprint): each is opened,
// sends one cheap GET, reads the answer and then sits idle while the server holds it.
// Blocking sockets on the calling thread; one owner thread. Closed on destruction.
class IdleConnections {
 public:
  IdleConnections() = default;
  ~IdleConnections();
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;

  // Opens up to `count` connections to `endpoint`, each answering GET `path` with 200;
  // returns how many are held. Stops at the first failure and keeps the error.
  int Open(const Endpoint& endpoint, const std::string& path, int count, std::chrono::milliseconds timeout);
  // How many held connections the server has not closed (no EOF, no error pending).
  int CountOpen() const;
  // Sends GET `path` once more on every held connection; returns how many answered 200.
  int RequestAgain(const std::string& path, std::chrono::milliseconds timeout);
  void CloseAll();
  int held() const { return static_cast<int>(fds_.size()); }
  const std::string& error() const { return error_; }

 private:
  Endpoint endpoint_;
  std::vector<int> fds_;
  std::string error_;
};

}  // namespace corral::bench
