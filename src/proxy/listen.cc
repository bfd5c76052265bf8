#include "proxy/listen.h"

#include "common/url.h"
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
    auto hp = ParseHostPort(entry);
    if (!hp.ok()) return bad(s.text);
    s.host = hp->host;
    s.port = hp->port;
    s.loopback = IsLoopbackHost(s.host);
    s.host_port = hp->ToString();
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
