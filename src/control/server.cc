// The control-plane server and the socket-directory check. The one TU that instantiates
// Beast's server-side templates (compile time).
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "common/thread_annotations.h"
#include "control/transport.h"

namespace corral::control {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

namespace {
constexpr uint64_t kMaxBodyBytes = 1 << 20;
constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
}  // namespace

Status PrepareSocketDir(const std::string& dir) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status(StatusCode::kFailedPrecondition, dir + " is not a directory");
  if (st.st_uid != ::getuid()) {
    return Status(StatusCode::kFailedPrecondition,
                  dir + " is owned by uid " + std::to_string(st.st_uid) + ", not by you; refusing to use it");
  }
  if ((st.st_mode & 077) != 0) {
    if (::chmod(dir.c_str(), 0700) != 0) return ErrnoError("chmod 0700 " + dir, errno);
  }
  return Status::Ok();
}

struct ControlServer::Impl {
  struct Conn {
    std::thread thread;
    int fd = -1;
    std::atomic<bool> done{false};
  };

  Handler handler;
  asio::io_context ioc;
  std::unique_ptr<local::acceptor> acceptor;
  std::thread accept_thread;
  Mutex mu;
  std::list<std::unique_ptr<Conn>> conns CORRAL_GUARDED_BY(mu);
  bool stopping CORRAL_GUARDED_BY(mu) = false;
  std::string path;

  void ReapLocked() CORRAL_REQUIRES(mu) {
    for (auto it = conns.begin(); it != conns.end();) {
      if ((*it)->done.load()) {
        (*it)->thread.join();
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }

  void AcceptLoop() {
    for (;;) {
      beast::error_code ec;
      local::socket sock(ioc);
      acceptor->accept(sock, ec);
      MutexLock lock(mu);
      if (stopping) return;
      ReapLocked();
      if (ec) continue;
      auto conn = std::make_unique<Conn>();
      Conn* raw = conn.get();
      raw->fd = sock.native_handle();
      conns.push_back(std::move(conn));
      raw->thread = std::thread([this, raw, s = std::move(sock)]() mutable {
        Serve(s);
        beast::error_code ignored;
        {
          MutexLock l(mu);
          raw->fd = -1;
        }
        s.close(ignored);
        raw->done.store(true);
      });
    }
  }

  // A streaming answer: head, then whatever `stream` writes, then close. Blocking sends with
  // a timeout: a watcher that stops reading is dropped after kStreamSendTimeout, and until
  // then its records queue (bounded) in the feed, not here.
  static void ServeStream(local::socket& sock, const Response& r) {
    const int fd = sock.native_handle();
    timeval tv{static_cast<time_t>(kStreamSendTimeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto write = [fd](std::string_view bytes) {
      while (!bytes.empty()) {
        ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    };
    if (!write("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-cache\r\n"
               "Server: corral\r\nConnection: close\r\n\r\n")) {
      return;
    }
    r.stream(write);
  }

  void Serve(local::socket& sock) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::getuid()) {
      return;  // another user: hang up without a word
    }
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      parser.header_limit(kMaxHeaderBytes);
      beast::error_code ec;
      http::read(sock, buffer, parser, ec);
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
          ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
        return;
      }
      Response r;
      bool keep_alive = false;
      if (ec) {
        r.status = 400;
        r.body = ErrorBody(ErrorCode::kBadRequest, "malformed HTTP request: " + ec.message());
      } else {
        const auto& req = parser.get();
        keep_alive = req.keep_alive();
        Request request;
        request.method = std::string(req.method_string());
        request.body = req.body();
        auto target = ParseTarget(std::string_view(req.target().data(), req.target().size()));
        if (!target.ok()) {
          r.status = 400;
          r.body = ErrorBody(ErrorCode::kBadRequest, target.status().message());
        } else {
          request.target = std::move(*target);
          try {
            r = handler(request);
          } catch (const std::exception& e) {
            r.status = 500;
            r.body = ErrorBody(ErrorCode::kInternal, std::string("handler failed: ") + e.what());
          }
        }
      }
      if (r.stream) return ServeStream(sock, r);
      http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
      res.set(http::field::content_type, "application/json");
      res.set(http::field::server, "corral");
      res.keep_alive(keep_alive);
      res.body() = r.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !keep_alive) return;
    }
  }
};

ControlServer::ControlServer(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
}

ControlServer::~ControlServer() {
  Stop();
}

Status ControlServer::Listen(const std::string& socket_path) {
  try {
    ::unlink(socket_path.c_str());
    impl_->path = socket_path;
    impl_->acceptor = std::make_unique<local::acceptor>(impl_->ioc);
    local::endpoint ep(socket_path);
    impl_->acceptor->open(ep.protocol());
    // Bind with a umask that leaves the socket 0600 from its first instant.
    mode_t old = ::umask(0177);
    beast::error_code ec;
    impl_->acceptor->bind(ep, ec);
    ::umask(old);
    if (ec) return IoError("bind " + socket_path + ": " + ec.message());
    if (::chmod(socket_path.c_str(), 0600) != 0) return ErrnoError("chmod " + socket_path, errno);
    impl_->acceptor->listen(64);
  } catch (const std::exception& e) {
    return IoError("listen on " + socket_path + ": " + e.what());
  }
  return Status::Ok();
}

void ControlServer::Start() {
  impl_->accept_thread = std::thread([this] { impl_->AcceptLoop(); });
}

void ControlServer::Stop() {
  if (!impl_ || !impl_->acceptor) return;
  {
    MutexLock lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    ::shutdown(impl_->acceptor->native_handle(), SHUT_RDWR);  // wakes accept()
    for (auto& c : impl_->conns) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);  // wakes blocked reads
    }
  }
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  std::list<std::unique_ptr<Impl::Conn>> conns;
  {
    MutexLock lock(impl_->mu);
    conns.swap(impl_->conns);
  }
  for (auto& c : conns) c->thread.join();
  beast::error_code ec;
  impl_->acceptor->close(ec);
  ::unlink(impl_->path.c_str());
}

}  // namespace corral::control
