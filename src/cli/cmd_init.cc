// `corral init [--yes] [--json] [--force] [--pull] [--no-smoke] [--smoke-model NAME]`: the first
// run in one command. Detects the hardware (CPU threads, RAM, GPUs from /sys/class/drm and
// nvidia-smi, and which of them the llama-server's backends can use: `--list-devices`), the
// llama-server Corral will launch, every model already on disk (the catalog); writes a
// commented config.yaml (never over an existing one without asking: --force keeps a backup);
// offers one model sized for this machine from a small curated table (init_plan.h; pulled only
// when the user says yes, or with --pull); runs a smoke test (a model started, one streamed
// answer through the proxy: `corral run`, which starts the daemon when none is up); and prints
// what to do next. Interactive on a terminal; --yes takes the defaults (no pull, no overwrite);
// --json prints one object at the end (docs/init.md has its fields).
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "cli/init_plan.h"
#include "cli/lifecycle_client.h"
#include "common/fs.h"
#include "common/paths.h"
#include "common/subprocess.h"
#include "daemon/models.h"
#include "engine/engine.h"
#include "supervisor/launch.h"

namespace corral::cli {
namespace {

using nlohmann::json;

struct InitArgs {
  bool yes = false;
  bool force = false;
  bool pull = false;
  bool no_smoke = false;
  std::string smoke_model;
};

struct Gpu {
  std::string vendor;  // "NVIDIA", "AMD", "Intel", or the PCI vendor id
  std::string name;    // from nvidia-smi; "" when only /sys said it is there
  uint64_t vram_bytes = 0;
  std::string source;  // "nvidia-smi" or "/sys/class/drm/cardN"
};

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t k = 0;
  while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
  return s.substr(k);
}

std::string ReadSmall(const std::string& path) {
  auto text = ReadFileBounded(path, uint64_t{64} << 10);
  return text.ok() ? Trim(*text) : std::string();
}

std::string CpuModel() {
  auto text = ReadFileBounded("/proc/cpuinfo", 4 << 20);
  if (!text.ok()) return "";
  const size_t at = text->find("model name");
  if (at == std::string::npos) return "";
  const size_t colon = text->find(':', at);
  const size_t nl = text->find('\n', at);
  if (colon == std::string::npos || colon > nl) return "";
  return Trim(text->substr(colon + 1, nl - colon - 1));
}

std::vector<Gpu> DetectGpus() {
  std::vector<Gpu> gpus;
  // nvidia-smi knows names and memory; /sys only that a card is there (and amdgpu's VRAM).
  if (const std::string smi = FindOnPath("nvidia-smi"); !smi.empty()) {
    auto r = RunCapture({smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"},
                        std::chrono::seconds(10), size_t{64} << 10);
    if (r.ok() && r->exit_code == 0) {
      size_t pos = 0;
      while (pos < r->output.size() && gpus.size() < 64) {
        size_t nl = r->output.find('\n', pos);
        if (nl == std::string::npos) nl = r->output.size();
        const std::string line = r->output.substr(pos, nl - pos);
        pos = nl + 1;
        const size_t comma = line.rfind(',');
        if (comma == std::string::npos) continue;
        Gpu g{"NVIDIA", Trim(line.substr(0, comma)), std::strtoull(line.c_str() + comma + 1, nullptr, 10) << 20,
              "nvidia-smi"};
        gpus.push_back(std::move(g));
      }
    }
  }
  const bool have_nvidia = !gpus.empty();
  DIR* dir = ::opendir("/sys/class/drm");
  if (dir == nullptr) return gpus;
  std::vector<std::string> cards;
  while (dirent* e = ::readdir(dir)) {
    const std::string n = e->d_name;
    if (n.starts_with("card") && n.size() > 4 && n.find('-') == std::string::npos) cards.push_back(n);
  }
  ::closedir(dir);
  std::sort(cards.begin(), cards.end());
  for (const auto& card : cards) {
    const std::string dev = "/sys/class/drm/" + card + "/device/";
    const std::string vendor_id = ReadSmall(dev + "vendor");
    if (vendor_id.empty()) continue;
    const std::string vendor = vendor_id == "0x10de"   ? "NVIDIA"
                               : vendor_id == "0x1002" ? "AMD"
                               : vendor_id == "0x8086" ? "Intel"
                                                       : vendor_id;
    if (vendor == "NVIDIA" && have_nvidia) continue;  // nvidia-smi said it better
    Gpu g{vendor, "", 0, "/sys/class/drm/" + card};
    if (const std::string vram = ReadSmall(dev + "mem_info_vram_total"); !vram.empty()) {
      g.vram_bytes = std::strtoull(vram.c_str(), nullptr, 10);
    }
    if (gpus.size() < 64) gpus.push_back(std::move(g));
  }
  return gpus;
}

std::string SelfExe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "corral";
  return std::string(buf, static_cast<size_t>(n));
}

// Runs `corral ARGS...` (this binary) with the terminal, or with its stdout sent to stderr
// (so --json's stdout carries one object). Returns its exit code (128+signal when killed).
int RunSelf(const std::vector<std::string>& args, bool stdout_to_stderr) {
  std::vector<std::string> argv = {SelfExe()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) return ToInt(ExitCode::kOther);
  if (pid == 0) {
    if (stdout_to_stderr) ::dup2(2, 1);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ToInt(ExitCode::kOther);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The config file `corral init` writes: --config, CORRAL_CONFIG, else the default (as Load).
std::string ConfigPath(const GlobalOptions& global) {
  std::string file = global.flags.config_file;
  if (file.empty()) {
    const char* env = std::getenv("CORRAL_CONFIG");
    file = (env != nullptr && *env != '\0') ? std::string(env) : DefaultConfigFile();
  }
  return ExpandHome(file);
}

std::string Timestamp(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

class Init {
 public:
  Init(const GlobalOptions& global, const InitArgs& args)
      : global_(global), args_(args), interactive_(!args.yes && !global.json && ::isatty(0) != 0 && ::isatty(1) != 0) {}

  int Run();

 private:
  // Prints a line in text mode (nothing with --json).
  template <typename... A>
  void Say(const char* format, A... a) {
    if (global_.json) return;
    std::printf(format, a...);  // NOLINT(cppcoreguidelines-pro-type-vararg)
    std::fflush(stdout);
  }
  // Asks a yes/no question on the terminal; `fallback` when not interactive.
  bool Ask(const std::string& question, bool default_yes, bool fallback) {
    if (!interactive_) return fallback;
    std::printf("%s [%s] ", question.c_str(), default_yes ? "Y/n" : "y/N");
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line)) return false;
    line = Trim(line);
    if (line.empty()) return default_yes;
    return line[0] == 'y' || line[0] == 'Y';
  }

  void DetectHardware();
  void DetectEngine();
  void ListModels();
  int WriteConfig();
  int OfferModel();
  int SmokeTest();
  void NextSteps();

  const GlobalOptions& global_;
  const InitArgs& args_;
  const bool interactive_;
  json out_ = json::object();
  config::Config config_;
  uint64_t ram_ = 0;
  uint64_t budget_ = 0;
  std::vector<Gpu> gpus_;
  std::vector<init::EngineDevice> devices_;
  engine::EngineInfo engine_;
  bool engine_ok_ = false;
  std::vector<catalog::Model> models_;
  std::string pulled_;  // the reference pulled in this run
  std::string proxy_url_;
  bool smoke_ok_ = false;
};

void Init::DetectHardware() {
  const long threads = ::sysconf(_SC_NPROCESSORS_ONLN);
  auto total = supervisor::TotalMemoryBytes();
  ram_ = total.ok() ? *total : 0;
  auto budget = daemon::MemoryBudgetBytes(config_, ram_);
  budget_ = budget.ok() ? *budget : ram_;
  gpus_ = DetectGpus();
  json gpus = json::array();
  for (const auto& g : gpus_) {
    gpus.push_back({{"vendor", g.vendor}, {"name", g.name}, {"vram_bytes", g.vram_bytes}, {"source", g.source}});
  }
  const std::string cpu = CpuModel();
  out_["hardware"] = {
      {"cpu", cpu}, {"cpu_threads", threads}, {"ram_bytes", ram_}, {"memory_budget_bytes", budget_}, {"gpus", gpus}};
  Say("Hardware\n  CPU:    %s%s%ld threads\n  RAM:    %s (memory budget %s)\n", cpu.c_str(), cpu.empty() ? "" : ", ",
      threads, supervisor::FormatBytes(ram_).c_str(), supervisor::FormatBytes(budget_).c_str());
  if (gpus_.empty()) Say("  GPU:    none found\n");
  for (const auto& g : gpus_) {
    Say("  GPU:    %s %s%s%s (%s)\n", g.vendor.c_str(), g.name.c_str(), g.vram_bytes > 0 ? ", " : "",
        g.vram_bytes > 0 ? supervisor::FormatBytes(g.vram_bytes).c_str() : "", g.source.c_str());
  }
}

void Init::DetectEngine() {
  auto info = engine::Locate(config_, /*query_version=*/true);
  json e = json::object();
  if (!info.ok()) {
    e = {{"found", false}, {"error", info.status().message()}};
    out_["engine"] = e;
    Say("llama-server\n  not found: %s\n  fix: run `make engine`, install llama-server on PATH, or set llama_server: "
        "in "
        "config.yaml\n",
        info.status().message().c_str());
    return;
  }
  engine_ = *info;
  engine_ok_ = true;
  auto listed = RunCapture({engine_.llama_server, "--list-devices"}, std::chrono::seconds(30), size_t{256} << 10);
  if (listed.ok() && listed->exit_code == 0) devices_ = init::ParseListDevices(listed->output);
  std::vector<std::string> backends = {"CPU"};
  json devices = json::array();
  for (const auto& d : devices_) {
    if (std::find(backends.begin(), backends.end(), d.backend) == backends.end()) backends.push_back(d.backend);
    devices.push_back({{"name", d.name},
                       {"backend", d.backend},
                       {"description", d.description},
                       {"total_bytes", d.total_bytes},
                       {"free_bytes", d.free_bytes}});
  }
  const std::string pinned = engine::kPinnedCommit;
  e = {{"found", true},
       {"path", engine_.llama_server},
       {"source", engine_.source},
       {"commit", engine_.commit},
       {"pinned", !engine_.commit.empty() && pinned.starts_with(engine_.commit)},
       {"backends", backends},
       {"devices", devices}};
  std::string hint;
  if (!gpus_.empty() && devices_.empty()) {
    const bool nvidia = std::any_of(gpus_.begin(), gpus_.end(), [](const Gpu& g) { return g.vendor == "NVIDIA"; });
    hint = std::string(
               "this llama-server has no GPU backend, so models run on the CPU; for the GPU build one with "
               "CORRAL_ENGINE_EXTRA_FLAGS=") +
           (nvidia ? "-DGGML_CUDA=ON" : "-DGGML_VULKAN=ON") +
           " make engine (or install a GPU build of llama-server on PATH)";
    e["hint"] = hint;
  }
  out_["engine"] = e;
  std::string list;
  for (const auto& b : backends) list += (list.empty() ? "" : ", ") + b;
  Say("llama-server\n  %s (%s), llama.cpp %s\n  backends: %s\n", engine_.llama_server.c_str(), engine_.source.c_str(),
      engine_.commit.empty() ? "(commit unknown)" : engine_.commit.substr(0, 12).c_str(), list.c_str());
  for (const auto& d : devices_) {
    Say("  device: %s: %s, %s\n", d.name.c_str(), d.description.c_str(),
        supervisor::FormatBytes(d.total_bytes).c_str());
  }
  if (!hint.empty()) Say("  note: %s\n", hint.c_str());
}

void Init::ListModels() {
  auto cat = catalog::Catalog::Load(config_);
  json models = json::array();
  if (cat.ok()) models_ = cat->models();
  for (const auto& m : models_) {
    models.push_back({{"name", m.name},
                      {"source", m.source},
                      {"quant", m.quant},
                      {"size_bytes", m.size_bytes},
                      {"path", m.path},
                      {"origin", m.origin}});
  }
  out_["models"] = models;
  Say("Models on disk: %zu\n", models_.size());
  const size_t shown = std::min<size_t>(models_.size(), 20);
  for (size_t k = 0; k < shown; ++k) {
    const auto& m = models_[k];
    Say("  %-40s %-10s %9s  %s\n", m.name.c_str(), m.source.c_str(), supervisor::FormatBytes(m.size_bytes).c_str(),
        m.quant.c_str());
  }
  if (shown < models_.size()) Say("  ... and %zu more (corral list)\n", models_.size() - shown);
  if (!cat.ok()) Say("  (the catalog could not be read: %s)\n", cat.status().message().c_str());
}

int Init::WriteConfig() {
  const std::string path = ConfigPath(global_);
  init::ConfigFacts f;
  f.date = Timestamp("%Y-%m-%d");
  std::string gpu = "none";
  if (!gpus_.empty()) gpu = gpus_[0].vendor + (gpus_[0].name.empty() ? "" : " " + gpus_[0].name);
  if (gpus_.size() > 1) gpu += " (+" + std::to_string(gpus_.size() - 1) + ")";
  f.machine = std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " CPU threads, " + supervisor::FormatBytes(ram_) +
              " RAM, GPU: " + gpu;
  f.llama_server = engine_ok_ ? engine_.llama_server : "";
  f.engine_source = engine_ok_ ? engine_.source : "not found";
  // The file's own value when replacing one, else the default: a CORRAL_LISTEN or --listen of
  // this run is not written down (it keeps working from where it was given).
  f.listen = config::Config{}.listen;
  if (auto it = config_.source.find("listen"); it != config_.source.end() && it->second == "file") {
    f.listen = config_.listen;
  }
  f.model_dir = DefaultModelDir();
  const std::string text = init::RenderConfig(f);

  json c = {{"path", path}};
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  std::string backup;
  if (exists) {
    const bool replace = args_.force || Ask(path + " exists. Replace it (a backup is kept)?", false, false);
    if (!replace) {
      c["action"] = "kept";
      out_["config"] = c;
      Say("Config\n  %s exists: kept (corral init --force replaces it, keeping a backup)\n", path.c_str());
      return 0;
    }
    auto old = ReadFileBounded(path, 4 << 20);
    if (!old.ok()) return Fail(ExitCode::kOther, "init: reading " + path + ": " + old.status().message());
    backup = path + "." + Timestamp("%Y%m%dT%H%M%SZ") + ".bak";
    if (Status s = WriteFileAtomic(backup, *old, 0600); !s.ok()) {
      return Fail(ExitCode::kOther, "init: backing up " + path + ": " + s.message());
    }
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (Status s = MakeDirs(path.substr(0, slash), 0700); !s.ok()) {
      return Fail(ExitCode::kOther, "init: " + s.message());
    }
  }
  if (Status s = WriteFileAtomic(path, text, 0600); !s.ok()) {
    return Fail(ExitCode::kOther, "init: writing " + path + ": " + s.message());
  }
  c["action"] = exists ? "replaced" : "written";
  if (!backup.empty()) c["backup"] = backup;
  out_["config"] = c;
  Say("Config\n  %s %s%s\n", exists ? "replaced" : "wrote", path.c_str(),
      backup.empty() ? "" : (" (the old one: " + backup + ")").c_str());
  return 0;
}

int Init::OfferModel() {
  // Memory class: the largest GPU the engine can use (the model goes there whole), else the
  // RAM budget (the CPU runs it).
  uint64_t memory = budget_;
  std::string basis = "the memory budget";
  uint64_t best_gpu = 0;
  for (const auto& d : devices_) {
    if (d.total_bytes > best_gpu) {
      best_gpu = d.total_bytes;
      basis = d.name + " (" + d.description + ")";
    }
  }
  if (best_gpu > 0) memory = best_gpu;
  const init::CuratedModel* pick = init::PickCurated(memory);
  const std::string ref(pick->ref);
  const std::string repo = ref.substr(0, ref.find(':'));
  const std::string quant = ref.substr(ref.find(':') + 1);
  bool on_disk = false;
  for (const auto& m : models_) {
    if (m.origin == repo && m.quant == quant) on_disk = true;
  }
  json alts = json::array();
  for (const auto* a : init::Alternatives(pick)) alts.push_back(std::string(a->ref));
  json s = {{"ref", ref},
            {"file_bytes", pick->file_bytes},
            {"note", std::string(pick->note)},
            {"memory_bytes", memory},
            {"memory_basis", basis},
            {"alternatives", alts},
            {"on_disk", on_disk},
            {"pulled", false}};
  Say("Suggested model for %s of %s\n  %s (about %s): %s\n", basis.c_str(), supervisor::FormatBytes(memory).c_str(),
      ref.c_str(), supervisor::FormatBytes(pick->file_bytes).c_str(), std::string(pick->note).c_str());
  for (const auto* a : init::Alternatives(pick)) Say("  or: %s\n", std::string(a->ref).c_str());
  if (on_disk) {
    Say("  already on disk\n");
    out_["suggestion"] = s;
    return 0;
  }
  const bool pull = args_.pull || Ask("Download it now (" + supervisor::FormatBytes(pick->file_bytes) + ")?", false,
                                      /*fallback=*/false);
  if (!pull) {
    Say("  not downloaded (later: corral pull %s)\n", ref.c_str());
    out_["suggestion"] = s;
    return 0;
  }
  std::vector<std::string> argv = ServeArgsFor(global_);
  argv.push_back("pull");
  argv.push_back(ref);
  if (global_.json) argv.push_back("--json");
  const int rc = RunSelf(argv, global_.json);
  s["pulled"] = rc == 0;
  if (rc != 0) s["pull_exit_code"] = rc;
  out_["suggestion"] = s;
  if (rc != 0) {
    if (!global_.json) std::fprintf(stderr, "corral: init: the download failed (exit %d); see above\n", rc);
    return rc;
  }
  pulled_ = ref;
  return 0;
}

int Init::SmokeTest() {
  json s = {{"ran", false}};
  std::string model = args_.smoke_model;
  if (model.empty()) model = pulled_;
  if (model.empty() && !models_.empty()) {
    // The smallest model on disk: the quickest to start.
    const auto it = std::min_element(models_.begin(), models_.end(),
                                     [](const auto& a, const auto& b) { return a.size_bytes < b.size_bytes; });
    model = it->name;
  }
  std::string skip;
  if (args_.no_smoke) skip = "--no-smoke";
  if (skip.empty() && !engine_ok_) skip = "no llama-server";
  if (skip.empty() && model.empty()) skip = "no model on disk";
  if (skip.empty() && !Ask("Run a smoke test (start " + model + ", one streamed answer through the proxy)?", true,
                           /*fallback=*/true)) {
    skip = "declined";
  }
  if (!skip.empty()) {
    s["skipped"] = skip;
    out_["smoke"] = s;
    Say("Smoke test: skipped (%s)\n", skip.c_str());
    return 0;
  }
  Say("Smoke test: starting %s (the daemon starts too when none is up) ...\n", model.c_str());
  std::vector<std::string> argv = {SelfExe()};
  for (auto& a : ServeArgsFor(global_)) argv.push_back(a);
  for (const char* a : {"run", "--max-tokens", "24"}) argv.emplace_back(a);
  argv.push_back(model);
  argv.emplace_back("Say hello in one short sentence.");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunCapture(argv, std::chrono::minutes(10), size_t{64} << 10);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s["ran"] = true;
  s["model"] = model;
  s["seconds"] = secs;
  smoke_ok_ = r.ok() && r->exit_code == 0;
  s["ok"] = smoke_ok_;
  const std::string output = r.ok() ? Trim(r->output) : r.status().message();
  s[smoke_ok_ ? "answer" : "error"] = output.substr(0, 2000);
  if (smoke_ok_) {
    auto client = ConnectDaemon(global_, /*no_spawn=*/true);
    if (client.ok()) {
      auto status = (*client)->Call("GET", "/v1/status");
      if (status.ok() && !status->error && status->body.contains("proxy") && status->body["proxy"].is_object()) {
        proxy_url_ = status->body["proxy"].value("url", std::string());
      }
    }
    if (!proxy_url_.empty()) s["proxy_url"] = proxy_url_;
  }
  out_["smoke"] = s;
  if (smoke_ok_) {
    Say("  answer (%.1f s): %s\n", secs, output.substr(0, 400).c_str());
    return 0;
  }
  if (!global_.json) std::fprintf(stderr, "corral: init: the smoke test failed: %s\n", output.substr(0, 2000).c_str());
  return ToInt(ExitCode::kOther);
}

void Init::NextSteps() {
  std::vector<std::pair<std::string, std::string>> next;  // command, what for
  const std::string url = proxy_url_.empty() ? "http://" + config_.listen + "/v1" : proxy_url_;
  if (!engine_ok_) next.emplace_back("make engine", "or install llama-server on PATH; then corral init again");
  const json& sug = out_.value("suggestion", json::object());
  if (!sug.value("pulled", false) && !sug.value("on_disk", false) && sug.contains("ref")) {
    next.emplace_back("corral pull " + sug["ref"].get<std::string>(), "the suggested model");
  }
  next.emplace_back("corral list", "every model Corral can start");
  next.emplace_back("corral run MODEL", "chat in the terminal (the model starts on demand)");
  next.emplace_back("corral connect claude-code", "or codex, opencode, continue, aider, open-webui, openai");
  next.emplace_back("curl " + url + "/models", "the proxy: OpenAI, Anthropic and Ollama APIs");
  next.emplace_back("corral top", "what runs, memory, requests");
  next.emplace_back("corral doctor", "if something is off");
  size_t width = 0;
  for (const auto& n : next) width = std::max(width, n.first.size());
  json list = json::array();
  Say("Next\n");
  for (const auto& [cmd, why] : next) {
    list.push_back({{"command", cmd}, {"why", why}});
    Say("  %-*s  # %s\n", static_cast<int>(width), cmd.c_str(), why.c_str());
  }
  out_["next"] = list;
}

int Init::Run() {
  auto loaded = config::Load(global_.flags);
  if (loaded.ok()) {
    config_ = *loaded;
  } else {
    // A broken config.yaml: detection goes on with the defaults (the file is the thing to fix,
    // or to replace with --force).
    config::FlagValues none = global_.flags;
    none.config_file = ConfigDir() + "/.corral-init-no-such-file.yaml";
    auto defaults = config::Load(none);
    if (!defaults.ok()) return Fail(ExitCode::kUsage, "init: " + defaults.status().message());
    config_ = *defaults;
    out_["config_error"] = loaded.status().message();
    Say("note: %s (using the defaults to look around)\n", loaded.status().message().c_str());
  }
  DetectHardware();
  DetectEngine();
  ListModels();
  int rc = WriteConfig();
  if (rc == 0) rc = OfferModel();
  if (rc == 0) rc = SmokeTest();
  NextSteps();
  out_["ok"] = rc == 0;
  if (global_.json) std::cout << out_.dump(2) << "\n";
  return rc;
}

}  // namespace

static void RegisterInit(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* c = app.add_subcommand("init",
                               "First run: detect hardware, llama-server and models, write config.yaml, "
                               "suggest a model, smoke test");
  auto a = std::make_shared<InitArgs>();
  c->add_flag("--yes,-y", a->yes, "Do not ask: keep an existing config, do not download, run the smoke test");
  c->add_flag("--json", global.json, "Print one JSON object at the end (implies --yes)");
  c->add_flag("--force", a->force, "Replace an existing config.yaml (the old one is kept as config.yaml.TIME.bak)");
  c->add_flag("--pull", a->pull, "Download the suggested model without asking");
  c->add_flag("--no-smoke", a->no_smoke, "Skip the smoke test (starts nothing)");
  c->add_option("--smoke-model", a->smoke_model,
                "Model for the smoke test (default: the one pulled now, else the smallest on disk)");
  c->callback([&global, &run, a] {
    run = [&global, a] {
      Init init(global, *a);
      return init.Run();
    };
  });
}

CORRAL_REGISTER_COMMAND(RegisterInit);

}  // namespace corral::cli
