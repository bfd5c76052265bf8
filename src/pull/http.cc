#include "pull/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/interrupt.h"

namespace corral::pull {
namespace {

constexpr long kBufferBytes = 256L * 1024;  // NOLINT(google-runtime-int): libcurl's receive buffer
// libcurl hands the body to the write callback in pieces of at most CURL_MAX_WRITE_SIZE (16 KiB)
// whatever CURLOPT_BUFFERSIZE says; written one by one that was 65536 write(2) calls per GiB,
// most of `corral pull`'s time (bench/pull/rate.sh). They are gathered into writes of this size.
constexpr size_t kWriteBytes = 1 << 20;
// Every this many bytes written, the kernel is asked to start writing them to disk
// (sync_file_range, non-blocking), so the fsync before the rename finds little left to do
// instead of a whole file's dirty pages (0.75 s of 3.7 s for 512 MiB before).
constexpr uint64_t kWritebackBytes = 8 << 20;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t k = 0;
  while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
  return s.substr(k);
}

std::string Hex(const unsigned char* md, unsigned len) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned k = 0; k < len; ++k) {
    out += kDigits[md[k] >> 4];
    out += kDigits[md[k] & 15];
  }
  return out;
}

bool IsRedirect(long status) {  // NOLINT(google-runtime-int)
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

struct HttpClient::Transfer {
  // Common.
  long status = 0;  // NOLINT(google-runtime-int)
  std::map<std::string, std::string> headers;
  std::string body;  // API answers, or the start of an error answer
  size_t max_body = 0;
  Status error;  // why a callback stopped the transfer
  // Downloads only.
  bool download = false;
  int fd = -1;
  std::string path;
  uint64_t offset = 0;   // bytes in the file when this request started
  uint64_t written = 0;  // bytes in the file now
  uint64_t expected = 0;
  uint64_t resumed_from = 0;
  bool started = false;  // the first body byte of a 2xx answer was seen
  EVP_MD_CTX* sha = nullptr;
  const ProgressFn* progress = nullptr;
  std::string pending;          // received, hashed, not yet written (at most kWriteBytes)
  uint64_t on_disk = 0;         // bytes of the file written so far (written - pending)
  uint64_t writeback_from = 0;  // start of the range not yet handed to sync_file_range

  // Writes `pending` to the file; starts writeback of every whole kWritebackBytes written.
  Status Flush() {
    size_t done = 0;
    while (done < pending.size()) {
      const ssize_t w = ::write(fd, pending.data() + done, pending.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        const int e = errno;
        return e == ENOSPC || e == EDQUOT
                   ? Status(StatusCode::kResourceExhausted, "the disk is full (writing " + path + ")")
                   : ErrnoError("writing " + path, e);
      }
      done += static_cast<size_t>(w);
    }
    on_disk += pending.size();
    pending.clear();
    if (on_disk - writeback_from >= kWritebackBytes) {
      // Advisory: a failure here changes nothing (the fsync before the rename still runs).
      (void)::sync_file_range(fd, static_cast<off_t>(writeback_from), static_cast<off_t>(on_disk - writeback_from),
                              SYNC_FILE_RANGE_WRITE);
      writeback_from = on_disk;
    }
    return Status::Ok();
  }
  // Stall detection: libcurl's LOW_SPEED_* averages over several seconds, so a server that
  // stops after a burst is noticed late; this counts whole seconds without a new byte.
  long stall_timeout_s = 0;  // NOLINT(google-runtime-int)
  curl_off_t last_now = -1;
  std::chrono::steady_clock::time_point last_byte = std::chrono::steady_clock::now();

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirect hop or 100 Continue)
      t->headers.clear();
      const size_t sp = line.find(' ');
      t->status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
      return size * n;
    }
    const size_t colon = line.find(':');
    if (colon != std::string::npos && t->headers.size() < 256) {
      t->headers[Lower(line.substr(0, colon))] = Trim(line.substr(colon + 1)).substr(0, 4096);
    }
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const size_t len = size * n;
    if (!t->download || t->status < 200 || t->status >= 300) {
      if (IsRedirect(t->status)) return len;  // redirect bodies are dropped
      if (t->body.size() + len > t->max_body) {
        if (t->download) return len;  // an error page: its start is enough
        t->error =
            Status(StatusCode::kResourceExhausted, "answer larger than " + std::to_string(t->max_body) + " bytes");
        return 0;
      }
      t->body.append(data, len);
      return len;
    }
    if (!t->started) {
      t->started = true;
      if (t->offset > 0 && t->status == 200) {
        // The server ignored the Range: start over.
        if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
          t->error = ErrnoError("truncating " + t->path, errno);
          return 0;
        }
        EVP_DigestInit_ex(t->sha, EVP_sha256(), nullptr);
        t->pending.clear();
        t->written = t->on_disk = t->writeback_from = 0;
        t->resumed_from = 0;
      } else if (t->offset > 0) {
        const auto it = t->headers.find("content-range");
        const std::string want = "bytes " + std::to_string(t->offset) + "-";
        if (it == t->headers.end() || it->second.rfind(want, 0) != 0) {
          t->error = Corrupt("the server answered the Range request with another range (" +
                             (it == t->headers.end() ? std::string("none") : it->second.substr(0, 80)) + ")");
          return 0;
        }
      }
    }
    if (t->written + len > t->expected) {
      t->error = Corrupt("the server sent more than the listing's " + std::to_string(t->expected) + " bytes");
      return 0;
    }
    t->pending.append(data, len);
    if (t->pending.size() >= kWriteBytes) {
      if (Status s = t->Flush(); !s.ok()) {
        t->error = std::move(s);
        return 0;
      }
    }
    EVP_DigestUpdate(t->sha, data, len);
    t->written += len;
    if (t->progress != nullptr && *t->progress) (*t->progress)(t->written, t->expected);
    return len;
  }

  static int OnXfer(void* self, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(self);
    if (Interrupted()) {
      t->error = Cancelled("interrupted");
      return 1;
    }
    const auto now = std::chrono::steady_clock::now();
    if (dlnow != t->last_now) {
      t->last_now = dlnow;
      t->last_byte = now;
    } else if (t->stall_timeout_s > 0 && now - t->last_byte > std::chrono::seconds(t->stall_timeout_s)) {
      t->error = Status(StatusCode::kTimeout, "sent nothing for " + std::to_string(t->stall_timeout_s) +
                                                  " s (stalled); try again, or raise --stall-timeout");
      return 1;
    }
    return 0;
  }
};

std::string UrlHost(const std::string& url) {
  CURLU* u = curl_url();
  std::string host;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* h = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h != nullptr) host = Lower(h);
    curl_free(h);
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port != nullptr) host += ":" + std::string(port);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return host;
}

Status HttpError(long status, const std::map<std::string, std::string>& headers,  // NOLINT(google-runtime-int)
                 const std::string& body, const std::string& what) {
  std::string detail;
  if (auto it = headers.find("x-error-message"); it != headers.end()) detail = it->second;
  if (detail.empty() && !body.empty() && body.size() < 300 && body.find('<') == std::string::npos) detail = body;
  for (char& c : detail) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  const std::string code = headers.count("x-error-code") != 0 ? headers.at("x-error-code") : "";
  const std::string suffix = detail.empty() ? "" : " (" + detail.substr(0, 300) + ")";
  if (status == 401 || status == 403 || code == "GatedRepo") {
    const bool gated = code == "GatedRepo" || detail.find("gated") != std::string::npos;
    return Status(StatusCode::kFailedPrecondition,
                  what + ": access denied, HTTP " + std::to_string(status) + suffix +
                      (gated ? ". The repo is gated: accept its terms on the Hugging Face page, then"
                             : ". The repo is private or gated:") +
                      " create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN, or "
                      "write it to ~/.cache/huggingface/token (mode 600), or run `hf auth login`");
  }
  if (status == 404) return NotFound(what + ": not found (HTTP 404)" + suffix);
  if (status == 416) return Corrupt(what + ": the server refused the resume range (HTTP 416)");
  if (status == 429 || status >= 500) {
    return Unavailable(what + ": the server answered HTTP " + std::to_string(status) + suffix);
  }
  return Status(StatusCode::kFailedPrecondition, what + ": HTTP " + std::to_string(status) + suffix);
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Status HttpClient::Perform(Transfer& t, const std::string& first_url) {
  auto* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return Internal("curl_easy_init failed");
  std::string url = first_url;
  for (int hop = 0;; ++hop) {
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s + 10);  // a backstop: OnXfer
    t.stall_timeout_s = options_.stall_timeout_s;
    t.last_now = -1;
    t.last_byte = std::chrono::steady_clock::now();
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, kBufferBytes);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::OnXfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    std::string range;
    if (t.download && t.offset > 0) {
      range = std::to_string(t.offset) + "-";
      curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    }
    curl_slist* headers = nullptr;
    std::string auth;
    if (!options_.token.empty() && !options_.token_host.empty() && UrlHost(url) == options_.token_host) {
      auth = "Authorization: Bearer " + options_.token;
      headers = curl_slist_append(headers, auth.c_str());
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    t.status = 0;
    t.headers.clear();
    const CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    std::fill(auth.begin(), auth.end(), '\0');
    const std::string host = UrlHost(url);
    if (rc != CURLE_OK) {
      if (t.error.code() == StatusCode::kTimeout) return Status(StatusCode::kTimeout, host + " " + t.error.message());
      if (!t.error.ok()) return t.error;
      switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
          return Status(StatusCode::kTimeout, host + " sent nothing for " + std::to_string(options_.stall_timeout_s) +
                                                  " s (stalled); try again, or raise --stall-timeout");
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
          return Unavailable("cannot connect to " + host + " (" + curl_easy_strerror(rc) + ")");
        default: return Unavailable("transfer from " + host + " failed: " + curl_easy_strerror(rc));
      }
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
    if (!IsRedirect(t.status)) return Status::Ok();
    if (hop >= kMaxRedirects) return Unavailable("more than " + std::to_string(kMaxRedirects) + " redirects");
    char* next = nullptr;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next);
    if (next == nullptr) return Corrupt(host + " answered a redirect without a Location");
    url = next;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return Corrupt(host + " redirected to a non-HTTP URL");
    }
  }
}

Result<HttpAnswer> HttpClient::Get(const std::string& url, size_t max_bytes) {
  Transfer t;
  t.max_body = max_bytes;
  CORRAL_RETURN_IF_ERROR(Perform(t, url));
  HttpAnswer a;
  a.status = t.status;
  a.headers = std::move(t.headers);
  a.body = std::move(t.body);
  a.final_url = url;
  return a;
}

Result<DownloadResult> HttpClient::Download(const std::string& url, const std::string& path, uint64_t expected_size,
                                            const ProgressFn& progress) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("opening " + path, errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  Transfer t;
  t.download = true;
  t.fd = fd;
  t.path = path;
  t.expected = expected_size;
  t.max_body = kMaxErrorBodyBytes;
  t.sha = sha.get();
  t.progress = &progress;
  t.pending.reserve(kWriteBytes + CURL_MAX_WRITE_SIZE);
  // Hash what an earlier attempt left, then append after it.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    uint64_t have = static_cast<uint64_t>(st.st_size);
    if (have > expected_size) {
      // Longer than the file can be: start over (a failed truncate is caught by the one below).
      (void)::ftruncate(fd, 0);
      have = 0;
    }
    std::string buf(1 << 20, '\0');
    uint64_t read_total = 0;
    while (read_total < have) {
      const ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(read_total));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      EVP_DigestUpdate(sha.get(), buf.data(), static_cast<size_t>(r));
      read_total += static_cast<uint64_t>(r);
    }
    t.offset = t.written = t.resumed_from = t.on_disk = t.writeback_from = read_total;
    if (::lseek(fd, static_cast<off_t>(read_total), SEEK_SET) < 0 || ::ftruncate(fd, static_cast<off_t>(read_total))) {
      ::close(fd);
      return ErrnoError("seeking in " + path, errno);
    }
  }
  Status st_perform = Status::Ok();
  if (t.written < expected_size || expected_size == 0) {
    st_perform = Perform(t, url);
  } else {
    t.status = 206;  // complete already: nothing to fetch
  }
  // What was received and hashed goes to the file also after a cut or Ctrl+C (a resume
  // starts after it); a failure here is the transfer's error unless it had one already.
  Status flushed = t.Flush();
  const int close_rc = ::fsync(fd) == 0 ? ::close(fd) : (::close(fd), -1);
  CORRAL_RETURN_IF_ERROR(st_perform);
  CORRAL_RETURN_IF_ERROR(flushed);
  if (t.status < 200 || t.status >= 300) return HttpError(t.status, t.headers, t.body, url.substr(0, 200));
  if (close_rc != 0) return ErrnoError("writing " + path, errno);
  if (t.written != expected_size) {
    return Unavailable("the connection ended after " + std::to_string(t.written) + " of " +
                       std::to_string(expected_size) + " bytes");
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(sha.get(), md, &len);
  DownloadResult r;
  r.sha256 = Hex(md, len);
  r.bytes = t.written;
  r.resumed_from = t.resumed_from;
  return r;
}

}  // namespace corral::pull
