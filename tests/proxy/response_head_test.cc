// The one response-head builder (proxy/response_head.h) and the translation hook's Ollama
// implementation (proxy/translation.h): exact bytes, no sockets.
#include <gtest/gtest.h>

#include <string>

#include "proxy/ollama.h"
#include "proxy/response_head.h"
#include "proxy/translation.h"

namespace corral::proxy {
namespace {

TEST(ProxyResponseHeadTest, LocalAnswerWithLengthAndClose) {
  std::string out = "left over";
  ResponseHead(out, 404).ContentType("application/json").ContentLength(12).End(/*keep_alive=*/false);
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
            "Connection: close\r\n\r\n");
}

TEST(ProxyResponseHeadTest, KeepAliveAddsNoConnectionField) {
  std::string out;
  EXPECT_EQ(ResponseHead(out, 204).End(/*keep_alive=*/true), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(ProxyResponseHeadTest, UpstreamReasonKeptWhenSafeStandardOtherwise) {
  std::string out;
  ResponseHead(out, 200, "Fine");
  EXPECT_EQ(out, "HTTP/1.1 200 Fine\r\n");
  ResponseHead(out, 200, "Fine\r\nSet-Cookie: x");
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\n");
  ResponseHead(out, 799);
  EXPECT_EQ(out, "HTTP/1.1 799 <unknown-status>\r\n");  // Beast's placeholder, as before the builder
  EXPECT_EQ(ReasonPhrase(503), "Service Unavailable");
}

TEST(ProxyResponseHeadTest, UnsafeFieldValuesAreDropped) {
  std::string out;
  ResponseHead(out, 200)
      .Field("x-ok", "value\twith tab")
      .Field("x-split", "a\r\nInjected: 1")
      .Field("x-nul", std::string_view("a\0b", 3))
      .End(true);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nx-ok: value\twith tab\r\n\r\n");
}

TEST(ProxyResponseHeadTest, OwnFieldsModelAndCors) {
  std::string out;
  ResponseHead(out, 200).Own({"qwen", "http://app.example"}).End(true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nx-corral-model: qwen\r\nAccess-Control-Allow-Origin: http://app.example\r\n"
            "Access-Control-Expose-Headers: x-corral-model\r\nVary: Origin\r\n\r\n");
  ResponseHead(out, 200).Own({}).End(true);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\n\r\n");
}

TEST(ProxyResponseHeadTest, StreamedAndPreformattedFieldsKeepTheirOrder) {
  std::string out;
  ResponseHead(out, 200)
      .ContentType("application/x-ndjson")
      .Chunked()
      .Fields("Cache-Control: no-store\r\n")
      .Field("Retry-After", "1")
      .End(false);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
            "Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n\r\n");
}

TEST(OllamaTranslationHookTest, RequestHeadAndChunks) {
  EXPECT_EQ(TranslatedRequestHead("/v1/chat/completions", 42),
            "POST /v1/chat/completions HTTP/1.1\r\nHost: llama-server\r\nContent-Type: application/json\r\n"
            "Content-Length: 42\r\n\r\n");
  std::string out;
  AppendChunk(out, "");
  EXPECT_EQ(out, "");
  AppendChunk(out, std::string(26, 'x'));
  EXPECT_EQ(out, "1a\r\n" + std::string(26, 'x') + "\r\n");
}

constexpr std::string_view kSse =
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

TEST(OllamaTranslationHookTest, StreamingIsChunkedNdjsonAfterA200Head) {
  auto t = NewOllamaTranslation(RouteKind::kOllamaChat, "m", /*stream=*/true);
  t->Begin(200, ClientFraming{false, true, {"m", ""}});
  EXPECT_TRUE(t->keep_alive());
  std::string out;
  t->Translate(kSse.substr(0, 10), /*last=*/false, out);
  EXPECT_TRUE(t->started());
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
            "x-corral-model: m\r\n\r\n");
  out.clear();
  t->Translate(kSse.substr(10), /*last=*/true, out);
  EXPECT_NE(out.find("\"content\":\"Hi\""), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\r\n0\r\n\r\n")) << out;
}

TEST(OllamaTranslationHookTest, StreamingToHttp10IsUnframedAndCloses) {
  auto t = NewOllamaTranslation(RouteKind::kOllamaChat, "m", /*stream=*/true);
  t->Begin(200, ClientFraming{true, true, {}});
  EXPECT_FALSE(t->keep_alive());
  std::string out;
  t->Translate(kSse, /*last=*/true, out);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"))
      << out;
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
  EXPECT_FALSE(out.ends_with("0\r\n\r\n"));
}

TEST(OllamaTranslationHookTest, UpstreamErrorIsAnsweredWholeWithItsLength) {
  auto t = NewOllamaTranslation(RouteKind::kOllamaChat, "m", /*stream=*/true);
  t->Begin(500, ClientFraming{false, true, {}});
  std::string out;
  t->Translate(R"({"error":{"message":"boom"}})", /*last=*/false, out);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(t->started());
  t->Translate("", /*last=*/true, out);
  EXPECT_TRUE(t->started());
  ASSERT_TRUE(out.starts_with("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n")) << out;
  size_t end = out.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  std::string body = out.substr(end + 4);
  EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace corral::proxy
