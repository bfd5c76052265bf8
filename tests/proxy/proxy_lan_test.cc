// The LAN items of issue 13 at the proxy: API keys checked at the request head in each
// API's error shape, scopes, model globs (also filtering the model lists), revocation on a
// live keep-alive connection, per-key metrics, the failed-auth slow-down, and TLS (a
// pinned local CA, streaming, resumed sessions, and hostile TLS clients that must not
// disturb others). The proxy runs in front of a scripted fake upstream.
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "auth/keys.h"
#include "common/fs.h"
#include "proxy/proxy.h"
#include "proxy/proxy_test_util.h"
#include "proxy/static_provider.h"
#include "support/test_support.h"
#include "tls/tls.h"

namespace corral::proxy {
namespace {

using corral::testing::TempDir;

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using testutil::FakeUpstream;
using testutil::RawClient;
using tcp = asio::ip::tcp;

const std::string kSse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    "1c\r\ndata: {\"choices\":[\"tok1\"]}\n\n\r\n"
    "1c\r\ndata: {\"choices\":[\"tok2\"]}\n\n\r\n"
    "48\r\ndata: {\"timings\":{\"prompt_n\":7,\"predicted_n\":2,\"prompt_ms\":1.5,\"x\":1}}\n\n\r\n"
    "0\r\n\r\n";

// Streams kSse for every request (keep-alive, as a pooled upstream).
struct SseUpstream {
  SseUpstream()
      : up([this](tcp::socket& s, int) {
          std::string req;
          while (FakeUpstream::ReadRequest(s, &req)) {
            requests++;
            FakeUpstream::Write(s, kSse);
          }
        }) {}
  std::atomic<int> requests{0};
  FakeUpstream up;
};

std::string Req(const std::string& method, const std::string& target, const std::string& body,
                const std::string& extra = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}
std::string Chat(const std::string& model, const std::string& extra = "") {
  return Req("POST", "/v1/chat/completions", R"({"model":")" + model + R"(","stream":true})", extra);
}
std::string Bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

// Two models on one fake upstream; listeners: plain and TLS on loopback, keys asked on both.
struct LanHarness {
  explicit LanHarness(std::chrono::milliseconds client_timeout = std::chrono::milliseconds(10000))
      : provider({{"fake", Endpoint{"127.0.0.1", static_cast<uint16_t>(upstream.up.port())}},
                  {"other", Endpoint{"127.0.0.1", static_cast<uint16_t>(upstream.up.port())}}}) {
    provider.PublishTo(routes);
    keys_file = dir.File("keys.json");
    auto files = tls::EnsureLocalCert(dir.File("tls"), {});
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    ca = files->ca;
    auto add = [&](const std::string& name, auth::Scope scope, std::vector<std::string> models) {
      auto nk = auth::CreateKey(set, name, scope, std::move(models), 0);
      EXPECT_TRUE(nk.ok());
      return nk->token;
    };
    inference = add("inf", auth::Scope::kInference, {});
    read = add("reader", auth::Scope::kRead, {});
    admin = add("boss", auth::Scope::kAdmin, {});
    only_fake = add("fake-only", auth::Scope::kInference, {"fa*"});
    EXPECT_TRUE(auth::SaveKeyFile(keys_file, set).ok());
    ProxyOptions o;
    o.listen = "127.0.0.1:0,https://127.0.0.1:0";
    o.threads = 2;
    o.client_timeout = client_timeout;
    o.upstream_timeout = std::chrono::milliseconds(5000);
    o.tls_cert = files->cert;
    o.tls_key = files->key;
    o.keys_file = keys_file;
    o.require_key_on_loopback = true;
    proxy = std::make_unique<Proxy>(o, provider, routes);
    Status st = proxy->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  int plain_port() const { return proxy->ports().at(0); }
  int tls_port() const { return proxy->ports().at(1); }
  bool One(const std::string& bytes, int* status, std::string* head, std::string* body) {
    RawClient c(plain_port());
    *status = 0;
    return c.Send(bytes) && c.ReadResponse(head, body, status);
  }
  int Code(const std::string& bytes, std::string* body = nullptr) {
    int status;
    std::string head, b;
    if (!One(bytes, &status, &head, &b)) return -1;
    if (body != nullptr) *body = b;
    return status;
  }

  TempDir dir;
  SseUpstream upstream;
  StaticProvider provider;
  RoutingTable routes;
  auth::KeySet set;
  std::string keys_file, ca, inference, read, admin, only_fake;
  std::unique_ptr<Proxy> proxy;
};

// A TLS client that trusts only the harness's CA (pinned), as an OpenAI SDK configured with
// the CA bundle would.
struct TlsClient {
  // A client context that trusts only `ca_file`.
  static std::shared_ptr<ssl::context> Context(const std::string& ca_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->load_verify_file(ca_file);
    ctx->set_verify_mode(ssl::verify_peer);
    return ctx;
  }
  TlsClient(const std::string& ca_file, int port, SSL_SESSION* resume = nullptr,
            std::shared_ptr<ssl::context> shared = nullptr)
      : ctx(shared ? std::move(shared) : Context(ca_file)) {
    stream = std::make_unique<ssl::stream<tcp::socket>>(ioc, *ctx);
    stream->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
    stream->set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    if (resume != nullptr) SSL_set_session(stream->native_handle(), resume);
    boost::system::error_code ec;
    stream->handshake(ssl::stream_base::client, ec);
    ok = !ec;
    error = ec.message();
  }
  // One request; returns the status and fills the body (chunked bodies de-chunked by Beast).
  int Do(const std::string& bytes, std::string* body) {
    boost::system::error_code ec;
    asio::write(*stream, asio::buffer(bytes), ec);
    if (ec) return -1;
    http::response<http::string_body> res;
    http::read(*stream, buf, res, ec);
    if (ec) return -2;
    *body = res.body();
    return res.result_int();
  }
  bool reused() const { return SSL_session_reused(stream->native_handle()) == 1; }
  asio::io_context ioc;
  std::shared_ptr<ssl::context> ctx;
  std::unique_ptr<ssl::stream<tcp::socket>> stream;
  beast::flat_buffer buf;
  bool ok = false;
  std::string error;
};

bool MetricHas(const Proxy& p, const std::string& needle) {
  return p.MetricsText().find(needle) != std::string::npos;
}

TEST(ProxyLanTest, MissingOrBadKeyIsRefusedAtTheHeadInEachApiShape) {
  LanHarness h;
  std::string body;
  EXPECT_EQ(h.Code(Chat("fake"), &body), 401);
  auto j = nlohmann::json::parse(body);
  EXPECT_TRUE(j["error"].is_object()) << body;  // OpenAI shape
  EXPECT_EQ(h.Code(Req("POST", "/v1/messages", R"({"model":"fake"})"), &body), 401);
  j = nlohmann::json::parse(body);
  EXPECT_EQ(j["type"], "error") << body;  // Anthropic shape
  EXPECT_EQ(h.Code(Req("POST", "/api/chat", R"({"model":"fake"})"), &body), 401);
  j = nlohmann::json::parse(body);
  EXPECT_TRUE(j["error"].is_string()) << body;  // Ollama shape
  EXPECT_EQ(h.Code(Chat("fake", Bearer("crl_nope"))), 401);
  EXPECT_EQ(h.Code(Chat("fake", "Authorization: Digest x\r\n")), 401);
  EXPECT_EQ(h.Code(Req("GET", "/v1/models", "")), 401);
  EXPECT_EQ(h.Code(Req("GET", "/metrics", "")), 401);
  EXPECT_EQ(h.Code(Req("GET", "/health", "")), 200);  // probes stay open
  // Refused before the body: a huge declared body is never read (the answer comes at once).
  RawClient c(h.plain_port());
  ASSERT_TRUE(c.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 30000000\r\n\r\n"));
  std::string head, b;
  int status = 0;
  ASSERT_TRUE(c.ReadResponse(&head, &b, &status));
  EXPECT_EQ(status, 401);
  EXPECT_NE(testutil::HeaderValue(head, "www-authenticate").find("bearer"), std::string::npos) << head;
  EXPECT_EQ(h.upstream.requests.load(), 0);
}

TEST(ProxyLanTest, BearerApiKeyAndBasicAreAccepted) {
  LanHarness h;
  std::string body;
  EXPECT_EQ(h.Code(Chat("fake", Bearer(h.inference)), &body), 200);
  EXPECT_NE(body.find("tok2"), std::string::npos);
  EXPECT_EQ(h.Code(Req("POST", "/v1/messages", R"({"model":"fake"})", "x-api-key: " + h.inference + "\r\n")), 200);
  // Basic: browsers send user:password base64'd; the key is the password.
  std::string basic = "u:" + h.inference, b64;
  {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 2 < basic.size(); i += 3) {
      uint32_t v = (uint8_t(basic[i]) << 16) | (uint8_t(basic[i + 1]) << 8) | uint8_t(basic[i + 2]);
      for (int k = 18; k >= 0; k -= 6) b64 += a[(v >> k) & 63];
    }
    if (i + 1 == basic.size()) {
      uint32_t v = uint8_t(basic[i]) << 16;
      b64 += std::string{a[(v >> 18) & 63], a[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == basic.size()) {
      uint32_t v = (uint8_t(basic[i]) << 16) | (uint8_t(basic[i + 1]) << 8);
      b64 += std::string{a[(v >> 18) & 63], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
    }
  }
  EXPECT_EQ(h.Code(Chat("fake", "Authorization: Basic " + b64 + "\r\n")), 200);
}

TEST(ProxyLanTest, ScopesAndModelGlobs) {
  LanHarness h;
  std::string body;
  // read: lists and metrics, no inference, no admin routes.
  EXPECT_EQ(h.Code(Req("GET", "/v1/models", "", Bearer(h.read)), &body), 200);
  EXPECT_NE(body.find("\"other\""), std::string::npos);
  EXPECT_EQ(h.Code(Req("GET", "/metrics", "", Bearer(h.read))), 200);
  EXPECT_EQ(h.Code(Req("GET", "/api/tags", "", Bearer(h.read))), 200);
  EXPECT_EQ(h.Code(Chat("fake", Bearer(h.read)), &body), 403);
  EXPECT_NE(body.find("needs scope inference"), std::string::npos) << body;
  // inference: not the admin routes (POST /slots changes llama-server's state; Ollama load).
  EXPECT_EQ(h.Code(Req("POST", "/slots?model=fake&action=erase", "{}", Bearer(h.inference))), 403);
  EXPECT_EQ(h.Code(Req("POST", "/api/generate", R"({"model":"fake"})", Bearer(h.inference))), 403);
  EXPECT_EQ(h.Code(Req("POST", "/slots?model=fake&action=erase", "{}", Bearer(h.admin))), 200);
  // A model glob: only those models, and only those listed.
  EXPECT_EQ(h.Code(Chat("fake", Bearer(h.only_fake))), 200);
  EXPECT_EQ(h.Code(Chat("other", Bearer(h.only_fake)), &body), 403);
  EXPECT_NE(body.find("may not use model 'other'"), std::string::npos) << body;
  EXPECT_EQ(h.Code(Req("POST", "/api/chat", R"({"model":"other","stream":false})", Bearer(h.only_fake))), 403);
  EXPECT_EQ(h.Code(Req("GET", "/v1/models", "", Bearer(h.only_fake)), &body), 200);
  EXPECT_NE(body.find("\"fake\""), std::string::npos);
  EXPECT_EQ(body.find("\"other\""), std::string::npos) << body;
  EXPECT_EQ(h.Code(Req("GET", "/api/tags", "", Bearer(h.only_fake)), &body), 200);
  EXPECT_EQ(body.find("\"other\""), std::string::npos) << body;
  // Per-key counters by name (never the secret), tokens from the stream's timings.
  std::string m = h.proxy->MetricsText();
  EXPECT_NE(m.find("corral_key_requests_total{key=\"fake-only\"} "), std::string::npos) << m;
  EXPECT_NE(m.find("corral_key_completion_tokens_total{key=\"fake-only\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("corral_key_refused_total{key=\"reader\"} 1"), std::string::npos) << m;
  EXPECT_EQ(m.find(h.only_fake.substr(21)), std::string::npos);
}

TEST(ProxyLanTest, RevocationTakesEffectOnTheNextRequestOfALiveConnection) {
  LanHarness h;
  RawClient c(h.plain_port());
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(c.Send(Chat("fake", Bearer(h.inference))));
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  ASSERT_EQ(status, 200);
  ASSERT_TRUE(auth::RevokeKey(h.set, "inf").ok());
  ASSERT_TRUE(auth::SaveKeyFile(h.keys_file, h.set).ok());
  ASSERT_TRUE(c.Send(Chat("fake", Bearer(h.inference))));  // same keep-alive connection
  ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 401) << body;
  EXPECT_EQ(h.upstream.requests.load(), 1);
}

TEST(ProxyLanTest, RepeatedFailuresFromOneAddressAreSlowedDown) {
  LanHarness h;
  for (int i = 0; i < 7; ++i) EXPECT_EQ(h.Code(Chat("fake", Bearer("crl_wrong"))), 401);
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_auth_failures_total 7"));
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_auth_delayed_total 2"));
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"auth\"} 7"));
  // A success forgets the address.
  EXPECT_EQ(h.Code(Chat("fake", Bearer(h.inference))), 200);
  EXPECT_EQ(h.Code(Chat("fake", Bearer("crl_wrong"))), 401);
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_auth_delayed_total 2"));
}

TEST(ProxyLanTest, TlsStreamsWithAPinnedCaAndResumesSessions) {
  LanHarness h;
  TlsClient first(h.ca, h.tls_port());
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(SSL_version(first.stream->native_handle()), TLS1_3_VERSION);
  std::string body;
  EXPECT_EQ(first.Do(Chat("fake"), &body), 401);  // keys hold on TLS too
  auto shared = TlsClient::Context(h.ca);         // one client context, as an SDK keeps one
  TlsClient second(h.ca, h.tls_port(), nullptr, shared);
  ASSERT_TRUE(second.ok) << second.error;
  for (int i = 0; i < 3; ++i) {  // keep-alive: several streams on one TLS connection
    ASSERT_EQ(second.Do(Chat("fake", Bearer(h.inference)), &body), 200);
    EXPECT_NE(body.find("data: {\"choices\":[\"tok1\"]}\n\n"), std::string::npos) << body;
    EXPECT_NE(body.find("predicted_n"), std::string::npos);
  }
  // The ticket the server sent lets the next connection skip the full handshake.
  SSL_SESSION* session = SSL_get1_session(second.stream->native_handle());
  ASSERT_NE(session, nullptr);
  TlsClient resumed(h.ca, h.tls_port(), session, shared);
  SSL_SESSION_free(session);
  ASSERT_TRUE(resumed.ok) << resumed.error;
  EXPECT_TRUE(resumed.reused());
  EXPECT_EQ(resumed.Do(Chat("fake", Bearer(h.inference)), &body), 200);
  // A client that does not trust the CA fails its handshake (nothing is served to it).
  asio::io_context ioc;
  ssl::context strict(ssl::context::tls_client);
  strict.set_default_verify_paths();
  strict.set_verify_mode(ssl::verify_peer);
  ssl::stream<tcp::socket> s(ioc, strict);
  s.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(h.tls_port())));
  boost::system::error_code ec;
  s.handshake(ssl::stream_base::client, ec);
  EXPECT_TRUE(ec);
}

TEST(ProxyLanTest, HostileTlsClientsDoNotDisturbOthers) {
  LanHarness h(std::chrono::milliseconds(400));
  // Plain-text garbage on the TLS port: the handshake fails, the connection closes.
  RawClient garbage(h.tls_port());
  ASSERT_TRUE(garbage.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(2000, 'A')));
  // A truncated ClientHello: a record header that promises 512 bytes, then 10 of them.
  RawClient truncated(h.tls_port());
  ASSERT_TRUE(truncated.Send(std::string("\x16\x03\x01\x02\x00", 5) + std::string(10, '\x01')));
  // Slowloris: connects and says nothing.
  RawClient silent(h.tls_port());
  // A TLS client that stops mid-request after its handshake.
  TlsClient stalled(h.ca, h.tls_port());
  ASSERT_TRUE(stalled.ok);
  asio::write(*stalled.stream, asio::buffer(std::string("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")));
  // Meanwhile a good client streams.
  TlsClient good(h.ca, h.tls_port());
  ASSERT_TRUE(good.ok) << good.error;
  std::string body;
  EXPECT_EQ(good.Do(Chat("fake", Bearer(h.inference)), &body), 200);
  // Every hostile one is closed by the proxy (garbage at once, the others by the client
  // timeout); the reads end with EOF, never hang.
  for (RawClient* c : {&garbage, &truncated, &silent}) {
    std::string rest = c->ReadToEof();
    EXPECT_EQ(rest.find("HTTP/1.1 200"), std::string::npos);
  }
  beast::flat_buffer b;
  http::response<http::string_body> res;
  boost::system::error_code ec;
  http::read(*stalled.stream, b, res, ec);
  EXPECT_TRUE(ec || res.result_int() == 408) << res.result_int();
  // And the proxy still serves new TLS clients.
  TlsClient after(h.ca, h.tls_port());
  ASSERT_TRUE(after.ok) << after.error;
  EXPECT_EQ(after.Do(Chat("fake", Bearer(h.inference)), &body), 200);
}

}  // namespace
}  // namespace corral::proxy
