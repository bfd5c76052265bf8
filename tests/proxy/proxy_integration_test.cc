// The proxy in front of the real pinned llama-server on small synthetic models
// (StaticProvider): every pass-through surface streaming and not, two models in one
// session, bytes identical direct vs proxied, client disconnect stopping generation, the
// Ollama routes and /metrics.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "proxy/proxy.h"
#include "proxy/proxy_test_util.h"
#include "proxy/static_provider.h"
#include "support/test_support.h"

namespace corral::proxy {
namespace {

using json = nlohmann::json;
using testutil::RawClient;

const std::vector<std::string> kSmallDims = {"--n-embd", "64",     "--n-layer", "2",     "--n-head",
                                             "4",        "--n-ff", "128",       "--ctx", "32768"};

// Model "chat" (completions) and, when asked, model "embed" (llama-server --embeddings).
class ProxyIntegrationTest : public ::testing::Test {
 protected:
  void StartServers(bool with_embed, bool with_rerank = false) {
    std::string model = testing::MakeModel(dir_.path(), "chat.gguf", kSmallDims);
    ASSERT_FALSE(model.empty());
    auto chat = testing::LlamaServer::Start(model, {"-c", "32768", "-np", "1", "-t", "1", "--metrics", "--slots"});
    ASSERT_TRUE(chat.ok()) << chat.status().ToString();
    chat_ = std::move(*chat);
    std::map<std::string, Endpoint> ups = {{"chat", Endpoint{"127.0.0.1", static_cast<uint16_t>(chat_->port())}}};
    if (with_embed) {
      auto embed =
          testing::LlamaServer::Start(model, {"-c", "512", "-np", "1", "-t", "1", "--embeddings", "--pooling", "mean"});
      ASSERT_TRUE(embed.ok()) << embed.status().ToString();
      embed_ = std::move(*embed);
      ups["embed"] = Endpoint{"127.0.0.1", static_cast<uint16_t>(embed_->port())};
    }
    if (with_rerank) {
      auto rank = testing::LlamaServer::Start(model, {"-c", "512", "-np", "1", "-t", "1", "--reranking"});
      ASSERT_TRUE(rank.ok()) << rank.status().ToString();
      rank_ = std::move(*rank);
      ups["rank"] = Endpoint{"127.0.0.1", static_cast<uint16_t>(rank_->port())};
    }
    provider_ = std::make_unique<StaticProvider>(ups);
    provider_->PublishTo(routes_);
    ProxyOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    proxy_ = std::make_unique<Proxy>(o, *provider_, routes_);
    Status st = proxy_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  Result<testing::HttpResponse> ViaProxy(const std::string& method, const std::string& target,
                                         const std::string& body = "",
                                         const std::map<std::string, std::string>& headers = {}) {
    return testing::Http(method, proxy_->port(), target, body, headers);
  }
  Result<testing::HttpResponse> Direct(const std::string& method, const std::string& target,
                                       const std::string& body = "") {
    return testing::Http(method, chat_->port(), target, body);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::LlamaServer> chat_, embed_, rank_;
  std::unique_ptr<StaticProvider> provider_;
  RoutingTable routes_;
  std::unique_ptr<Proxy> proxy_;
};

// Removes what differs between two runs of the same deterministic request.
json Normalize(json j) {
  if (j.is_object()) {
    for (const char* k : {"id", "created", "timings", "created_at", "system_fingerprint"}) j.erase(k);
    for (auto& [k, v] : j.items()) v = Normalize(v);
  } else if (j.is_array()) {
    for (auto& v : j) v = Normalize(v);
  }
  return j;
}

TEST_F(ProxyIntegrationTest, EveryNonStreamingSurfaceAnswersAsDirect) {
  StartServers(false);
  struct Case {
    const char* method;
    const char* target;
    const char* body;
    bool exact;  // deterministic: bodies must be byte-identical
  };
  const Case kCases[] = {
      {"POST", "/v1/chat/completions",
       R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0,"seed":1})",
       false},
      {"POST", "/v1/completions", R"({"model":"chat","prompt":"Hello","max_tokens":4,"temperature":0})", false},
      {"POST", "/v1/responses", R"({"model":"chat","input":"Hello","max_output_tokens":4,"temperature":0})", false},
      {"POST", "/v1/messages",
       R"({"model":"chat","max_tokens":4,"messages":[{"role":"user","content":"hi"}],"temperature":0})", false},
      {"POST", "/v1/messages/count_tokens", R"({"model":"chat","messages":[{"role":"user","content":"hi"}]})", true},
      {"POST", "/completion", R"({"model":"chat","prompt":"Hello","n_predict":4,"temperature":0})", false},
      {"POST", "/completion?model=chat", R"({"prompt":"Hello","n_predict":4,"temperature":0})", false},
      {"POST", "/tokenize", R"({"model":"chat","content":"Hello world"})", true},
      {"POST", "/detokenize", R"({"model":"chat","tokens":[15043,3186]})", true},
      {"POST", "/apply-template", R"({"model":"chat","messages":[{"role":"user","content":"hi"}]})", true},
      {"POST", "/infill", R"({"model":"chat","input_prefix":"a","input_suffix":"b","n_predict":2})", false},
      {"POST", "/v1/embeddings", R"({"model":"chat","input":"hi"})", false},
      {"POST", "/v1/rerank", R"({"model":"chat","query":"a","documents":["b"]})", false},
      {"GET", "/props?model=chat", "", true},
      {"GET", "/slots?model=chat", "", false},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    auto direct = Direct(c.method, c.target, c.body);
    auto proxied = ViaProxy(c.method, c.target, c.body);
    ASSERT_TRUE(direct.ok() && proxied.ok());
    EXPECT_EQ(proxied->headers["x-corral-model"], "chat");
    if (std::string_view(c.target) == "/v1/embeddings") {
      // Issue 14 changes this one: llama-server's 501 (retried by SDKs) becomes a 400 naming
      // the fix (NamesAndUpstreamErrorsAsClientsExpect checks the message).
      EXPECT_EQ(direct->status, 501) << direct->body;
      EXPECT_EQ(proxied->status, 400) << proxied->body;
      continue;
    }
    EXPECT_EQ(proxied->status, direct->status) << proxied->body << "\n---\n" << direct->body;
    EXPECT_EQ(proxied->headers["content-type"], direct->headers["content-type"]);
    if (c.exact) {
      EXPECT_EQ(proxied->body, direct->body);
    } else if (direct->status == 200) {
      json d = json::parse(direct->body, nullptr, false);
      json p = json::parse(proxied->body, nullptr, false);
      ASSERT_FALSE(p.is_discarded()) << proxied->body;
      EXPECT_EQ(p.is_object(), d.is_object());
    }
  }
}

TEST_F(ProxyIntegrationTest, DeterministicChatIsIdenticalDirectAndProxied) {
  StartServers(false);
  const std::string body =
      R"({"model":"chat","messages":[{"role":"user","content":"Tell me"}],"max_tokens":16,"temperature":0,"seed":7,"cache_prompt":false})";
  auto direct = Direct("POST", "/v1/chat/completions", body);
  auto proxied = ViaProxy("POST", "/v1/chat/completions", body);
  ASSERT_TRUE(direct.ok() && proxied.ok());
  ASSERT_EQ(direct->status, 200) << direct->body;
  EXPECT_EQ(Normalize(json::parse(proxied->body)), Normalize(json::parse(direct->body)));
}

TEST_F(ProxyIntegrationTest, StreamingSurfacesRelayEveryEvent) {
  StartServers(false);
  struct Case {
    const char* target;
    const char* body;
    const char* last;  // how the stream ends
  };
  const Case kCases[] = {
      {"/v1/chat/completions",
       R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"temperature":0,"stream":true})",
       "data: [DONE]"},
      {"/v1/completions", R"({"model":"chat","prompt":"Hi","max_tokens":8,"temperature":0,"stream":true})",
       "data: [DONE]"},
      {"/v1/messages", R"({"model":"chat","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"hi"}]})",
       "message_stop"},
      {"/v1/responses", R"({"model":"chat","input":"hi","max_output_tokens":8,"stream":true})", "response.completed"},
      {"/completion", R"({"model":"chat","prompt":"Hi","n_predict":8,"stream":true})", "\"stop\":true"},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.target);
    for (int port : {chat_->port(), static_cast<int>(proxy_->port())}) {
      RawClient client(port);
      ASSERT_TRUE(client.Send(std::string("POST ") + c.target +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(std::strlen(c.body)) + "\r\n\r\n" + c.body));
      std::string head, body;
      int status = 0;
      ASSERT_TRUE(client.ReadResponse(&head, &body, &status));
      EXPECT_EQ(status, 200) << body;
      EXPECT_EQ(testutil::HeaderValue(head, "content-type").substr(0, 17), "text/event-stream");
      EXPECT_NE(body.find(c.last), std::string::npos) << body;
      if (port == static_cast<int>(proxy_->port())) {
        EXPECT_EQ(testutil::HeaderValue(head, "x-corral-model"), "chat");
        EXPECT_EQ(body.find("x-corral"), std::string::npos) << "nothing may be added inside the stream";
      }
    }
  }
}

// An HTTP/1.0 client (old tools, some load balancers' health checks) streaming from the
// real llama-server: the chunked SSE comes de-chunked and ends with the connection.
TEST_F(ProxyIntegrationTest, Http10ClientStreamsWithoutChunkedFraming) {
  StartServers(false);
  const std::string body =
      R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"temperature":0,"stream":true})";
  RawClient client(static_cast<int>(proxy_->port()));
  ASSERT_TRUE(
      client.Send("POST /v1/chat/completions HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  "Content-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body));
  std::string head, sse;
  ASSERT_TRUE(client.ReadCloseDelimited(&head, &sse));
  EXPECT_EQ(testutil::HeaderValue(head, "transfer-encoding"), "") << head;
  EXPECT_EQ(testutil::HeaderValue(head, "connection"), "close") << head;
  // Every event is a whole "data: ..." line (no chunk-size lines between them), ending in [DONE].
  ASSERT_GE(sse.size(), 14U);
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n") << sse;
  size_t events = 0;
  for (size_t pos = 0; pos < sse.size();) {
    size_t end = sse.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << sse.substr(pos);
    EXPECT_EQ(sse.compare(pos, 6, "data: "), 0) << sse.substr(pos, end - pos);
    if (sse.compare(pos, 7, "data: {") == 0) {
      EXPECT_TRUE(json::accept(sse.substr(pos + 6, end - pos - 6))) << sse.substr(pos, end - pos);
      ++events;
    }
    pos = end + 2;
  }
  EXPECT_GE(events, 8U);
}

// /v1/rerank against a llama-server started with --reranking: the proxy's answer is the
// server's own, scores included, and a model without a rank head answers in its own shape.
TEST_F(ProxyIntegrationTest, RerankRoutesToARerankingServer) {
  StartServers(false, /*with_rerank=*/true);
  const std::string body = R"({"model":"rank","query":"fox","documents":["a quick fox","a lazy dog","foxes"]})";
  auto direct = testing::Http("POST", rank_->port(), "/v1/rerank", body);
  auto proxied = ViaProxy("POST", "/v1/rerank", body);
  ASSERT_TRUE(direct.ok() && proxied.ok());
  ASSERT_EQ(direct->status, 200) << direct->body;
  EXPECT_EQ(proxied->status, 200) << proxied->body;
  json d = json::parse(direct->body), p = json::parse(proxied->body);
  ASSERT_EQ(p["results"].size(), 3U) << proxied->body;
  EXPECT_EQ(Normalize(d), Normalize(p));
  EXPECT_EQ(proxied->headers["x-corral-model"], "rank");
  // The chat model has no rerank endpoint enabled: llama-server's error passes through.
  auto refused = ViaProxy("POST", "/v1/rerank", R"({"model":"chat","query":"q","documents":["a"]})");
  ASSERT_TRUE(refused.ok());
  EXPECT_GE(refused->status, 400);
  EXPECT_TRUE(json::parse(refused->body).contains("error")) << refused->body;
}

TEST_F(ProxyIntegrationTest, TwoModelsInOneKeepAliveSession) {
  StartServers(true);
  RawClient c(proxy_->port());
  auto post = [&](const std::string& target, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(c.Send(post("/v1/chat/completions",
                            R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":2})")));
    std::string head, body;
    int status = 0;
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
    EXPECT_EQ(status, 200) << body;
    EXPECT_EQ(testutil::HeaderValue(head, "x-corral-model"), "chat");
    ASSERT_TRUE(c.Send(post("/v1/embeddings", R"({"model":"embed","input":"hello"})")));
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
    EXPECT_EQ(status, 200) << body;
    EXPECT_EQ(testutil::HeaderValue(head, "x-corral-model"), "embed");
    EXPECT_TRUE(json::parse(body)["data"][0]["embedding"].is_array());
  }
  auto models = ViaProxy("GET", "/v1/models");
  ASSERT_TRUE(models.ok());
  json m = json::parse(models->body);
  ASSERT_EQ(m["data"].size(), 2U);
  EXPECT_EQ(m["data"][0]["id"], "chat");
  EXPECT_EQ(m["data"][1]["id"], "embed");
}

// Tokens llama-server generated so far (its Prometheus counter).
double TokensPredicted(int port) {
  auto r = testing::Http("GET", port, "/metrics");
  if (!r.ok()) return -1;
  size_t at = r->body.find("llamacpp:tokens_predicted_total ");
  if (at == std::string::npos) return -1;
  return std::atof(r->body.c_str() + at + std::strlen("llamacpp:tokens_predicted_total "));
}

bool SlotIdle(int port) {
  auto r = testing::Http("GET", port, "/slots");
  if (!r.ok() || r->status != 200) return false;
  json j = json::parse(r->body, nullptr, false);
  return j.is_array() && !j.empty() && j[0].value("is_processing", true) == false;
}

TEST_F(ProxyIntegrationTest, ClientDisconnectMidStreamStopsGeneration) {
  StartServers(false);
  const int kMaxTokens = 30000;
  const std::string body = R"({"model":"chat","messages":[{"role":"user","content":"go"}],"stream":true,)"
                           R"("ignore_eos":true,"max_tokens":)" +
                           std::to_string(kMaxTokens) + "}";
  double before = TokensPredicted(chat_->port());
  {
    RawClient c(proxy_->port());
    ASSERT_TRUE(c.Send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    std::string got = c.ReadUntil("\"content\":\"", std::chrono::seconds(30));
    ASSERT_NE(got.find("\"content\":\""), std::string::npos) << got;
    c.Close();
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool idle = false;
  while (!(idle = SlotIdle(chat_->port())) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(idle);
  double generated = TokensPredicted(chat_->port()) - before;
  // Had the upstream not been cancelled, it would have generated all kMaxTokens.
  EXPECT_LT(generated, kMaxTokens / 2) << "generated " << generated;
  EXPECT_EQ(provider_->InFlight("chat"), 0);
}

TEST_F(ProxyIntegrationTest, SlowReaderPausesTheUpstreamAndOthersAreServed) {
  StartServers(false);
  const std::string body = R"({"model":"chat","prompt":"go","stream":true,"ignore_eos":true,"n_predict":1000})";
  RawClient slow(proxy_->port());
  // A tiny receive buffer so backpressure reaches the proxy quickly.
  int small = 4096;
  ::setsockopt(slow.socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(slow.Send("POST /completion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body));
  // While the slow client does not read, other requests through the proxy still work.
  auto tok = ViaProxy("POST", "/tokenize", R"({"model":"chat","content":"abc"})");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->status, 200);
  // Then the slow client reads everything, intact.
  std::string head, all;
  int status = 0;
  ASSERT_TRUE(slow.ReadResponse(&head, &all, &status));
  EXPECT_EQ(status, 200);
  EXPECT_NE(all.find("\"stop\":true"), std::string::npos);
}

TEST_F(ProxyIntegrationTest, ErrorsInEachApiShape) {
  StartServers(false);
  auto r = ViaProxy("POST", "/v1/chat/completions", R"({"model":"chta","messages":[]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  json j = json::parse(r->body);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("'chat'"), std::string::npos) << r->body;
  r = ViaProxy("POST", "/v1/messages", R"({"model":"nope","messages":[]})", {{"x-api-key", "k"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["type"], "error");
  r = ViaProxy("POST", "/api/chat", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json::parse(r->body)["error"].is_string());
  r = ViaProxy("POST", "/v1/chat/completions", "{bad json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = ViaProxy("GET", "/slots");  // a model-less native GET: which model?
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = ViaProxy("GET", "/props");  // but /props without a model is the router's own (router_mode.h)
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["role"], "router");
  // An upstream error is relayed as the upstream wrote it.
  auto direct = Direct("POST", "/v1/chat/completions", R"({"model":"chat","messages":"not a list"})");
  r = ViaProxy("POST", "/v1/chat/completions", R"({"model":"chat","messages":"not a list"})");
  ASSERT_TRUE(r.ok() && direct.ok());
  EXPECT_EQ(r->status, direct->status);
  EXPECT_EQ(r->body, direct->body);
}

// Issue 14: names for the proxy's own answers, and llama-server's errors in the shape the
// client's API expects.
TEST_F(ProxyIntegrationTest, NamesAndUpstreamErrorsAsClientsExpect) {
  StartServers(false);
  // /v1/models/{id} and /api/show resolve like inference routes do (a unique substring here).
  for (const std::string id : {"chat", "cha", "chat:latest"}) {
    auto r = ViaProxy("GET", "/v1/models/" + id);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << id << " " << r->body;
    EXPECT_EQ(json::parse(r->body)["id"], "chat") << r->body;
    r = ViaProxy("POST", "/api/show", R"({"model":")" + id + R"("})");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << id << " " << r->body;
  }
  auto r = ViaProxy("GET", "/v1/models/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json::parse(r->body)["error"].is_object());
  r = ViaProxy("GET", "/v1/models");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(json::parse(r->body)["data"][0]["names"].is_array()) << r->body;

  // An error llama-server answers on /v1/messages reaches the client in Anthropic's shape.
  const std::string bad = R"({"model":"chat","max_tokens":4,"messages":[{"role":"user"}]})";
  auto direct = Direct("POST", "/v1/messages", bad);
  ASSERT_TRUE(direct.ok());
  ASSERT_GE(direct->status, 400);
  ASSERT_TRUE(json::parse(direct->body)["error"].is_object()) << direct->body;  // OpenAI's shape upstream
  r = ViaProxy("POST", "/v1/messages", bad, {{"x-api-key", "k"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, direct->status);
  json a = json::parse(r->body);
  EXPECT_EQ(a["type"], "error") << r->body;
  EXPECT_TRUE(a["error"]["type"].is_string());
  EXPECT_EQ(a["error"]["message"], json::parse(direct->body)["error"]["message"]);
  // Successes pass untouched.
  r = ViaProxy("POST", "/v1/messages/count_tokens", R"({"model":"chat","messages":[{"role":"user","content":"hi"}]})",
               {{"x-api-key", "k"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;

  // Embeddings from a model started without them: llama-server's 501 (which SDKs retry)
  // becomes a 400 that says how to enable them.
  direct = Direct("POST", "/v1/embeddings", R"({"model":"chat","input":"x"})");
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->status, 501) << direct->body;
  r = ViaProxy("POST", "/v1/embeddings", R"({"model":"chat","input":"x"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  const std::string msg = json::parse(r->body)["error"]["message"];
  EXPECT_NE(msg.find("corral start chat -- --embeddings"), std::string::npos) << msg;
  // The connection stays usable after a reshaped answer.
  r = ViaProxy("GET", "/health");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

// Issue 11, item 1: a 1,000,000-deep array inside a normal chat body crashed llama-server
// (SIGSEGV) when forwarded, and 100,000 deep in /api/chat crashed the proxy's translation.
// Both are refused with 400 before forwarding; the same llama-server answers afterwards.
TEST_F(ProxyIntegrationTest, DeepJsonNeverReachesLlamaServer) {
  StartServers(false);
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  auto r = ViaProxy("POST", "/v1/chat/completions",
                    R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"x":)" + deep + "}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("max_json_depth"), std::string::npos) << r->body;
  r = ViaProxy("POST", "/api/chat",
               R"({"model":"chat","stream":false,"messages":[{"role":"user","content":)" + std::string(100'000, '[') +
                   std::string(100'000, ']') + "}]}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_TRUE(json::parse(r->body)["error"].is_string()) << r->body;
  r = ViaProxy("POST", "/v1/chat/completions",
               R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":2})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  auto health = Direct("GET", "/health");
  ASSERT_TRUE(health.ok()) << "llama-server is gone: " << health.status().ToString();
  EXPECT_EQ(health->status, 200);
}

TEST_F(ProxyIntegrationTest, OllamaRoutes) {
  StartServers(true);
  auto r = ViaProxy("GET", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "Ollama is running");
  {
    // HEAD: the head of the GET answer (Content-Length included), no body.
    RawClient c(proxy_->port());
    ASSERT_TRUE(
        c.Send("HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    std::string all = c.ReadUntil("version", std::chrono::seconds(10));
    EXPECT_EQ(all.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << all;
    EXPECT_EQ(all.find("Ollama is running"), std::string::npos) << all;
    EXPECT_NE(all.find("\r\n\r\nHTTP/1.1 200 OK"), std::string::npos) << all;
  }
  r = ViaProxy("GET", "/api/version");
  ASSERT_TRUE(r.ok());
  // Issue 14: the Ollama API version Corral implements (Codex --oss needs >= 0.13.4), and
  // Corral's own version in a header.
  EXPECT_EQ(json::parse(r->body)["version"], "0.13.5");
  EXPECT_EQ(r->headers["x-corral-version"], "0.1.0");
  r = ViaProxy("GET", "/api/tags");
  ASSERT_TRUE(r.ok());
  // Issue 14: each model once per name a client may check for (NAME and NAME:latest).
  json tags = json::parse(r->body)["models"];
  ASSERT_EQ(tags.size(), 4U) << r->body;
  EXPECT_EQ(tags[1]["name"], "chat:latest");
  EXPECT_EQ(tags[0]["digest"], tags[1]["digest"]);
  r = ViaProxy("GET", "/api/ps");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body)["models"][0]["name"], "chat");
  r = ViaProxy("POST", "/api/show", R"({"model":"chat"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(json::parse(r->body)["details"].is_object());

  // Streaming chat: NDJSON, one JSON per line, the last one done with counts and ns durations.
  r = ViaProxy(
      "POST", "/api/chat",
      R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5,"temperature":0}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->headers["content-type"], "application/x-ndjson");
  std::vector<json> lines;
  size_t start = 0, nl;
  while ((nl = r->body.find('\n', start)) != std::string::npos) {
    lines.push_back(json::parse(r->body.substr(start, nl - start)));
    start = nl + 1;
  }
  ASSERT_GE(lines.size(), 2U) << r->body;
  EXPECT_EQ(lines.front()["done"], false);
  EXPECT_EQ(lines.front()["model"], "chat");
  EXPECT_TRUE(lines.front()["message"]["content"].is_string());
  EXPECT_EQ(lines.back()["done"], true);
  EXPECT_EQ(lines.back()["eval_count"], 5);
  EXPECT_GT(lines.back()["eval_duration"].get<int64_t>(), 0);
  EXPECT_GT(lines.back()["total_duration"].get<int64_t>(), 0);

  {
    // The same stream for an HTTP/1.0 client: unframed NDJSON ended by the close.
    const std::string body =
        R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5,"temperature":0}})";
    RawClient c(proxy_->port());
    ASSERT_TRUE(
        c.Send("POST /api/chat HTTP/1.0\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    std::string head, ndjson;
    ASSERT_TRUE(c.ReadCloseDelimited(&head, &ndjson));
    EXPECT_EQ(testutil::HeaderValue(head, "transfer-encoding"), "") << head;
    std::vector<json> lines10;
    for (size_t at = 0, end; (end = ndjson.find('\n', at)) != std::string::npos; at = end + 1) {
      ASSERT_TRUE(json::accept(ndjson.substr(at, end - at))) << ndjson.substr(at, end - at);
      lines10.push_back(json::parse(ndjson.substr(at, end - at)));
    }
    ASSERT_EQ(lines10.size(), lines.size()) << ndjson;
    EXPECT_EQ(lines10.back()["done"], true);
    EXPECT_EQ(lines10.back()["eval_count"], 5);
  }

  // Non-streaming generate.
  r = ViaProxy("POST", "/api/generate", R"({"model":"chat","prompt":"hi","stream":false,"options":{"num_predict":3}})");
  ASSERT_TRUE(r.ok());
  json g = json::parse(r->body);
  EXPECT_EQ(g["done"], true);
  EXPECT_TRUE(g["response"].is_string());
  EXPECT_EQ(g["eval_count"], 3);

  // Embeddings from the embedding model.
  r = ViaProxy("POST", "/api/embed", R"({"model":"embed","input":["a","b"]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["embeddings"].size(), 2U);

  // Empty request = load; keep_alive 0 = unload, passed to the provider.
  r = ViaProxy("POST", "/api/generate", R"({"model":"chat"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body)["done_reason"], "load");
  r = ViaProxy("POST", "/api/generate", R"({"model":"chat","keep_alive":0})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r->body)["done_reason"], "unload");
  r = ViaProxy(
      "POST", "/api/chat",
      R"({"model":"chat","keep_alive":"5m","stream":false,"messages":[{"role":"user","content":"x"}],"options":{"num_predict":1}})");
  ASSERT_TRUE(r.ok());
  // keep_alive is applied when the request ends, just after its last byte was written.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (provider_->KeepAliveCalls().size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto calls = provider_->KeepAliveCalls();
  ASSERT_EQ(calls.size(), 2U);
  EXPECT_EQ(calls[0], std::make_pair(std::string("chat"), int64_t{0}));
  EXPECT_EQ(calls[1], std::make_pair(std::string("chat"), int64_t{300}));
}

TEST_F(ProxyIntegrationTest, MetricsCountRequestsAndTimings) {
  StartServers(false);
  for (bool stream : {false, true}) {
    auto r = ViaProxy("POST", "/v1/chat/completions",
                      std::string(R"({"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":4,)") +
                          "\"stream\":" + (stream ? "true" : "false") + "}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
  // Timings are recorded when a request ends, just after its last byte was written.
  auto m = ViaProxy("GET", "/metrics");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // The in-flight gauge drops just after the timings are recorded: wait for both.
  while (m.ok() &&
         (m->body.find("corral_model_ttft_ms_count{model=\"chat\"} 2") == std::string::npos ||
          m->body.find("corral_model_in_flight{model=\"chat\"} 0") == std::string::npos) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    m = ViaProxy("GET", "/metrics");
  }
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("corral_model_requests_total{model=\"chat\"} 2"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("corral_model_ttft_ms_count{model=\"chat\"} 2"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("corral_model_tokens_per_second_count{model=\"chat\"} 2"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("corral_model_in_flight{model=\"chat\"} 0"), std::string::npos);
  EXPECT_NE(m->body.find("corral_proxy_added_latency_us_count 2"), std::string::npos) << m->body;
}

}  // namespace
}  // namespace corral::proxy
