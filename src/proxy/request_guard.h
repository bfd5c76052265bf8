// The proxy's checks of hostile HTTP input that are not about JSON: request framing
// (RFC 9112 §6), browsers (Origin, CORS, DNS rebinding through Host) and bytes that must
// never reach a response head (response splitting).
//
// Pure functions and one immutable policy object; no I/O. Thread-safety: an OriginPolicy
// is immutable after construction and safe to read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace corral::proxy {

// ---- response splitting ----

// True when `value` may be written as a header field value: no control byte but HTAB
// (so no CR, LF or NUL), no DEL. obs-text (bytes >= 0x80) passes, as RFC 9110 §5.5 allows.
bool IsSafeHeaderValue(std::string_view value) noexcept;

// True when `s` has a byte below 0x20 or DEL: such a model name is refused with 400
// before routing (it could only be an attack on whatever prints or forwards it).
bool HasControlChars(std::string_view s) noexcept;

// ---- framing (request smuggling) ----

// The request framing a proxy may accept (RFC 9112 §6.1, §6.3): Transfer-Encoding absent,
// or present exactly once as exactly "chunked" (case-insensitive, surrounding spaces
// allowed) on an HTTP/1.1 request without Content-Length. Anything else (unknown or
// stacked codings, TE with Content-Length, TE on HTTP/1.0) is refused with 400 and the
// connection closed, because another hop could frame the body differently.
// `te_fields`: how many Transfer-Encoding fields the request has; `te_value`: the first.
// Returns the reason to refuse, or an empty view when the framing is fine.
std::string_view RequestFramingError(size_t te_fields, std::string_view te_value, bool has_content_length,
                                     unsigned http_version) noexcept;

// ---- Host (DNS rebinding) ----

// True when `host` (an address or name, IPv6 without brackets) is a loopback listen
// address: 127.0.0.0/8, ::1, an IPv4-mapped 127.x, or "localhost".
bool IsLoopbackHost(std::string_view host) noexcept;

// For a proxy that listens on loopback: true when the request's Host header value names a
// loopback IP literal, `localhost` or a `*.localhost` name, or `listen_host` itself, with
// or without a port (case-insensitive, a trailing dot ignored). A page on
// http://evil.example whose name was rebound to 127.0.0.1 sends `Host: evil.example` and
// is refused. `listen_host` is the configured host, IPv6 without brackets.
bool HostAllowedOnLoopback(std::string_view host_header, std::string_view listen_host) noexcept;

// ---- Origin and CORS ----

// "HTTP://Example.COM:8080/" -> "http://example.com:8080" (lower case, no trailing '/').
std::string NormalizeOrigin(std::string_view origin);

// Which browser origins may use the proxy. Built once at Start from the `cors_origins`
// option and the bound address. Immutable afterwards.
class OriginPolicy {
 public:
  OriginPolicy() = default;
  // `allow_list`: origins as configured ("*" = any origin, for those who really want it);
  // `listen_host` (IPv6 without brackets) and `port`: the proxy's own origins, which are
  // always allowed (http://127.0.0.1:PORT, http://localhost:PORT, http://[::1]:PORT and
  // http://LISTEN_HOST:PORT).
  OriginPolicy(const std::vector<std::string>& allow_list, std::string_view listen_host, uint16_t port);

  // A request carrying this Origin header may proceed.
  bool Allowed(std::string_view origin) const;
  // The origin is in the configured allow-list: its responses get CORS headers and its
  // preflight requests are answered. The proxy's own origins are same-origin: no CORS.
  bool InAllowList(std::string_view origin) const;

 private:
  std::unordered_set<std::string> allow_;
  std::unordered_set<std::string> own_;
  bool any_ = false;
};

// True when `name` is an Access-Control-* response field (compared case-insensitively).
bool IsAccessControlField(std::string_view name) noexcept;

// True when `value` is a comma-separated list of header-name tokens (what a preflight's
// Access-Control-Request-Headers may be echoed from). Empty is a valid (empty) list.
bool IsTokenList(std::string_view value) noexcept;

}  // namespace corral::proxy
