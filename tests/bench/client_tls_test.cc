// The bench client over TLS and with an API key (issue 13), against Corral's real proxy
// with a local CA made for the test, in front of a scripted SSE upstream: streams complete
// and are timed, the second connection resumes the first one's session, the chain is
// verified against the pinned CA (a foreign CA fails the handshake), and the key goes as a
// Bearer header (without it the keyed listener answers 401).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "auth/keys.h"
#include "bench/client.h"
#include "bench/suites.h"
#include "common/fs.h"
#include "proxy/proxy.h"
#include "proxy/proxy_test_util.h"
#include "proxy/static_provider.h"
#include "support/test_support.h"
#include "tls/tls.h"

namespace corral::bench {
namespace {

using corral::testing::TempDir;
using proxy::testutil::FakeUpstream;
using tcp = boost::asio::ip::tcp;

constexpr auto kTimeout = std::chrono::seconds(10);

// Two content events, a finish_reason with usage, then [DONE]: what llama-server streams.
const std::string kSse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    "2f\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\r\n"
    "2f\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n\r\n"
    "7e\r\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n\r\n"
    "e\r\ndata: [DONE]\n\n\r\n"
    "0\r\n\r\n";

// Listeners: plain (keys asked, require_key_on_loopback) and TLS (the same).
struct KeyedTlsProxy {
  KeyedTlsProxy()
      : upstream([](tcp::socket& s, int) {
          std::string req;
          while (FakeUpstream::ReadRequest(s, &req)) FakeUpstream::Write(s, kSse);
        }),
        provider({{"fake", proxy::Endpoint{"127.0.0.1", static_cast<uint16_t>(upstream.port())}}}) {
    provider.PublishTo(routes);
    auto files = tls::EnsureLocalCert(dir.File("tls"), {});
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    ca = dir.File("tls/ca.pem");
    auth::KeySet set;
    auto key = auth::CreateKey(set, "bench", auth::Scope::kInference, {}, 0);
    EXPECT_TRUE(key.ok());
    token = key->token;
    EXPECT_TRUE(auth::SaveKeyFile(dir.File("keys.json"), set).ok());
    proxy::ProxyOptions o;
    o.listen = "127.0.0.1:0,https://127.0.0.1:0";
    o.threads = 1;
    o.client_timeout = std::chrono::milliseconds(10000);
    o.upstream_timeout = std::chrono::milliseconds(5000);
    o.tls_cert = files->cert;
    o.tls_key = files->key;
    o.keys_file = dir.File("keys.json");
    o.require_key_on_loopback = true;
    px = std::make_unique<proxy::Proxy>(o, provider, routes);
    Status st = px->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  Endpoint Plain() const { return Endpoint{"127.0.0.1", std::to_string(px->ports().at(0)), ""}; }
  Endpoint Tls() const {
    Endpoint ep{"127.0.0.1", std::to_string(px->ports().at(1)), ""};
    ep.tls = true;
    ep.ca_file = ca;
    ep.api_key = token;
    return ep;
  }

  TempDir dir;
  FakeUpstream upstream;
  proxy::StaticProvider provider;
  proxy::RoutingTable routes;
  std::string ca, token;
  std::unique_ptr<proxy::Proxy> px;
};

const std::vector<StreamRequest> kOne = {{"/v1/chat/completions", R"({"model":"fake","stream":true})"}};

TEST(ClientTls, StreamsWithAKeyAndResumesTheSession) {
  KeyedTlsProxy p;
  ForgetTlsSessions();
  const Endpoint ep = p.Tls();
  auto first = RunStreams(ep, kOne, kTimeout);
  ASSERT_EQ(first.size(), 1U);
  RequestRecord r;
  FinishRecord(first[0], 2, r);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.content_events, 2);
  EXPECT_EQ(r.completion_tokens, 2);
  EXPECT_GE(first[0].handshake_ms, 0);
  EXPECT_GE(first[0].connect_ms, first[0].handshake_ms);
  EXPECT_FALSE(first[0].tls_resumed);
  // The next connections (two at once, as a concurrent cell) resume with the kept ticket.
  auto again = RunStreams(ep, {kOne[0], kOne[0]}, kTimeout);
  ASSERT_EQ(again.size(), 2U);
  for (const auto& t : again) {
    RequestRecord rr;
    FinishRecord(t, 2, rr);
    EXPECT_TRUE(rr.ok) << rr.error;
    EXPECT_TRUE(t.tls_resumed);
  }
  // A blocking request over TLS with the key (detection and probes use it).
  auto models = HttpRequest(ep, "/v1/models", "", kTimeout);
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  EXPECT_EQ(models->status, 200);
  EXPECT_NE(models->body.find("fake"), std::string::npos);
  // Forgotten sessions: a full handshake again.
  ForgetTlsSessions();
  auto full = RunStreams(ep, kOne, kTimeout);
  EXPECT_TRUE(full[0].error.empty()) << full[0].error;
  EXPECT_FALSE(full[0].tls_resumed);
}

TEST(ClientTls, TheKeyGoesAsABearerHeader) {
  KeyedTlsProxy p;
  Endpoint no_key = p.Tls();
  no_key.api_key.clear();
  auto refused = RunStreams(no_key, kOne, kTimeout);
  EXPECT_EQ(refused[0].http_status, 401);
  EXPECT_NE(refused[0].error.find("HTTP 401"), std::string::npos);
  Endpoint plain = p.Plain();
  plain.api_key = p.token;
  auto ok = RunStreams(plain, kOne, kTimeout);
  RequestRecord r;
  FinishRecord(ok[0], 2, r);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_LT(ok[0].handshake_ms, 0);  // plain HTTP: no handshake
  plain.api_key = "crl_not_a_key";
  EXPECT_EQ(RunStreams(plain, kOne, kTimeout)[0].http_status, 401);
}

TEST(ClientTls, VerifiesTheChainAgainstThePinnedCa) {
  KeyedTlsProxy p;
  TempDir other;
  ASSERT_TRUE(tls::EnsureLocalCert(other.File("tls"), {}).ok());
  Endpoint foreign = p.Tls();
  foreign.ca_file = other.File("tls/ca.pem");
  auto t = RunStreams(foreign, kOne, kTimeout);
  EXPECT_EQ(t[0].http_status, 0);
  EXPECT_NE(t[0].error.find("TLS handshake"), std::string::npos) << t[0].error;
  // The system's roots do not hold the local CA either.
  Endpoint system_roots = p.Tls();
  system_roots.ca_file.clear();
  EXPECT_NE(RunStreams(system_roots, kOne, kTimeout)[0].error.find("TLS handshake"), std::string::npos);
  // A missing CA file is a clear error, not a crash.
  Endpoint missing = p.Tls();
  missing.ca_file = other.File("nope.pem");
  EXPECT_NE(RunStreams(missing, kOne, kTimeout)[0].error.find("CA file"), std::string::npos);
  EXPECT_FALSE(HttpRequest(missing, "/health", "", kTimeout).ok());
  // Plain HTTP to the TLS port fails on its own, within the timeout.
  Endpoint mixed = p.Tls();
  mixed.tls = false;
  EXPECT_FALSE(RunStreams(mixed, kOne, kTimeout)[0].error.empty());
}

TEST(ClientTls, TargetSpecCarriesTheCaAndTheKeyFromTheEnvironment) {
  KeyedTlsProxy p;
  ::setenv("CORRAL_BENCH_TEST_KEY", p.token.c_str(), 1);
  auto t = ParseTargetSpec("proxy-tls=https://127.0.0.1:" + std::to_string(p.px->ports().at(1)) + ",ca=" + p.ca +
                           ",key-env=CORRAL_BENCH_TEST_KEY,vs=proxy");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->ca_file, p.ca);
  EXPECT_EQ(t->api_key, p.token);
  EXPECT_EQ(t->api_key_source, "env CORRAL_BENCH_TEST_KEY");
  EXPECT_EQ(t->compare_to, "proxy");
  auto ep = EndpointOf(*t);
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->tls);
  auto r = HttpRequest(*ep, "/v1/models", "", kTimeout);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  ::unsetenv("CORRAL_BENCH_TEST_KEY");
  EXPECT_FALSE(ParseTargetSpec("a=https://127.0.0.1:1,key-env=CORRAL_BENCH_TEST_KEY").ok());  // unset
  EXPECT_FALSE(ParseTargetSpec("a=http://127.0.0.1:1,ca=" + p.ca).ok());                      // ca= needs https
  EXPECT_FALSE(ParseTargetSpec("a=https://127.0.0.1:1,ca=/nonexistent/ca.pem").ok());
  const std::string key_file = p.dir.File("key.txt");
  ASSERT_TRUE(WriteFileAtomic(key_file, p.token + "\n").ok());
  auto from_file = ParseTargetSpec("a=https://127.0.0.1:1,key-file=" + key_file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->api_key, p.token);
}

}  // namespace
}  // namespace corral::bench
