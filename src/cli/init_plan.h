// The pure parts of `corral init` (cmd_init.cc): the curated model table and the pick by
// memory class, the parser of `llama-server --list-devices`, and the commented config.yaml it
// writes. No I/O here, so tests/cli/init_test.cc checks each directly.
// Header-only because cli/CMakeLists.txt compiles cmd_*.cc files only.
// Thread-safety: pure functions over constant data.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/proxy_defaults.h"

namespace corral::cli::init {

inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// One well-known GGUF repo and quant. `min_memory` is the smallest memory (the GPU's, or the
// RAM budget on CPU) it is offered for: the file plus a 4-8k context, the OS and a browser
// fit with room to spare (the file ≤ 40% of it). Sizes are the files' on the hub,
// rounded; `corral pull` checks the real ones (and the disk) before fetching anything.
struct CuratedModel {
  uint64_t min_memory;
  std::string_view ref;  // owner/repo:QUANT, what `corral pull` takes
  uint64_t file_bytes;
  std::string_view note;
  bool primary;  // the one offered for its class; the others are named as alternatives
};

// Kept small on purpose: instruction-tuned models from publishers whose GGUFs llama.cpp's own
// docs point at, one primary per memory class. Edit with care: docs/init.md lists them.
inline constexpr std::array<CuratedModel, 12> kCurated = {{
    {0, "Qwen/Qwen3-0.6B-GGUF:Q8_0", 639'000'000, "Qwen3 0.6B: tiny, fast, fine for tests and tool wiring", true},
    {0, "ggml-org/gemma-3-1b-it-GGUF:Q4_K_M", 806'000'000, "Gemma 3 1B instruct", false},
    {4 * kGiB, "unsloth/Qwen3-1.7B-GGUF:Q4_K_M", 1'110'000'000, "Qwen3 1.7B: small chat and thinking model", true},
    {4 * kGiB, "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", 808'000'000, "Llama 3.2 1B instruct", false},
    {8 * kGiB, "unsloth/Qwen3-4B-GGUF:Q4_K_M", 2'500'000'000, "Qwen3 4B: good quality for its size, tools", true},
    {8 * kGiB, "ggml-org/gemma-3-4b-it-GGUF:Q4_K_M", 2'490'000'000, "Gemma 3 4B instruct (vision with mmproj)", false},
    {8 * kGiB, "bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M", 2'020'000'000, "Llama 3.2 3B instruct", false},
    {16 * kGiB, "unsloth/Qwen3-8B-GGUF:Q4_K_M", 5'030'000'000, "Qwen3 8B: a solid everyday model", true},
    {16 * kGiB, "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M", 4'920'000'000, "Llama 3.1 8B instruct", false},
    {24 * kGiB, "unsloth/gemma-3-12b-it-GGUF:Q4_K_M", 7'300'000'000, "Gemma 3 12B instruct", true},
    {48 * kGiB, "unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M", 18'600'000'000,
     "Qwen3 30B-A3B: mixture of experts, 3B active, fast even on CPU", true},
    {48 * kGiB, "unsloth/gemma-3-27b-it-GGUF:Q4_K_M", 16'500'000'000, "Gemma 3 27B instruct (dense: slower)", false},
}};

// The primary model of the largest memory class that `memory_bytes` reaches. Never null.
inline const CuratedModel* PickCurated(uint64_t memory_bytes) {
  const CuratedModel* best = &kCurated[0];
  for (const auto& m : kCurated) {
    if (m.primary && m.min_memory <= memory_bytes && m.min_memory >= best->min_memory) best = &m;
  }
  return best;
}

// The other models of `pick`'s class (same min_memory), in table order.
inline std::vector<const CuratedModel*> Alternatives(const CuratedModel* pick) {
  std::vector<const CuratedModel*> out;
  for (const auto& m : kCurated) {
    if (&m != pick && m.min_memory == pick->min_memory) out.push_back(&m);
  }
  return out;
}

// One device of `llama-server --list-devices`: "  CUDA0: NVIDIA H200 (143167 MiB, 142515 MiB free)".
struct EngineDevice {
  std::string name;         // "CUDA0", "Vulkan0", "ROCm0", "Metal"
  std::string backend;      // the name without its trailing digits: "CUDA"
  std::string description;  // "NVIDIA H200"
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
};

// Parses the output of `llama-server --list-devices` (anything else on the lines around it,
// such as log lines, is skipped). At most 64 devices.
inline std::vector<EngineDevice> ParseListDevices(std::string_view text) {
  std::vector<EngineDevice> out;
  bool in_list = false;
  size_t pos = 0;
  while (pos < text.size() && out.size() < 64) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find("Available devices:") != std::string_view::npos) {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (line.empty() || (line[0] != ' ' && line[0] != '\t')) {
      in_list = false;
      continue;
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    const size_t colon = line.find(": ");
    if (colon == std::string_view::npos || colon == 0) continue;  // "(none)"
    EngineDevice d;
    d.name = std::string(line.substr(0, colon));
    if (d.name.find(' ') != std::string::npos) continue;
    d.backend = d.name;
    while (!d.backend.empty() && d.backend.back() >= '0' && d.backend.back() <= '9') d.backend.pop_back();
    std::string_view rest = line.substr(colon + 2);
    const size_t paren = rest.rfind(" (");
    d.description = std::string(rest.substr(0, paren));
    if (paren != std::string_view::npos) {
      const std::string mem(rest.substr(paren + 2));
      char* next = nullptr;
      const unsigned long long total = std::strtoull(mem.c_str(), &next, 10);
      if (next != mem.c_str() && std::string_view(next).starts_with(" MiB")) {
        d.total_bytes = static_cast<uint64_t>(total) << 20;
        const size_t comma = mem.find(", ");
        if (comma != std::string::npos) d.free_bytes = std::strtoull(mem.c_str() + comma + 2, nullptr, 10) << 20;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

// What the config file says about this machine (comments only, values stay Corral's defaults
// where the defaults already fit; see RenderConfig).
struct ConfigFacts {
  std::string date;           // "2026-12-02"
  std::string machine;        // "8 CPU threads, 31.2 GiB RAM, GPU: none"
  std::string llama_server;   // the path found
  std::string engine_source;  // "PATH", "pinned", "env", ...
  std::string listen = defaults::kListen;
  std::string model_dir;  // the default model directory
};

// Quotes a YAML scalar (double quotes, escapes) so any path is safe to write.
inline std::string YamlQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[(c >> 4) & 15];
      out += kHex[c & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The commented config.yaml `corral init` writes. Every value set is the one Corral would use
// anyway on this machine, so the file documents rather than changes; the comments say what
// each key does and what else is there (docs/OPTIONS.md has them all).
inline std::string RenderConfig(const ConfigFacts& f) {
  std::string s;
  s += "# Corral configuration, written by `corral init` on " + f.date + ".\n";
  s += "# This machine: " + f.machine + ".\n";
  s += "# Every key is optional. `corral config` shows the values in effect and where each came\n";
  s += "# from (default < this file < CORRAL_* environment < flags); docs/OPTIONS.md lists all keys.\n";
  s += "# A running daemon picks up changes on `corral daemon reload` (some keys need a restart).\n\n";
  s += "# The llama-server Corral launches. Found: " + f.llama_server + " (" + f.engine_source + ").\n";
  s += "# Unset: --llama-server, CORRAL_LLAMA_SERVER, llama-server on PATH, then the pinned build.\n";
  if (f.engine_source == "PATH" || f.engine_source == "pinned" || f.llama_server.empty()) {
    s += "# llama_server: " + YamlQuote(f.llama_server.empty() ? "/path/to/llama-server" : f.llama_server) + "\n\n";
  } else {
    s += "llama_server: " + YamlQuote(f.llama_server) + "\n\n";
  }
  s += "# Where the proxy listens: OpenAI, Anthropic and Ollama APIs for every model. Loopback\n";
  s += "# only; a LAN address needs an API key first (corral keys create, docs/lan.md).\n";
  s += "listen: " + YamlQuote(f.listen) + "\n\n";
  s += "# Memory the running models may use together. auto = RAM minus max(1 GiB, 10%).\n";
  s += "# A start that does not fit is refused (corral start --force overrides).\n";
  s += "memory_budget: auto\n\n";
  s += "# Model directories besides " + f.model_dir + " (always scanned)\n";
  s += "# and the caches of Hugging Face, Ollama, LM Studio and llama.cpp (scan_* below).\n";
  s += "model_paths: []\n";
  s += "scan_huggingface: true\n";
  s += "scan_ollama: true\n";
  s += "scan_lmstudio: true\n";
  s += "scan_llamacpp: true\n\n";
  s += "# Seconds a model started on demand (by a request) may idle before it is unloaded; 0 = never.\n";
  s += "model_ttl_s: 0\n\n";
  s += "# Short names for models, usable everywhere a model name is:\n";
  s += "# aliases:\n";
  s += "#   chat: unsloth/Qwen3-8B-GGUF:Q4_K_M\n\n";
  s += "# Per-model settings (keys: ttl, ctx, args, pinned, restart):\n";
  s += "# models:\n";
  s += "#   chat:\n";
  s += "#     ctx: 8192\n";
  s += "#     ttl: 600\n";
  s += "#     args: [\"--threads\", \"4\"]\n";
  return s;
}

}  // namespace corral::cli::init
