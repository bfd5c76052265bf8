#include "common/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace corral {

std::string BracketHost(std::string_view host) {
  if (host.find(':') == std::string_view::npos) return std::string(host);
  return "[" + std::string(host) + "]";
}

std::string HostPort::ToString() const {
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

// "PORT": 1-5 decimal digits, at most 65535.
std::optional<uint16_t> ParsePort(std::string_view text) {
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || text.size() > 5 || ec != std::errc() || end != text.data() + text.size() || port > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(port);
}

}  // namespace

Result<Authority> SplitAuthority(std::string_view text) {
  Authority out;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unclosed '['");
    out.bracketed = true;
    out.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return InvalidArgument("junk after ']'");
    has_port = !rest.empty();
    if (has_port) port_text = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    out.host = std::string(text.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = text.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgument("empty host");
  if (has_port) {
    out.port = ParsePort(port_text);
    if (!out.port) return InvalidArgument("bad port");
  }
  return out;
}

Result<HostPort> ParseHostPort(std::string_view text, bool require_port_nonzero) {
  auto bad = [&text](std::string_view why) -> Status {
    return InvalidArgument("'" + std::string(text.substr(0, 200)) + "' is not HOST:PORT (" + std::string(why) +
                           "; HOST is an IP address, [IPv6] or localhost)");
  };
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto split = SplitAuthority(rest);
  if (!split.ok()) return bad(split.status().message());
  if (!split->port) return bad("no port");
  if (require_port_nonzero && *split->port == 0) return bad("port 0");
  HostPort out;
  out.host = split->host == "localhost" ? "127.0.0.1" : split->host;
  out.port = *split->port;
  unsigned char buf[16];
  if (::inet_pton(AF_INET, out.host.c_str(), buf) == 1) return out;
  if (::inet_pton(AF_INET6, out.host.c_str(), buf) == 1) {
    out.v6 = true;
    return out;
  }
  return bad("not an IP address");
}

socklen_t ToSockaddr(const HostPort& hp, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  if (hp.v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(hp.port);
    ::inet_pton(AF_INET6, hp.host.c_str(), &a->sin6_addr);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(out);
  a->sin_family = AF_INET;
  a->sin_port = htons(hp.port);
  ::inet_pton(AF_INET, hp.host.c_str(), &a->sin_addr);
  return sizeof *a;
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace {

// Shared loop: `strict` turns a bad escape into nullopt instead of keeping it.
std::optional<std::string> Decode(std::string_view text, bool plus_is_space, bool strict) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int hi = i + 2 < text.size() ? HexDigitValue(text[i + 1]) : -1;
      const int lo = hi >= 0 ? HexDigitValue(text[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
      if (strict) return std::nullopt;
      out += c;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  return *Decode(text, plus_is_space, false);
}

std::optional<std::string> PercentDecodeStrict(std::string_view text, bool plus_is_space) {
  return Decode(text, plus_is_space, true);
}

}  // namespace corral
