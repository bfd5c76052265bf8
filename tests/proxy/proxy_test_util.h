// Test helpers for the proxy: a raw blocking client (for streaming, pipelining, slow and
// vanishing clients) and a scripted fake upstream for fault injection. Test-only code.
#pragma once

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace corral::proxy::testutil {

using tcp = boost::asio::ip::tcp;

// A blocking client socket with a receive timeout.
class RawClient {
 public:
  explicit RawClient(int port, std::chrono::milliseconds recv_timeout = std::chrono::milliseconds(20000));
  bool Send(const std::string& bytes);
  // Reads whatever arrives next (up to 64 KiB). Empty on EOF, error or timeout; `eof` tells.
  std::string ReadSome(bool* eof = nullptr);
  // Reads until `needle` appears in everything read so far or the deadline passes.
  // Returns everything read (this call and before, from `Buffered()`).
  std::string ReadUntil(const std::string& needle, std::chrono::milliseconds within);
  // Reads one whole HTTP response (Content-Length or chunked, de-chunked). Returns the raw
  // head in *head and the body; false on error/EOF/timeout.
  bool ReadResponse(std::string* head, std::string* body, int* status);
  // Reads until EOF (or timeout); returns all bytes.
  std::string ReadToEof();
  // Reads a response whose body ends with the connection (HTTP/1.0): the head (through its
  // last CRLF) and the raw body. False when no complete head arrived.
  bool ReadCloseDelimited(std::string* head, std::string* body);
  void Close();
  tcp::socket& socket() { return sock_; }

 private:
  boost::asio::io_context ioc_;
  tcp::socket sock_;
  std::string buf_;  // bytes read and not yet consumed by ReadResponse
};

// Splits "HTTP/1.1 200 OK\r\nA: b\r\n..." -> lower-case header value, "" if absent.
std::string HeaderValue(const std::string& head, const std::string& name);

// A scripted upstream. Each accepted connection runs `script(socket, connection_index)` on
// its own thread. Helpers read one request and write canned bytes.
class FakeUpstream {
 public:
  using Script = std::function<void(tcp::socket&, int)>;
  explicit FakeUpstream(Script script);
  ~FakeUpstream();
  int port() const { return port_; }
  int connections() const { return connections_.load(); }

  // Reads one request (head + Content-Length body). Returns false on EOF/error.
  static bool ReadRequest(tcp::socket& s, std::string* request);
  static bool Write(tcp::socket& s, const std::string& bytes);
  // Sends RST instead of FIN.
  static void Reset(tcp::socket& s);

 private:
  Script script_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

}  // namespace corral::proxy::testutil
