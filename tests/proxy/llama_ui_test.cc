// The stock llama.cpp web UI under /llama/ (issue 16, src/proxy/llama_ui.h): the folder is read
// once (symlinks, hidden and odd names skipped, bounds), its files are served from memory with
// a CSP naming the inline bootstrap's hash, and the UI's relative API requests are routed and
// forwarded without the prefix. `GET /` stays Ollama's banner.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fs.h"
#include "proxy/llama_ui.h"
#include "proxy/proxy.h"
#include "proxy/router_mode.h"
#include "proxy/static_provider.h"
#include "proxy_test_util.h"
#include "support/test_support.h"

namespace corral::proxy {
namespace {

using testutil::FakeUpstream;
using testutil::RawClient;

constexpr std::string_view kIndex =
    "<!doctype html><html><head><link rel=\"modulepreload\" href=\"./_app/immutable/app.js\">"
    "<script type=\"module\" src=\"./_app/immutable/app.js\"></script></head><body><div>"
    "<script>\n\t\t\t\t{ __sveltekit_x = { base: new URL(\".\", location).pathname.slice(0, -1) }; }\n"
    "\t\t\t</script></div></body></html>";

class LlamaUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ui_dir_ = dir_.File("ui");
    std::filesystem::create_directories(ui_dir_ + "/_app/immutable");
    ASSERT_TRUE(WriteFileAtomic(ui_dir_ + "/index.html", std::string(kIndex)).ok());
    ASSERT_TRUE(WriteFileAtomic(ui_dir_ + "/_app/immutable/app.js", "export const x = 1;\n").ok());
    ASSERT_TRUE(WriteFileAtomic(ui_dir_ + "/sw.js", "self.x = 1;\n").ok());
    ASSERT_TRUE(WriteFileAtomic(ui_dir_ + "/.env", "SECRET=1\n").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_.File("outside.txt"), "outside\n").ok());
    ASSERT_EQ(::symlink(dir_.File("outside.txt").c_str(), (ui_dir_ + "/link.txt").c_str()), 0);
    ASSERT_EQ(::symlink(dir_.path().c_str(), (ui_dir_ + "/up").c_str()), 0);
  }
  testing::TempDir dir_;
  std::string ui_dir_;
};

TEST_F(LlamaUiTest, LoadsRegularFilesOnlyAndHashesTheInlineScript) {
  auto ui = LlamaUi::Load(ui_dir_);
  ASSERT_TRUE(ui.ok()) << ui.status().ToString();
  EXPECT_EQ((*ui)->file_count(), 3U);  // index.html, app.js, sw.js: no .env, no symlinks
  ASSERT_NE((*ui)->Find("/"), nullptr);
  EXPECT_EQ((*ui)->Find("/")->bytes, kIndex);
  EXPECT_EQ((*ui)->Find("/index.html?x=1")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ((*ui)->Find("/_app/immutable/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ((*ui)->Find("/.env"), nullptr);
  EXPECT_EQ((*ui)->Find("/link.txt"), nullptr);
  EXPECT_EQ((*ui)->Find("/up/outside.txt"), nullptr);
  EXPECT_EQ((*ui)->Find("/../outside.txt"), nullptr);
  auto hashes = InlineScriptHashes(kIndex);
  ASSERT_EQ(hashes.size(), 1U);  // the module script has a src: not hashed
  EXPECT_TRUE(hashes[0].starts_with("'sha256-") && hashes[0].size() == 8 + 44 + 1) << hashes[0];
  EXPECT_NE((*ui)->security_fields().find("script-src 'self' 'wasm-unsafe-eval' " + hashes[0] + ";"), std::string::npos)
      << (*ui)->security_fields();
  EXPECT_EQ((*ui)->security_fields().find("'unsafe-inline';"), (*ui)->security_fields().find("style-src") + 17);
}

TEST_F(LlamaUiTest, RefusesAFolderWithoutIndexOrOverTheBounds) {
  auto none = LlamaUi::Load(dir_.File("absent"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no index.html"), std::string::npos) << none.status().message();
  const std::string many = dir_.File("many");
  std::filesystem::create_directories(many);
  ASSERT_TRUE(WriteFileAtomic(many + "/index.html", "<html></html>").ok());
  for (size_t i = 0; i < kLlamaUiMaxFiles; ++i) std::ofstream(many + "/f" + std::to_string(i) + ".js") << "";
  auto over = LlamaUi::Load(many);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("more than 4096 files"), std::string::npos) << over.status().message();
}

TEST_F(LlamaUiTest, ClassifiesFilesRedirectAndApiRequests) {
  auto ui = LlamaUi::Load(ui_dir_);
  ASSERT_TRUE(ui.ok());
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/").kind, LlamaUiTarget::Kind::kNone);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llamas").kind, LlamaUiTarget::Kind::kNone);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/v1/models").kind, LlamaUiTarget::Kind::kNone);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llama").kind, LlamaUiTarget::Kind::kRedirect);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llama?x").kind, LlamaUiTarget::Kind::kRedirect);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llama/").kind, LlamaUiTarget::Kind::kFile);
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llama/sw.js").file, (*ui)->Find("/sw.js"));
  auto api = ClassifyLlamaUi(**ui, "/llama/props?autoload=false");
  EXPECT_EQ(api.kind, LlamaUiTarget::Kind::kApi);
  EXPECT_EQ(api.api_target, "/props?autoload=false");
  EXPECT_EQ(ClassifyLlamaUi(**ui, "/llama/.env").api_target, "/.env");  // routed: 404, never a file
}

TEST(RouterStatusEventsTest, SnapshotThenOnlyChanges) {
  std::map<std::string, std::string> sent;
  std::vector<ModelInfo> models(2);
  models[0].name = "a";
  models[0].state = ModelState::kReady;
  models[1].name = "b";
  models[1].state = ModelState::kStopped;
  EXPECT_EQ(RouterStatusEvents(sent, models, "model_status"),
            "data: {\"data\":{\"status\":\"loaded\"},\"event\":\"model_status\",\"model\":\"a\"}\n\n"
            "data: {\"data\":{\"status\":\"unloaded\"},\"event\":\"model_status\",\"model\":\"b\"}\n\n");
  EXPECT_EQ(RouterStatusEvents(sent, models, "status_change"), "");
  models[1].state = ModelState::kLoading;
  EXPECT_EQ(RouterStatusEvents(sent, models, "status_change"),
            "data: {\"data\":{\"status\":\"loading\"},\"event\":\"status_change\",\"model\":\"b\"}\n\n");
  models[1].state = ModelState::kFailed;  // the UI's failure signal: unloaded with an exit code
  EXPECT_EQ(RouterStatusEvents(sent, models, "status_change"),
            "data: {\"data\":{\"exit_code\":1,\"status\":\"unloaded\"},\"event\":\"status_change\",\"model\":"
            "\"b\"}\n\n");
}

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n";
}

TEST_F(LlamaUiTest, ServedUnderTheLlamaPrefixWithItsApiRoutedWithoutIt) {
  std::string seen;  // the request line the upstream got
  FakeUpstream up([&](testutil::tcp::socket& s, int) {
    std::string req;
    if (!FakeUpstream::ReadRequest(s, &req)) return;
    seen = req.substr(0, req.find("\r\n"));
    FakeUpstream::Write(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  });
  StaticProvider provider({{"alpha", Endpoint{"127.0.0.1", static_cast<uint16_t>(up.port())}}});
  RoutingTable routes;
  provider.PublishTo(routes);
  ProxyOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  o.llama_ui_dir = ui_dir_;
  Proxy proxy(o, provider, routes);
  ASSERT_TRUE(proxy.Start().ok());
  auto ask = [&](const std::string& request, std::string* head, std::string* body) {
    RawClient c(proxy.port());
    EXPECT_TRUE(c.Send(request));
    int status = 0;
    EXPECT_TRUE(c.ReadResponse(head, body, &status)) << request;
    return status;
  };
  std::string head, body;
  EXPECT_EQ(ask(Get("/"), &head, &body), 200);
  EXPECT_EQ(body, "Ollama is running");  // a browser's Accept changes nothing at /
  EXPECT_EQ(ask(Get("/llama"), &head, &body), 308);
  EXPECT_EQ(testutil::HeaderValue(head, "location"), "/llama/");
  EXPECT_EQ(ask(Get("/llama/"), &head, &body), 200);
  EXPECT_EQ(body, kIndex);
  EXPECT_NE(testutil::HeaderValue(head, "content-security-policy").find("'sha256-"), std::string::npos) << head;
  EXPECT_EQ(testutil::HeaderValue(head, "x-frame-options"), "deny");
  EXPECT_EQ(testutil::HeaderValue(head, "cache-control"), "no-cache");
  EXPECT_EQ(ask(Get("/llama/_app/immutable/app.js"), &head, &body), 200);
  EXPECT_EQ(testutil::HeaderValue(head, "cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(ask("POST /llama/index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", &head, &body), 405);
  EXPECT_EQ(ask(Get("/llama/link.txt"), &head, &body), 404);
  EXPECT_EQ(body.find("outside"), std::string::npos);
  EXPECT_EQ(ask(Get("/llama/..%2Foutside.txt"), &head, &body), 404);
  // The UI's API requests: the router's /props, the list, a forwarded chat.
  EXPECT_EQ(ask(Get("/llama/props?autoload=false"), &head, &body), 200);
  EXPECT_NE(body.find("\"role\":\"router\""), std::string::npos) << body;
  EXPECT_EQ(ask(Get("/llama/v1/models"), &head, &body), 200);
  EXPECT_NE(body.find("\"alpha\""), std::string::npos) << body;
  const std::string chat = R"({"model":"alpha","messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(ask("POST /llama/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: " +
                    std::to_string(chat.size()) + "\r\n\r\n" + chat,
                &head, &body),
            200);
  EXPECT_EQ(seen, "POST /v1/chat/completions HTTP/1.1");
  // llama-server without --tools: 403, which the UI reads as "no server tools" (not an error).
  EXPECT_EQ(ask(Get("/llama/tools"), &head, &body), 403);
  const std::string lookup = R"({"conversation_ids":["c1"]})";
  EXPECT_EQ(ask("POST /llama/v1/streams/lookup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: " +
                    std::to_string(lookup.size()) + "\r\n\r\n" + lookup,
                &head, &body),
            200);
  EXPECT_EQ(body, "[]");
  // The status feed the UI waits on: every model's status on connect, then changes.
  RawClient sse(proxy.port());
  ASSERT_TRUE(sse.Send(Get("/llama/models/sse")));
  std::string got = sse.ReadUntil("\n\n", std::chrono::milliseconds(5000));
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_NE(got.find("text/event-stream"), std::string::npos) << got;
  EXPECT_NE(got.find(R"(data: {"data":{"status":"loaded"},"event":"model_status","model":"alpha"})"), std::string::npos)
      << got;
  proxy.Stop();
}

TEST_F(LlamaUiTest, WithoutTheOptionNothingIsServedAndABadFolderFailsTheStart) {
  StaticProvider provider({});
  RoutingTable routes;
  ProxyOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  {
    Proxy proxy(o, provider, routes);
    ASSERT_TRUE(proxy.Start().ok());
    RawClient c(proxy.port());
    ASSERT_TRUE(c.Send(Get("/llama/")));
    std::string head, body;
    int status = 0;
    ASSERT_TRUE(c.ReadResponse(&head, &body, &status));
    EXPECT_EQ(status, 404);
  }
  o.llama_ui_dir = dir_.File("absent");
  Proxy proxy(o, provider, routes);
  Status s = proxy.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("make llama-ui"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace corral::proxy
