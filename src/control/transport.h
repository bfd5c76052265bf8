// The control plane's transport: HTTP/1.1 + JSON over a Unix socket (server and client).
//
// Security: the socket lives in a directory that must be owned by the current user with
// mode 0700 (created so, refused otherwise), the socket itself is 0600, and the server
// also checks each peer's uid with SO_PEERCRED. No TCP listener exists for this API.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "control/api.h"
#include "control/feed.h"

namespace corral::control {

// Creates `dir` with mode 0700 when missing; refuses a directory owned by someone else or
// open to group/others (a socket there could be swapped by another user).
Status PrepareSocketDir(const std::string& dir);

// Whether this user may connect to the socket at `path`: kFailedPrecondition ("permission
// denied ... another user") when the socket or its directory is there but refuses us
// (EACCES/EPERM), Ok otherwise, also when nothing listens (that is "no daemon", which a
// connect then reports). One connect(2), no request.
Status CheckSocketAccess(const std::string& path);

struct Request {
  std::string method;  // "GET", "POST"
  Target target;
  std::string body;
};
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's special members may throw.
struct Response {
  int status = 200;
  nlohmann::json body;
  // A streaming answer (GET /v1/events) when set: the server sends a 200 head with
  // application/x-ndjson and no length, then calls `stream` on the connection's thread with
  // a blocking `write` (false once the peer is gone or stayed unwritable for
  // kStreamSendTimeout); the connection closes when `stream` returns. `body` is unused.
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
};
inline constexpr std::chrono::seconds kStreamSendTimeout{10};
// Handles one request. Called on the connection's thread; must not throw.
using Handler = std::function<Response(const Request&)>;

// A blocking control-plane server: one acceptor thread, one thread per connection (the
// admin API has a handful of clients; long polls park a thread, which is fine here and
// wrong for the data plane). Thread-safety: Listen/Start/Stop from one owner thread.
// Ownership: owns its sockets and threads; Stop() (or the destructor) joins them all.
class ControlServer {
 public:
  explicit ControlServer(Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `socket_path` (an old socket file there is replaced: the caller holds the daemon
  // lock, so it is stale) with mode 0600.
  Status Listen(const std::string& socket_path);
  void Start();
  // Stops accepting, wakes every connection and joins all threads.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A reply from the daemon: either the JSON body or an API error (then `body` is the error
// reply's JSON, which may carry details beside "error", or null).
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's special members may throw.
struct Reply {
  int http_status = 0;
  nlohmann::json body;
  std::optional<ApiError> error;
};

// A blocking client on one keep-alive connection. Thread-safety: one thread at a time.
class ControlClient {
 public:
  explicit ControlClient(std::string socket_path);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // kUnavailable when no daemon answers on the socket (CLI exit 65).
  Result<Reply> Call(std::string_view method, std::string_view target, const nlohmann::json* body = nullptr,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // True when a daemon answers GET /v1/status.
  bool Ping();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string socket_path_;
};

// The client end of GET /v1/events (control/feed.h): a non-blocking Unix socket the
// caller polls (fd()) together with its other inputs. Thread-safety: one thread.
class FeedConnection {
 public:
  // Connects, sends the request and waits up to `timeout` for the 200 head. kUnavailable
  // when no daemon answers; the daemon's error message when it refuses (too many watchers).
  static Result<std::unique_ptr<FeedConnection>> Open(const std::string& socket_path,
                                                      std::chrono::milliseconds timeout);
  ~FeedConnection();
  FeedConnection(const FeedConnection&) = delete;
  FeedConnection& operator=(const FeedConnection&) = delete;
  int fd() const { return fd_; }
  // Reads what is there without blocking and appends the decoded events. kUnavailable once
  // the daemon closed the stream; kCorrupt / kResourceExhausted for a bad line.
  Status Read(std::vector<FeedEvent>& out);

 private:
  explicit FeedConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
  LineSplitter lines_;
  std::string pending_;  // body bytes that came with the head
};

}  // namespace corral::control
