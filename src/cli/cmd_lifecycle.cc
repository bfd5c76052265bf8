// Lifecycle commands, all through the daemon's control plane:
// `corral start | stop | ps | logs | status | run`.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "cli/lifecycle_client.h"
#include "common/url.h"
#include "control/api.h"
#include "supervisor/launch.h"

extern char** environ;

namespace corral::cli {
namespace {

using nlohmann::json;

// Prints an API or transport failure and returns the exit code it maps to.
int ReportFailure(const Result<control::Reply>& reply, const std::string& what) {
  if (!reply.ok()) return Fail(ExitCode::kDaemonUnreachable, what + ": " + reply.status().message());
  const auto& e = *reply->error;
  return Fail(static_cast<ExitCode>(control::ExitCodeFor(e.code)), what + ": " + e.message);
}

bool Failed(const Result<control::Reply>& reply) {
  return !reply.ok() || reply->error.has_value();
}

std::string FormatDuration(long long secs) {
  char buf[32];
  if (secs < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", secs);
  } else if (secs < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", secs / 60, secs % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", secs / 3600, (secs / 60) % 60);
  }
  return buf;
}

// The proxy's OpenAI base URL as the daemon reports it (its real port, also when the
// config asked for port 0); the configured address when the daemon does not say.
std::string ProxyUrl(const GlobalOptions& global, control::ControlClient& client) {
  auto status = client.Call("GET", "/v1/status");
  if (status.ok() && !status->error && status->body.contains("proxy") && status->body["proxy"].is_object()) {
    std::string url = status->body["proxy"].value("url", std::string());
    if (!url.empty()) return url;
  }
  auto config = config::Load(global.flags);
  return "http://" + (config.ok() ? config->listen : std::string(defaults::kListen)) + "/v1";
}

// ---------------------------------------------------------------------------------------
// start

struct StartArgs {
  std::string model;
  std::string name;
  uint32_t ctx = 0;
  int port = 0;
  bool wait = true;
  bool dry_run = false;
  bool force = false;
  bool restart = false;
  bool no_spawn = false;
  std::vector<std::string> raw;
};

// Starts (or finds) a model and, with `wait`, follows it to ready or failed with a spinner
// on a TTY. Returns the final model JSON, or an exit code.
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann::json's special members may throw.
struct StartOutcome {
  int exit_code = 0;
  json model;
  bool already_running = false;
};

StartOutcome StartAndWait(const GlobalOptions& global, control::ControlClient& client, const StartArgs& a, bool quiet) {
  StartOutcome out;
  control::StartRequest req;
  req.model = a.model;
  // A path is resolved against the CLI's working directory, not the daemon's.
  std::error_code ec;
  if (std::filesystem::exists(a.model, ec)) req.model = std::filesystem::absolute(a.model, ec).string();
  req.name = a.name;
  req.ctx = a.ctx;
  req.port = a.port;
  req.raw_args = a.raw;
  req.force = a.force;
  req.restart = a.restart;
  req.dry_run = a.dry_run;
  for (char** e = environ; *e != nullptr; ++e) req.env.emplace_back(*e);
  json body = control::ToJson(req);
  auto reply = client.Call("POST", "/v1/models/start", &body, std::chrono::seconds(120));
  if (Failed(reply)) {
    out.exit_code = ReportFailure(reply, "start " + a.model);
    return out;
  }
  if (a.dry_run) {
    out.model = reply->body["plan"];
    return out;
  }
  out.model = reply->body["model"];
  out.already_running = reply->body.value("already_running", false);
  if (!a.wait) return out;

  const bool tty = !quiet && ::isatty(2) != 0 && !global.json;
  static const char kFrames[] = "|/-\\";
  int frame = 0;
  auto t0 = std::chrono::steady_clock::now();
  const std::string name = out.model.value("name", std::string());
  for (;;) {
    std::string state = out.model.value("state", std::string());
    if (state == "ready" || state == "failed" || state == "stopped") break;
    if (tty) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\r%c %s: %s %.1fs ", kFrames[frame++ % 4], name.c_str(), state.c_str(), secs);
      std::fflush(stderr);
    }
    std::string target = "/v1/models/" + control::UrlEncode(name) +
                         "/wait?generation=" + std::to_string(out.model.value("generation", 0ULL)) + "&timeout_ms=100";
    auto w = client.Call("GET", target, nullptr, std::chrono::seconds(30));
    if (Failed(w)) {
      if (tty) std::fprintf(stderr, "\r\033[K");
      out.exit_code = ReportFailure(w, "waiting for " + name);
      return out;
    }
    out.model = w->body["model"];
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (out.model.value("state", std::string()) != "ready") {
    const json& f = out.model.contains("failure") ? out.model["failure"] : json::object();
    std::string msg = name + " failed: " + f.value("message", std::string("stopped before it was ready"));
    std::string tail = out.model.value("last_log_lines", std::string());
    if (!global.json && !tail.empty())
      msg += "\n--- last lines of " + out.model.value("log_path", std::string()) + " ---\n" + tail;
    out.exit_code = Fail(ExitCode::kLaunchFailed, msg);
  }
  return out;
}

int RunStart(const GlobalOptions& global, const StartArgs& a) {
  if (Status s = catalog::CheckReference(a.model); !s.ok()) return Fail(ExitCode::kUsage, "start: " + s.message());
  if (Status s = supervisor::CheckRawArgs(a.raw); !s.ok()) return Fail(ExitCode::kUsage, s.message());
  auto client = ConnectDaemon(global, a.no_spawn);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  StartOutcome o = StartAndWait(global, **client, a, false);
  if (o.exit_code != 0) {
    if (global.json && !o.model.is_null()) std::cout << json{{"model", o.model}}.dump(2) << "\n";
    return o.exit_code;
  }
  if (a.dry_run) {
    if (global.json) {
      std::cout << json{{"plan", o.model}}.dump(2) << "\n";
      return 0;
    }
    std::vector<std::string> argv = o.model["argv"].get<std::vector<std::string>>();
    size_t env_count = 0;
    for (char** e = environ; *e != nullptr; ++e) ++env_count;
    std::printf("%s\n", supervisor::ShellQuote(argv).c_str());
    std::printf("# environment: this shell's, passed through unchanged (%zu variables)\n", env_count);
    std::printf("# name %s, memory reserved %s (budget %s, %s already reserved), health timeout %.0f s\n",
                o.model.value("name", std::string()).c_str(),
                supervisor::FormatBytes(o.model.value("reserved_bytes", 0ULL)).c_str(),
                supervisor::FormatBytes(o.model.value("budget_bytes", 0ULL)).c_str(),
                supervisor::FormatBytes(o.model.value("already_reserved_bytes", 0ULL)).c_str(),
                o.model.value("health_timeout_ms", 0.0) / 1000.0);
    std::printf("# log %s\n", o.model.value("log_path", std::string()).c_str());
    if (const auto it = o.model.find("spec"); it != o.model.end() && it->is_object()) {
      const std::string kind = it->value("kind", std::string());
      const std::string draft = it->value("draft", std::string());
      std::printf("# speculative decoding: %s%s (%s)\n", kind.c_str(), draft.empty() ? "" : (" " + draft).c_str(),
                  it->value("reason", std::string()).c_str());
    }
    return 0;
  }
  if (global.json) {
    std::cout << json{{"model", o.model},
                      {"already_running", o.already_running},
                      {"proxy_url", ProxyUrl(global, **client)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  const json& m = o.model;
  std::string name = m.value("name", std::string());
  std::string state = m.value("state", std::string());
  if (state == "ready") {
    if (o.already_running) {
      std::printf("%s already running (pid %d)\n", name.c_str(), m.value("pid", 0));
    } else {
      std::printf("%s ready in %.0f ms (pid %d)\n", name.c_str(), m.value("ready_ms", 0.0), m.value("pid", 0));
    }
    std::printf("  direct: %s\n", m.value("url", std::string()).c_str());
    std::printf("  proxy:  %s  (model \"%s\")\n", ProxyUrl(global, **client).c_str(), name.c_str());
    std::printf("  logs:   corral logs %s\n", name.c_str());
  } else {
    std::printf("%s %s (pid %d); `corral ps` shows when it is ready\n", name.c_str(), state.c_str(), m.value("pid", 0));
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// ps

// Speculative decoding: "97%" accepted of the drafted tokens; "off next start" when its
// acceptance stayed too low to pay (the JSON's spec.fallback says why); "-" = no draft.
std::string SpecCell(const json& m) {
  if (!m.contains("spec") || !m["spec"].is_object()) return "-";
  const json& spec = m["spec"];
  std::string cell;
  if (spec.contains("acceptance") && spec["acceptance"].is_number()) {
    cell = std::to_string(static_cast<int>(std::lround(spec["acceptance"].get<double>() * 100))) + "%";
  }
  if (spec.contains("fallback")) cell += (cell.empty() ? "" : " ") + std::string("(off next start)");
  return cell.empty() ? "-" : cell;
}

int RunPs(const GlobalOptions& global, bool no_spawn) {
  auto client = ConnectDaemon(global, no_spawn);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  auto reply = (*client)->Call("GET", "/v1/ps");
  if (Failed(reply)) return ReportFailure(reply, "ps");
  const json& models = reply->body["models"];
  if (global.json) {
    std::cout << reply->body.dump(2) << "\n";
    return 0;
  }
  const bool tty = ::isatty(1) != 0;
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "STATE", "PID", "URL", "UPTIME", "RSS", "MODEL", "SPEC", "ERROR"}};
  for (const auto& m : models) {
    std::string state = m.value("state", std::string());
    bool live = state != "failed" && state != "stopped";
    std::string err = m.contains("failure") ? m["failure"].value("message", std::string()) : "";
    if (err.empty() && m.contains("last_failure"))  // running again: say what it recovered from
      err = "restarted after: " + m["last_failure"].value("message", std::string());
    if (m.contains("restart_in_ms")) {  // the restart policy will start it again
      state +=
          " (restart in " + std::to_string(static_cast<long long>((m.value("restart_in_ms", 0.0) + 999) / 1000)) + "s)";
    }
    if (m.value("restarts", 0) > 0) state += " [" + std::to_string(m.value("restarts", 0)) + " restarts]";
    rows.push_back({m.value("name", std::string()), state, live ? std::to_string(m.value("pid", 0)) : "-",
                    !live || m.value("url", std::string()).empty() ? "-" : m.value("url", std::string()),
                    live ? FormatDuration(m.value("uptime_s", 0LL)) : "-",
                    live ? supervisor::FormatBytes(m.value("rss_bytes", 0ULL)) : "-", m.value("model", std::string()),
                    SpecCell(m), err.empty() ? "-" : err});
  }
  if (!tty) {
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) std::printf("%s%s", i ? "\t" : "", r[i].c_str());
      std::printf("\n");
    }
    return 0;
  }
  if (models.empty()) {
    std::printf("no models running; start one with `corral start MODEL`\n");
    return 0;
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      std::printf("%-*s%s", i + 1 == r.size() ? 0 : static_cast<int>(width[i]), r[i].c_str(),
                  i + 1 == r.size() ? "" : "  ");
    }
    std::printf("\n");
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// stop

int RunStop(const GlobalOptions& global, const std::vector<std::string>& names, bool all, bool no_spawn) {
  if (names.empty() && !all) return Fail(ExitCode::kUsage, "stop: name a model or pass --all");
  (void)no_spawn;  // stop never starts a daemon: with none running, nothing runs
  auto client = ConnectDaemon(global, /*no_spawn=*/true);
  if (!client.ok() && client.status().code() == StatusCode::kFailedPrecondition) {
    return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  }
  if (!client.ok()) {
    if (names.empty()) {
      std::printf(global.json ? "{\"stopped\": []}\n" : "nothing to stop (no daemon running)\n");
      return 0;
    }
    return Fail(ExitCode::kModelReference,
                "stop " + names[0] + ": no model named '" + names[0] + "' is running (no daemon running)");
  }
  json stopped = json::array();
  if (all) {
    auto reply = (*client)->Call("POST", "/v1/models/stop-all", nullptr, std::chrono::minutes(5));
    if (Failed(reply)) return ReportFailure(reply, "stop --all");
    stopped = reply->body["stopped"];
  }
  for (const auto& n : names) {
    auto reply =
        (*client)->Call("POST", "/v1/models/" + control::UrlEncode(n) + "/stop", nullptr, std::chrono::minutes(2));
    if (Failed(reply)) return ReportFailure(reply, "stop " + n);
    stopped.push_back(n);
  }
  if (global.json) {
    std::cout << json{{"stopped", stopped}}.dump(2) << "\n";
  } else if (stopped.empty()) {
    std::printf("nothing to stop\n");
  } else {
    for (const auto& n : stopped) std::printf("stopped %s\n", n.get<std::string>().c_str());
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// logs

// Prints what is appended to `path` from `offset` on, until interrupted. inotify wakes us on
// every write; a 1 s poll timeout notices a log rotated under us (a restart of the model).
int FollowFile(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(ExitCode::kOther, "cannot open " + path);
  int in = ::inotify_init1(IN_CLOEXEC);
  int wd = in >= 0 ? ::inotify_add_watch(in, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF) : -1;
  char buf[65536];
  for (;;) {
    for (;;) {
      ssize_t r = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(offset));
      if (r <= 0) break;
      offset += static_cast<uint64_t>(r);
      if (std::fwrite(buf, 1, static_cast<size_t>(r), stdout) != static_cast<size_t>(r)) return 0;
    }
    std::fflush(stdout);
    pollfd p{in, POLLIN, 0};
    int n = ::poll(&p, in >= 0 ? 1 : 0, 1000);
    if (n > 0) {
      char evbuf[4096];
      ssize_t r = ::read(in, evbuf, sizeof(evbuf));
      (void)r;
    }
    struct stat a {};
    struct stat b {};
    if (::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && (a.st_ino != b.st_ino || a.st_dev != b.st_dev)) {
      // Rotated: finish nothing more from the old file; follow the new one from its start.
      ::close(fd);
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 0;
      offset = 0;
      if (wd >= 0) ::inotify_rm_watch(in, wd);
      wd = ::inotify_add_watch(in, path.c_str(), IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
      std::fprintf(stderr, "--- %s was rotated (model restarted) ---\n", path.c_str());
    }
  }
}

int RunLogs(const GlobalOptions& global, const std::string& name, int lines, bool follow, bool no_spawn) {
  if (lines < 0) return Fail(ExitCode::kUsage, "logs: --lines must be 0 or more");
  auto client = ConnectDaemon(global, no_spawn);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  auto reply = (*client)->Call("GET", "/v1/logs?name=" + control::UrlEncode(name) + "&lines=" + std::to_string(lines));
  if (Failed(reply)) return ReportFailure(reply, "logs " + name);
  std::string path = reply->body.value("path", std::string());
  struct stat st {};
  uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (global.json) {
    std::cout << reply->body.dump(2) << "\n";
  } else {
    std::string text = reply->body.value("text", std::string());
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (follow && !global.json) return FollowFile(path, size);
  return 0;
}

// ---------------------------------------------------------------------------------------
// status

int RunStatus(const GlobalOptions& global, bool no_spawn) {
  auto client = ConnectDaemon(global, no_spawn);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  auto reply = (*client)->Call("GET", "/v1/status");
  if (Failed(reply)) return ReportFailure(reply, "status");
  const json& b = reply->body;
  if (global.json) {
    std::cout << b.dump(2) << "\n";
    return 0;
  }
  const json& d = b["daemon"];
  const json& mem = b["memory"];
  std::printf("daemon:  pid %d, up %s, version %s\n", d.value("pid", 0),
              FormatDuration(d.value("uptime_s", 0LL)).c_str(), d.value("version", std::string()).c_str());
  std::printf("socket:  %s\n", d.value("socket", std::string()).c_str());
  std::string engine = d.value("llama_server", std::string());
  std::printf("engine:  %s\n",
              engine.empty() ? ("MISSING: " + d.value("engine_error", std::string())).c_str() : engine.c_str());
  std::printf("proxy:   %s%s\n", b["proxy"].value("url", std::string()).c_str(),
              b["proxy"].value("running", false) ? "" : " (not running)");
  std::printf("memory:  %s reserved of a %s budget (%s, RAM %s)\n",
              supervisor::FormatBytes(mem.value("reserved_bytes", 0ULL)).c_str(),
              supervisor::FormatBytes(mem.value("budget_bytes", 0ULL)).c_str(),
              mem.value("budget_source", std::string()).c_str(),
              supervisor::FormatBytes(mem.value("total_bytes", 0ULL)).c_str());
  std::printf("models:  %zu\n", b["models"].size());
  for (const auto& m : b["models"]) {
    std::printf("  %-20s %-9s %s\n", m.value("name", std::string()).c_str(), m.value("state", std::string()).c_str(),
                m.value("url", std::string()).c_str());
  }
  for (const auto& n : b["notices"]) std::printf("notice:  %s\n", n.get<std::string>().c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------
// run: a streamed chat completion, straight to the child (the proxy path comes with the
// proxy module).

std::atomic<int> g_stream_fd{-1};
std::atomic<bool> g_cancelled{false};

extern "C" void OnRunInterrupt(int) {
  g_cancelled.store(true);
  int fd = g_stream_fd.load();
  if (fd >= 0) {
    ::shutdown(fd, SHUT_RDWR);  // async-signal-safe: ends the current answer only
  } else {
    std::_Exit(130);
  }
}

// Streams one answer; returns the assistant text (empty on failure) and prints as it goes.
Result<std::string> StreamChat(int port, const std::string& model, const json& messages, int max_tokens) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  try {
    boost::asio::io_context ioc;
    tcp::socket sock(ioc);
    sock.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    g_stream_fd.store(sock.native_handle());
    json body = {{"model", model}, {"messages", messages}, {"stream", true}, {"max_tokens", max_tokens}};
    http::request<http::string_body> req{http::verb::post, "/v1/chat/completions", 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::content_type, "application/json");
    req.body() = body.dump();
    req.prepare_payload();
    http::write(sock, req);
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    http::read_header(sock, buffer, parser);
    if (parser.get().result_int() != 200) {
      g_stream_fd.store(-1);
      return Unavailable("the model answered HTTP " + std::to_string(parser.get().result_int()));
    }
    std::string pending;
    std::string answer;
    char chunk[4096];
    bool done = false;
    while (!parser.is_done() && !done) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof(chunk);
      beast::error_code ec;
      http::read(sock, buffer, parser, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) break;
      pending.append(chunk, sizeof(chunk) - parser.get().body().size);
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("data: ", 0) != 0) continue;
        std::string data = line.substr(6);
        if (data == "[DONE]") {
          done = true;
          break;
        }
        json ev = json::parse(data, nullptr, false);
        if (!ev.is_object() || !ev.contains("choices") || !ev["choices"].is_array() || ev["choices"].empty()) continue;
        const json& delta = ev["choices"][0].value("delta", json::object());
        if (delta.contains("content") && delta["content"].is_string()) {
          std::string piece = delta["content"].get<std::string>();
          answer += piece;
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
      }
    }
    g_stream_fd.store(-1);
    std::printf("\n");
    return answer;
  } catch (const std::exception& e) {
    g_stream_fd.store(-1);
    if (g_cancelled.load()) return std::string();
    return Unavailable(std::string("chat: ") + e.what());
  }
}

struct RunArgs {
  StartArgs start;
  std::string prompt;
  int max_tokens = 256;
};

int RunRun(const GlobalOptions& global, RunArgs& a) {
  if (Status s = catalog::CheckReference(a.start.model); !s.ok()) return Fail(ExitCode::kUsage, "run: " + s.message());
  auto client = ConnectDaemon(global, a.start.no_spawn);
  if (!client.ok()) return Fail(ExitCode::kDaemonUnreachable, client.status().message());
  a.start.wait = true;
  StartOutcome o = StartAndWait(global, **client, a.start, false);
  if (o.exit_code != 0) return o.exit_code;
  // Through the proxy, like every other client: `corral run` shows the path users get.
  // The child's own port is the fallback when the daemon reports no proxy.
  const std::string name = o.model.value("name", std::string());
  int port = o.model.value("port", 0);
  const std::string proxy = ProxyUrl(global, **client);
  if (auto hp = ParseHostPort(proxy, true); hp.ok()) port = hp->port;
  struct sigaction sa {};
  sa.sa_handler = OnRunInterrupt;
  ::sigaction(SIGINT, &sa, nullptr);

  json messages = json::array();
  auto ask = [&](const std::string& text) -> int {
    messages.push_back({{"role", "user"}, {"content", text}});
    g_cancelled.store(false);
    auto answer = StreamChat(port, name, messages, a.max_tokens);
    if (!answer.ok()) return Fail(ExitCode::kOther, answer.status().message());
    messages.push_back({{"role", "assistant"}, {"content", *answer}});
    return 0;
  };
  if (!a.prompt.empty()) return ask(a.prompt);
  if (::isatty(0) == 0) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (all.empty()) return Fail(ExitCode::kUsage, "run: no prompt (give one as an argument or on stdin)");
    return ask(all);
  }
  std::fprintf(stderr, "chatting with %s (Ctrl+C stops an answer, Ctrl+D quits)\n",
               o.model.value("name", std::string()).c_str());
  for (;;) {
    std::fprintf(stderr, "> ");
    std::string line;
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    int rc = ask(line);
    if (rc != 0) return rc;
  }
  std::fprintf(stderr, "\n");
  return 0;
}

void AddStartFlags(CLI::App* s, StartArgs& a, bool with_raw) {
  s->add_option("--ctx,-c", a.ctx, "Context size (llama-server -c); default: llama-server's");
  s->add_option("--name", a.name,
                "Name of this instance (default: the model's name); start a model twice with two names");
  s->add_option("--port", a.port, "Port the child binds (default 0: any free port, learned from its log)");
  s->add_flag("--force", a.force, "Start even when the memory budget says it does not fit");
  s->add_flag("--restart", a.restart,
              "If it crashes after being ready, start it again (after 1 s, 2 s, 4 s ... 30 s; gives up after 5 "
              "crashes in a row)");
  s->add_flag("--no-spawn", a.no_spawn, "Do not start a daemon when none is running (exit 65 instead)");
  if (with_raw) s->add_option("raw", a.raw, "Raw llama-server arguments, after --")->type_name("-- ARGS...");
}

}  // namespace

static void RegisterLifecycle(CLI::App& app, GlobalOptions& global, RunFn& run) {
  {
    auto a = std::make_shared<StartArgs>();
    auto* s = app.add_subcommand("start", "Start a model: launches the unmodified llama-server with your argv");
    s->fallthrough();
    s->add_option("model", a->model, "Model: a .gguf path or a name in the model directory")->required();
    AddStartFlags(s, *a, true);
    s->add_flag("--wait,!--no-wait", a->wait, "Wait until the model is ready (default) or return at once");
    s->add_flag("--dry-run", a->dry_run, "Print the exact argv and environment; launch nothing");
    s->add_flag("--json", global.json, "Print JSON");
    s->callback([&global, &run, a] { run = [&global, a] { return RunStart(global, *a); }; });
  }
  {
    auto no_spawn = std::make_shared<bool>(false);
    auto* s = app.add_subcommand(
        "ps", "List running models: name, state, pid, URL, uptime, RSS, draft acceptance, last error");
    s->fallthrough();
    s->add_flag("--json", global.json, "Print JSON");
    s->add_flag("--no-spawn", *no_spawn, "Do not start a daemon when none is running");
    s->callback([&global, &run, no_spawn] { run = [&global, no_spawn] { return RunPs(global, *no_spawn); }; });
  }
  {
    struct StopArgs {
      std::vector<std::string> names;
      bool all = false;
      bool no_spawn = false;
    };
    auto a = std::make_shared<StopArgs>();
    auto* s = app.add_subcommand("stop", "Stop models (SIGTERM, grace period, SIGKILL)");
    s->fallthrough();
    s->add_option("name", a->names, "Model instance names");
    s->add_flag("--all", a->all, "Stop every model");
    s->add_flag("--json", global.json, "Print JSON");
    s->add_flag("--no-spawn", a->no_spawn, "Do not start a daemon when none is running");
    s->callback([&global, &run, a] { run = [&global, a] { return RunStop(global, a->names, a->all, a->no_spawn); }; });
  }
  {
    struct LogsArgs {
      std::string name;
      int lines = 50;
      bool follow = false;
      bool no_spawn = false;
    };
    auto a = std::make_shared<LogsArgs>();
    auto* s = app.add_subcommand("logs", "Show a model's llama-server log");
    s->fallthrough();
    s->add_option("name", a->name, "Model instance name")->required();
    s->add_option("-n,--lines", a->lines, "Lines from the end")->capture_default_str()->check(CLI::NonNegativeNumber);
    s->add_flag("-f,--follow", a->follow, "Keep printing as the log grows");
    s->add_flag("--json", global.json, "Print JSON");
    s->add_flag("--no-spawn", a->no_spawn, "Do not start a daemon when none is running");
    s->callback([&global, &run, a] {
      run = [&global, a] { return RunLogs(global, a->name, a->lines, a->follow, a->no_spawn); };
    });
  }
  {
    auto no_spawn = std::make_shared<bool>(false);
    auto* s = app.add_subcommand("status", "Daemon, proxy, memory budget and models");
    s->fallthrough();
    s->add_flag("--json", global.json, "Print JSON");
    s->add_flag("--no-spawn", *no_spawn, "Do not start a daemon when none is running");
    s->callback([&global, &run, no_spawn] { run = [&global, no_spawn] { return RunStatus(global, *no_spawn); }; });
  }
  {
    auto a = std::make_shared<RunArgs>();
    auto* s = app.add_subcommand("run", "Chat with a model (starts it when needed); streams the answer");
    s->fallthrough();
    s->add_option("model", a->start.model, "Model: a .gguf path or a name in the model directory")->required();
    s->add_option("prompt", a->prompt, "The prompt; none: interactive on a TTY, else stdin");
    AddStartFlags(s, a->start, false);
    s->add_option("--max-tokens", a->max_tokens, "Longest answer in tokens")->capture_default_str();
    s->callback([&global, &run, a] { run = [&global, a] { return RunRun(global, *a); }; });
  }
}

CORRAL_REGISTER_COMMAND(RegisterLifecycle);

}  // namespace corral::cli
