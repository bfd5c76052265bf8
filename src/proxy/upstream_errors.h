// Errors llama-server answers, reshaped for the client (issue 14). Pure functions.
//
// - On the Anthropic routes (/v1/messages, /v1/messages/count_tokens) llama-server answers
//   errors in OpenAI's shape ({"error":{"code","message","type"}}); Anthropic's clients
//   expect {"type":"error","error":{"type","message"}}, as Corral's own errors already are.
// - /v1/embeddings on a model started without --embeddings: llama-server answers 501, which
//   the OpenAI SDKs retry (with backoff, ~95 s in all). The answer becomes 400 (not
//   retried) and says how to turn embeddings on for that model.
//
// Thread-safety: stateless.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/request_routing.h"

namespace corral::proxy {

// The largest upstream error body the proxy buffers to reshape; a longer one is relayed as is.
inline constexpr size_t kMaxReshapedErrorBytes = 64U << 10;

// True when an upstream answer with `status` on `path` (API `api`) is reshaped: then the
// proxy buffers its body and sends ReshapeUpstreamError's answer instead.
bool ReshapesUpstreamError(Api api, std::string_view path, int status);

struct ReshapedError {
  int status = 500;
  std::string body;  // JSON
};

// The client's answer for an upstream error body (any bytes, possibly not JSON): the
// upstream's message kept, in the route's API shape. `model` is the name the client used.
ReshapedError ReshapeUpstreamError(Api api, std::string_view path, int status, std::string_view body,
                                   std::string_view model);

// The one-step fix for a model without embeddings, as told to clients and users.
std::string EmbeddingsHint(std::string_view model);

}  // namespace corral::proxy
