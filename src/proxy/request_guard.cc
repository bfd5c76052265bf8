#include "proxy/request_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "common/url.h"

namespace corral::proxy {

namespace {

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Splits a Host header value into the host part (IPv6 without brackets) and drops the port.
// False when it is not host[:port] / [v6][:port].
bool HostPart(std::string_view value, std::string_view* host) {
  if (value.empty()) return false;
  if (value.front() == '[') {
    size_t close = value.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !(rest.size() == 1 || AllDigits(rest.substr(1))))) return false;
    *host = value.substr(1, close - 1);
    return true;
  }
  size_t colon = value.find(':');
  if (colon != std::string_view::npos) {
    std::string_view port = value.substr(colon + 1);
    if (!(port.empty() || AllDigits(port))) return false;
    value = value.substr(0, colon);
  }
  if (value.empty()) return false;
  *host = value;
  return true;
}

bool IsLoopbackLiteral(std::string_view host) {
  if (host.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, buf, &v6) != 1) return false;
  static constexpr unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.s6_addr, kLoopback, 16) == 0) return true;
  return std::memcmp(v6.s6_addr, kMapped, 12) == 0 && v6.s6_addr[12] == 127;
}

bool IsLocalhostName(std::string_view host) {
  static constexpr std::string_view kLocalhost = "localhost";
  if (IEquals(host, kLocalhost)) return true;
  static constexpr std::string_view kSuffix = ".localhost";
  return host.size() > kSuffix.size() && IEquals(host.substr(host.size() - kSuffix.size()), kSuffix);
}

}  // namespace

bool IsSafeHeaderValue(std::string_view value) noexcept {
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
  }
  return true;
}

bool HasControlChars(std::string_view s) noexcept {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) return true;
  }
  return false;
}

std::string_view RequestFramingError(size_t te_fields, std::string_view te_value, bool has_content_length,
                                     unsigned http_version) noexcept {
  if (te_fields == 0) return {};
  if (http_version < 11) return "Transfer-Encoding on an HTTP/1.0 request";
  if (te_fields > 1) return "more than one Transfer-Encoding field";
  if (has_content_length) return "both Transfer-Encoding and Content-Length";
  if (!IEquals(TrimOws(te_value), "chunked")) return "Transfer-Encoding other than exactly 'chunked'";
  return {};
}

bool IsLoopbackHost(std::string_view host) noexcept {
  return IEquals(host, "localhost") || IsLoopbackLiteral(host);
}

bool HostAllowedOnLoopback(std::string_view host_header, std::string_view listen_host) noexcept {
  std::string_view host;
  if (!HostPart(TrimOws(host_header), &host)) return false;
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);  // "localhost." is localhost
  return IsLocalhostName(host) || IsLoopbackLiteral(host) || (!listen_host.empty() && IEquals(host, listen_host));
}

std::string NormalizeOrigin(std::string_view origin) {
  origin = TrimOws(origin);
  while (!origin.empty() && origin.back() == '/') origin.remove_suffix(1);
  std::string out(origin);
  for (char& c : out) c = Lower(c);
  return out;
}

OriginPolicy::OriginPolicy(const std::vector<std::string>& allow_list, std::string_view listen_host, uint16_t port) {
  for (const auto& o : allow_list) {
    std::string n = NormalizeOrigin(o);
    if (n == "*") {
      any_ = true;
    } else if (!n.empty()) {
      allow_.insert(std::move(n));
    }
  }
  std::string p = ":" + std::to_string(port);
  own_.insert("http://127.0.0.1" + p);
  own_.insert("http://localhost" + p);
  own_.insert("http://[::1]" + p);
  if (!listen_host.empty()) {
    std::string h = NormalizeOrigin(listen_host);
    own_.insert("http://" + BracketHost(h) + p);
  }
}

bool OriginPolicy::Allowed(std::string_view origin) const {
  if (any_) return true;
  std::string n = NormalizeOrigin(origin);
  return own_.count(n) != 0 || allow_.count(n) != 0;
}

bool OriginPolicy::InAllowList(std::string_view origin) const {
  if (any_) return true;
  return allow_.count(NormalizeOrigin(origin)) != 0;
}

bool IsAccessControlField(std::string_view name) noexcept {
  static constexpr std::string_view kPrefix = "access-control-";
  return name.size() > kPrefix.size() && IEquals(name.substr(0, kPrefix.size()), kPrefix);
}

bool IsTokenList(std::string_view value) noexcept {
  for (char c : value) {
    if (!(IsTchar(c) || c == ',' || c == ' ' || c == '\t')) return false;
  }
  return true;
}

}  // namespace corral::proxy
