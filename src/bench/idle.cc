// IdleConnections (declared in bench/client.h): plain blocking sockets, because a thousand
// connections that each do one small GET and then wait need no event loop.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/client.h"

namespace corral::bench {

namespace {

constexpr size_t kMaxHeadBytes = size_t{64} * 1024;
constexpr size_t kMaxBodyBytes = 1 << 20;

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one HTTP/1.1 response (Content-Length or chunked body) and returns its status, or
// an error. The connection stays usable for the next request.
Result<int> ReadResponse(int fd) {
  std::string buf;
  char chunk[4096];
  size_t head_end = std::string::npos;
  auto fill = [&]() -> Status {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n == 0) return Unavailable("the server closed the connection");
    if (n < 0) return ErrnoError("reading the response", errno);
    buf.append(chunk, static_cast<size_t>(n));
    return Status::Ok();
  };
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHeadBytes) return Corrupt("response head too large");
    CORRAL_RETURN_IF_ERROR(fill());
  }
  int status = 0;
  if (std::sscanf(buf.c_str(), "HTTP/1.%*d %d", &status) != 1) return Corrupt("not an HTTP response");
  std::string head = buf.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t body_start = head_end + 4;
  if (const size_t cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
    const size_t len = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    if (len > kMaxBodyBytes) return Corrupt("response body too large");
    while (buf.size() < body_start + len) CORRAL_RETURN_IF_ERROR(fill());
  } else if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    while (buf.find("\r\n0\r\n\r\n", body_start - 2) == std::string::npos) {
      if (buf.size() > kMaxBodyBytes) return Corrupt("response body too large");
      CORRAL_RETURN_IF_ERROR(fill());
    }
  }
  return status;
}

}  // namespace

IdleConnections::~IdleConnections() {
  CloseAll();
}

void IdleConnections::CloseAll() {
  for (int fd : fds_) ::close(fd);
  fds_.clear();
}

int IdleConnections::Open(const Endpoint& endpoint, const std::string& path, int count,
                          std::chrono::milliseconds timeout) {
  endpoint_ = endpoint;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(endpoint.host.c_str(), endpoint.port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    error_ = "resolving " + endpoint.host + ": " + ::gai_strerror(rc);
    return held();
  }
  const std::string request = "GET " + endpoint.prefix + path + " HTTP/1.1\r\nHost: " + endpoint.host + ":" +
                              endpoint.port + "\r\nUser-Agent: corral-bench\r\n\r\n";
  for (int i = 0; i < count; ++i) {
    const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error_ = "socket() for connection " + std::to_string(i + 1) + ": " + std::strerror(errno);
      break;
    }
    SetTimeouts(fd, timeout);
    if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      error_ = "connecting connection " + std::to_string(i + 1) + ": " + std::strerror(errno);
      ::close(fd);
      break;
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Result<int> status = WriteAll(fd, request) ? ReadResponse(fd) : Result<int>(ErrnoError("sending", errno));
    if (!status.ok() || *status != 200) {
      error_ = "connection " + std::to_string(i + 1) + ": " +
               (status.ok() ? "HTTP " + std::to_string(*status) : status.status().message());
      ::close(fd);
      break;
    }
    fds_.push_back(fd);
  }
  ::freeaddrinfo(res);
  return held();
}

int IdleConnections::CountOpen() const {
  std::vector<pollfd> p(fds_.size());
  for (size_t i = 0; i < fds_.size(); ++i) p[i] = {fds_[i], static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (!p.empty() && ::poll(p.data(), p.size(), 0) < 0) return 0;
  int open = 0;
  // An idle keep-alive connection has nothing to read; EOF, a hang-up or an error means the
  // server closed it.
  for (const auto& x : p) open += (x.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) == 0 ? 1 : 0;
  return open;
}

int IdleConnections::RequestAgain(const std::string& path, std::chrono::milliseconds timeout) {
  const std::string request = "GET " + endpoint_.prefix + path + " HTTP/1.1\r\nHost: " + endpoint_.host + ":" +
                              endpoint_.port + "\r\nUser-Agent: corral-bench\r\n\r\n";
  int ok = 0;
  for (int fd : fds_) {
    SetTimeouts(fd, timeout);
    if (!WriteAll(fd, request)) continue;
    auto status = ReadResponse(fd);
    if (status.ok() && *status == 200) {
      ++ok;
    } else if (error_.empty()) {
      error_ = "again: " + (status.ok() ? "HTTP " + std::to_string(*status) : status.status().message());
    }
  }
  return ok;
}

}  // namespace corral::bench
