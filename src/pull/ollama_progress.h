// `POST /api/pull` speaks Ollama's progress NDJSON; `corral pull --json` speaks Corral's
// (docs/pull.md). This turns one line of the second into zero or more lines of the first:
//
//   corral pull --json                          Ollama /api/pull
//   {"event":"resolved",...}                    {"status":"pulling manifest"}
//   {"event":"start"|"progress"|"done",         {"status":"pulling <sha 12>","digest":"sha256:<sha>",
//    "sha256":S,"completed":C,"total":T}         "total":T,"completed":C}
//   {"event":"retry",...}                       (nothing: the next progress line follows)
//   {"event":"success",...}                     {"status":"verifying sha256 digest"},
//                                               {"status":"writing manifest"}, {"status":"success"}
//   {"event":"error","message":M}               {"error":M}
//   anything else (not JSON, unknown event)     (nothing)
//
// Pure and bounded (a line over kMaxPullLineBytes is dropped); fuzzed with the listing.
// Thread-safety: stateless.
#pragma once

#include <string>
#include <string_view>

namespace corral::pull {

inline constexpr size_t kMaxPullLineBytes = size_t{64} * 1024;

// The Ollama NDJSON for one `corral pull --json` line; each output line ends with '\n'.
std::string OllamaPullLines(std::string_view corral_line);

}  // namespace corral::pull
