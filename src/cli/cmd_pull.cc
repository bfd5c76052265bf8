// `corral pull owner/repo[:QUANT | /FILE.gguf]`: a model from the Hugging Face hub (or
// HF_ENDPOINT) into the shared hub cache (src/pull). A progress bar on a terminal, one JSON
// object per line with --json (the contract `POST /api/pull` relays; docs/pull.md).
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "common/interrupt.h"
#include "control/api.h"
#include "daemon/daemon.h"
#include "daemon/models.h"
#include "pull/hub_cache.h"
#include "pull/pull.h"
#include "pull/token.h"
#include "supervisor/launch.h"

namespace corral::cli {
namespace {

struct PullArgs {
  std::string ref;
  std::string revision = "main";
  std::string endpoint;
  bool offline = false;
  bool no_mmproj = false;
  int64_t stall_timeout_s = 30;
  int retries = 3;
};

std::string Human(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1024.0 * 1024));
  }
  return buf;
}

// The model's file stem: what `corral start` accepts (the first shard without -0000N-of-0000M).
std::string Stem(const std::string& path) {
  std::string s = path.substr(path.rfind('/') + 1);
  if (s.size() > 5) s.resize(s.size() - 5);  // .gguf
  if (pull::ShardOf(path).count > 0) s.resize(s.size() - 15);
  return s;
}

// Renders pull events: a bar on a terminal (stderr), JSON lines (stdout), or nothing.
class Reporter {
 public:
  Reporter(bool as_json, bool tty) : json_(as_json), tty_(tty) {}

  void operator()(const pull::PullEvent& e) {
    using K = pull::PullEvent::Kind;
    const auto now = std::chrono::steady_clock::now();
    if (e.kind == K::kFileStart) {
      file_start_ = now;
      start_bytes_ = e.done;
    }
    const double secs = std::chrono::duration<double>(now - file_start_).count();
    const double rate = secs > 0.05 ? static_cast<double>(e.done - std::min(e.done, start_bytes_)) / secs : 0;
    if (e.kind == K::kProgress && e.done != e.total && now - last_ < (json_ ? kJsonEvery : kBarEvery)) return;
    if (e.kind == K::kProgress) last_ = now;
    if (json_) {
      nlohmann::json j;
      switch (e.kind) {
        case K::kResolved:
          j = {{"event", "resolved"}, {"repo", e.file}, {"total", e.total}, {"message", e.message}};
          break;
        case K::kFileStart:
          j = {{"event", "start"}, {"file", e.file}, {"sha256", e.sha256}, {"completed", e.done}, {"total", e.total}};
          break;
        case K::kProgress:
          j = {{"event", "progress"}, {"file", e.file},   {"sha256", e.sha256},
               {"completed", e.done}, {"total", e.total}, {"bytes_per_second", static_cast<uint64_t>(rate)}};
          break;
        case K::kFileDone:
          j = {{"event", "done"},
               {"file", e.file},
               {"sha256", e.sha256},
               {"total", e.total},
               {"cached", e.message == "cached"}};
          break;
        case K::kRetry:
          j = {{"event", "retry"}, {"file", e.file}, {"sha256", e.sha256}, {"completed", e.done}, {"error", e.message}};
          break;
      }
      std::cout << j.dump() << std::endl;
      return;
    }
    if (e.kind == K::kResolved) {
      std::fprintf(stderr, "pulling %s: %s\n", e.file.c_str(), e.message.c_str());
      return;
    }
    if (e.kind == K::kRetry) {
      std::fprintf(stderr, "%s%s: %s; resuming\n", tty_ ? "\r\033[K" : "", e.file.c_str(), e.message.c_str());
      return;
    }
    if (e.kind == K::kFileDone && !tty_) {
      std::fprintf(stderr, "%s: %s%s\n", e.file.c_str(), Human(static_cast<double>(e.total)).c_str(),
                   e.message == "cached" ? " (already in the cache)" : " verified");
      return;
    }
    if (!tty_) return;
    const double frac = e.total > 0 ? static_cast<double>(e.done) / static_cast<double>(e.total) : 1.0;
    constexpr int kWidth = 24;
    std::string bar(kWidth, ' ');
    for (int k = 0; k < static_cast<int>(frac * kWidth) && k < kWidth; ++k) bar[static_cast<size_t>(k)] = '#';
    std::string eta = "--";
    if (rate > 0 && e.total > e.done)
      eta = std::to_string(static_cast<int64_t>(static_cast<double>(e.total - e.done) / rate)) + "s";
    std::string name = e.file.substr(e.file.rfind('/') + 1);
    if (name.size() > 40) name = name.substr(0, 37) + "...";
    std::fprintf(stderr, "\r\033[K%-40s [%s] %5.1f%% %s/%s %s/s ETA %s", name.c_str(), bar.c_str(), frac * 100,
                 Human(static_cast<double>(e.done)).c_str(), Human(static_cast<double>(e.total)).c_str(),
                 Human(rate).c_str(), eta.c_str());
    if (e.kind == K::kFileDone) std::fprintf(stderr, "%s\n", e.message == "cached" ? " (cached)" : " verified");
  }

 private:
  static constexpr auto kBarEvery = std::chrono::milliseconds(100);
  static constexpr auto kJsonEvery = std::chrono::milliseconds(250);
  bool json_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
  std::chrono::steady_clock::time_point file_start_ = std::chrono::steady_clock::now();
  uint64_t start_bytes_ = 0;
};

ExitCode ExitFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return ExitCode::kUsage;
    case StatusCode::kNotFound: return ExitCode::kModelReference;
    case StatusCode::kResourceExhausted:
      return s.message().find("disk") != std::string::npos ? ExitCode::kNoSpace : ExitCode::kDownloadFailed;
    case StatusCode::kFailedPrecondition:
      return s.message().find("access denied") != std::string::npos || s.message().find("token") != std::string::npos
                 ? ExitCode::kAccessDenied
                 : ExitCode::kDownloadFailed;
    case StatusCode::kCancelled: return ExitCode::kOther;
    default: return ExitCode::kDownloadFailed;
  }
}

// A running daemon rescans its catalog now, so the model is listed at once (`corral list`,
// /v1/models, /api/tags) rather than at its next periodic refresh. Best effort: no daemon,
// or an older one, changes nothing.
void TellDaemon() {
  if (!control::CheckSocketAccess(daemon::SocketPath()).ok()) return;
  control::ControlClient client(daemon::SocketPath());
  if (!client.Ping()) return;
  (void)client.Call("POST", "/v1/catalog/refresh");
}

int RunPull(const GlobalOptions& global, const PullArgs& args) {
  auto fail = [&](const Status& s) {
    if (global.json) {
      std::cout << nlohmann::json{{"event", "error"},
                                  {"code", std::string(to_string(s.code()))},
                                  {"message", s.message()}}
                       .dump()
                << std::endl;
    }
    return Fail(ExitFor(s), "pull: " + s.message());
  };
  auto ref = pull::ParsePullRef(args.ref);
  if (!ref.ok()) return fail(ref.status());
  if (args.stall_timeout_s < 1 || args.stall_timeout_s > 3600) {
    return fail(InvalidArgument("--stall-timeout must be 1..3600 seconds"));
  }
  pull::PullOptions o;
  o.endpoint = args.endpoint.empty() ? pull::DefaultEndpoint() : args.endpoint;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.hub_dir = pull::HubCacheDir();
  o.revision = args.revision;
  const char* offline_env = std::getenv("HF_HUB_OFFLINE");
  o.offline = args.offline ||
              (offline_env != nullptr && (std::string(offline_env) == "1" || std::string(offline_env) == "true"));
  o.with_mmproj = !args.no_mmproj;
  o.retries = args.retries;
  o.http.stall_timeout_s = static_cast<long>(args.stall_timeout_s);  // NOLINT(google-runtime-int)
  if (const char* ms = std::getenv("CORRAL_PULL_RETRY_DELAY_MS"); ms != nullptr) {
    o.retry_delay = std::chrono::milliseconds(std::strtol(ms, nullptr, 10));
  }
  if (!o.offline) {
    auto token = pull::LoadToken();
    if (!token.ok()) return fail(token.status());
    o.http.token = token->value;
    o.http.token_host = pull::UrlHost(o.endpoint);
  }
  {
    auto config = LoadConfigOrReport(global);
    if (!config.ok()) return ToInt(ExitCode::kUsage);
    auto total = supervisor::TotalMemoryBytes();
    auto budget = daemon::MemoryBudgetBytes(*config, total.ok() ? *total : 0);
    if (!budget.ok()) return fail(budget.status());
    o.budget_bytes = *budget;
  }
  InstallInterruptHandlers();
  Reporter reporter(global.json, !global.json && ::isatty(2) != 0);
  auto result = pull::Pull(*ref, o, [&reporter](const pull::PullEvent& e) { reporter(e); });
  if (!result.ok()) {
    if (!global.json && ::isatty(2) != 0) std::fprintf(stderr, "\n");
    if (result.status().code() == StatusCode::kCancelled) {
      return fail(Cancelled("interrupted; the partial download is kept: run the same pull again to resume"));
    }
    return fail(result.status());
  }
  TellDaemon();  // before "success": POST /api/pull's client may list /api/tags next
  const auto& r = *result;
  const std::string stem = Stem(r.files.front());
  const double rate = r.seconds > 0 ? static_cast<double>(r.downloaded_bytes) / r.seconds : 0;
  if (global.json) {
    std::cout << nlohmann::json{{"event", "success"},
                                {"repo", r.repo},
                                {"commit", r.commit},
                                {"quant", r.quant},
                                {"name", stem},
                                {"files", r.files},
                                {"mmproj", r.mmproj},
                                {"total_bytes", r.total_bytes},
                                {"downloaded_bytes", r.downloaded_bytes},
                                {"seconds", r.seconds},
                                {"bytes_per_second", static_cast<uint64_t>(rate)}}
                     .dump()
              << std::endl;
    return 0;
  }
  std::printf("%s\n", r.files.front().c_str());
  if (r.downloaded_bytes > 0) {
    std::fprintf(stderr, "pulled %s (%s) in %.1f s, %s/s\n", r.repo.c_str(),
                 Human(static_cast<double>(r.downloaded_bytes)).c_str(), r.seconds, Human(rate).c_str());
  } else {
    std::fprintf(stderr, "%s is in the cache already\n", r.repo.c_str());
  }
  std::fprintf(stderr, "start it with: corral start %s\n", stem.c_str());
  return 0;
}

}  // namespace

static void RegisterPull(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto args = std::make_shared<PullArgs>();
  auto* c = app.add_subcommand("pull", "Download a GGUF model from Hugging Face into the shared hub cache");
  c->add_option("model", args->ref, "owner/repo[:QUANT] or owner/repo/FILE.gguf (hf.co/owner/repo:QUANT too)")
      ->required();
  c->add_option("--revision", args->revision, "Branch, tag or commit (default main)");
  c->add_option("--endpoint", args->endpoint, "Hub URL (default $HF_ENDPOINT or https://huggingface.co)");
  c->add_flag("--offline", args->offline, "Use only the cache (also HF_HUB_OFFLINE=1)");
  c->add_flag("--no-mmproj", args->no_mmproj, "Skip the vision projector even when the repo has one");
  c->add_option("--stall-timeout", args->stall_timeout_s, "Seconds without a byte before a transfer fails (30)");
  c->add_option("--retries", args->retries, "Resumed retries per file after a cut or a stall (3)")
      ->check(CLI::Range(0, 20));
  c->add_flag("--json", global.json, "Print one JSON object per line (progress, then success or error)");
  c->callback([&global, &run, args] { run = [&global, args] { return RunPull(global, *args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterPull);

}  // namespace corral::cli
