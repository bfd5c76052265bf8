// The control-plane client: async Beast operations driven by run_for(), so every call has
// a deadline even though the API is blocking.
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/transport.h"

namespace corral::control {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

Status CheckSocketAccess(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return Status::Ok();  // the client reports it
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Ok();
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc != 0 && (err == EACCES || err == EPERM)) {
    return Status(
        StatusCode::kFailedPrecondition,
        "permission denied on " + path + ": it belongs to another user (each user runs their own Corral daemon)");
  }
  return Status::Ok();
}

struct ControlClient::Impl {
  asio::io_context ioc;
  std::unique_ptr<local::socket> sock;
  beast::flat_buffer buffer;
};

ControlClient::ControlClient(std::string socket_path)
    : impl_(std::make_unique<Impl>()), socket_path_(std::move(socket_path)) {}
ControlClient::~ControlClient() = default;

bool ControlClient::Ping() {
  auto r = Call("GET", "/v1/status", nullptr, std::chrono::seconds(5));
  return r.ok() && !r->error;
}

Result<Reply> ControlClient::Call(std::string_view method, std::string_view target, const nlohmann::json* body,
                                  std::chrono::milliseconds timeout) {
  // Two tries: a kept-alive connection the daemon closed meanwhile is retried once, fresh.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = !impl_->sock;
    if (fresh) {
      impl_->sock = std::make_unique<local::socket>(impl_->ioc);
      beast::error_code ec;
      impl_->sock->connect(local::endpoint(socket_path_), ec);
      if (ec) {
        impl_->sock.reset();
        if (ec == boost::system::errc::permission_denied || ec == boost::system::errc::operation_not_permitted) {
          // The socket (or its directory) is there but not ours: another user's daemon.
          return Status(StatusCode::kFailedPrecondition,
                        "permission denied on " + socket_path_ +
                            ": it belongs to another user (each user runs their own Corral daemon)");
        }
        return Unavailable("no Corral daemon answers on " + socket_path_ + " (" + ec.message() + ")");
      }
      impl_->buffer.clear();
    }
    http::request<http::string_body> req{http::string_to_verb(std::string(method)), std::string(target), 11};
    req.set(http::field::host, "corral");
    req.keep_alive(true);
    if (body != nullptr) {
      req.set(http::field::content_type, "application/json");
      req.body() = body->dump();
    }
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(64U << 20);
    beast::error_code ec;
    bool done = false;
    http::async_write(*impl_->sock, req, [&](beast::error_code wec, size_t) {
      if (wec) {
        ec = wec;
        done = true;
        return;
      }
      http::async_read(*impl_->sock, impl_->buffer, parser, [&](beast::error_code rec, size_t) {
        ec = rec;
        done = true;
      });
    });
    impl_->ioc.restart();
    impl_->ioc.run_for(timeout);
    if (!done) {
      beast::error_code ignored;
      impl_->sock->close(ignored);
      impl_->ioc.restart();
      impl_->ioc.run();  // let the cancelled handlers finish
      impl_->sock.reset();
      return Status(StatusCode::kTimeout, "the Corral daemon did not answer " + std::string(target) + " in time");
    }
    if (ec) {
      impl_->sock.reset();
      if (!fresh) continue;
      return Unavailable("the Corral daemon closed the connection (" + ec.message() + ")");
    }
    auto& res = parser.get();
    Reply reply;
    reply.http_status = static_cast<int>(res.result_int());
    if (!res.keep_alive()) impl_->sock.reset();
    if (reply.http_status >= 400) {
      reply.error = ParseError(res.body());
      if (!reply.error) reply.error = ApiError{ErrorCode::kInternal, "HTTP " + std::to_string(reply.http_status)};
      auto details = ParseJsonBounded(res.body(), kReplyJsonLimits);  // details beside the error, if any
      reply.body = details.ok() ? std::move(*details) : nlohmann::json();
      return reply;
    }
    auto parsed = ParseJsonBounded(res.body(), kReplyJsonLimits);
    if (!parsed.ok())
      return Status(StatusCode::kCorrupt, "the daemon answered invalid JSON: " + parsed.status().message());
    reply.body = std::move(*parsed);
    return reply;
  }
  return Unavailable("the Corral daemon keeps closing the connection");
}

}  // namespace corral::control
