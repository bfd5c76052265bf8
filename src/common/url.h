// The small pieces of URLs every module parses: HOST:PORT authorities and percent-escapes.
// One implementation each (issue 12 item 4: HOST:PORT was parsed in seven places and
// percent-decoding in two, with different edge cases). Pure; thread-safety: stateless.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

// An authority split into its parts, before any rule about what the host may be.
struct Authority {
  std::string host;              // without brackets
  std::optional<uint16_t> port;  // unset when the text has no ":PORT"
  bool bracketed = false;        // written as [HOST]
};

// Splits "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT". Unbracketed, the last ':' splits (so
// "::1:8080" is ::1 and 8080, the way listen addresses are written). PORT is 1-5 decimal
// digits, at most 65535. Errors (kInvalidArgument, the reason alone, without the text: the
// caller names it): empty host, unclosed '[', junk after ']', bad port. Any other rule on
// the host (an IP literal, a name) is the caller's: ParseHostPort, the bench's URLs.
Result<Authority> SplitAuthority(std::string_view text);

// HOST as written before ":PORT": in brackets when it holds a ':' (an IPv6 literal).
std::string BracketHost(std::string_view host);

// An authority: an IP literal (or, when allowed, a name) and a port.
struct HostPort {
  std::string host;  // without brackets; "localhost" becomes "127.0.0.1"
  uint16_t port = 0;
  bool v6 = false;  // host is an IPv6 literal
  // "127.0.0.1:8080" / "[::1]:8080".
  std::string ToString() const;
};

// Parses "HOST:PORT", "[V6]:PORT" or "::1:PORT" (the last ':' splits), optionally after
// "http://" or "https://" and before one trailing '/'. The port must be 0-65535 in decimal
// (at most 5 digits); `require_port_nonzero` refuses 0. The host must be an IP literal or
// "localhost". The error names `text` (cut to 200 bytes).
Result<HostPort> ParseHostPort(std::string_view text, bool require_port_nonzero = false);

// Fills `out` with the address and port of `hp` (already validated by ParseHostPort);
// returns the length to pass to bind/connect.
socklen_t ToSockaddr(const HostPort& hp, sockaddr_storage* out);

// The value of one hex digit, or -1.
int HexDigitValue(char c);

// Decodes %XX escapes; `plus_is_space` also turns '+' into ' ' (query strings, forms).
// A truncated or non-hex escape is kept as written (paths: lenient, like most servers).
std::string PercentDecode(std::string_view text, bool plus_is_space);
// The same, but a truncated or non-hex escape is an error (nullopt).
std::optional<std::string> PercentDecodeStrict(std::string_view text, bool plus_is_space);

}  // namespace corral
