// `corral version` and `corral --version`: Corral's version and the llama.cpp it found.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/commands.h"
#include "common/version.h"
#include "engine/engine.h"

namespace corral::cli {

int PrintVersion(const GlobalOptions& global) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  auto engine = engine::Locate(*config, /*query_version=*/true);
  if (global.json) {
    nlohmann::json j = {{"corral", kCorralVersion},
                        {"corral_commit", kCorralGitCommit},
                        {"pinned_llama_cpp_commit", engine::kPinnedCommit}};
    if (engine.ok()) {
      j["llama_server"] = {{"path", engine->llama_server},
                           {"source", engine->source},
                           {"commit", engine->commit},
                           {"version", engine->version_line}};
    } else {
      j["llama_server"] = {{"error", engine.status().message()}};
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "corral " << kCorralVersion << " (" << kCorralGitCommit << ")\n";
    if (engine.ok()) {
      std::cout << "llama.cpp " << (engine->commit.empty() ? "unknown commit" : engine->commit) << " ("
                << engine->source << ": " << engine->llama_server << ")\n";
    } else {
      std::cout << "llama.cpp not found: " << engine.status().message() << "\n";
    }
    std::cout << "pinned llama.cpp " << engine::kPinnedCommit << "\n";
  }
  return engine.ok() ? 0 : ToInt(ExitCode::kEngineMissing);
}

static void RegisterVersion(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* cmd = app.add_subcommand("version", "Print Corral's version and the llama.cpp commit it found");
  cmd->add_flag("--json", global.json, "Print JSON");
  cmd->callback([&global, &run] { run = [&global] { return PrintVersion(global); }; });
}

CORRAL_REGISTER_COMMAND(RegisterVersion);

}  // namespace corral::cli
