// `corral __proxy-process`: internal. The daemon runs itself this way to serve the proxy in a
// separate, restartable process (edge/host.h); fd 3 is the listening socket, fd 4 the link.
// Not for people: hidden from --help, and it refuses to run without those descriptors.
#include <fcntl.h>
#include <sys/socket.h>
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "edge/proxy_process.h"

namespace corral::cli {
namespace {

bool IsSocket(int fd, int type) {
  int t = 0;
  socklen_t len = sizeof t;
  return ::fcntl(fd, F_GETFD) >= 0 && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len) == 0 && t == type;
}

int RunProxyProcessCommand() {
  constexpr int kListenFd = 3, kLinkFd = 4;
  if (!IsSocket(kListenFd, SOCK_STREAM) || !IsSocket(kLinkFd, SOCK_SEQPACKET)) {
    return Fail(ExitCode::kUsage, "__proxy-process is internal: the daemon runs it (see `corral serve`)");
  }
  return edge::RunProxyProcess(kListenFd, kLinkFd);
}

}  // namespace

static void RegisterProxyProcess(CLI::App& app, GlobalOptions& /*global*/, RunFn& run) {
  auto* cmd = app.add_subcommand("__proxy-process", "");
  cmd->group("");  // hidden
  cmd->callback([&run] { run = [] { return RunProxyProcessCommand(); }; });
}

CORRAL_REGISTER_COMMAND(RegisterProxyProcess);

}  // namespace corral::cli
