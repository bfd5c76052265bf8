// Finds the llama-server Corral launches and the pinned engine build (vocab files, ggml).
// A user's own llama-server always wins over the pinned build, in this order:
// --llama-server flag, CORRAL_LLAMA_SERVER, config `llama_server`, `llama-server` on PATH,
// then the pinned build made by scripts/engine.sh.
// Thread-safety: stateless functions.
#pragma once

#include <string>

#include "common/status.h"
#include "config/options.h"

namespace corral::engine {

// The llama.cpp commit this Corral pins (scripts/engine.sh builds exactly this).
inline constexpr const char* kPinnedCommit = "de3ff815ea7d559ee917f063901b8986f038abc6";

struct EngineInfo {
  std::string llama_server;  // absolute path to the binary
  std::string source;        // "flag", "env", "config", "PATH" or "pinned"
  std::string commit;        // commit reported by the binary (short or full); "" if unknown
  std::string version_line;  // the line `llama-server --version` printed with the version
};

// The pinned engine directory: $CORRAL_ENGINE_DIR if set, else the one this binary was
// built against. "" if neither holds a finished build.
std::string PinnedEngineDir();

// The folder of the stock llama.cpp web UI for a `llama_ui` setting (docs/proxy.md): "off"
// gives ""; "auto" the pinned engine's UI as scripts/llama-ui.sh builds it (`make llama-ui`),
// "" when it was not built; any other value is that folder, an error when it holds no
// index.html.
Result<std::string> LlamaUiDir(const std::string& setting);

// Directory of the tokenizer vocab files (`ggml-vocab-*.gguf`) of the pinned tree.
Result<std::string> VocabDir();

// Finds llama-server. With `query_version`, runs `--version` to learn its commit.
Result<EngineInfo> Locate(const config::Config& config, bool query_version);

// Parses the commit out of `llama-server --version` output ("version: 1 (de3ff81)").
std::string ParseCommit(const std::string& version_output);

}  // namespace corral::engine
