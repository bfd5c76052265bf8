// `corral serve` (the daemon in the foreground) and `corral daemon start|stop|status`.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include "cli/commands.h"
#include "cli/lifecycle_client.h"
#include "control/api.h"
#include "daemon/daemon.h"
#include "daemon/lan.h"

namespace corral::cli {
namespace {

int RunServe(const GlobalOptions& global) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  // Issue 13: no accidental open door; refused before anything starts.
  if (Status door = daemon::CheckOpenDoor(*config); !door.ok()) {
    return Fail(door.code() == StatusCode::kFailedPrecondition ? ExitCode::kOpenBindRefused : ExitCode::kUsage,
                door.message());
  }
  Status s = daemon::Run(*config);
  if (s.code() == StatusCode::kAlreadyExists) return Fail(ExitCode::kOther, s.message());
  // A value the daemon refused (memory_budget, models: args) is a usage error, as a bad flag is.
  if (s.code() == StatusCode::kInvalidArgument) return Fail(ExitCode::kUsage, "daemon: " + s.message());
  if (!s.ok()) return Fail(ExitCode::kOther, "daemon: " + s.message());
  return 0;
}

int RunDaemonStart(const GlobalOptions& global) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  control::ControlClient probe(daemon::SocketPath());
  bool was_running = probe.Ping();
  auto client = ConnectDaemon(global, /*no_spawn=*/false);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  auto reply = (*client)->Call("GET", "/v1/status");
  if (!reply.ok() || reply->error) return Fail(ExitCode::kDaemonUnreachable, "the daemon did not answer /v1/status");
  const auto& d = reply->body["daemon"];
  if (global.json) {
    std::cout << nlohmann::json{{"already_running", was_running}, {"daemon", d}}.dump(2) << "\n";
  } else {
    std::printf("daemon %s (pid %d), socket %s\n", was_running ? "already running" : "started", d.value("pid", 0),
                d.value("socket", std::string()).c_str());
  }
  return 0;
}

int RunDaemonStop(const GlobalOptions& global) {
  if (Status s = control::CheckSocketAccess(daemon::SocketPath()); !s.ok()) {
    return Fail(ExitCode::kDaemonUnreachable, s.message());
  }
  control::ControlClient client(daemon::SocketPath());
  if (!client.Ping()) {
    if (global.json) {
      std::cout << nlohmann::json{{"was_running", false}}.dump(2) << "\n";
    } else {
      std::printf("no daemon running\n");
    }
    return 0;
  }
  auto st = client.Call("GET", "/v1/status");
  int pid = st.ok() && !st->error ? st->body["daemon"].value("pid", 0) : 0;
  auto reply = client.Call("POST", "/v1/shutdown");
  (void)reply;  // the daemon may hang up while draining; what counts is that it goes away
  // Wait for the drain: children get SIGTERM and a grace period, then the socket goes.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto delay = std::chrono::milliseconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    control::ControlClient c(daemon::SocketPath());
    if (!c.Ping() && (pid <= 0 || ::kill(pid, 0) != 0)) {
      if (global.json) {
        std::cout << nlohmann::json{{"was_running", true}, {"pid", pid}}.dump(2) << "\n";
      } else {
        std::printf("daemon stopped (pid %d)\n", pid);
      }
      return 0;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  return Fail(ExitCode::kStopFailed, "the daemon (pid " + std::to_string(pid) + ") did not exit within 60 s");
}

int RunDaemonStatus(const GlobalOptions& global) {
  if (Status s = control::CheckSocketAccess(daemon::SocketPath()); !s.ok()) {
    return Fail(ExitCode::kDaemonUnreachable, s.message());
  }
  control::ControlClient client(daemon::SocketPath());
  auto reply = client.Call("GET", "/v1/status", nullptr, std::chrono::seconds(5));
  if (!reply.ok() || reply->error) {
    if (global.json) std::cout << nlohmann::json{{"running", false}, {"socket", daemon::SocketPath()}}.dump(2) << "\n";
    return Fail(ExitCode::kDaemonUnreachable, "no daemon running (socket " + daemon::SocketPath() + ")");
  }
  const auto& d = reply->body["daemon"];
  if (global.json) {
    std::cout << nlohmann::json{{"running", true}, {"daemon", d}}.dump(2) << "\n";
  } else {
    std::printf("daemon running: pid %d, up %llds, socket %s, %zu model(s)\n", d.value("pid", 0),
                static_cast<long long>(d.value("uptime_s", 0LL)), d.value("socket", std::string()).c_str(),
                reply->body["models"].size());
  }
  return 0;
}

// `corral daemon reload`: the daemon re-reads config.yaml (as on SIGHUP). Exit 64 when the
// file is rejected (the daemon keeps its running config), 65 when no daemon runs.
int RunDaemonReload(const GlobalOptions& global) {
  if (Status s = control::CheckSocketAccess(daemon::SocketPath()); !s.ok()) {
    return Fail(ExitCode::kDaemonUnreachable, s.message());
  }
  control::ControlClient client(daemon::SocketPath());
  if (!client.Ping())
    return Fail(ExitCode::kDaemonUnreachable, "no daemon running (socket " + daemon::SocketPath() + ")");
  auto reply = client.Call("POST", "/v1/reload");
  if (!reply.ok()) return Fail(ExitCode::kDaemonUnreachable, "reload: " + reply.status().message());
  nlohmann::json result = reply->body;
  if (reply->error)
    result = result.is_object() ? result.value("reload", nlohmann::json::object()) : nlohmann::json::object();
  if (!result.is_object()) result = nlohmann::json::object();
  if (global.json) std::cout << result.dump(2) << "\n";
  if (reply->error) {
    return Fail(static_cast<ExitCode>(control::ExitCodeFor(reply->error->code)),
                "config rejected, the daemon keeps its running config: " + reply->error->message);
  }
  if (global.json) return 0;
  const auto& changed = result.value("changed", nlohmann::json::array());
  std::printf("config reloaded from %s: %zu change(s)\n", result.value("file", std::string()).c_str(), changed.size());
  std::map<std::string, bool> restart;
  for (const auto& r : result.value("needs_restart", nlohmann::json::array())) restart[r.value("key", "")] = true;
  for (const auto& c : changed) {
    const std::string key = c.value("key", "");
    const std::string before = c.value("before", ""), after = c.value("after", "");
    std::printf("  %-13s %s: %s -> %s\n", restart.count(key) != 0 ? "needs restart" : "applied", key.c_str(),
                before.empty() ? "(unset)" : before.c_str(), after.empty() ? "(unset)" : after.c_str());
  }
  for (const auto& w : result.value("warnings", nlohmann::json::array())) {
    std::printf("  warning       %s\n", w.get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

static void RegisterDaemon(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* serve = app.add_subcommand(
      "serve", "Run the Corral daemon in the foreground (Ctrl+C drains and stops models; SIGHUP reloads the config)");
  serve->fallthrough();
  serve
      ->add_option("--listen", global.flags.by_key["listen"],
                   "Proxy listen addresses: HOST:PORT or https://HOST:PORT, comma-separated")
      ->expected(1);
  serve->callback([&global, &run] { run = [&global] { return RunServe(global); }; });

  auto* d = app.add_subcommand("daemon", "Manage the background daemon");
  d->require_subcommand(1);
  d->fallthrough();
  auto* start = d->add_subcommand("start", "Start the daemon in the background (no-op when running)");
  auto* stop = d->add_subcommand("stop", "Drain and stop the daemon and every model it runs");
  auto* status = d->add_subcommand("status", "Is a daemon running? (exit 65 when not)");
  auto* reload = d->add_subcommand(
      "reload", "Re-read config.yaml in the running daemon (as SIGHUP does); exit 64 when the file is rejected");
  for (auto* s : {start, stop, status, reload}) {
    s->fallthrough();
    s->add_flag("--json", global.json, "Print JSON");
  }
  start->callback([&global, &run] { run = [&global] { return RunDaemonStart(global); }; });
  stop->callback([&global, &run] { run = [&global] { return RunDaemonStop(global); }; });
  status->callback([&global, &run] { run = [&global] { return RunDaemonStatus(global); }; });
  reload->callback([&global, &run] { run = [&global] { return RunDaemonReload(global); }; });
}

CORRAL_REGISTER_COMMAND(RegisterDaemon);

}  // namespace corral::cli
