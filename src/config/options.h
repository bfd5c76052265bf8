// The one registry of Corral's options. Every option is defined once, in options.cc:
// its config key, flag, environment variable, default and help. Values are resolved in
// rising precedence: default < config.yaml < environment < command-line flag.
//
// Thread-safety: Options() is an immutable table; Config is a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace CLI {
class App;
}

namespace corral::config {

// The typed configuration every subsystem reads.
struct Config {
  std::string config_file;               // the file that was read (may not exist)
  std::vector<std::string> model_paths;  // user model directories and files
  std::string llama_server;              // user's own llama-server binary; empty = search
  std::string listen;                    // proxy listen address HOST:PORT
  std::string log_level;                 // trace|debug|info|warn|error
  // Supervisor (issue 5).
  std::string memory_budget;  // "auto" (total RAM minus a margin) or a size: "12GiB"
  int health_timeout_s = 60;  // base readiness timeout; + health_timeout_per_gib_s per GiB of model
  int health_timeout_per_gib_s = 30;
  int stop_timeout_s = 10;  // SIGTERM → SIGKILL grace
  // Catalog: which caches of other tools to scan (issue 4).
  bool scan_huggingface = true;
  bool scan_ollama = true;
  bool scan_lmstudio = true;
  bool scan_llamacpp = true;

  // Proxy data plane (src/proxy).
  int64_t max_body_bytes = 32LL << 20;     // request body limit (413 beyond)
  int64_t proxy_threads = 0;               // event-loop threads; 0 = auto
  int64_t proxy_client_timeout_s = 60;     // idle keep-alive / slow client
  int64_t proxy_upstream_timeout_s = 600;  // no byte from llama-server this long
  int64_t model_ttl_s = 0;                 // unload models started on demand after this idle time; 0 = never

  // Where each key's value came from: "default", "file", "env" or "flag".
  std::map<std::string, std::string> source;
};

enum class OptionType { kString, kPath, kPathList, kBool, kInt };

struct OptionDef {
  const char* key;            // config.yaml key
  const char* flag;           // command-line flag ("--llama-server"); nullptr = none
  const char* env;            // environment variable; nullptr = none
  const char* default_value;  // as text; "" = empty; lists use ':' between entries
  const char* help;
  OptionType type;
};

// Every option, in help order.
const std::vector<OptionDef>& Options();

// Values given on the command line, by option key, as text (lists may repeat).
struct FlagValues {
  std::string config_file;  // --config
  std::map<std::string, std::vector<std::string>> by_key;
};

// Adds a global flag for each option that has one. Values land in `out`.
void AddFlags(CLI::App& app, FlagValues& out);

// Resolves every option. A config file that exists but does not parse is an error naming
// the file, line and key; a missing file is fine (defaults apply).
Result<Config> Load(const FlagValues& flags);

// Applies the options set in config.yaml text over `config` (used by Load; fuzzed).
Status ApplyConfigText(Config& config, const std::string& text, const std::string& file_name);

// The effective configuration as YAML-like text, with each value's source (`corral config`).
std::string Describe(const Config& config);

// A Markdown table of all options (docs/OPTIONS.md is generated from this).
std::string OptionsMarkdown();

}  // namespace corral::config
