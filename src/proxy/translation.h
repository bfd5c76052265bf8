// The translation hook (issue 12): the connection relays upstream bytes untouched unless a
// request asked for another API's shape (Ollama's today; any later one plugs in here). Then it
// hands the upstream's status and de-chunked body to a ResponseTranslation and writes what
// that returns, head and framing included: the pass-through connection knows no format.
//
// Thread-safety: one translation per request, used on its connection's thread only.
#pragma once

#include <string>
#include <string_view>

#include "proxy/response_head.h"

namespace corral::proxy {

// How the client's answer must be framed, as the connection knows it when the upstream's
// head arrives.
struct ClientFraming {
  bool http10 = false;     // no chunked framing: a streamed body ends with the connection
  bool keep_alive = true;  // the connection stays open after the answer (as far as it knows)
  OwnFields own;           // the proxy's own fields, copied by Begin()
};

class ResponseTranslation {
 public:
  virtual ~ResponseTranslation() = default;
  // The upstream response's head arrived with `upstream_status`; called once, first.
  virtual void Begin(int upstream_status, const ClientFraming& client) = 0;
  // De-chunked upstream body bytes (`last`: the upstream response is complete). Appends the
  // client's bytes (head, framing, body) to `out`; nothing appended: nothing to write yet.
  virtual void Translate(std::string_view body, bool last, std::string& out) = 0;
  // True once a head went into `out`: from then on an error can no longer be answered.
  virtual bool started() const = 0;
  // False when the client connection must close after the answer (set by Begin).
  virtual bool keep_alive() const = 0;
};

// The request head a translation sends upstream: POST `target`, a JSON body of `body_bytes`.
std::string TranslatedRequestHead(std::string_view target, size_t body_bytes);

// Appends `bytes` to `out` as one HTTP/1.1 chunk ("<hex size>\r\n<bytes>\r\n"); nothing for
// empty bytes (an empty chunk would end the body).
void AppendChunk(std::string& out, std::string_view bytes);

}  // namespace corral::proxy
