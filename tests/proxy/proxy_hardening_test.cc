// Hostile input (issue 11, the proxy's items): deep JSON, browsers (Origin, CORS, Host),
// response splitting, request smuggling and global limits. The proxy runs in front of a
// scripted fake upstream; every test checks both the refusal and that nothing reached the
// upstream (or that the proxy still serves afterwards). Each would fail on e021802.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "proxy/json_guard.h"
#include "proxy/ollama.h"
#include "proxy/proxy.h"
#include "proxy/proxy_test_util.h"
#include "proxy/request_guard.h"
#include "proxy/static_provider.h"

namespace corral::proxy {
namespace {

using testutil::FakeUpstream;
using testutil::RawClient;
using tcp = boost::asio::ip::tcp;

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";

std::string Post(const std::string& target, const std::string& body, const std::string& extra = "",
                 const std::string& host = "127.0.0.1") {
  return "POST " + target + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// An upstream that answers every request with 200 {"ok":true} and counts requests.
struct OkUpstream {
  OkUpstream()
      : up([this](tcp::socket& s, int) {
          std::string req;
          while (FakeUpstream::ReadRequest(s, &req)) {
            requests++;
            {
              std::lock_guard<std::mutex> lock(mu);
              last = req;
            }
            FakeUpstream::Write(s, reply);
          }
        }) {}
  std::atomic<int> requests{0};
  std::mutex mu;
  std::string last;
  std::string reply = kOk;
  FakeUpstream up;
};

// A proxy with one model "fake" -> the fake upstream.
struct Harness {
  explicit Harness(int upstream_port, ProxyOptions o = {})
      : provider({{"fake", Endpoint{"127.0.0.1", static_cast<uint16_t>(upstream_port)}}}) {
    provider.PublishTo(routes);
    o.listen = "127.0.0.1:0";
    if (o.threads == 0) o.threads = 2;
    o.upstream_timeout = std::chrono::milliseconds(2000);
    proxy = std::make_unique<Proxy>(o, provider, routes);
    Status st = proxy->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  int port() const { return proxy->port(); }
  // One request on a fresh connection.
  bool One(const std::string& bytes, int* status, std::string* head, std::string* body) {
    RawClient c(port());
    *status = 0;
    return c.Send(bytes) && c.ReadResponse(head, body, status);
  }
  StaticProvider provider;
  RoutingTable routes;
  std::unique_ptr<Proxy> proxy;
};

bool MetricHas(const Proxy& p, const std::string& line) {
  return p.MetricsText().find(line + "\n") != std::string::npos;
}

// Polls `cond` (bounded) instead of sleeping a fixed time.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds within = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void ExpectServes(Harness& h) {
  int status;
  std::string head, body;
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})"), &status, &head, &body));
  EXPECT_EQ(status, 200) << head << body;
}

// ---------------------------------------------------------------- item 1: deep JSON

// A reference depth: brackets outside strings, recursion-free, byte by byte.
size_t ReferenceDepth(std::string_view s) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') deepest = std::max(deepest, ++depth);
    if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return deepest;
}

TEST(JsonGuardTest, DepthAgreesWithAReference) {
  const std::vector<std::string> cases = {
      "",
      "{}",
      R"({"a":[1,2,{"b":[]}]})",
      R"({"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})",  // brackets inside a string do not count
      R"({"s":"\"[[[[","t":[[[]]]})",                             // escaped quote inside a string
      R"({"s":"\\","t":[[[[[[]]]]]]})",                           // a string ending in an escaped backslash
      R"({"s":"\\\"[[[[[[[[[[","t":1})",
      "[[[[[[[[]]]]]]]]" + std::string("\"unterminated [[[["),
      "]]]]]][[[",  // unbalanced: never negative
      Nested(1000),
  };
  for (const auto& c : cases) {
    size_t want = ReferenceDepth(c);
    EXPECT_EQ(ScanJsonShape(c, 1U << 20).depth, want) << c;
    for (size_t limit : {size_t{1}, size_t{3}, size_t{5}, size_t{8}, size_t{128}}) {
      EXPECT_EQ(JsonDepthWithin(c, limit), want <= limit) << c << " limit " << limit;
    }
  }
}

TEST(JsonGuardTest, DeepInputIsRefusedQuicklyAndWithoutRecursion) {
  std::string deep = R"({"model":"m","messages":[{"role":"user","content":)" + Nested(1'000'000) + "}]}";
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(JsonDepthWithin(deep, kDefaultMaxJsonDepth));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  JsonShape shape = ScanJsonShape(deep, 128);
  EXPECT_TRUE(shape.stopped);
  EXPECT_EQ(shape.depth, 129U);
  EXPECT_TRUE(JsonDepthWithin(Nested(128), 128));
  EXPECT_FALSE(JsonDepthWithin(Nested(129), 128));
  // Many brackets but shallow: the fast path cannot decide, the scan passes it.
  std::string wide = "[";
  for (int i = 0; i < 5000; ++i) wide += "[1],";
  wide += "[]]";
  EXPECT_TRUE(JsonDepthWithin(wide, 2));
  EXPECT_EQ(ScanJsonShape(wide, 2).values, 5000U * 2 + 2 + 1);
}

// Item 1a: the Ollama translation copied and dumped such a body recursively: SIGSEGV.
TEST(OllamaHardeningTest, DeepContentOrToolsAreRefusedNotRecursedInto) {
  for (const std::string& body :
       {R"({"model":"m","messages":[{"role":"user","content":)" + Nested(100'000) + "}]}",
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":)" + Nested(100'000) + "}",
        R"({"model":"m","prompt":"x","format":)" + std::string(100'000, '{') + "}"}) {
    auto plan = PlanOllamaRequest(RouteKind::kOllamaChat, body);
    ASSERT_FALSE(plan.ok());
    EXPECT_NE(plan.status().message().find("deeper than 128"), std::string::npos) << plan.status().message();
  }
  OllamaLimits limits;
  limits.max_depth = 5;  // object, messages, message, content, one more
  EXPECT_FALSE(
      PlanOllamaRequest(RouteKind::kOllamaChat, R"({"model":"m","messages":[{"content":[[[1]]]}]})", limits).ok());
  EXPECT_TRUE(
      PlanOllamaRequest(RouteKind::kOllamaChat, R"({"model":"m","messages":[{"content":[[1]]}]})", limits).ok());
}

TEST(OllamaHardeningTest, WhatTheTranslationBuildsIsBounded) {
  OllamaLimits limits;
  limits.max_values = 1000;
  std::string many = R"({"model":"m","input":[)";
  for (int i = 0; i < 2000; ++i) many += "\"a\",";
  many += "\"a\"]}";
  auto plan = PlanOllamaRequest(RouteKind::kOllamaEmbed, many, limits);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("JSON values"), std::string::npos) << plan.status().message();
  // Images grow by a data: prefix each: the translated body is held to max_upstream_bytes.
  limits = OllamaLimits{};
  limits.max_upstream_bytes = 4096;
  std::string images = R"({"model":"m","messages":[{"role":"user","content":"x","images":[)";
  for (int i = 0; i < 200; ++i) images += std::string(i == 0 ? "" : ",") + "\"\"";
  images += "]}]}";
  plan = PlanOllamaRequest(RouteKind::kOllamaChat, images, limits);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("larger than 4096"), std::string::npos) << plan.status().message();
}

TEST(OllamaHardeningTest, TranslatorSkipsDeepEventsAndBoundsLines) {
  OllamaResponseTranslator t(RouteKind::kOllamaChat, "m", /*stream=*/true);
  std::string out = t.Feed("data: {\"choices\":[{\"delta\":{\"content\":\"a\",\"tool_calls\":" + Nested(200'000) +
                           "}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n");
  EXPECT_EQ(out.find("\"a\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"content\":\"b\""), std::string::npos) << out;
  // One SSE line that never ends stops the translation with an error, not unbounded growth.
  OllamaResponseTranslator big(RouteKind::kOllamaChat, "m", /*stream=*/true);
  std::string chunk(1 << 20, 'x');
  (void)big.Feed("data: {\"x\":\"");
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(big.Feed(chunk).empty());
  EXPECT_NE(big.Finish().find("too large"), std::string::npos);
  // Non-streaming: a deep body is not parsed.
  OllamaResponseTranslator whole(RouteKind::kOllamaChat, "m", /*stream=*/false);
  (void)whole.Feed(Nested(500'000));
  EXPECT_NE(whole.Finish().find("error"), std::string::npos);
}

// Items 1a and 1b through the proxy: refused with 400 in the API's shape before forwarding.
TEST(ProxyHardeningTest, DeepJsonIsRefusedBeforeForwardingOrTranslating) {
  OkUpstream up;
  ProxyOptions o;
  o.max_body_bytes = 8U << 20;
  Harness h(up.up.port(), o);
  int status;
  std::string head, body;
  // 1,000,000 deep inside an otherwise normal chat body: this crashed llama-server.
  std::string chat = R"({"model":"fake","messages":[{"role":"user","content":"hi"}],"x":)" + Nested(1'000'000) + "}";
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", chat), &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  EXPECT_NE(body.find("deeper than 128 levels"), std::string::npos) << body;
  EXPECT_NE(body.find("\"invalid_request_error\""), std::string::npos) << body;  // OpenAI shape
  // 100,000 deep in /api/chat content: this killed the daemon.
  std::string ollama = R"({"model":"fake","messages":[{"role":"user","content":)" + Nested(100'000) + "}]}";
  ASSERT_TRUE(h.One(Post("/api/chat", ollama), &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(body.rfind("{\"error\":\"", 0), 0U) << body;  // Ollama shape
  ASSERT_TRUE(h.One(Post("/api/show", R"({"model":)" + Nested(10'000) + "}"), &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  ASSERT_TRUE(h.One(Post("/v1/messages", R"({"model":"fake","x":)" + Nested(200) + "}"), &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  EXPECT_NE(body.find("\"type\":\"error\""), std::string::npos) << body;  // Anthropic shape
  EXPECT_EQ(up.requests.load(), 0) << "nothing too deep may reach llama-server";
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"json_depth\"} 4"));
  // Deep but within the limit passes untouched.
  ASSERT_TRUE(
      h.One(Post("/v1/chat/completions", R"({"model":"fake","x":)" + Nested(120) + "}"), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(up.requests.load(), 1);
}

TEST(ProxyHardeningTest, DepthLimitIsAnOption) {
  OkUpstream up;
  ProxyOptions o;
  o.max_json_depth = 3;
  Harness h(up.up.port(), o);
  int status;
  std::string head, body;
  ASSERT_TRUE(h.One(Post("/v1/completions", R"({"model":"fake","a":[[1]]})"), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  ASSERT_TRUE(h.One(Post("/v1/completions", R"({"model":"fake","a":[[[1]]]})"), &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  EXPECT_NE(body.find("deeper than 3 levels (option max_json_depth)"), std::string::npos) << body;
}

// ---------------------------------------------------------------- item 4: browsers

TEST(RequestGuardTest, HostNamesOnALoopbackListener) {
  for (const char* ok : {"127.0.0.1", "127.0.0.1:11450", "127.3.4.5:80", "localhost", "LOCALHOST:11450",
                         "app.localhost:3000", "localhost.", "[::1]", "[::1]:11450", "[::ffff:127.0.0.1]:1"}) {
    EXPECT_TRUE(HostAllowedOnLoopback(ok, "127.0.0.1")) << ok;
  }
  for (const char* bad : {"evil.example", "evil.example:11450", "localhost.evil.example", "127.0.0.1.nip.io",
                          "10.0.0.1", "[::2]", "", ":80", "[::1", "localhost:80x", "0.0.0.0", "evillocalhost"}) {
    EXPECT_FALSE(HostAllowedOnLoopback(bad, "127.0.0.1")) << bad;
  }
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("192.168.1.2"));
}

TEST(RequestGuardTest, OriginPolicy) {
  OriginPolicy none({}, "127.0.0.1", 11450);
  EXPECT_TRUE(none.Allowed("http://127.0.0.1:11450"));
  EXPECT_TRUE(none.Allowed("http://localhost:11450"));
  EXPECT_TRUE(none.Allowed("http://[::1]:11450"));
  EXPECT_FALSE(none.Allowed("http://localhost:3000"));
  EXPECT_FALSE(none.Allowed("null"));
  EXPECT_FALSE(none.Allowed("https://127.0.0.1:11450"));
  EXPECT_FALSE(none.InAllowList("http://127.0.0.1:11450")) << "own origin: same-origin, no CORS";
  OriginPolicy some({"http://localhost:3000", "HTTPS://App.Example/"}, "::1", 8080);
  EXPECT_TRUE(some.Allowed("http://[::1]:8080"));
  EXPECT_TRUE(some.InAllowList("http://localhost:3000"));
  EXPECT_TRUE(some.InAllowList("https://app.example"));
  EXPECT_FALSE(some.Allowed("http://app.example"));
  OriginPolicy any({"*"}, "127.0.0.1", 1);
  EXPECT_TRUE(any.Allowed("http://anything.example"));
  EXPECT_TRUE(IsAccessControlField("Access-Control-Allow-Origin"));
  EXPECT_TRUE(IsAccessControlField("access-control-allow-credentials"));
  EXPECT_FALSE(IsAccessControlField("access-control"));
  EXPECT_FALSE(IsAccessControlField("x-access-control-x"));
}

// Item 4a: llama-server echoes Origin in Access-Control-Allow-Origin; it was passed on.
TEST(ProxyHardeningTest, UpstreamCorsFieldsAreNeverPassedOn) {
  OkUpstream up;
  up.reply =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: http://evil.example\r\n"
      "Access-Control-Allow-Credentials: true\r\nX-Other: kept\r\nContent-Length: 2\r\n\r\n{}";
  ProxyOptions o;
  o.cors_origins = {"http://localhost:3000"};
  Harness h(up.up.port(), o);
  int status;
  std::string head, body;
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})"), &status, &head, &body));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-credentials"), "") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "x-other"), "kept");
  // An allowed origin gets the proxy's own CORS answer (its origin, never the upstream's).
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})", "Origin: http://localhost:3000\r\n"), &status,
                    &head, &body));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "http://localhost:3000") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-credentials"), "") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "vary"), "origin") << head;
  // Local answers too.
  ASSERT_TRUE(h.One("GET /v1/models HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:3000\r\n\r\n", &status,
                    &head, &body));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "http://localhost:3000") << head;
}

TEST(ProxyHardeningTest, PreflightIsAnsweredForAllowedOriginsOnly) {
  OkUpstream up;
  ProxyOptions o;
  o.cors_origins = {"http://localhost:3000"};
  Harness h(up.up.port(), o);
  const std::string preflight =
      "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nOrigin: %s\r\n"
      "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, authorization\r\n\r\n";
  auto with = [&](const std::string& origin) {
    std::string r = preflight;
    r.replace(r.find("%s"), 2, origin);
    return r;
  };
  int status;
  std::string head, body;
  ASSERT_TRUE(h.One(with("http://localhost:3000"), &status, &head, &body));
  EXPECT_EQ(status, 204) << head;
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "http://localhost:3000") << head;
  EXPECT_NE(testutil::HeaderValue(head, "access-control-allow-methods").find("post"), std::string::npos) << head;
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-headers"), "content-type, authorization") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "content-length"), "") << head;
  ASSERT_TRUE(h.One(with("http://evil.example"), &status, &head, &body));
  EXPECT_EQ(status, 403) << head;
  EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "") << head;
  EXPECT_EQ(up.requests.load(), 0);
}

// Item 4b: a text/plain POST from any web page (no preflight) got 200; an Ollama
// keep_alive: 0 from it unloaded a model.
TEST(ProxyHardeningTest, ForeignOriginsAreRefused) {
  OkUpstream up;
  Harness h(up.up.port());
  int status;
  std::string head, body;
  const std::string evil = "Origin: http://evil.example\r\n";
  std::string csrf = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(h.port()) +
                     "\r\nContent-Type: text/plain\r\n" + evil + "Content-Length: 16\r\n\r\n{\"model\":\"fake\"}";
  ASSERT_TRUE(h.One(csrf, &status, &head, &body));
  EXPECT_EQ(status, 403) << body;
  EXPECT_NE(body.find("http://evil.example"), std::string::npos) << body;
  EXPECT_EQ(testutil::HeaderValue(head, "connection"), "close");
  ASSERT_TRUE(h.One(Post("/api/generate", R"({"model":"fake","keep_alive":0})", evil), &status, &head, &body));
  EXPECT_EQ(status, 403) << body;
  EXPECT_EQ(body.rfind("{\"error\":", 0), 0U) << body;  // Ollama shape
  EXPECT_TRUE(h.provider.KeepAliveCalls().empty()) << "a foreign page unloaded a model";
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})", "Origin: null\r\n"), &status, &head, &body));
  EXPECT_EQ(status, 403) << body;
  EXPECT_EQ(up.requests.load(), 0);
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"origin\"} 3"));
  // The proxy's own origins are same-origin: served, without CORS fields.
  for (const std::string& own :
       {"http://127.0.0.1:" + std::to_string(h.port()), "http://localhost:" + std::to_string(h.port())}) {
    ASSERT_TRUE(
        h.One(Post("/v1/chat/completions", R"({"model":"fake"})", "Origin: " + own + "\r\n"), &status, &head, &body));
    EXPECT_EQ(status, 200) << own << body;
    EXPECT_EQ(testutil::HeaderValue(head, "access-control-allow-origin"), "") << head;
  }
  // The same unload without an Origin (a local program) still works.
  ASSERT_TRUE(h.One(Post("/api/generate", R"({"model":"fake","keep_alive":0})"), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(h.provider.KeepAliveCalls().size(), 1U);
}

// Item 4c: DNS rebinding. A page whose name now resolves to 127.0.0.1 sends its own name
// in Host (and a same-origin request has no Origin to refuse).
TEST(ProxyHardeningTest, ForeignHostIsRefusedOnLoopback) {
  OkUpstream up;
  Harness h(up.up.port());
  int status;
  std::string head, body;
  for (const std::string& host :
       std::vector<std::string>{"evil.example", "evil.example:" + std::to_string(h.port()), "192.168.1.10"}) {
    RawClient c(h.port());
    ASSERT_TRUE(c.Send(Post("/v1/chat/completions", R"({"model":"fake"})", "", host)));
    std::string all = c.ReadToEof();  // answered, then closed
    EXPECT_EQ(all.rfind("HTTP/1.1 421 ", 0), 0U) << all;
    EXPECT_NE(all.find("DNS rebinding"), std::string::npos) << all;
  }
  EXPECT_EQ(up.requests.load(), 0);
  for (const std::string& host :
       std::vector<std::string>{"localhost:" + std::to_string(h.port()), "127.0.0.1", "[::1]:1", "x.localhost"}) {
    ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})", "", host), &status, &head, &body));
    EXPECT_EQ(status, 200) << host << body;
  }
  // HTTP/1.1 must carry exactly one Host (RFC 9112 §3.2); HTTP/1.0 may omit it.
  ASSERT_TRUE(h.One("GET /health HTTP/1.1\r\n\r\n", &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  ASSERT_TRUE(h.One("GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n", &status, &head, &body));
  EXPECT_EQ(status, 400) << body;
  RawClient c10(h.port());
  ASSERT_TRUE(c10.Send("GET /health HTTP/1.0\r\n\r\n"));
  std::string got = c10.ReadToEof();
  EXPECT_EQ(got.rfind("HTTP/1.1 200 ", 0), 0U) << got;
}

// ---------------------------------------------------------------- item 5: response splitting

TEST(RequestGuardTest, HeaderValuesAndModelNames) {
  EXPECT_TRUE(IsSafeHeaderValue("qwen2.5-7b:Q4_K_M"));
  EXPECT_TRUE(IsSafeHeaderValue("tab\tand \xc3\xa9"));
  EXPECT_FALSE(IsSafeHeaderValue("a\r\nSet-Cookie: x=1"));
  EXPECT_FALSE(IsSafeHeaderValue("a\nb"));
  EXPECT_FALSE(IsSafeHeaderValue(std::string("a\0b", 3)));
  EXPECT_FALSE(IsSafeHeaderValue("a\x7f"));
  EXPECT_TRUE(HasControlChars("a\tb"));
  EXPECT_TRUE(HasControlChars("a\rb"));
  EXPECT_FALSE(HasControlChars("models/qwen 7b"));
}

TEST(ProxyHardeningTest, ControlCharactersInModelNamesAreRefusedAndNeverReachTheHead) {
  OkUpstream up;
  const std::string evil = "fake\r\nSet-Cookie: session=stolen";
  // A model by that very name exists: before the fix its name went into x-corral-model.
  StaticProvider provider({{evil, Endpoint{"127.0.0.1", static_cast<uint16_t>(up.up.port())}},
                           {"fake", Endpoint{"127.0.0.1", static_cast<uint16_t>(up.up.port())}}});
  RoutingTable routes;
  provider.PublishTo(routes);
  ProxyOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  Proxy proxy(o, provider, routes);
  ASSERT_TRUE(proxy.Start().ok());
  auto check = [&](const std::string& request, const std::string& what) {
    RawClient c(proxy.port());
    ASSERT_TRUE(c.Send(request));
    std::string head, body;
    int status = 0;
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status)) << what;
    EXPECT_EQ(status, 400) << what << head << body;
    EXPECT_EQ(testutil::HeaderValue(head, "set-cookie"), "") << what << head;
    EXPECT_EQ(head.find("session=stolen"), std::string::npos) << what << head;
    EXPECT_NE(body.find("control characters"), std::string::npos) << what << body;
  };
  check(Post("/v1/chat/completions", R"({"model":"fake\r\nSet-Cookie: session=stolen"})"), "body");
  check(Post("/props?model=fake%0D%0ASet-Cookie:%20session=stolen", "{}"), "query");
  check(Post("/api/chat", R"({"model":"fake\r\nSet-Cookie: session=stolen","messages":[{"content":"x"}]})"), "ollama");
  check(Post("/api/show", R"({"model":"fake\r\nSet-Cookie: session=stolen"})"), "show");
  check(Post("/v1/chat/completions", R"({"model":"fake\u0000"})"), "nul");
  EXPECT_EQ(up.requests.load(), 0);
}

// ---------------------------------------------------------------- item 6: smuggling

TEST(RequestGuardTest, FramingRules) {
  EXPECT_TRUE(RequestFramingError(0, "", true, 11).empty());
  EXPECT_TRUE(RequestFramingError(1, "chunked", false, 11).empty());
  EXPECT_TRUE(RequestFramingError(1, " Chunked ", false, 11).empty());
  for (const char* bad :
       {"xchunked", "chunked, identity", "identity", "gzip, chunked", "chunked, chunked", "chunked;x=1", "chunk", ""}) {
    EXPECT_FALSE(RequestFramingError(1, bad, false, 11).empty()) << bad;
  }
  EXPECT_FALSE(RequestFramingError(1, "chunked", true, 11).empty());
  EXPECT_FALSE(RequestFramingError(2, "chunked", false, 11).empty());
  EXPECT_FALSE(RequestFramingError(1, "chunked", false, 10).empty());
}

// Before the fix, "Transfer-Encoding: xchunked" framed no body at all and the body was
// parsed as a second request ("GET /smuggled"): two answers on one connection.
TEST(ProxyHardeningTest, EveryUnclearFramingIs400AndClose) {
  OkUpstream up;
  Harness h(up.up.port());
  const std::string smuggled = "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const std::string chunked_body = "2\r\n{}\r\n0\r\n\r\n";
  struct Case {
    std::string name, head_fields, version;
  };
  const std::vector<Case> cases = {
      {"xchunked", "Transfer-Encoding: xchunked\r\n", "1.1"},
      {"chunked, identity", "Transfer-Encoding: chunked, identity\r\n", "1.1"},
      {"identity", "Transfer-Encoding: identity\r\n", "1.1"},
      {"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n", "1.1"},
      {"chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n", "1.1"},
      {"two fields", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "1.1"},
      {"TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "1.1"},
      {"TE on HTTP/1.0", "Transfer-Encoding: chunked\r\n", "1.0"},
      {"TE with a tab", "Transfer-Encoding:\tchunked, x\r\n", "1.1"},
  };
  for (const auto& c : cases) {
    RawClient client(h.port());
    std::string req = "POST /v1/chat/completions HTTP/" + c.version + "\r\nHost: 127.0.0.1\r\n" + c.head_fields +
                      "\r\n" + chunked_body + smuggled;
    ASSERT_TRUE(client.Send(req));
    std::string all = client.ReadToEof();
    EXPECT_EQ(all.rfind("HTTP/1.1 400 ", 0), 0U) << c.name << ": " << all;
    EXPECT_EQ(testutil::HeaderValue(all.substr(0, all.find("\r\n\r\n") + 4), "connection"), "close") << c.name;
    EXPECT_EQ(all.find("HTTP/1.1", 1), std::string::npos) << c.name << ": a second response was smuggled: " << all;
  }
  EXPECT_EQ(up.requests.load(), 0);
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"framing\"} " + std::to_string(cases.size())));
  // Exactly "chunked" (any case) is the one coding accepted, and the body arrives re-framed.
  RawClient ok(h.port());
  ASSERT_TRUE(
      ok.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
              "10\r\n{\"model\":\"fake\"}\r\n0\r\n\r\n"));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(ok.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200) << head << body;
  std::lock_guard<std::mutex> lock(up.mu);
  EXPECT_NE(up.last.find("Content-Length: 16\r\n"), std::string::npos) << up.last;
}

// ---------------------------------------------------------------- item 9: global limits

TEST(ProxyHardeningTest, ConnectionCapsAnswer503AndRecover) {
  OkUpstream up;
  ProxyOptions o;
  o.max_connections = 3;
  o.max_connections_per_client = 100;
  Harness h(up.up.port(), o);
  std::vector<std::unique_ptr<RawClient>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<RawClient>(h.port()));
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_connections_open 3"); }));
  RawClient over(h.port());
  ASSERT_TRUE(over.Send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string all = over.ReadToEof();
  EXPECT_EQ(all.rfind("HTTP/1.1 503 ", 0), 0U) << all;
  EXPECT_EQ(testutil::HeaderValue(all, "retry-after"), "1") << all;
  EXPECT_NE(all.find("max_connections"), std::string::npos) << all;
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"connections\"} 1"));
  // A held connection closes: a new one is served again.
  held.pop_back();
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_connections_open 2"); }));
  ExpectServes(h);
}

TEST(ProxyHardeningTest, PerClientCapAnswers503) {
  OkUpstream up;
  ProxyOptions o;
  o.max_connections = 100;
  o.max_connections_per_client = 2;
  Harness h(up.up.port(), o);
  RawClient a(h.port()), b(h.port());
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_connections_open 2"); }));
  RawClient over(h.port());
  ASSERT_TRUE(over.Send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  std::string all = over.ReadToEof();
  EXPECT_EQ(all.rfind("HTTP/1.1 503 ", 0), 0U) << all;
  EXPECT_NE(all.find("max_connections_per_client"), std::string::npos) << all;
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"client_connections\"} 1"));
  // The held connections still work.
  ASSERT_TRUE(a.Send(Post("/v1/chat/completions", R"({"model":"fake"})")));
  std::string head, body;
  int status = 0;
  ASSERT_TRUE(a.ReadResponse(&head, &body, &status));
  EXPECT_EQ(status, 200);
}

// 16 clients each holding an unfinished 30 MB body took RSS from 10 MB to 500 MB.
TEST(ProxyHardeningTest, BufferedBodyBudgetAnswers503) {
  OkUpstream up;
  ProxyOptions o;
  o.max_body_bytes = 100'000;
  o.max_buffered_body_bytes = 1000;
  Harness h(up.up.port(), o);
  const std::string head_800 = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 800\r\n\r\n";
  RawClient holder(h.port());
  ASSERT_TRUE(holder.Send(head_800 + "{\"model\":\"fake\""));  // unfinished
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_buffered_body_bytes 800"); }));
  int status;
  std::string head, body;
  // Another 800: over the budget while the first is held.
  std::string big = R"({"model":"fake","pad":")" + std::string(800 - 25, 'x') + "\"}";
  ASSERT_EQ(big.size(), 800U);
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", big), &status, &head, &body));
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(testutil::HeaderValue(head, "retry-after"), "1") << head;
  EXPECT_NE(body.find("max_buffered_body_bytes"), std::string::npos) << body;
  // A chunked body is charged as it grows.
  {
    RawClient chunked(h.port());
    std::string piece(300, ' ');
    ASSERT_TRUE(
        chunked.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "12c\r\n" +
                     piece + "\r\n"));
    std::string all = chunked.ReadToEof();
    EXPECT_EQ(all.rfind("HTTP/1.1 503 ", 0), 0U) << all;
  }
  // A small one fits beside the held body.
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", R"({"model":"fake"})"), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  EXPECT_TRUE(MetricHas(*h.proxy, "corral_proxy_refused_total{reason=\"body_budget\"} 2"));
  // The holder goes away: its bytes are released and the big body fits.
  holder.Close();
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_buffered_body_bytes 0"); }));
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", big), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  // One body larger than the whole budget still gets through when it is alone.
  std::string huge = R"({"model":"fake","pad":")" + std::string(5000, 'y') + "\"}";
  ASSERT_TRUE(h.One(Post("/v1/chat/completions", huge), &status, &head, &body));
  EXPECT_EQ(status, 200) << body;
  ASSERT_TRUE(WaitFor([&] { return MetricHas(*h.proxy, "corral_proxy_buffered_body_bytes 0"); }));
}

}  // namespace
}  // namespace corral::proxy
