#include "proxy/listen.h"

#include <arpa/inet.h>

#include "proxy/request_guard.h"

namespace corral::proxy {

Result<std::vector<ListenSpec>> ParseListenList(std::string_view text) {
  std::vector<ListenSpec> out;
  std::string_view rest = text;
  auto bad = [&](std::string_view entry) {
    return InvalidArgument(
        "listen entries must be HOST:PORT or https://HOST:PORT (HOST an IP address or "
        "localhost), got '" +
        std::string(entry.substr(0, 200)) + "'");
  };
  while (true) {
    size_t comma = rest.find(',');
    std::string_view entry = rest.substr(0, comma);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    ListenSpec s;
    s.text.assign(entry);
    if (entry.starts_with("https://")) {
      s.tls = true;
      entry.remove_prefix(8);
    } else if (entry.starts_with("http://")) {
      entry.remove_prefix(7);
    }
    if (!entry.empty() && entry.back() == '/') entry.remove_suffix(1);
    size_t colon = entry.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return bad(s.text);
    std::string_view host = entry.substr(0, colon), port = entry.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) {
      return bad(s.text);
    }
    unsigned long p = std::stoul(std::string(port));
    if (p > 65535) return bad(s.text);
    s.port = static_cast<uint16_t>(p);
    bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    s.host = host == "localhost" ? "127.0.0.1" : std::string(host);
    unsigned char buf[16];
    bool v4 = ::inet_pton(AF_INET, s.host.c_str(), buf) == 1;
    bool v6 = !v4 && ::inet_pton(AF_INET6, s.host.c_str(), buf) == 1;
    if (!v4 && !v6) return bad(s.text);
    if (v6 && !bracketed && host != "localhost") {
      // "::1:11450" is ambiguous to people, not to rfind; accept it as the keeper always did.
    }
    s.loopback = IsLoopbackHost(s.host);
    s.host_port = (v6 ? "[" + s.host + "]" : s.host) + ":" + std::to_string(s.port);
    out.push_back(std::move(s));
    if (out.size() > kMaxListenAddresses) return InvalidArgument("at most 8 listen addresses");
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::vector<std::string> RoutableListens(const std::vector<ListenSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) {
    if (!s.loopback) out.push_back(s.text);
  }
  return out;
}

}  // namespace corral::proxy
