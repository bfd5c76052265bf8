#include "proxy/proxy_test_util.h"

#include <sys/socket.h>

#include <cctype>
#include <cstdlib>

namespace corral::proxy::testutil {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {
// Guards closing a script's socket (Reset) against the destructor shutting it down.
std::mutex& SocketCloseMutex() {
  static std::mutex mu;
  return mu;
}
}  // namespace

RawClient::RawClient(int port, std::chrono::milliseconds recv_timeout) : sock_(ioc_) {
  error_code ec;
  sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
  timeval tv{};
  tv.tv_sec = static_cast<long>(recv_timeout.count() / 1000);
  tv.tv_usec = static_cast<long>((recv_timeout.count() % 1000) * 1000);
  ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

bool RawClient::Send(const std::string& bytes) {
  error_code ec;
  asio::write(sock_, asio::buffer(bytes), ec);
  return !ec;
}

std::string RawClient::ReadSome(bool* eof) {
  char tmp[65536];
  ssize_t n = ::recv(sock_.native_handle(), tmp, sizeof tmp, 0);
  if (eof != nullptr) *eof = n == 0;
  if (n <= 0) return {};
  return std::string(tmp, static_cast<size_t>(n));
}

std::string RawClient::ReadUntil(const std::string& needle, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (buf_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    bool eof = false;
    std::string more = ReadSome(&eof);
    if (eof) break;
    buf_ += more;
  }
  return buf_;
}

bool RawClient::ReadResponse(std::string* head, std::string* body, int* status) {
  auto fill = [&]() {
    bool eof = false;
    std::string more = ReadSome(&eof);
    if (more.empty()) return false;
    buf_ += more;
    return true;
  };
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return false;
  }
  *head = buf_.substr(0, end + 4);
  buf_.erase(0, end + 4);
  *status = std::atoi(head->c_str() + 9);
  body->clear();
  std::string te = HeaderValue(*head, "transfer-encoding");
  std::string cl = HeaderValue(*head, "content-length");
  if (te == "chunked") {
    for (;;) {
      size_t nl;
      while ((nl = buf_.find("\r\n")) == std::string::npos) {
        if (!fill()) return false;
      }
      size_t size = std::strtoul(buf_.substr(0, nl).c_str(), nullptr, 16);
      while (buf_.size() < nl + 2 + size + 2) {
        if (!fill()) return false;
      }
      body->append(buf_, nl + 2, size);
      buf_.erase(0, nl + 2 + size + 2);
      if (size == 0) return true;
    }
  }
  size_t len = cl.empty() ? 0 : std::strtoul(cl.c_str(), nullptr, 10);
  while (buf_.size() < len) {
    if (!fill()) return false;
  }
  *body = buf_.substr(0, len);
  buf_.erase(0, len);
  return true;
}

std::string RawClient::ReadToEof() {
  for (;;) {
    bool eof = false;
    std::string more = ReadSome(&eof);
    if (more.empty()) break;
    buf_ += more;
  }
  std::string out;
  out.swap(buf_);
  return out;
}

bool RawClient::ReadCloseDelimited(std::string* head, std::string* body) {
  std::string all = ReadToEof();
  size_t split = all.find("\r\n\r\n");
  if (split == std::string::npos) return false;
  *head = all.substr(0, split + 2);
  *body = all.substr(split + 4);
  return true;
}

void RawClient::Close() {
  error_code ec;
  sock_.close(ec);
}

std::string HeaderValue(const std::string& head, const std::string& name) {
  std::string lower;
  for (char c : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t at = lower.find("\r\n" + name + ":");
  if (at == std::string::npos) return {};
  size_t start = at + 2 + name.size() + 1;
  size_t end = lower.find("\r\n", start);
  std::string v = lower.substr(start, end - start);
  while (!v.empty() && v.front() == ' ') v.erase(0, 1);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

FakeUpstream::FakeUpstream(Script script) : script_(std::move(script)), acceptor_(ioc_) {
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  acceptor_.open(ep.protocol());
  acceptor_.bind(ep);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  accept_thread_ = std::thread([this] {
    for (;;) {
      auto s = std::make_shared<tcp::socket>(ioc_);
      error_code ec;
      acceptor_.accept(*s, ec);
      if (stop_.load() || ec) return;
      int index = connections_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(s);
      threads_.emplace_back([this, s, index] { script_(*s, index); });
    }
  });
}

FakeUpstream::~FakeUpstream() {
  stop_.store(true);
  error_code ec;
  // Wake the blocking accept with a connection of our own.
  tcp::socket wake(ioc_);
  wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)), ec);
  accept_thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  {
    std::lock_guard<std::mutex> close_lock(SocketCloseMutex());
    for (auto& s : sockets_) {
      if (s->is_open()) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
  }
  for (auto& t : threads_) t.join();
}

bool FakeUpstream::ReadRequest(tcp::socket& s, std::string* request) {
  request->clear();
  char tmp[4096];
  size_t end;
  while ((end = request->find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(s.native_handle(), tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    request->append(tmp, static_cast<size_t>(n));
  }
  std::string cl = HeaderValue(request->substr(0, end + 4), "content-length");
  size_t len = cl.empty() ? 0 : std::strtoul(cl.c_str(), nullptr, 10);
  while (request->size() < end + 4 + len) {
    ssize_t n = ::recv(s.native_handle(), tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    request->append(tmp, static_cast<size_t>(n));
  }
  return true;
}

bool FakeUpstream::Write(tcp::socket& s, const std::string& bytes) {
  error_code ec;
  asio::write(s, asio::buffer(bytes), ec);
  return !ec;
}

void FakeUpstream::Reset(tcp::socket& s) {
  std::lock_guard<std::mutex> lock(SocketCloseMutex());
  error_code ec;
  s.set_option(asio::socket_base::linger(true, 0), ec);
  s.close(ec);
}

}  // namespace corral::proxy::testutil
