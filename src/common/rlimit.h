// The open-file limit of a server process. Debian's default soft limit (1024) is below what
// the proxy must hold (1000 idle keep-alive clients plus their upstreams), so the daemon
// raises its soft limit to the hard one at start, as nginx (worker_rlimit_nofile) and Go's
// runtime do, and gives children the limit it started with (they are launched exactly as
// the user would launch them, limits included).
#pragma once

#include <sys/resource.h>

namespace corral {

struct OpenFileLimits {
  rlim_t before = 0;  // soft limit when the process started
  rlim_t now = 0;     // soft limit after raising
  rlim_t hard = 0;
};

// Raises RLIMIT_NOFILE's soft limit to its hard limit (at most `cap`). Idempotent; the
// first call records the original soft limit for RestoreOpenFileLimitInChild.
OpenFileLimits RaiseOpenFileLimit(rlim_t cap = 1U << 20);

// Async-signal-safe: call between fork() and exec() to give the child the original soft
// limit. Does nothing when the limit was never raised.
void RestoreOpenFileLimitInChild();

}  // namespace corral
