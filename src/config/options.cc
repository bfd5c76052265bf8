#include "config/options.h"

#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>

#include "common/fs.h"
#include "common/paths.h"

namespace corral::config {
namespace {

constexpr uint64_t kMaxConfigBytes = 4 << 20;

std::string Join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& x : v) {
    if (!out.empty()) out += sep;
    out += x;
  }
  return out;
}

// The odd options' own rules (OptionDef::check).

// listen: each comma-separated entry [http://|https://]HOST:PORT; the proxy parses them fully.
Result<std::string> CheckListen(const std::string& value) {
  std::string_view rest = value;
  while (!rest.empty()) {
    std::string_view entry = rest.substr(0, rest.find(','));
    rest = entry.size() == rest.size() ? std::string_view() : rest.substr(entry.size() + 1);
    if (entry.find(':') == std::string_view::npos) {
      return InvalidArgument("listen must be HOST:PORT or https://HOST:PORT (comma-separated), got '" + value + "'");
    }
  }
  return value;
}

// memory_budget: empty means auto.
Result<std::string> EmptyIsAuto(const std::string& value) {
  return value.empty() ? std::string("auto") : value;
}

Result<std::string> CheckSpec(const std::string& value) {
  CORRAL_RETURN_IF_ERROR(CheckSpecSetting(value).WithContext("spec"));
  return value;
}

// llama_ui: auto (also when empty), off, or a folder (~ expanded).
Result<std::string> CheckLlamaUi(const std::string& value) {
  if (value.empty()) return std::string("auto");
  return value == "auto" || value == "off" ? value : ExpandHome(value);
}

// One cors_origins entry: "*" or scheme://host[:port] (http or https, nothing after the
// authority; trailing '/' dropped). An Origin header never has a path, so an entry with one
// could never match: refused rather than silently useless.
Result<std::string> CheckOrigin(const std::string& entry) {
  std::string o = entry;
  while (!o.empty() && o.back() == '/') o.pop_back();
  if (o == "*") return o;
  size_t scheme = o.find("://");
  std::string s = scheme == std::string::npos ? "" : o.substr(0, scheme);
  std::string authority = scheme == std::string::npos ? "" : o.substr(scheme + 3);
  bool ok = (s == "http" || s == "https") && !authority.empty() && authority.find_first_of("/?#@") == std::string::npos;
  for (char ch : o) ok = ok && static_cast<unsigned char>(ch) > 0x20 && ch != 0x7F;
  if (!ok) {
    return InvalidArgument("cors_origins entries must be '*' or scheme://host[:port] (http or https), got '" + o + "'");
  }
  return o;
}

// The registry: each option bound once to its Config field, with its rule. Add an option
// here and a field (with its default) to Config; nothing else names it.
std::vector<OptionDef> BuildRegistry() {
  using T = OptionType;
  using R = OnReload;
  std::vector<OptionDef> options = {
      {.key = "model_paths",
       .flag = "--model-path",
       .env = "CORRAL_MODEL_PATHS",
       .help = "Directories or GGUF files to scan for models, besides the default model directory "
               "("
               "$XDG_DATA_HOME/corral/models"
               ") and the caches of other tools. Env: ':'-separated.",
       .type = T::kPathList,
       .reload = R::kLive,
       .field = &Config::model_paths},
      {.key = "llama_server",
       .flag = "--llama-server",
       .env = "CORRAL_LLAMA_SERVER",
       .help = "The llama-server binary to launch. Empty: llama-server on PATH, else the pinned build.",
       .type = T::kPath,
       .reload = R::kRestart,
       .field = &Config::llama_server},
      {.key = "listen",
       .flag = "--listen",
       .env = "CORRAL_LISTEN",
       .help = "Proxy listen addresses, comma-separated: HOST:PORT (plain HTTP) or https://HOST:PORT (TLS). Loopback "
               "unless told otherwise; a routable address needs an API key (corral keys create).",
       .type = T::kString,
       .reload = R::kRestart,
       .field = &Config::listen,
       .check = CheckListen},
      {.key = "log_level",
       .flag = "--log-level",
       .env = "CORRAL_LOG_LEVEL",
       .help = "Log level: trace, debug, info, warn, error.",
       .type = T::kEnum,
       .reload = R::kLive,
       .field = &Config::log_level,
       .choices = {"trace", "debug", "info", "warn", "error"}},
      // Catalog sources (issue 4): each cache of another tool can be switched off.
      {.key = "scan_huggingface",
       .flag = nullptr,
       .env = "CORRAL_SCAN_HUGGINGFACE",
       .help = "List models in the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub).",
       .type = T::kBool,
       .reload = R::kLive,
       .field = &Config::scan_huggingface},
      {.key = "scan_ollama",
       .flag = nullptr,
       .env = "CORRAL_SCAN_OLLAMA",
       .help = "List Ollama's models (OLLAMA_MODELS or ~/.ollama/models).",
       .type = T::kBool,
       .reload = R::kLive,
       .field = &Config::scan_ollama},
      {.key = "scan_lmstudio",
       .flag = nullptr,
       .env = "CORRAL_SCAN_LMSTUDIO",
       .help = "List LM Studio's models (~/.lmstudio/models, ~/.cache/lm-studio/models).",
       .type = T::kBool,
       .reload = R::kLive,
       .field = &Config::scan_lmstudio},
      {.key = "scan_llamacpp",
       .flag = nullptr,
       .env = "CORRAL_SCAN_LLAMACPP",
       .help = "List llama.cpp's download cache (LLAMA_CACHE or ~/.cache/llama.cpp).",
       .type = T::kBool,
       .reload = R::kLive,
       .field = &Config::scan_llamacpp},
      // Proxy data plane.
      {.key = "max_body_bytes",
       .flag = "--max-body-bytes",
       .env = "CORRAL_MAX_BODY_BYTES",
       .help = "Largest request body the proxy accepts (bytes); larger ones get 413.",
       .type = T::kInt,
       .reload = R::kLive,
       .field = &Config::max_body_bytes,
       .min = 1,
       .max = int64_t{1} << 40},
      {.key = "proxy_preconnect",
       .flag = nullptr,
       .env = "CORRAL_PROXY_PRECONNECT",
       .help = "Keep one spare connection to each model's llama-server (it closes its connection after every "
               "stream), so the next request does not wait for a connect.",
       .type = T::kBool,
       .reload = R::kRestart,
       .field = &Config::proxy_preconnect},
      {.key = "proxy_process",
       .flag = nullptr,
       .env = "CORRAL_PROXY_PROCESS",
       .help = "Run the proxy (everything that parses network input) in its own process, restarted if it dies, "
               "so a crash there never costs a loaded model. false: in the daemon's process.",
       .type = T::kBool,
       .reload = R::kRestart,
       .field = &Config::proxy_process},
      {.key = "proxy_threads",
       .flag = "--proxy-threads",
       .env = "CORRAL_PROXY_THREADS",
       .help = "Proxy event-loop threads; 0 = min(CPU threads, 4).",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::proxy_threads,
       .min = 0,
       .max = 256},
      {.key = "proxy_client_timeout_s",
       .flag = "--proxy-client-timeout",
       .env = "CORRAL_PROXY_CLIENT_TIMEOUT",
       .help = "Seconds a client may idle on a keep-alive connection, or stall sending or reading.",
       .type = T::kInt,
       .reload = R::kLive,
       .field = &Config::proxy_client_timeout_s,
       .min = 1,
       .max = 86400},
      {.key = "proxy_upstream_timeout_s",
       .flag = "--proxy-upstream-timeout",
       .env = "CORRAL_PROXY_UPSTREAM_TIMEOUT",
       .help = "Seconds without a byte from llama-server before the proxy gives up (504 or cut).",
       .type = T::kInt,
       .reload = R::kLive,
       .field = &Config::proxy_upstream_timeout_s,
       .min = 1,
       .max = 86400},
      {.key = "max_json_depth",
       .flag = "--max-json-depth",
       .env = "CORRAL_MAX_JSON_DEPTH",
       .help = "Deepest nesting of arrays/objects the proxy accepts in a JSON request body (1..1024); deeper ones "
               "get 400 before anything parses them.",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::max_json_depth,
       .min = 1,
       .max = 1024},
      {.key = "cors_origins",
       .flag = "--cors-origins",
       .env = "CORRAL_CORS_ORIGINS",
       .help = "Browser origins allowed to call the proxy, comma-separated (e.g. http://localhost:3000); '*' = any. "
               "Requests from other web origins get 403; empty = none (the proxy's own origin always works).",
       .type = T::kList,
       .reload = R::kRestart,
       .field = &Config::cors_origins,
       .check = CheckOrigin},
      // LAN (issue 13): TLS material and the open-door rule.
      {.key = "tls_cert",
       .flag = "--tls-cert",
       .env = "CORRAL_TLS_CERT",
       .help = "PEM certificate chain for the https:// listen addresses. Empty: a local CA and server certificate "
               "made on first use in $XDG_CONFIG_HOME/corral/tls (corral tls show).",
       .type = T::kPath,
       .reload = R::kRestart,
       .field = &Config::tls_cert},
      {.key = "tls_key",
       .flag = "--tls-key",
       .env = "CORRAL_TLS_KEY",
       .help = "PEM private key of --tls-cert.",
       .type = T::kPath,
       .reload = R::kRestart,
       .field = &Config::tls_key},
      {.key = "allow_unauthenticated_lan",
       .flag = "--allow-unauthenticated-lan",
       .env = "CORRAL_ALLOW_UNAUTHENTICATED_LAN",
       .help = "Serve a routable (non-loopback) listen address with no API key. Anyone who can reach it may use "
               "every model; without it such a bind is refused (exit 72).",
       .type = T::kBool,
       .reload = R::kRestart,
       .field = &Config::allow_unauthenticated_lan},
      {.key = "require_key_on_loopback",
       .flag = nullptr,
       .env = "CORRAL_REQUIRE_KEY_ON_LOOPBACK",
       .help = "Ask for an API key on loopback listen addresses too (routable ones always ask once keys exist).",
       .type = T::kBool,
       .reload = R::kRestart,
       .field = &Config::require_key_on_loopback},
      {.key = "max_connections",
       .flag = "--max-connections",
       .env = "CORRAL_MAX_CONNECTIONS",
       .help = "Client connections the proxy holds open at once (also kept below half the open-file limit); "
               "beyond it a new connection gets 503.",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::max_connections,
       .min = 1,
       .max = 1'000'000},
      {.key = "max_connections_per_client",
       .flag = "--max-connections-per-client",
       .env = "CORRAL_MAX_CONNECTIONS_PER_CLIENT",
       .help = "Client connections open at once from one IP address (all local programs share 127.0.0.1); beyond it "
               "503.",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::max_connections_per_client,
       .min = 1,
       .max = 1'000'000},
      {.key = "max_buffered_body_bytes",
       .flag = "--max-buffered-body-bytes",
       .env = "CORRAL_MAX_BUFFERED_BODY_BYTES",
       .help = "Request body bytes the proxy buffers at once across all connections; a request beyond it gets 503 "
               "(one request always fits).",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::max_buffered_body_bytes,
       .min = 1,
       .max = int64_t{1} << 40},
      {.key = "model_ttl_s",
       .flag = "--model-ttl",
       .env = "CORRAL_MODEL_TTL",
       .help = "Seconds a model started on demand by a request may stay idle before it is unloaded; 0 = never. "
               "Models started with `corral start` stay until stopped. Ollama clients' keep_alive overrides it.",
       .type = T::kInt,
       .reload = R::kLive,
       .field = &Config::model_ttl_s,
       .min = 0,
       .max = int64_t{365} * 86400},
      // Supervisor (issue 5).
      {.key = "memory_budget",
       .flag = "--memory-budget",
       .env = "CORRAL_MEMORY_BUDGET",
       .help = "Memory the running models may use together, e.g. 12GiB; 'auto' = total RAM minus "
               "max(1 GiB, 10%). A start that does not fit is refused unless --force.",
       .type = T::kString,
       .reload = R::kLive,
       .field = &Config::memory_budget,
       .check = EmptyIsAuto},
      {.key = "health_timeout",
       .flag = nullptr,
       .env = "CORRAL_HEALTH_TIMEOUT",
       .help = "Seconds a model may take to become ready, plus health_timeout_per_gib per GiB of model.",
       .type = T::kSeconds,
       .reload = R::kLive,
       .field = &Config::health_timeout_s,
       .min = 0,
       .max = 86400},
      {.key = "health_timeout_per_gib",
       .flag = nullptr,
       .env = "CORRAL_HEALTH_TIMEOUT_PER_GIB",
       .help = "Extra readiness seconds per GiB of model file.",
       .type = T::kSeconds,
       .reload = R::kLive,
       .field = &Config::health_timeout_per_gib_s,
       .min = 0,
       .max = 86400},
      {.key = "stop_timeout",
       .flag = nullptr,
       .env = "CORRAL_STOP_TIMEOUT",
       .help = "Seconds between SIGTERM and SIGKILL when stopping a model.",
       .type = T::kSeconds,
       .reload = R::kLive,
       .field = &Config::stop_timeout_s,
       .min = 0,
       .max = 86400},
      {.key = "liveness_timeout",
       .flag = nullptr,
       .env = "CORRAL_LIVENESS_TIMEOUT",
       .help = "Seconds a ready model's /health may go unanswered before it is killed as unresponsive "
               "(and restarted if it has restart on); 0 = never.",
       .type = T::kInt,
       .reload = R::kRestart,
       .field = &Config::liveness_timeout_s,
       .min = 0,
       .max = 86400},
      // KV state across unloads (issue 17).
      {.key = "kv_keep",
       .flag = "--kv-keep",
       .env = "CORRAL_KV_KEEP",
       .help = "Keep a model's KV cache across unloads: Corral starts llama-server with --slot-save-path (a "
               "directory under its state dir), saves the slots before it unloads the model and restores them "
               "when it starts again, so a conversation continues without re-reading its prompt. Per model: "
               "models.NAME.kv_keep. See docs/kv.md.",
       .type = T::kBool,
       .reload = R::kLive,
       .field = &Config::kv_keep},
      {.key = "kv_keep_budget",
       .flag = "--kv-keep-budget",
       .env = "CORRAL_KV_KEEP_BUDGET",
       .help = "Disk space for the saved KV states of all models together, e.g. 4GiB; the least recently saved "
               "go first.",
       .type = T::kString,
       .reload = R::kLive,
       .field = &Config::kv_keep_budget},
      // Speculative decoding (issue 17).
      {.key = "spec",
       .flag = "--spec",
       .env = "CORRAL_SPEC",
       .help = "Speculative decoding: 'auto' = the model's own MTP heads when it has them, else the smallest "
               "catalog model with the same vocabulary and architecture family and at most a quarter of its "
               "parameters as the draft, else none; 'off' = none; or a draft model's name. Per model: "
               "models.NAME.spec. See docs/spec.md.",
       .type = T::kString,
       .reload = R::kLive,
       .field = &Config::spec,
       .check = CheckSpec},
      // The web dashboard's Bench page (issue 16).
      {.key = "bench_results_dir",
       .flag = "--bench-results-dir",
       .env = "CORRAL_BENCH_RESULTS_DIR",
       .help = "A folder of `corral bench` reports (e.g. a checkout's bench/results) the web dashboard lists "
               "beside the runs it started ($XDG_STATE_HOME/corral/bench). Read only.",
       .type = T::kPath,
       .reload = R::kRestart,
       .field = &Config::bench_results_dir},
      // The stock llama.cpp web UI under /llama/ (issue 16, docs/proxy.md).
      {.key = "llama_ui",
       .flag = "--llama-ui",
       .env = "CORRAL_LLAMA_UI",
       .help = "The stock llama.cpp web UI, served under /llama/ on the proxy port: a folder holding a built "
               "tools/ui (`make llama-ui`); 'auto' = the pinned engine's build when it was made; 'off' = none. "
               "Read once at start.",
       .type = T::kString,
       .reload = R::kRestart,
       .field = &Config::llama_ui,
       .check = CheckLlamaUi},
  };
  const Config defaults;  // one source of each default: Config's member initialisers
  for (auto& def : options) def.default_value = Join(GetOption(defaults, def), ':');
  return options;
}

const std::vector<OptionDef>& Registry() {
  static const std::vector<OptionDef> kOptions = BuildRegistry();
  return kOptions;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ':') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// A kList value's entries: split at ',', blanks and tabs; empty entries dropped.
std::vector<std::string> SplitEntries(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return InvalidArgument(key + " must be true or false, got '" + v + "'");
}

// kInt and kSeconds. kSeconds keeps what std::stoi allowed when it read them: leading blanks
// and a '+'.
Result<int64_t> ParseInteger(const OptionDef& def, const std::string& text) {
  std::string_view t = text;
  if (def.type == OptionType::kSeconds) {
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front())) != 0) t.remove_prefix(1);
    if (t.size() > 1 && t.front() == '+' && t[1] != '-') t.remove_prefix(1);
  }
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec == std::errc() && ptr == t.data() + t.size() && v >= def.min && v <= def.max) return v;
  if (def.type == OptionType::kSeconds) {
    return InvalidArgument(std::string(def.key) + " must be a whole number of seconds " + std::to_string(def.min) +
                           ".." + std::to_string(def.max) + ", got '" + text + "'");
  }
  return InvalidArgument(std::string(def.key) + " must be an integer in [" + std::to_string(def.min) + ", " +
                         std::to_string(def.max) + "], got '" + text + "'");
}

// The Config field of `def` when it has type F, else nullptr (a registry mistake).
template <typename F>
F* FieldOf(Config& c, const OptionDef& def) {
  const auto* member = std::get_if<F Config::*>(&def.field);
  return member == nullptr ? nullptr : &(c.**member);
}

Status Unbound(const OptionDef& def) {
  return Internal(std::string("option ") + def.key + " is not bound to a Config field of its type");
}

Status SetBool(Config& c, const OptionDef& def, const std::string& text) {
  CORRAL_ASSIGN_OR_RETURN(bool b, ParseBool(def.key, text));
  bool* field = FieldOf<bool>(c, def);
  if (field == nullptr) return Unbound(def);
  *field = b;
  return Status::Ok();
}

Status SetInteger(Config& c, const OptionDef& def, const std::string& text) {
  CORRAL_ASSIGN_OR_RETURN(int64_t v, ParseInteger(def, text));
  if (int64_t* wide = FieldOf<int64_t>(c, def)) {
    *wide = v;
  } else if (int* narrow = FieldOf<int>(c, def); narrow != nullptr && def.max <= INT32_MAX && def.min >= INT32_MIN) {
    *narrow = static_cast<int>(v);
  } else {
    return Unbound(def);
  }
  return Status::Ok();
}

// kPathList (every value, ~ expanded) and kList (the entries of the last value).
Status SetList(Config& c, const OptionDef& def, const std::vector<std::string>& values) {
  std::vector<std::string> entries;
  if (def.type == OptionType::kPathList) {
    for (const auto& v : values) entries.push_back(ExpandHome(v));
  } else {
    entries = SplitEntries(values.empty() ? std::string() : values.back());
  }
  if (def.check != nullptr) {
    for (auto& e : entries) {
      CORRAL_ASSIGN_OR_RETURN(e, def.check(e));
    }
  }
  auto* field = FieldOf<std::vector<std::string>>(c, def);
  if (field == nullptr) return Unbound(def);
  *field = std::move(entries);
  return Status::Ok();
}

// kString, kPath, kEnum.
Status SetText(Config& c, const OptionDef& def, const std::string& text) {
  std::string value = def.type == OptionType::kPath ? ExpandHome(text) : text;
  if (def.type == OptionType::kEnum) {
    bool known = false;
    std::string names;
    for (const char* choice : def.choices) {
      known = known || value == choice;
      names += (names.empty() ? "" : "|") + std::string(choice);
    }
    if (!known) return InvalidArgument(std::string(def.key) + " must be " + names + ", got '" + text + "'");
  }
  if (def.check != nullptr) {
    CORRAL_ASSIGN_OR_RETURN(value, def.check(value));
  }
  auto* field = FieldOf<std::string>(c, def);
  if (field == nullptr) return Unbound(def);
  *field = std::move(value);
  return Status::Ok();
}

Result<std::vector<std::string>> YamlValues(const YAML::Node& node, const OptionDef& def) {
  std::vector<std::string> out;
  if (def.type == OptionType::kPathList) {
    if (node.IsScalar()) {
      out.push_back(node.as<std::string>());
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        if (!item.IsScalar()) return InvalidArgument(std::string(def.key) + " must be a list of strings");
        out.push_back(item.as<std::string>());
      }
    } else if (!node.IsNull()) {
      return InvalidArgument(std::string(def.key) + " must be a list of strings");
    }
    return out;
  }
  if (def.type == OptionType::kList && node.IsSequence()) {  // a YAML list reads as one comma list
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar()) return InvalidArgument(std::string(def.key) + " must be a list of strings");
      joined += (joined.empty() ? "" : ",") + item.Scalar();
    }
    out.push_back(joined);
    return out;
  }
  if (!node.IsScalar()) return InvalidArgument(std::string(def.key) + " must be a single value");
  out.push_back(node.as<std::string>());
  return out;
}

// "file:LINE: models.REF.KEY: message" (LINE from the node's mark when yaml-cpp has one).
Status ModelError(const std::string& file, const YAML::Node& at, const std::string& where, const std::string& msg) {
  std::string line;
  const YAML::Mark mark = at.Mark();
  if (mark.line >= 0) line = ":" + std::to_string(mark.line + 1);
  return InvalidArgument(file + line + ": " + where + ": " + msg);
}

Result<int64_t> ScalarInt(const YAML::Node& node, int64_t min, int64_t max) {
  if (!node.IsScalar()) return InvalidArgument("must be a whole number");
  const std::string& text = node.Scalar();
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument("must be a whole number in [" + std::to_string(min) + ", " + std::to_string(max) +
                           "], got '" + text + "'");
  }
  return v;
}

// aliases: a mapping of alias → model reference (both scalars).
Result<std::map<std::string, std::string>> ParseAliases(const YAML::Node& node, const std::string& file) {
  std::map<std::string, std::string> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsMap()) return ModelError(file, node, "aliases", "must be a mapping of alias: model");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar() || kv.first.Scalar().empty()) {
      return ModelError(file, kv.first, "aliases", "each alias must map a name to a model reference");
    }
    if (out.size() >= kMaxModelSettings) {
      return ModelError(file, kv.first, "aliases", "more than " + std::to_string(kMaxModelSettings) + " aliases");
    }
    out[kv.first.Scalar()] = kv.second.Scalar();
  }
  return out;
}

// The fields of a models: entry, each parsed into ModelSettings by its own function; the
// messages name the file, the line and models.REF.KEY.
using ModelFieldParser = Status (*)(const YAML::Node& value, const std::string& file, const std::string& at,
                                    ModelSettings& m);

Status ModelBool(const YAML::Node& value, const std::string& file, const std::string& at, bool& out) {
  if (!value.IsScalar()) return ModelError(file, value, at, "must be true or false");
  auto b = ParseBool(at, value.Scalar());
  if (!b.ok()) return ModelError(file, value, at, "must be true or false, got '" + value.Scalar() + "'");
  out = *b;
  return Status::Ok();
}

Status ModelTtl(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  auto t = ScalarInt(value, 0, int64_t{365} * 86400);
  if (!t.ok()) return ModelError(file, value, at, "seconds idle before unload (0 = never) " + t.status().message());
  m.ttl_s = *t;
  return Status::Ok();
}

Status ModelCtx(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  auto c = ScalarInt(value, 0, kMaxModelCtx);
  if (!c.ok()) return ModelError(file, value, at, "context size " + c.status().message());
  m.ctx = static_cast<uint32_t>(*c);
  return Status::Ok();
}

Status ModelArgs(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  if (!value.IsSequence()) return ModelError(file, value, at, "must be a list of strings, e.g. [\"--threads\", \"2\"]");
  if (value.size() > kMaxModelArgs) {
    return ModelError(file, value, at, "more than " + std::to_string(kMaxModelArgs) + " arguments");
  }
  for (const auto& a : value) {
    if (!a.IsScalar()) return ModelError(file, a, at, "must be a list of strings");
    if (a.Scalar().size() > kMaxModelArgBytes) {
      return ModelError(file, a, at, "an argument is longer than " + std::to_string(kMaxModelArgBytes) + " bytes");
    }
    m.args.push_back(a.Scalar());
  }
  return Status::Ok();
}

Status ModelPinned(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  return ModelBool(value, file, at, m.pinned);
}

Status ModelRestart(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  return ModelBool(value, file, at, m.restart);
}

Status ModelKvKeep(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  bool keep = false;
  CORRAL_RETURN_IF_ERROR(ModelBool(value, file, at, keep));
  m.kv_keep = keep;
  return Status::Ok();
}

Status ModelSpec(const YAML::Node& value, const std::string& file, const std::string& at, ModelSettings& m) {
  if (!value.IsScalar()) return ModelError(file, value, at, "must be auto, off or a draft model's name");
  if (Status st = CheckSpecSetting(value.Scalar()); !st.ok()) return ModelError(file, value, at, st.message());
  m.spec = value.Scalar();
  return Status::Ok();
}

struct ModelField {
  const char* key;
  ModelFieldParser parse;
};
constexpr ModelField kModelFields[] = {{"ttl", ModelTtl},       {"ctx", ModelCtx},         {"args", ModelArgs},
                                       {"pinned", ModelPinned}, {"restart", ModelRestart}, {"kv_keep", ModelKvKeep},
                                       {"spec", ModelSpec}};

// One entry of models: (REF: {ttl, ctx, ...} or REF: with nothing).
Result<ModelSettings> ParseModel(const YAML::Node& name, const YAML::Node& v, const std::string& file) {
  ModelSettings m;
  m.ref = name.Scalar();
  m.line = name.Mark().line >= 0 ? name.Mark().line + 1 : 0;
  const std::string where = "models." + m.ref;
  if (v.IsNull()) return m;
  if (!v.IsMap()) return ModelError(file, v, where, "must be a mapping with ttl, ctx, args, pinned or restart");
  for (const auto& field : v) {
    if (!field.first.IsScalar()) return ModelError(file, field.first, where, "keys must be names");
    const std::string key = field.first.Scalar();
    const ModelField* known = nullptr;
    std::string names;
    for (const auto& f : kModelFields) {
      if (key == f.key) known = &f;
      names += (names.empty() ? "" : ", ") + std::string(f.key);
    }
    if (known == nullptr)
      return ModelError(file, field.first, where, "unknown key '" + key + "' (known: " + names + ")");
    CORRAL_RETURN_IF_ERROR(known->parse(field.second, file, where + "." + key, m));
  }
  if (m.pinned && m.ttl_s && *m.ttl_s > 0) {
    return ModelError(file, name, where,
                      "pinned: true never unloads, so ttl: " + std::to_string(*m.ttl_s) + " cannot apply; drop one");
  }
  return m;
}

// models: REF: {ttl, ctx, args, pinned, restart, kv_keep, spec}. Strict: unknown keys and
// wrong types are errors naming the model and the key.
Result<std::vector<ModelSettings>> ParseModels(const YAML::Node& node, const std::string& file) {
  std::vector<ModelSettings> out;
  if (!node.IsDefined() || node.IsNull()) return out;
  if (!node.IsMap()) {
    return ModelError(file, node, "models", "must be a mapping of model: {ttl, ctx, args, pinned, restart}");
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      return ModelError(file, kv.first, "models", "each key must be a model name, alias or unique substring");
    }
    if (out.size() >= kMaxModelSettings) {
      return ModelError(file, kv.first, "models", "more than " + std::to_string(kMaxModelSettings) + " entries");
    }
    for (const auto& other : out) {
      if (other.ref == kv.first.Scalar()) return ModelError(file, kv.first, "models." + other.ref, "listed twice");
    }
    CORRAL_ASSIGN_OR_RETURN(ModelSettings m, ParseModel(kv.first, kv.second, file));
    out.push_back(std::move(m));
  }
  return out;
}

std::string DescribeModel(const ModelSettings& m) {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (m.ttl_s) add("ttl " + std::to_string(*m.ttl_s));
  if (m.ctx != 0) add("ctx " + std::to_string(m.ctx));
  if (!m.args.empty()) {
    std::string a;
    for (const auto& x : m.args) a += (a.empty() ? "" : " ") + x;
    add("args [" + a + "]");
  }
  if (m.pinned) add("pinned");
  if (m.restart) add("restart");
  if (m.kv_keep) add(*m.kv_keep ? "kv_keep" : "kv_keep false");
  if (!m.spec.empty()) add("spec " + m.spec);
  return out.empty() ? "{}" : out;
}

}  // namespace

const std::vector<OptionDef>& Options() {
  return Registry();
}

const OptionDef* FindOption(std::string_view key) {
  for (const auto& def : Registry()) {
    if (key == def.key) return &def;
  }
  return nullptr;
}

Status SetOption(Config& c, const OptionDef& def, const std::vector<std::string>& values) {
  const std::string one = values.empty() ? std::string() : values.back();
  switch (def.type) {
    case OptionType::kBool: return SetBool(c, def, one);
    case OptionType::kInt:
    case OptionType::kSeconds: return SetInteger(c, def, one);
    case OptionType::kPathList:
    case OptionType::kList: return SetList(c, def, values);
    case OptionType::kString:
    case OptionType::kPath:
    case OptionType::kEnum: return SetText(c, def, one);
  }
  return Unbound(def);
}

std::vector<std::string> GetOption(const Config& c, const OptionDef& def) {
  using Text = std::vector<std::string>;
  struct Reader {
    const Config& c;
    const OptionDef& def;
    Text operator()(std::monostate /*unbound*/) const { return {}; }
    Text operator()(std::string Config::*m) const { return {c.*m}; }
    Text operator()(bool Config::*m) const { return {c.*m ? "true" : "false"}; }
    Text operator()(int Config::*m) const { return {std::to_string(c.*m)}; }
    Text operator()(int64_t Config::*m) const { return {std::to_string(c.*m)}; }
    Text operator()(std::vector<std::string> Config::*m) const {
      return def.type == OptionType::kList ? Text{Join(c.*m, ',')} : c.*m;
    }
  };
  return std::visit(Reader{c, def}, def.field);
}

Status CheckSpecSetting(std::string_view value) {
  if (value.empty()) return InvalidArgument("must be auto, off or a draft model's name, not empty");
  if (value.size() > kMaxSpecBytes) {
    return InvalidArgument("a draft model's name is at most " + std::to_string(kMaxSpecBytes) + " bytes");
  }
  for (char ch : value) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) return InvalidArgument("a draft model's name cannot hold control characters");
  }
  return Status::Ok();
}

Status ApplyConfigText(Config& c, const std::string& text, const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsNull() && !root.IsMap()) return InvalidArgument(file_name + ": the top level must be a mapping");
  if (root.IsNull()) {
    c.aliases.emplace();
    c.models.clear();
    return Status::Ok();
  }
  try {
    const YAML::Node& croot = root;  // const: looking a key up never adds it
    auto aliases = ParseAliases(croot["aliases"], file_name);
    if (!aliases.ok()) return aliases.status();
    auto models = ParseModels(croot["models"], file_name);
    if (!models.ok()) return models.status();
    c.aliases = std::move(*aliases);
    c.models = std::move(*models);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ": " + e.msg);
  }
  for (const auto& def : Registry()) {
    YAML::Node node;
    try {
      node = root[def.key];
    } catch (const YAML::Exception& e) {
      return InvalidArgument(file_name + ": " + e.msg);
    }
    if (!node) continue;
    auto values = YamlValues(node, def);
    if (!values.ok()) return values.status().WithContext(file_name);
    Status st = SetOption(c, def, *values);
    if (!st.ok()) return st.WithContext(file_name);
    c.source[def.key] = "file";
  }
  return Status::Ok();
}

void AddFlags(CLI::App& app, FlagValues& out) {
  app.add_option("--config", out.config_file,
                 "Config file (default $XDG_CONFIG_HOME/corral/config.yaml; env CORRAL_CONFIG)")
      ->type_name("FILE");
  for (const auto& def : Registry()) {
    if (def.flag == nullptr) continue;
    if (def.type == OptionType::kBool) {  // a switch: --flag means true, --flag=false too
      auto* flag = app.add_flag(std::string(def.flag) + "{true}", out.by_key[def.key], def.help);
      if (def.env != nullptr) flag->description(std::string(def.help) + " (env " + def.env + ")");
      continue;
    }
    auto* opt = app.add_option(def.flag, out.by_key[def.key], def.help);
    if (def.type != OptionType::kPathList) opt->expected(1);
    if (def.env != nullptr) opt->description(std::string(def.help) + " (env " + def.env + ")");
    opt->type_name(def.type == OptionType::kPathList ? "PATH..." : "VALUE");
  }
}

namespace {

// defaults < file < environment; the caller adds flags.
Result<Config> LoadLayers(const std::string& config_file) {
  Config c;  // the defaults
  c.config_file = config_file;
  for (const auto& def : Registry()) c.source[def.key] = "default";

  // The file. Only a file that exists is read; a bad one is an error, never ignored.
  auto text = ReadFileBounded(c.config_file, kMaxConfigBytes);
  if (text.ok()) {
    CORRAL_RETURN_IF_ERROR(ApplyConfigText(c, *text, c.config_file));
  } else if (text.status().code() != StatusCode::kIoError || ::access(c.config_file.c_str(), F_OK) == 0) {
    return text.status().WithContext("reading the config file");
  } else {
    c.aliases.emplace();  // no file: no aliases
  }

  for (const auto& def : Registry()) {
    if (def.env == nullptr) continue;
    const char* v = std::getenv(def.env);
    if (v == nullptr) continue;
    std::vector<std::string> values = def.type == OptionType::kPathList ? SplitList(v) : std::vector<std::string>{v};
    Status st = SetOption(c, def, values);
    if (!st.ok()) return st.WithContext(std::string("environment variable ") + def.env);
    c.source[def.key] = "env";
  }
  return c;
}

}  // namespace

Result<Config> Load(const FlagValues& flags) {
  std::string file = flags.config_file;
  if (file.empty()) {
    const char* env = std::getenv("CORRAL_CONFIG");
    file = (env != nullptr && *env != '\0') ? std::string(env) : DefaultConfigFile();
  }
  CORRAL_ASSIGN_OR_RETURN(Config c, LoadLayers(ExpandHome(file)));
  for (const auto& def : Registry()) {
    auto it = flags.by_key.find(def.key);
    if (it == flags.by_key.end() || it->second.empty()) continue;
    Status st = SetOption(c, def, it->second);
    if (!st.ok()) return st.WithContext(std::string("flag ") + def.flag);
    c.source[def.key] = "flag";
  }
  return c;
}

Result<Config> Reload(const Config& running) {
  CORRAL_ASSIGN_OR_RETURN(Config c, LoadLayers(running.config_file));
  for (const auto& def : Registry()) {
    auto it = running.source.find(def.key);
    if (it == running.source.end() || it->second != "flag") continue;
    CORRAL_RETURN_IF_ERROR(SetOption(c, def, GetOption(running, def)));
    c.source[def.key] = "flag";
  }
  return c;
}

void KeepRestartOptions(Config& next, const Config& running) {
  for (const auto& def : Registry()) {
    if (def.reload != OnReload::kRestart) continue;
    if (!SetOption(next, def, GetOption(running, def)).ok()) continue;  // running values are valid
    auto it = running.source.find(def.key);
    next.source[def.key] = it == running.source.end() ? "default" : it->second;
  }
}

std::string_view to_string(OnReload r) {
  switch (r) {
    case OnReload::kLive: return "live";
    case OnReload::kRestart: return "restart";
  }
  return "live";
}

std::vector<ConfigChange> Diff(const Config& before, const Config& after) {
  std::vector<ConfigChange> out;
  for (const auto& def : Registry()) {
    std::string a = Join(GetOption(before, def), ':'), b = Join(GetOption(after, def), ':');
    if (a != b) out.push_back({def.key, a, b, def.reload});
  }
  const std::map<std::string, std::string> none;
  const auto& aa = before.aliases ? *before.aliases : none;
  const auto& ba = after.aliases ? *after.aliases : none;
  for (const auto& [k, v] : aa) {
    auto it = ba.find(k);
    if (it == ba.end())
      out.push_back({"aliases." + k, v, "", OnReload::kLive});
    else if (it->second != v)
      out.push_back({"aliases." + k, v, it->second, OnReload::kLive});
  }
  for (const auto& [k, v] : ba) {
    if (aa.count(k) == 0) out.push_back({"aliases." + k, "", v, OnReload::kLive});
  }
  auto find = [](const std::vector<ModelSettings>& v, const std::string& ref) -> const ModelSettings* {
    for (const auto& m : v) {
      if (m.ref == ref) return &m;
    }
    return nullptr;
  };
  for (const auto& m : before.models) {
    const ModelSettings* n = find(after.models, m.ref);
    if (n == nullptr)
      out.push_back({"models." + m.ref, DescribeModel(m), "", OnReload::kLive});
    else if (!(*n == m))
      out.push_back({"models." + m.ref, DescribeModel(m), DescribeModel(*n), OnReload::kLive});
  }
  for (const auto& m : after.models) {
    if (find(before.models, m.ref) == nullptr)
      out.push_back({"models." + m.ref, "", DescribeModel(m), OnReload::kLive});
  }
  return out;
}

std::string Describe(const Config& c) {
  std::ostringstream out;
  out << "# config file: " << c.config_file << "\n";
  for (const auto& def : Registry()) {
    auto it = c.source.find(def.key);
    std::string src = it == c.source.end() ? "default" : it->second;
    std::vector<std::string> values = GetOption(c, def);
    if (def.type == OptionType::kPathList) {
      out << def.key << ":" << (values.empty() ? " []" : "") << "  # " << src << "\n";
      for (const auto& v : values) out << "  - \"" << v << "\"\n";
    } else {
      out << def.key << ": \"" << (values.empty() ? "" : values[0]) << "\"  # " << src << "\n";
    }
  }
  if (c.aliases && !c.aliases->empty()) {
    out << "aliases:  # file\n";
    for (const auto& [alias, ref] : *c.aliases) out << "  \"" << alias << "\": \"" << ref << "\"\n";
  }
  if (!c.models.empty()) {
    out << "models:  # file\n";
    for (const auto& m : c.models)
      out << "  \"" << m.ref << "\": " << DescribeModel(m) << "  # line " << m.line << "\n";
  }
  return out.str();
}

std::string OptionsMarkdown() {
  std::ostringstream out;
  out << "| config key | flag | environment | default | on reload | meaning |\n|---|---|---|---|---|---|\n";
  for (const auto& d : Registry()) {
    out << "| `" << d.key << "` | " << (d.flag ? std::string("`") + d.flag + "`" : "") << " | "
        << (d.env ? std::string("`") + d.env + "`" : "") << " | `" << d.default_value << "` | "
        << (d.reload == OnReload::kLive ? "applied" : "needs restart") << " | " << d.help << " |\n";
  }
  return out.str();
}

}  // namespace corral::config
