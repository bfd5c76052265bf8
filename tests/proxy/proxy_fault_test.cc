// Fault injection: the proxy in front of a scripted fake upstream that resets, stalls,
// sends malformed SSE or malformed framing, or drops a pooled connection. After every
// fault the proxy must still answer a normal request.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <mutex>
#include <thread>

#include "proxy/proxy.h"
#include "proxy/proxy_test_util.h"
#include "proxy/static_provider.h"

namespace corral::proxy {
namespace {

using testutil::FakeUpstream;
using testutil::RawClient;
using tcp = boost::asio::ip::tcp;

const std::string kChatBody = R"({"model":"fake","messages":[{"role":"user","content":"hi"}],"stream":true})";

std::string Post(const std::string& target, const std::string& body, const std::string& extra = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
const std::string kSseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string Chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// A proxy with one model "fake" -> the fake upstream, short timeouts.
struct Harness {
  explicit Harness(int upstream_port, ProxyOptions o = {})
      : provider({{"fake", Endpoint{"127.0.0.1", static_cast<uint16_t>(upstream_port)}}}) {
    provider.PublishTo(routes);
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    if (o.upstream_timeout == ProxyOptions{}.upstream_timeout) o.upstream_timeout = std::chrono::milliseconds(800);
    proxy = std::make_unique<Proxy>(o, provider, routes);
    Status st = proxy->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  int port() const { return proxy->port(); }
  StaticProvider provider;
  RoutingTable routes;
  std::unique_ptr<Proxy> proxy;
};

// Every script answers a request whose body contains "healthy" with 200 {"ok":true}.
bool AnswerHealthy(tcp::socket& s, const std::string& req) {
  if (req.find("healthy") == std::string::npos) return false;
  FakeUpstream::Write(s, kOk);
  return true;
}

void ExpectStillHealthy(int port) {
  RawClient c(port);
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", R"({"model":"fake","note":"healthy"})")));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200) << head << body;
  EXPECT_EQ(body, "{\"ok\":true}");
}

TEST(ProxyFaultTest, UpstreamResetMidStreamCutsTheClientOnly) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      FakeUpstream::Write(s, kSseHead + Chunk("data: {\"a\":1}\n\n"));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      FakeUpstream::Reset(s);
      return;
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  std::string all = c.ReadToEof();
  EXPECT_NE(all.find("data: {\"a\":1}"), std::string::npos) << all;
  EXPECT_EQ(all.find("0\r\n\r\n"), std::string::npos) << "a cut stream must not look complete: " << all;
  ExpectStillHealthy(h.port());
}

TEST(ProxyFaultTest, StallBeforeTheHeadIs504InTheApiShape) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      // Say nothing; wait for the proxy to give up and close.
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/messages", R"({"model":"fake","messages":[]})")));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 504);
  EXPECT_NE(body.find(R"("type":"error")"), std::string::npos) << body;  // Anthropic shape
  // The same connection carries on: exactly one answer per request, nothing stray after it.
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", R"({"model":"fake","note":"healthy"})")));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200) << head << body;
  EXPECT_EQ(body, "{\"ok\":true}");
  ExpectStillHealthy(h.port());
}

TEST(ProxyFaultTest, StallMidStreamCutsCleanly) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      FakeUpstream::Write(s, kSseHead + Chunk("data: {\"first\":1}\n\n"));
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  auto t0 = std::chrono::steady_clock::now();
  std::string all = c.ReadToEof();
  EXPECT_NE(all.find("first"), std::string::npos);
  EXPECT_EQ(all.find("0\r\n\r\n"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15)) << "the stall was not timed out";
  ExpectStillHealthy(h.port());
}

TEST(ProxyFaultTest, MalformedSseIsRelayedByteForByte) {
  const std::string garbage = "data: {not json\n\nevent: ???\ndata:\xff\xfe\n\n: comment\r\n\r\ndata: [DONE]\n\n";
  FakeUpstream up([&](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      FakeUpstream::Write(s, kSseHead + Chunk(garbage.substr(0, 9)) + Chunk(garbage.substr(9)) + "0\r\n\r\n");
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, garbage);
  EXPECT_EQ(testutil::HeaderValue(head, "x-corral-model"), "fake");
  // Same connection, next request: keep-alive survived.
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", R"({"model":"fake","note":"healthy"})")));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
}

// HTTP/1.0 clients cannot take chunked framing: the same SSE arrives de-chunked, without
// Transfer-Encoding, and the end of the body is the end of the connection.
TEST(ProxyFaultTest, Http10ClientGetsAChunkedStreamDechunked) {
  const std::string sse = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
  FakeUpstream up([&](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      // Split across writes and chunks, with a chunk extension, as a server may.
      FakeUpstream::Write(s, kSseHead + Chunk(sse.substr(0, 5)));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      FakeUpstream::Write(s, "d;ext=1\r\n" + sse.substr(5, 13) + "\r\n" + Chunk(sse.substr(18)) + "0\r\n\r\n");
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  std::string req = Post("/v1/chat/completions", kChatBody);
  req.replace(req.find("HTTP/1.1"), 8, "HTTP/1.0");
  ASSERT_TRUE(c.Send(req));
  std::string head, body;
  ASSERT_TRUE(c.ReadCloseDelimited(&head, &body));
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 200") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "transfer-encoding"), "") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "connection"), "close") << head;
  EXPECT_EQ(body, sse);
  ExpectStillHealthy(h.port());
}

TEST(ProxyFaultTest, MalformedFramingIsCutAndTheProxyStaysHealthy) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      if (AnswerHealthy(s, req)) continue;
      FakeUpstream::Write(s, kSseHead + Chunk("data: ok\n\n") + "zzzz-not-a-chunk-size\r\nmore");
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  std::string all = c.ReadToEof();
  EXPECT_NE(all.find("data: ok"), std::string::npos);
  EXPECT_EQ(all.find("0\r\n\r\n"), std::string::npos);
  ExpectStillHealthy(h.port());
}

TEST(ProxyFaultTest, StalePooledConnectionIsReplayedOnce) {
  // Connection 0 answers one request, then reads the next one and closes without a byte:
  // what a keep-alive timeout race looks like. The proxy must replay on a fresh connection.
  FakeUpstream up([](tcp::socket& s, int index) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    FakeUpstream::Write(s, kOk);
    if (index == 0) {
      if (FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Reset(s);
      return;
    }
    while (FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Write(s, kOk);
  });
  ProxyOptions o;
  o.threads = 1;  // one worker: one pool, so the second request reuses connection 0
  Harness h(up.port(), o);
  RawClient c(h.port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.Send(Post("/v1/chat/completions", R"({"model":"fake"})")));
    std::string head, body;
    int status = 0;
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status)) << i;
    EXPECT_EQ(status, 200) << i << head << body;
  }
  EXPECT_EQ(up.connections(), 2);
  EXPECT_NE(h.proxy->MetricsText().find("corral_proxy_upstream_retries_total 1"), std::string::npos);
}

// An upstream that closes after every streamed response (as llama-server does) gets a
// spare connection opened in the background, and the next request goes over it.
TEST(ProxyFaultTest, SpareConnectionIsOpenedAfterAStreamAndUsedNext) {
  std::mutex mu;
  std::vector<int> served_on;  // connection index of every streamed request
  FakeUpstream up([&](tcp::socket& s, int index) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    {
      std::lock_guard lock(mu);
      served_on.push_back(index);
    }
    FakeUpstream::Write(s, kSseHead + Chunk("data: [DONE]\n\n") + "0\r\n\r\n");
    boost::system::error_code ec;
    s.shutdown(tcp::socket::shutdown_both, ec);  // no keep-alive after a stream
  });
  ProxyOptions o;
  o.threads = 1;
  Harness h(up.port(), o);
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
  // The spare arrives without any request from the client.
  for (int i = 0; i < 500 && up.connections() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(up.connections(), 2);
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "data: [DONE]\n\n");
  std::lock_guard lock(mu);
  EXPECT_EQ(served_on, (std::vector<int>{0, 1}));
}

// With preconnect off, nothing connects until a request needs it.
TEST(ProxyFaultTest, NoSpareConnectionWhenPreconnectIsOff) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    FakeUpstream::Write(s, kSseHead + Chunk("data: [DONE]\n\n") + "0\r\n\r\n");
  });
  ProxyOptions o;
  o.threads = 1;
  o.preconnect = false;
  Harness h(up.port(), o);
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(up.connections(), 1);
}

TEST(ProxyFaultTest, UnsafeRoutesAreNotReplayed) {
  FakeUpstream up([](tcp::socket& s, int index) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    FakeUpstream::Write(s, kOk);
    if (index == 0 && FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Reset(s);
  });
  ProxyOptions o;
  o.threads = 1;
  Harness h(up.port(), o);
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/slots?model=fake", R"({})")));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
  ASSERT_TRUE(c.Send(Post("/slots?model=fake&action=erase", R"({})")));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 502) << body;
  EXPECT_EQ(up.connections(), 1);
}

// Out of descriptors: accept fails with EMFILE while connections wait in the backlog. The
// proxy pauses accepting (it must not spin on the failing accept) and serves every waiting
// client once descriptors are free again.
TEST(ProxyFaultTest, OutOfDescriptorsPausesAcceptingAndRecovers) {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizer runtime needs descriptors of its own while the process has none left
  // (UBSan's vptr check opens a pipe to probe memory and then reports a false "invalid
  // vptr"). The release and TSan runs of this test cover it.
  GTEST_SKIP() << "not under ASan/UBSan: the sanitizer runtime itself needs file descriptors";
#endif
  FakeUpstream up([](tcp::socket&, int) {});
  ProxyOptions o;
  o.threads = 1;
  Harness h(up.port(), o);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  constexpr int kClients = 6;
  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) fds.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  for (int fd : fds) ASSERT_GE(fd, 0);
  // Now no descriptor is left for the proxy's accept.
  int highest = 0;
  for (int fd = 0; fd < 65536; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
    if (fd > highest + 4096) break;
  }
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(highest) + 1;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> fillers;  // holes below the limit would let accept succeed
  for (int fd; (fd = ::dup(fds[0])) >= 0;) fillers.push_back(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(h.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int fd : fds) ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  for (int i = 0; i < 400 && h.proxy->MetricsText().find("corral_proxy_accept_pauses_total 0\n") != std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string metrics = h.proxy->MetricsText();
  EXPECT_EQ(metrics.find("corral_proxy_accept_pauses_total 0\n"), std::string::npos) << "accept never failed";
  for (int fd : fillers) ::close(fd);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  // Every client that waited is served.
  const std::string req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  for (int fd : fds) {
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0U) << got;
    ::close(fd);
  }
}

TEST(ProxyFaultTest, UpstreamDownIs502) {
  int dead_port;
  {
    FakeUpstream gone([](tcp::socket&, int) {});
    dead_port = gone.port();
  }
  Harness h(dead_port);
  RawClient c(h.port());
  ASSERT_TRUE(c.Send(Post("/api/chat", R"({"model":"fake","messages":[{"role":"user","content":"x"}]})")));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 502);
  EXPECT_EQ(body.rfind("{\"error\":\"", 0), 0U) << body;  // Ollama shape
}

TEST(ProxyFaultTest, ForwardsOriginalBodyAndDropsHopByHopHeaders) {
  std::string seen;
  std::mutex mu;
  FakeUpstream up([&](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        seen = req;
      }
      FakeUpstream::Write(s,
                          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nX-Drop: 1\r\n"
                          "Connection: X-Drop\r\nX-Keep: 2\r\n\r\nok");
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  // Odd spacing and key order: the body must arrive exactly as sent.
  const std::string body = "{ \"messages\" : [ ],\n  \"model\":\"fake\" ,\"x\":\"\\u00e9\" }";
  ASSERT_TRUE(c.Send(Post("/v1/chat/completions", body,
                          "Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nTE: trailers\r\nX-Api-Key: k\r\n")));
  std::string head, rbody;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &rbody, &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(rbody, "ok");
  EXPECT_TRUE(testutil::HeaderValue(head, "keep-alive").empty()) << head;
  EXPECT_TRUE(testutil::HeaderValue(head, "x-drop").empty()) << head;
  EXPECT_EQ(testutil::HeaderValue(head, "x-keep"), "2");
  std::lock_guard<std::mutex> lock(mu);
  size_t split = seen.find("\r\n\r\n");
  ASSERT_NE(split, std::string::npos);
  EXPECT_EQ(seen.substr(split + 4), body);
  std::string up_head = seen.substr(0, split + 4);
  EXPECT_TRUE(testutil::HeaderValue(up_head, "x-secret").empty()) << up_head;
  EXPECT_TRUE(testutil::HeaderValue(up_head, "te").empty()) << up_head;
  EXPECT_EQ(testutil::HeaderValue(up_head, "x-api-key"), "k");
  EXPECT_EQ(testutil::HeaderValue(up_head, "content-length"), std::to_string(body.size()));
}

TEST(ProxyFaultTest, ClientLimitsAndMalformedRequests) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Write(s, kOk);
  });
  ProxyOptions o;
  o.max_body_bytes = 1024;
  o.max_header_bytes = 2048;
  o.client_timeout = std::chrono::milliseconds(500);
  Harness h(up.port(), o);
  auto one = [&](const std::string& bytes, int* status, std::string* body) {
    RawClient c(h.port());
    std::string head;
    *status = 0;
    return c.Send(bytes) && c.ReadResponse(&head, body, status);
  };
  int status;
  std::string body;
  ASSERT_TRUE(one(Post("/v1/chat/completions", "{\"model\":\"fake\",\"x\":\"" + std::string(2000, 'a') + "\"}"),
                  &status, &body));
  EXPECT_EQ(status, 413) << body;
  ASSERT_TRUE(one("GET /health HTTP/1.1\r\nX-Big: " + std::string(4000, 'b') + "\r\n\r\n", &status, &body));
  EXPECT_EQ(status, 431);
  ASSERT_TRUE(one(Post("/v1/chat/completions", "{\"model\":"), &status, &body));
  EXPECT_EQ(status, 400);
  EXPECT_NE(body.find("not valid JSON"), std::string::npos) << body;
  ASSERT_TRUE(one(Post("/v1/chat/completions", R"({"messages":[]})"), &status, &body));
  EXPECT_EQ(status, 400);
  EXPECT_NE(body.find("missing \\\"model\\\""), std::string::npos) << body;
  ASSERT_TRUE(one(Post("/v1/embeddings", R"({"model":"fakke"})"), &status, &body));
  EXPECT_EQ(status, 404);
  EXPECT_NE(body.find("did you mean 'fake'"), std::string::npos) << body;
  ASSERT_TRUE(one("GARBAGE\r\n\r\n", &status, &body));
  EXPECT_EQ(status, 400);
  ASSERT_TRUE(one("GET /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n\r\n", &status, &body));
  EXPECT_EQ(status, 405);
  // A slow client (half a head, then silence) gets 408 and does not disturb others.
  RawClient slow(h.port());
  ASSERT_TRUE(slow.Send("POST /v1/chat/completions HTTP/1.1\r\nContent-Le"));
  ExpectStillHealthy(h.port());
  std::string slow_all = slow.ReadToEof();
  EXPECT_NE(slow_all.find(" 408 "), std::string::npos) << slow_all;
}

TEST(ProxyFaultTest, PipelinedRequestsAnswerInOrder) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) {
      std::string tag = req.substr(req.find("\"n\":") + 4, 1);
      std::string body = "{\"n\":" + tag + "}";
      FakeUpstream::Write(s, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  Harness h(up.port());
  RawClient c(h.port());
  std::string all;
  for (int i = 1; i <= 5; ++i) all += Post("/v1/completions", R"({"model":"fake","n":)" + std::to_string(i) + "}");
  all += "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_TRUE(c.Send(all));
  for (int i = 1; i <= 5; ++i) {
    std::string head, body;
    int status = 0;
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
    EXPECT_EQ(body, "{\"n\":" + std::to_string(i) + "}");
  }
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(body, R"({"status":"ok"})");
}

TEST(ProxyFaultTest, ClientGoneClosesTheUpstream) {
  std::atomic<bool> upstream_saw_close{false};
  FakeUpstream up([&](tcp::socket& s, int) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    FakeUpstream::Write(s, kSseHead + Chunk("data: 1\n\n"));
    // Keep "generating" until a write fails, like llama-server does.
    for (int i = 0; i < 2000; ++i) {
      if (!FakeUpstream::Write(s, Chunk("data: more\n\n"))) {
        upstream_saw_close.store(true);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  Harness h(up.port(), [] {
    ProxyOptions o;
    o.upstream_timeout = std::chrono::seconds(30);
    return o;
  }());
  {
    RawClient c(h.port());
    ASSERT_TRUE(c.Send(Post("/v1/chat/completions", kChatBody)));
    c.ReadUntil("data: 1", std::chrono::seconds(10));
    c.Close();
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (!upstream_saw_close.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(upstream_saw_close.load());
  EXPECT_EQ(h.provider.InFlight("fake"), 0);
}

}  // namespace
}  // namespace corral::proxy

namespace corral::proxy {
namespace {

// A provider whose models are not in the routing table: every request goes through
// EnsureReady, answered later from another thread (like an on-demand start), or refused.
class ScriptedProvider final : public ModelProvider {
 public:
  explicit ScriptedProvider(int port) : port_(port) {}
  ~ScriptedProvider() override {
    for (auto& t : threads_) t.join();
  }
  std::vector<ModelInfo> ListModels() const override { return {ModelInfo{"cold"}}; }
  void EnsureReady(const std::string& model, std::chrono::steady_clock::time_point,
                   std::function<void(EnsureResult)> done) override {
    ensure_calls_++;
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([this, model, done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // "loading"
      if (model == "cold") return done(Endpoint{"127.0.0.1", static_cast<uint16_t>(port_)});
      EnsureError e;
      if (model == "busy") {
        e.code = EnsureErrorCode::kQueueFull;
        e.message = "too many requests waiting for models to start";
        e.retry_after_s = 2;
      } else {
        e.code = EnsureErrorCode::kStartFailed;
        e.message = "llama-server exited with code 1: out of memory";
      }
      done(e);
    });
  }
  void OnRequestStart(const std::string&, const proxy::Endpoint&) override { in_flight_++; }
  void OnRequestEnd(const std::string&, const proxy::Endpoint&) override { in_flight_--; }
  bool SetKeepAlive(const std::string&, std::chrono::seconds) override { return true; }

  std::atomic<int> ensure_calls_{0};
  std::atomic<int> in_flight_{0};

 private:
  int port_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

TEST(ProxyProviderTest, OnDemandWaitersAndRefusalsThroughTheSeam) {
  FakeUpstream up([](tcp::socket& s, int) {
    std::string req;
    while (FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Write(s, kOk);
  });
  ScriptedProvider provider(up.port());
  RoutingTable routes;  // empty: nothing is "ready"
  ProxyOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  Proxy proxy(o, provider, routes);
  ASSERT_TRUE(proxy.Start().ok());
  // Concurrent requests for a cold model all wait and all get through.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      RawClient c(proxy.port());
      std::string head, body;
      int status = 0;
      if (c.Send(Post("/v1/chat/completions", R"({"model":"cold"})")) && c.ReadResponse(&head, &body, &status) &&
          status == 200 && body == "{\"ok\":true}") {
        ok++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(provider.ensure_calls_.load(), 6);

  RawClient c(proxy.port());
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.Send(Post("/v1/messages", R"({"model":"busy"})")));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 429);
  EXPECT_EQ(testutil::HeaderValue(head, "retry-after"), "2");
  EXPECT_NE(body.find("rate_limit_error"), std::string::npos) << body;
  ASSERT_TRUE(c.Send(Post("/api/chat", R"({"model":"broken","messages":[{"role":"user","content":"x"}]})")));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("out of memory"), std::string::npos) << body;
  EXPECT_TRUE(testutil::HeaderValue(head, "retry-after").empty()) << "Retry-After must not leak to the next answer";
  proxy.Stop();
  EXPECT_EQ(provider.in_flight_.load(), 0);
}

}  // namespace
}  // namespace corral::proxy
