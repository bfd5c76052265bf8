// `corral doctor [--json]`: read-only checks of everything Corral depends on. Each finding has
// a stable id (scripts may match on it), a severity (ok, info, warn, error), a message and a
// fix. Nothing is changed: no daemon is started, no file written, no socket removed.
// Exit 0 when no finding is an error, 1 otherwise (README.md, "Exit codes").
//
// Ids: config.invalid, engine.missing, engine.ok, engine.version, daemon.running,
// daemon.not_running, daemon.stale_socket, daemon.socket_access, proxy.port_taken,
// memory.budget_exceeds_ram, models.unreadable, models.none, catalog.warning,
// downloads.partial, token.permissions, token.found, caches.found.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <map>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "common/url.h"
#include "control/transport.h"
#include "daemon/daemon.h"
#include "daemon/models.h"
#include "engine/engine.h"
#include "proxy/listen.h"
#include "pull/hub_cache.h"
#include "pull/token.h"
#include "supervisor/launch.h"

namespace corral::cli {
namespace {

struct Finding {
  std::string id;
  std::string severity;  // "ok", "info", "warn", "error"
  std::string message;
  std::string fix;
};

class Doctor {
 public:
  void Add(std::string id, std::string severity, std::string message, std::string fix = "") {
    findings_.push_back({std::move(id), std::move(severity), std::move(message), std::move(fix)});
  }
  const std::vector<Finding>& findings() const { return findings_; }
  bool healthy() const {
    for (const auto& f : findings_) {
      if (f.severity == "error") return false;
    }
    return true;
  }

 private:
  std::vector<Finding> findings_;
};

void CheckEngine(Doctor& d, const config::Config& config) {
  auto info = engine::Locate(config, /*query_version=*/true);
  if (!info.ok()) {
    const bool not_exec = info.status().message().find("not an executable") != std::string::npos;
    d.Add(not_exec ? "engine.not_executable" : "engine.missing", "error", info.status().message(),
          not_exec ? "chmod +x the file, or point --llama-server / llama_server: at a working llama-server"
                   : "run `make engine` (builds the pinned llama.cpp), install llama-server on PATH, or set "
                     "llama_server: in config.yaml");
    return;
  }
  const std::string pinned = engine::kPinnedCommit;
  if (info->commit.empty()) {
    d.Add("engine.version", "warn",
          info->llama_server + " (" + info->source + ") did not report its commit; Corral is tested with llama.cpp " +
              pinned.substr(0, 12),
          "use a llama-server built from the pinned commit (`make engine`)");
  } else if (!pinned.starts_with(info->commit)) {
    d.Add("engine.version", "warn",
          info->llama_server + " (" + info->source + ") is llama.cpp " + info->commit.substr(0, 12) +
              ", not the pinned " + pinned.substr(0, 12) + " Corral is tested with (" + info->version_line + ")",
          "fine if it is newer; if models fail to load, update it or use the pinned build (`make engine`)");
  } else {
    d.Add("engine.ok", "ok", info->llama_server + " (" + info->source + "), llama.cpp " + pinned.substr(0, 12));
  }
}

// The listen address's port is free, or held by our own daemon.
void CheckDaemonAndPort(Doctor& d, const config::Config& config) {
  const std::string sock = daemon::SocketPath();
  bool running = false;
  if (Status s = control::CheckSocketAccess(sock); !s.ok()) {
    d.Add("daemon.socket_access", "error", s.message(), "run corral as the user who owns the daemon, or stop it");
    return;
  }
  struct stat st {};
  if (::lstat(sock.c_str(), &st) == 0) {
    control::ControlClient c(sock);
    running = c.Ping();
    if (running) {
      d.Add("daemon.running", "ok", "the daemon answers on " + sock);
    } else {
      d.Add("daemon.stale_socket", "warn", sock + " exists but nothing answers (a daemon that died)",
            "`corral daemon start` replaces it; or remove the file");
    }
  } else {
    d.Add("daemon.not_running", "info", "no daemon is running (commands start one when needed)");
  }
  if (running) return;
  auto first = proxy::ParseListenList(config.listen);
  if (!first.ok() || first->empty()) return;  // `config.invalid` reports it
  auto hp = ParseHostPort(first->front().host_port, true);
  if (!hp.ok()) return;
  const int port = hp->port;
  sockaddr_storage a{};
  const socklen_t len = ToSockaddr(*hp, &a);
  const int fd = ::socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 && errno == EADDRINUSE) {
    d.Add("proxy.port_taken", "error",
          "the proxy's address " + first->front().text + " is taken by another process (the daemon could not listen)",
          "stop that process (ss -ltnp 'sport = :" + std::to_string(port) +
              "'), or set listen: / --listen to another port");
  }
  ::close(fd);
}

void CheckBudget(Doctor& d, const config::Config& config) {
  auto total = supervisor::TotalMemoryBytes();
  if (!total.ok() || config.memory_budget == "auto" || config.memory_budget.empty()) return;
  auto budget = daemon::MemoryBudgetBytes(config, *total);
  if (budget.ok() && *budget > *total) {
    d.Add("memory.budget_exceeds_ram", "warn",
          "memory_budget " + config.memory_budget + " is larger than this machine's RAM (" +
              supervisor::FormatBytes(*total) + "): admission will let models in that then swap or get killed",
          "set memory_budget: auto, or a size below " + supervisor::FormatBytes(*total));
  }
}

void CheckCatalog(Doctor& d, const config::Config& config) {
  auto cat = catalog::Catalog::Load(config);
  if (!cat.ok()) {
    d.Add("catalog.warning", "warn", "the catalog could not be read: " + cat.status().message());
    return;
  }
  for (const auto& w : cat->warnings()) {
    const bool unreadable = w.find("ermission denied") != std::string::npos || w.find("cannot") != std::string::npos;
    d.Add(unreadable ? "models.unreadable" : "catalog.warning", "warn", w,
          unreadable ? "fix the file's permissions (chmod a+r), or remove it" : "");
  }
  std::map<std::string, int> by_source;
  for (const auto& m : cat->models()) {
    if (::access(m.path.c_str(), R_OK) != 0) {
      d.Add("models.unreadable", "warn", m.path + ": " + std::strerror(errno), "chmod a+r the file, or remove it");
    }
    ++by_source[m.source];
  }
  if (by_source.empty()) {
    d.Add("models.none", "info", "no models found",
          "corral pull OWNER/REPO (a GGUF repo on Hugging Face), or corral model synth for a test model");
    return;
  }
  std::string text;
  for (const auto& [source, n] : by_source) text += (text.empty() ? "" : ", ") + source + ": " + std::to_string(n);
  d.Add("caches.found", "info", "models found: " + text);
}

void CheckDownloads(Doctor& d) {
  const std::string hub = pull::HubCacheDir();
  DIR* dir = ::opendir(hub.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> repos;
  while (dirent* e = ::readdir(dir)) {
    if (std::string(e->d_name).starts_with("models--")) repos.emplace_back(e->d_name);
  }
  ::closedir(dir);
  for (const auto& repo : repos) {
    const std::string blobs = hub + "/" + repo + "/blobs";
    DIR* b = ::opendir(blobs.c_str());
    if (b == nullptr) continue;
    while (dirent* e = ::readdir(b)) {
      const std::string name = e->d_name;
      if (!name.ends_with(".incomplete")) continue;
      struct stat st {};
      ::stat((blobs + "/" + name).c_str(), &st);
      std::string owner_repo = repo.substr(8);
      if (const size_t dash = owner_repo.find("--"); dash != std::string::npos) owner_repo.replace(dash, 2, "/");
      d.Add("downloads.partial", "warn",
            blobs + "/" + name + ": an unfinished download (" +
                supervisor::FormatBytes(static_cast<uint64_t>(st.st_size)) + ") of " + owner_repo,
            "corral pull " + owner_repo + " resumes it; or delete the file");
    }
    ::closedir(b);
  }
}

void CheckToken(Doctor& d) {
  const std::string path = pull::TokenFilePath();
  if (const std::string problem = pull::TokenFileProblem(path); !problem.empty()) {
    d.Add("token.permissions", "error", "the Hugging Face token file " + problem,
          "chmod 600 " + path + " (corral pull refuses it until then)");
    return;
  }
  const char* env = std::getenv("HF_TOKEN");
  struct stat st {};
  if ((env != nullptr && *env != '\0') || ::stat(path.c_str(), &st) == 0) {
    d.Add("token.found", "ok",
          std::string("a Hugging Face token is set (") + (env != nullptr && *env != '\0' ? "HF_TOKEN" : path) + ")");
  }
}

int RunDoctor(const GlobalOptions& global) {
  Doctor d;
  auto config = config::Load(global.flags);
  if (!config.ok()) {
    d.Add("config.invalid", "error", config.status().message(),
          "fix the line named, or run `corral config` to see the values");
  } else {
    CheckEngine(d, *config);
    CheckDaemonAndPort(d, *config);
    CheckBudget(d, *config);
    CheckCatalog(d, *config);
  }
  CheckDownloads(d);
  CheckToken(d);
  if (global.json) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& f : d.findings()) {
      items.push_back({{"id", f.id}, {"severity", f.severity}, {"message", f.message}, {"fix", f.fix}});
    }
    std::cout << nlohmann::json{{"healthy", d.healthy()}, {"findings", items}}.dump(2) << "\n";
  } else {
    const bool color = ::isatty(1) != 0;
    for (const auto& f : d.findings()) {
      const char* mark = f.severity == "error"  ? "error"
                         : f.severity == "warn" ? "warn "
                         : f.severity == "ok"   ? "ok   "
                                                : "info ";
      const char* on = !color                  ? ""
                       : f.severity == "error" ? "\033[31m"
                       : f.severity == "warn"  ? "\033[33m"
                                               : "\033[32m";
      std::printf("%s%s%s  %s: %s\n", on, mark, color ? "\033[0m" : "", f.id.c_str(), f.message.c_str());
      if (!f.fix.empty()) std::printf("       fix: %s\n", f.fix.c_str());
    }
    std::printf("%s\n", d.healthy() ? "healthy" : "not healthy: fix the errors above");
  }
  return d.healthy() ? 0 : 1;
}

}  // namespace

static void RegisterDoctor(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* c = app.add_subcommand("doctor", "Check the setup (read-only): llama-server, daemon, port, config, models");
  c->add_flag("--json", global.json, "Print JSON");
  c->callback([&global, &run] { run = [&global] { return RunDoctor(global); }; });
}

CORRAL_REGISTER_COMMAND(RegisterDoctor);

}  // namespace corral::cli
