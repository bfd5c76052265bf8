// The one registry of Corral's options. Every option is defined once, by one descriptor in
// options.cc: its config key, flag, environment variable, help, kind (with its range or
// choices, and a check of its own for the odd ones) and the Config field it is bound to.
// Its default is that field's initialiser in Config. Values are resolved in rising
// precedence: default < config.yaml < environment < command-line flag.
//
// Thread-safety: Options() is an immutable table; Config is a plain value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/proxy_defaults.h"
#include "common/status.h"

namespace CLI {
class App;
}

namespace corral::config {

// Settings for one model from the `models:` section of config.yaml:
//
//   models:
//     corral-tiny-bpe:            # a catalog name, alias or unique substring
//       ttl: 300                  # seconds idle before unload (0 = never); overrides model_ttl_s
//       ctx: 4096                 # -c for on-demand starts and `corral start` without -c
//       args: ["--threads", "2"]  # raw llama-server args, same refusal rules as `corral start -- ...`
//       pinned: false             # true: never evicted, never unloaded by a TTL
//       restart: false            # true: started again (with backoff) if it crashes after being ready
//       kv_keep: true             # false: no KV state kept across unloads for it (overrides kv_keep)
//       spec: auto                # auto | off | a draft model's name (overrides spec; docs/spec.md)
//
// Unset fields fall back to the global options. Plain value.
struct ModelSettings {
  std::string ref;                // the key, as written
  int line = 0;                   // its line in the file (1-based), for messages
  std::optional<int64_t> ttl_s;   // 0 = never unload
  uint32_t ctx = 0;               // 0 = not set
  std::vector<std::string> args;  // empty = not set
  bool pinned = false;
  bool restart = false;
  std::optional<bool> kv_keep;  // unset = the global kv_keep
  std::string spec;             // "" = the global spec; else auto, off or a draft model's name

  bool operator==(const ModelSettings& o) const {
    return ref == o.ref && ttl_s == o.ttl_s && ctx == o.ctx && args == o.args && pinned == o.pinned &&
           restart == o.restart && kv_keep == o.kv_keep && spec == o.spec;
  }
};

// A `spec` value (global or per model): auto, off or a draft model's reference. Refuses an
// empty value, one longer than kMaxSpecBytes and control characters; whether a named draft
// exists and fits is decided at launch (catalog/spec.h).
inline constexpr size_t kMaxSpecBytes = 1024;
Status CheckSpecSetting(std::string_view value);

// Bounds of the `models:` section (the parser reads outside input).
inline constexpr size_t kMaxModelSettings = 1024;
inline constexpr size_t kMaxModelArgs = 256;
inline constexpr size_t kMaxModelArgBytes = 4096;
inline constexpr int64_t kMaxModelCtx = int64_t{1} << 24;

// The typed configuration every subsystem reads. Its member initialisers are the options'
// defaults (the registry prints them; the proxy's come from common/proxy_defaults.h).
struct Config {
  std::string config_file;                 // the file that was read (may not exist)
  std::vector<std::string> model_paths;    // user model directories and files
  std::string llama_server;                // user's own llama-server binary; empty = search
  std::string listen = defaults::kListen;  // proxy listen addresses: [https://]HOST:PORT[,...]
  std::string log_level = "info";          // trace|debug|info|warn|error
  // Supervisor (issue 5).
  std::string memory_budget = "auto";  // "auto" (total RAM minus a margin) or a size: "12GiB"
  int health_timeout_s = 60;           // base readiness timeout; + health_timeout_per_gib_s per GiB of model
  int health_timeout_per_gib_s = 30;
  int stop_timeout_s = 10;  // SIGTERM → SIGKILL grace
  // A ready child's /health unanswered this long → killed as unresponsive; 0 = off.
  int64_t liveness_timeout_s = 15;
  // KV state kept across unloads (issue 17, docs/kv.md): saved with llama-server's slot
  // save/restore when Corral unloads a model, restored when it starts again.
  bool kv_keep = true;
  std::string kv_keep_budget = "4GiB";  // disk for saved states, all models together (LRU)
  // Speculative decoding (issue 17, docs/spec.md): auto | off | a draft model's name.
  std::string spec = "auto";
  std::string bench_results_dir;  // more `corral bench` reports for the web dashboard; empty = none
  std::string llama_ui = "auto";  // the stock llama.cpp web UI under /llama/: auto | off | a built folder
  // Catalog: which caches of other tools to scan (issue 4).
  bool scan_huggingface = true;
  bool scan_ollama = true;
  bool scan_lmstudio = true;
  bool scan_llamacpp = true;

  // Proxy data plane (src/proxy).
  int64_t max_body_bytes = defaults::kMaxBodyBytes;    // request body limit (413 beyond)
  int64_t proxy_threads = defaults::kProxyThreads;     // event-loop threads; 0 = auto
  bool proxy_preconnect = defaults::kProxyPreconnect;  // a spare upstream connection after each stream
  bool proxy_process = true;                           // the proxy in its own, restartable process (edge/host.h)
  int64_t proxy_client_timeout_s = defaults::kClientTimeoutS;      // idle keep-alive / slow client
  int64_t proxy_upstream_timeout_s = defaults::kUpstreamTimeoutS;  // no byte from llama-server this long
  int64_t model_ttl_s = 0;  // unload models started on demand after this idle time; 0 = never
  // Proxy hostile-input limits (issue 11).
  int64_t max_json_depth = defaults::kMaxJsonDepth;     // request bodies nested deeper: 400
  std::vector<std::string> cors_origins;                // browser origins allowed (CORS); empty = none
  int64_t max_connections = defaults::kMaxConnections;  // client connections open at once
  int64_t max_connections_per_client = defaults::kMaxConnectionsPerClient;  // ... from one IP address
  int64_t max_buffered_body_bytes = defaults::kMaxBufferedBodyBytes;        // request bodies buffered at once
  // LAN (issue 13).
  std::string tls_cert, tls_key;           // the user's certificate chain and key; empty = local CA
  bool allow_unauthenticated_lan = false;  // serve a routable address with no key
  bool require_key_on_loopback = false;    // loopback listeners ask for a key too

  // From config.yaml, outside the option registry (file only; no flag or env var).
  // aliases: alias → model reference. Unset = not read from a file yet (a Config built by
  // hand); then the catalog reads the file's aliases itself.
  std::optional<std::map<std::string, std::string>> aliases;
  std::vector<ModelSettings> models;  // the `models:` section, in file order

  // Where each key's value came from: "default", "file", "env" or "flag".
  std::map<std::string, std::string> source;
};

// The shape of an option's text, and how it becomes its Config field.
enum class OptionType {
  kString,    // one value, kept as given (a check hook may refuse or rewrite it)
  kPath,      // one value; a leading ~ is expanded
  kPathList,  // many values: a repeatable flag, ':' between entries in the env var, a YAML list
  kList,      // one value split at ',' and blanks (or a YAML list); each entry checked by the hook
  kBool,      // true|false (also 1|0, yes|no, on|off)
  kInt,       // an integer in [min, max]
  kSeconds,   // a whole number of seconds in [min, max] (leading blanks and a + pass, as stoi let them)
  kEnum,      // one of `choices`
};

// What a running daemon does when the option changes on reload.
enum class OnReload {
  kLive,     // applied at once
  kRestart,  // keeps its running value until the daemon restarts (reported as "needs restart")
};
std::string_view to_string(OnReload r);

// The Config field an option is bound to (its type follows OptionType: bool for kBool, an
// integer for kInt and kSeconds, a list for kPathList and kList, a string otherwise).
using OptionField = std::variant<std::monostate, std::string Config::*, bool Config::*, int Config::*,
                                 int64_t Config::*, std::vector<std::string> Config::*>;

// An odd option's own rule, run on the text after the type's (for kList: on each entry):
// refuses the value with a message, or returns what is stored (e.g. "" -> "auto").
using OptionCheck = Result<std::string> (*)(const std::string& value);

// One option, bound once: every reader and writer of the option goes through this.
struct OptionDef {
  const char* key;   // config.yaml key
  const char* flag;  // command-line flag ("--llama-server"); nullptr = none
  const char* env;   // environment variable; nullptr = none
  const char* help;
  OptionType type;
  OnReload reload;
  OptionField field;                 // where the value lives in Config
  int64_t min = 0, max = 0;          // kInt, kSeconds: the accepted range
  std::vector<const char*> choices;  // kEnum
  OptionCheck check = nullptr;       // nullptr = the type's rule alone
  std::string default_value;         // Config{}'s value as text (lists: ':' between entries)
};

// Every option, in help order.
const std::vector<OptionDef>& Options();

// Sets one option of `config` from text (a list option takes every value; the others the
// last one), with the error a user sees: "KEY must be ..., got '...'". `source` unchanged.
Status SetOption(Config& config, const OptionDef& def, const std::vector<std::string>& values);
// An option's value as text, the inverse of SetOption (one entry, or a list's entries).
std::vector<std::string> GetOption(const Config& config, const OptionDef& def);
// The option named `key`, or nullptr.
const OptionDef* FindOption(std::string_view key);

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

// Reads the configuration again for a running daemon: defaults < config.yaml < environment,
// then every value `running` took from a command-line flag (flags cannot change without a
// restart). Same errors as Load; `running` is not touched.
Result<Config> Reload(const Config& running);

// Puts the running value back into `next` for every option that needs a restart (OnReload::
// kRestart), source included: what a reloading daemon keeps.
void KeepRestartOptions(Config& next, const Config& running);

// One difference between two configurations. `key` is an option key, "aliases.NAME" or
// "models.REF"; values are display text ("" = unset).
struct ConfigChange {
  std::string key;
  std::string before;
  std::string after;
  OnReload reload = OnReload::kLive;
};
// What changed from `before` to `after`, options in registry order, then aliases, then models.
std::vector<ConfigChange> Diff(const Config& before, const Config& after);

// The effective configuration as YAML-like text, with each value's source (`corral config`).
std::string Describe(const Config& config);

// A Markdown table of all options (docs/OPTIONS.md is generated from this).
std::string OptionsMarkdown();

}  // namespace corral::config
