// The proxy's listen addresses (issue 13): `listen` holds one or more comma-separated
// entries, each `HOST:PORT` or `http://HOST:PORT` (plain) or `https://HOST:PORT` (TLS).
// HOST is an IP literal, [IPv6] or localhost. Pure; thread-safety: stateless.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::proxy {

struct ListenSpec {
  std::string host;       // IP literal without brackets ("localhost" becomes 127.0.0.1)
  uint16_t port = 0;      // 0 = any
  bool tls = false;       // https://
  bool loopback = false;  // 127.0.0.0/8 or ::1 (0.0.0.0 and :: are routable: every interface)
  std::string host_port;  // "HOST:PORT" as the keeper binds it ([v6]:port for IPv6)
  std::string text;       // the entry as written
};

inline constexpr size_t kMaxListenAddresses = 8;

Result<std::vector<ListenSpec>> ParseListenList(std::string_view text);

// The non-loopback entries (for the open-door rule), as written.
std::vector<std::string> RoutableListens(const std::vector<ListenSpec>& specs);

}  // namespace corral::proxy
