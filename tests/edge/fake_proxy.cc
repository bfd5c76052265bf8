// A scripted stand-in for `corral __proxy-process`, for ProxyHost's fault tests only (the
// real process is tested end to end in tests/daemon/proxy_process_test.cc). fd 3 is the
// listening socket, fd 4 the link; CORRAL_FAKE_PROXY_MODE says how to misbehave.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "edge/link.h"

namespace {

void Send(const std::string& msg) {
  std::string frame = "." + msg;
  ::send(4, frame.data(), frame.size(), MSG_NOSIGNAL);
}

// The next whole down message ("" when the link closed or nothing came within `ms`).
std::string Receive(int ms) {
  corral::edge::FrameAssembler a(corral::edge::kMaxDownMessageBytes);
  std::string buf(corral::edge::kMaxFramePayload + 1, '\0');
  for (;;) {
    pollfd p{4, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return "";
    ssize_t n = ::recv(4, buf.data(), buf.size(), 0);
    if (n <= 0) return "";
    auto m = a.Add(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!m.ok()) return "";
    if (m->has_value()) return **m;
  }
}

}  // namespace

int main() {
  const char* env = std::getenv("CORRAL_FAKE_PROXY_MODE");
  const std::string mode = env != nullptr ? env : "";
  if (mode == "exit1") return 1;
  if (mode == "silent") {
    ::pause();
    return 0;
  }
  Send("R");
  if (mode == "garbage") {
    Send("E not-a-number 5 alpha");
    ::pause();
  } else if (mode == "in-flight-then-die") {
    Send("S 127.0.0.1 9 alpha");
    Send("S 127.0.0.1 9 alpha");
    Send("D 127.0.0.1 9 alpha");
    ::usleep(100 * 1000);
    std::abort();
  } else if (mode == "ensure") {
    // Expects the answer to its EnsureReady among the keeper's messages; exit 0 when it is
    // the endpoint StaticProvider knows, 3 otherwise.
    Send("E 7 5000 alpha");
    for (int i = 0; i < 20; ++i) {
      std::string m = Receive(5000);
      if (m.empty()) return 3;
      auto d = corral::edge::ParseDown(m);
      if (d.ok() && d->type == corral::edge::DownMessage::Type::kAnswer) {
        const auto* ep = std::get_if<corral::proxy::Endpoint>(&d->answer);
        return d->id == 7 && ep != nullptr && ep->port == 4242 ? 0 : 3;
      }
    }
    return 3;
  } else if (mode == "limits") {
    // Exits 0 once a limits message with a 777-byte body limit arrives.
    for (int i = 0; i < 50; ++i) {
      std::string m = Receive(5000);
      if (m.empty()) return 3;
      auto d = corral::edge::ParseDown(m);
      if (d.ok() && d->type == corral::edge::DownMessage::Type::kLimits) return d->max_body_bytes == 777 ? 0 : 3;
    }
    return 3;
  }
  ::pause();
  return 0;
}
