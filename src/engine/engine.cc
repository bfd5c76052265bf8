#include "engine/engine.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "common/subprocess.h"

#ifndef CORRAL_BUILT_ENGINE_DIR
#define CORRAL_BUILT_ENGINE_DIR ""
#endif

namespace corral::engine {
namespace {

constexpr auto kVersionTimeout = std::chrono::seconds(10);

bool IsFinishedEngine(const std::string& dir) {
  return !dir.empty() && ::access((dir + "/ENGINE").c_str(), R_OK) == 0;
}

}  // namespace

std::string PinnedEngineDir() {
  const char* env = std::getenv("CORRAL_ENGINE_DIR");
  if (env != nullptr && IsFinishedEngine(env)) return env;
  if (IsFinishedEngine(CORRAL_BUILT_ENGINE_DIR)) return CORRAL_BUILT_ENGINE_DIR;
  return "";
}

Result<std::string> LlamaUiDir(const std::string& setting) {
  if (setting == "off") return std::string();
  const bool automatic = setting == "auto";
  const std::string dir = automatic ? CORRAL_BUILT_LLAMA_UI_DIR : setting;
  if (!dir.empty() && ::access((dir + "/index.html").c_str(), R_OK) == 0) return dir;
  if (automatic) return std::string();
  return InvalidArgument("llama_ui: " + dir +
                         " holds no index.html (a built llama.cpp web UI: `make llama-ui` prints where it puts one)");
}

Result<std::string> VocabDir() {
  std::string dir = PinnedEngineDir();
  if (dir.empty()) {
    return Unavailable("the pinned llama.cpp engine is not built; run 'make engine' or set CORRAL_ENGINE_DIR");
  }
  return dir + "/src/models";
}

std::string ParseCommit(const std::string& out) {
  // Current builds: "version: 0.5.0-dev (build 1, commit de3ff81)"; older: "version: 1 (de3ff81)".
  size_t v = out.find("version:");
  if (v == std::string::npos) return "";
  size_t eol = out.find('\n', v);
  std::string line = out.substr(v, eol == std::string::npos ? std::string::npos : eol - v);
  size_t start = line.find("commit ");
  if (start != std::string::npos) {
    start += 7;
  } else if ((start = line.find('(')) != std::string::npos) {
    start += 1;
  } else {
    return "";
  }
  size_t end = start;
  while (end < line.size() && std::isxdigit(static_cast<unsigned char>(line[end]))) ++end;
  if (end - start < 7 || (end < line.size() && line[end] != ')' && line[end] != ',')) return "";
  return line.substr(start, end - start);
}

Result<EngineInfo> Locate(const config::Config& config, bool query_version) {
  EngineInfo info;
  if (!config.llama_server.empty()) {
    auto it = config.source.find("llama_server");
    std::string src = it == config.source.end() ? "config" : it->second;
    info.source = src == "file" ? "config" : src;
    info.llama_server = FindOnPath(config.llama_server);
    if (info.llama_server.empty()) {
      return Status(StatusCode::kUnavailable,
                    "llama-server '" + config.llama_server + "' (from " + info.source + ") is not an executable file");
    }
  } else if (std::string on_path = FindOnPath("llama-server"); !on_path.empty()) {
    info.source = "PATH";
    info.llama_server = on_path;
  } else if (std::string dir = PinnedEngineDir(); !dir.empty()) {
    info.source = "pinned";
    info.llama_server = dir + "/bin/llama-server";
  } else {
    return Unavailable(
        "no llama-server found: not configured, not on PATH, and the pinned build is missing "
        "(run 'make engine', or pass --llama-server PATH)");
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(info.llama_server, ec);
  if (!ec) info.llama_server = abs.string();

  if (query_version) {
    auto run = RunCapture({info.llama_server, "--version"}, kVersionTimeout, 64 << 10);
    if (!run.ok()) return run.status().WithContext("asking " + info.llama_server + " for its version");
    info.commit = ParseCommit(run->output);
    size_t v = run->output.find("version:");
    if (v != std::string::npos) info.version_line = run->output.substr(v, run->output.find('\n', v) - v);
    if (info.source == "pinned" && !info.commit.empty() && std::string(kPinnedCommit).starts_with(info.commit)) {
      info.commit = kPinnedCommit;
    }
  }
  return info;
}

}  // namespace corral::engine
