// The client end of the event feed (FeedConnection in transport.h): plain POSIX, so the
// caller can poll its fd beside a terminal.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/transport.h"

namespace corral::control {
namespace {

constexpr size_t kMaxHeadBytes = 16 * 1024;

}  // namespace

Result<std::unique_ptr<FeedConnection>> FeedConnection::Open(const std::string& socket_path,
                                                             std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) return InvalidArgument("socket path too long: " + socket_path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    ::close(fd);
    return Unavailable("no Corral daemon answers on " + socket_path + " (" + std::strerror(e) + ")");
  }
  std::unique_ptr<FeedConnection> conn(new FeedConnection(fd));
  const std::string req = "GET /v1/events HTTP/1.1\r\nHost: corral\r\nAccept: application/x-ndjson\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return Unavailable("the Corral daemon closed the connection");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  // The head, then whatever body bytes came with it.
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > kMaxHeadBytes) return Status(StatusCode::kCorrupt, "the daemon's answer head is too long");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return Status(StatusCode::kTimeout, "the Corral daemon did not answer /v1/events in time");
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return Unavailable("the Corral daemon closed the connection");
    head.append(buf, static_cast<size_t>(n));
  }
  std::string_view status_line = std::string_view(head).substr(0, head.find("\r\n"));
  if (!status_line.starts_with("HTTP/1.1 200")) {
    std::string body = head.substr(end + 4);
    auto err = ParseError(body);
    return Status(
        err && err->code == ErrorCode::kShuttingDown ? StatusCode::kResourceExhausted : StatusCode::kUnavailable,
        "the daemon refused the event feed: " + (err ? err->message : std::string(status_line)));
  }
  conn->pending_ = head.substr(end + 4);
  return conn;
}

FeedConnection::~FeedConnection() {
  if (fd_ >= 0) ::close(fd_);
}

Status FeedConnection::Read(std::vector<FeedEvent>& out) {
  std::vector<std::string> lines;
  if (!pending_.empty()) {
    CORRAL_RETURN_IF_ERROR(lines_.Add(pending_, lines));
    pending_.clear();
  }
  Status closed = Status::Ok();
  for (int i = 0; i < 64; ++i) {  // bounded per call: the caller's loop stays responsive
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      closed = Unavailable("the Corral daemon closed the event feed");
      break;
    }
    CORRAL_RETURN_IF_ERROR(lines_.Add(std::string_view(buf, static_cast<size_t>(n)), lines));
  }
  for (const auto& l : lines) {
    if (l.empty()) continue;
    CORRAL_ASSIGN_OR_RETURN(FeedEvent ev, ParseFeedLine(l));
    out.push_back(std::move(ev));
  }
  return closed;
}

}  // namespace corral::control
