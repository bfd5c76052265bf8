// The stock llama.cpp web UI on the proxy port (issue 16, docs/proxy.md "The stock llama.cpp
// web UI"): a built copy of the pinned engine's tools/ui (scripts/llama-ui.sh) served under
// /llama/, talking to Corral's llama-server router-mode API (router_mode.h).
//
// The folder is read once, when the proxy starts, into memory: every regular file under it
// (no symlinks followed, bounded count and size). A request is answered from that table by
// exact path and never opens a file, so no request can make the proxy read anything else.
//
// /llama                 308 to /llama/
// /llama/                index.html
// /llama/PATH            the file PATH of the folder, when there is one
// /llama/API-ROUTE       any other path: the UI's API requests (its URLs are relative to the
//                        page: ./props, ./v1/models, ./models/load, ./v1/chat/completions),
//                        routed as API-ROUTE is (LlamaUiApiTarget)
//
// Thread-safety: a LlamaUi is immutable after Load; share it freely (const).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::proxy {

// The prefix the UI is served under (no trailing slash).
inline constexpr std::string_view kLlamaUiPrefix = "/llama";
// Bounds of a UI folder (the pinned build: ~60 files, ~12 MiB).
inline constexpr size_t kLlamaUiMaxFiles = 4096;
inline constexpr uint64_t kLlamaUiMaxFileBytes = 32ULL << 20;
inline constexpr uint64_t kLlamaUiMaxTotalBytes = 96ULL << 20;

struct LlamaUiFile {
  std::string content_type;
  std::string etag;  // quoted, from the content's SHA-256
  std::string bytes;
};

class LlamaUi {
 public:
  // Reads `dir` (a built tools/ui: index.html at its top). Errors: no such folder, no
  // index.html, over the bounds above, a file that cannot be read.
  static Result<std::shared_ptr<const LlamaUi>> Load(const std::string& dir);

  // The file for a request path under the prefix ("/" is index.html; the query is ignored);
  // nullptr when there is none.
  const LlamaUiFile* Find(std::string_view target) const;

  // The header fields of every answer of the UI (CSP with the hashes of index.html's inline
  // scripts, nosniff, no framing, ...), each ending in CRLF.
  const std::string& security_fields() const { return security_fields_; }

  size_t file_count() const { return files_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, LlamaUiFile, std::less<>> files_;  // "/index.html", "/_app/..."
  uint64_t total_bytes_ = 0;
  std::string security_fields_;
};

// What the proxy does with a request target while a UI is served.
struct LlamaUiTarget {
  enum class Kind {
    kNone,      // not under the prefix: route it as it is
    kRedirect,  // "/llama" (no slash): 308 to "/llama/"
    kFile,      // a file of the UI (file set)
    kApi,       // an API request of the UI: route `api_target` instead
  };
  Kind kind = Kind::kNone;
  const LlamaUiFile* file = nullptr;
  std::string api_target;  // "/props?autoload=false" for "/llama/props?autoload=false"
};
LlamaUiTarget ClassifyLlamaUi(const LlamaUi& ui, std::string_view target);

// Content type by file name extension ("application/octet-stream" when unknown).
std::string_view LlamaUiContentType(std::string_view path);

// The inline <script> elements of an HTML page as CSP sources: "'sha256-BASE64'" each.
std::vector<std::string> InlineScriptHashes(std::string_view html);

}  // namespace corral::proxy
