// The translation hook's shared pieces and its one implementation today: Ollama's
// /api/chat, /api/generate and /api/embed answers (ollama.h), framed for the client.
#include "proxy/translation.h"

#include <cstdio>
#include <memory>

#include "proxy/ollama.h"

namespace corral::proxy {

std::string TranslatedRequestHead(std::string_view target, size_t body_bytes) {
  std::string head;
  head.append("POST ").append(target).append(" HTTP/1.1\r\nHost: llama-server\r\n");
  head.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body_bytes));
  head.append("\r\n\r\n");
  return head;
}

void AppendChunk(std::string& out, std::string_view bytes) {
  if (bytes.empty()) return;
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", bytes.size());
  out.append(size_line).append(bytes).append("\r\n");
}

namespace {

// Streaming and the upstream said 2xx/3xx: a 200 head at once, then NDJSON lines as chunks
// (unframed to an HTTP/1.0 client, which then sees the connection close). Otherwise (not
// streaming, or an upstream error) the whole answer is written once, at the end, with its
// length.
class OllamaTranslation final : public ResponseTranslation {
 public:
  OllamaTranslation(RouteKind kind, std::string model, bool stream) : translator_(kind, std::move(model), stream) {}

  void Begin(int upstream_status, const ClientFraming& client) override {
    translator_.SetUpstreamStatus(upstream_status);
    http10_ = client.http10;
    keep_alive_ = client.keep_alive;
    model_.assign(client.own.model);
    cors_origin_.assign(client.own.cors_origin);
    streaming_ = translator_.streaming() && upstream_status < 400;
    if (streaming_ && http10_) keep_alive_ = false;  // NDJSON unframed, ended by the close
  }

  void Translate(std::string_view body, bool last, std::string& out) override {
    std::string bytes = translator_.Feed(body);
    if (last) bytes += translator_.Finish();
    if (streaming_) return Stream(bytes, last, out);
    if (!last) return;  // still accumulating (the translator keeps the body)
    std::string head;
    ResponseHead(head, translator_.final_status())
        .ContentType("application/json")
        .ContentLength(bytes.size())
        .Own(Own())
        .End(keep_alive_);
    started_ = true;
    out.append(head).append(bytes);
  }

  bool started() const override { return started_; }
  bool keep_alive() const override { return keep_alive_; }

 private:
  void Stream(const std::string& bytes, bool last, std::string& out) {
    if (!started_) {
      std::string head;
      ResponseHead h(head, 200);
      h.ContentType("application/x-ndjson");
      if (!http10_) h.Chunked();
      out.append(h.Own(Own()).End(keep_alive_));
      started_ = true;
    }
    if (http10_) {
      out.append(bytes);
      return;
    }
    AppendChunk(out, bytes);
    if (last) out.append("0\r\n\r\n");
  }
  OwnFields Own() const { return {model_, cors_origin_}; }

  OllamaResponseTranslator translator_;
  std::string model_, cors_origin_;  // the proxy's own fields
  bool http10_ = false, keep_alive_ = true, streaming_ = false, started_ = false;
};

}  // namespace

std::unique_ptr<ResponseTranslation> NewOllamaTranslation(RouteKind kind, std::string model, bool stream) {
  return std::make_unique<OllamaTranslation>(kind, std::move(model), stream);
}

}  // namespace corral::proxy
