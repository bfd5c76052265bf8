// The HTTP side of `corral pull`, over libcurl: a bounded GET for API answers and a
// resumable, verifying download of one file. Redirects are followed here, not by libcurl, so
// the token goes only to the endpoint's own host (never to the CDN it redirects to) and every
// hop is checked (http/https only, at most kMaxRedirects).
//
// Thread-safety: an HttpClient belongs to one thread. curl_global_init runs once, on first use.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/status.h"

namespace corral::pull {

inline constexpr int kMaxRedirects = 8;
inline constexpr size_t kMaxApiAnswerBytes = 16u << 20;
inline constexpr size_t kMaxErrorBodyBytes = 4096;

struct HttpOptions {
  std::string token;            // "Bearer" token for the endpoint's host; never logged
  std::string token_host;       // the host the token may be sent to (the endpoint's)
  long connect_timeout_s = 15;  // NOLINT(google-runtime-int): libcurl's type
  long stall_timeout_s = 30;    // no byte for this long: the transfer fails (kTimeout)
  std::string user_agent = "corral";
};

struct HttpAnswer {
  long status = 0;                             // NOLINT(google-runtime-int)
  std::map<std::string, std::string> headers;  // the final response's, names lower-case
  std::string body;                            // bounded
  std::string final_url;
};

// Progress of one download: bytes of the file on disk so far, and its total.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct DownloadResult {
  std::string sha256;         // of the whole file (the part resumed included)
  uint64_t bytes = 0;         // the file's size
  uint64_t resumed_from = 0;  // bytes kept from an earlier attempt
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET with redirects; the body is read up to `max_bytes` (more is an error). Any status is
  // returned as an answer; transport failures are errors (kUnavailable, kTimeout).
  Result<HttpAnswer> Get(const std::string& url, size_t max_bytes = kMaxApiAnswerBytes);

  // Downloads `url` into `path` (appending with a Range request when the file already holds
  // bytes; starting over when the server ignores the Range). Refuses more than
  // `expected_size` bytes. Non-2xx answers are kNotFound (404), kFailedPrecondition (401/403:
  // the message says how to log in) or kUnavailable, with the server's X-Error-Message.
  // Interrupted() stops it with kCancelled, the partial file kept for a resume.
  Result<DownloadResult> Download(const std::string& url, const std::string& path, uint64_t expected_size,
                                  const ProgressFn& progress);

 private:
  struct Transfer;
  Status Perform(Transfer& t, const std::string& url);

  HttpOptions options_;
  void* curl_ = nullptr;  // CURL*
};

// "https://host:port/path" → "host" (lower case); "" when not a URL.
std::string UrlHost(const std::string& url);

// The message for a non-2xx answer of the hub (`what`: "repo x", "file y").
Status HttpError(long status, const std::map<std::string, std::string>& headers,  // NOLINT(google-runtime-int)
                 const std::string& body, const std::string& what);

}  // namespace corral::pull
