// The Corral daemon. Job: build its parts in order (supervisor, router, event feed, bench
// runs, proxy, config reloader, control routes), own them, and tear them down in one order;
// handle signals and drain cleanly. It answers no request itself: the control server gets
// the route table (control/routes.h) over ControlServices (daemon/control_services.h), and
// config reloads are ConfigReloader's (daemon/reloader.h).
//
// Threads: the caller's thread waits for SIGINT/SIGTERM (drain and stop) and SIGHUP (reload
// the config), all blocked in every thread and taken with sigwait, or a /v1/shutdown
// request; the control server has its own threads; the supervisor its monitor thread (its
// on_change logs transitions and writes the state file); a ConfigWatcher thread reloads the
// config when config.yaml changes on disk.
//
// Config reload (SIGHUP, POST /v1/reload, a change of config.yaml): see daemon/reloader.h.
// Children and requests in flight are never touched by a reload. Drain order: refuse new
// starts, stop every child (SIGTERM, grace, SIGKILL), stop the control server, tear the parts
// down, write the (empty) state, remove the socket, release the lock.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <memory>

#include "common/status.h"
#include "config/options.h"
#include "control/transport.h"

namespace corral::daemon {

std::string SocketPath();     // RuntimeDir()/corral.sock
std::string LockPath();       // RuntimeDir()/corral.lock (flock: one daemon per user)
std::string StateLockPath();  // StateDir()/corral.lock (flock: one daemon per state dir)
std::string StateFilePath();  // StateDir()/state.json
std::string DaemonLogPath();  // StateDir()/daemon.log (stdout/stderr of a background daemon)
std::string ModelLogDir();    // StateDir()/logs

// Runs the daemon in the foreground until a signal or /v1/shutdown. kAlreadyExists when
// another daemon holds the lock.
Status Run(const config::Config& config);

// Starts `exe serve ARGS...` fully detached (double fork, setsid, stdin /dev/null,
// stdout/stderr appended to DaemonLogPath()) and waits until its socket answers.
Status SpawnBackground(const std::string& exe, const std::vector<std::string>& args, std::chrono::milliseconds timeout);

// A client connected to the running daemon. When none answers and `spawn` is true, starts
// one in the background first (daemon-on-demand) with `serve_args` (global flags to pass
// on). kUnavailable (CLI exit 65) when none answers and none could be started.
Result<std::unique_ptr<control::ControlClient>> Connect(bool spawn, const std::vector<std::string>& serve_args);

}  // namespace corral::daemon
