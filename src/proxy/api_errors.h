// Error bodies in each API's own shape. Pure functions. Thread-safety: stateless.
#pragma once

#include <string>
#include <string_view>

#include "proxy/request_routing.h"

namespace corral::proxy {

// OpenAI / llama.cpp native: {"error":{"code":404,"message":"...","type":"not_found_error"}}
// Anthropic:                 {"type":"error","error":{"type":"not_found_error","message":"..."}}
// Ollama:                    {"error":"..."}
std::string ErrorBody(Api api, int status, std::string_view message);

// The error "type" for an HTTP status in the given API's vocabulary.
std::string_view ErrorType(Api api, int status);

}  // namespace corral::proxy
