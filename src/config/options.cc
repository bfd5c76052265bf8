#include "config/options.h"

#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <sstream>

#include "common/fs.h"
#include "common/paths.h"

namespace corral::config {
namespace {

constexpr uint64_t kMaxConfigBytes = 4 << 20;

// The registry. Add new options here and a field to Config; Apply() maps them.
const std::vector<OptionDef>& Registry() {
  static const std::vector<OptionDef> kOptions = {
      {"model_paths", "--model-path", "CORRAL_MODEL_PATHS", "",
       "Directories or GGUF files to scan for models, besides the default model directory "
       "("
       "$XDG_DATA_HOME/corral/models"
       ") and the caches of other tools. Env: ':'-separated.",
       OptionType::kPathList, OnReload::kLive},
      {"llama_server", "--llama-server", "CORRAL_LLAMA_SERVER", "",
       "The llama-server binary to launch. Empty: llama-server on PATH, else the pinned build.", OptionType::kPath,
       OnReload::kRestart},
      {"listen", "--listen", "CORRAL_LISTEN", "127.0.0.1:11450",
       "Proxy listen addresses, comma-separated: HOST:PORT (plain HTTP) or https://HOST:PORT (TLS). Loopback "
       "unless told otherwise; a routable address needs an API key (corral keys create).",
       OptionType::kString, OnReload::kRestart},
      {"log_level", "--log-level", "CORRAL_LOG_LEVEL", "info", "Log level: trace, debug, info, warn, error.",
       OptionType::kString, OnReload::kLive},
      // Catalog sources (issue 4): each cache of another tool can be switched off.
      {"scan_huggingface", nullptr, "CORRAL_SCAN_HUGGINGFACE", "true",
       "List models in the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub).",
       OptionType::kBool, OnReload::kLive},
      {"scan_ollama", nullptr, "CORRAL_SCAN_OLLAMA", "true",
       "List Ollama's models (OLLAMA_MODELS or ~/.ollama/models).", OptionType::kBool, OnReload::kLive},
      {"scan_lmstudio", nullptr, "CORRAL_SCAN_LMSTUDIO", "true",
       "List LM Studio's models (~/.lmstudio/models, ~/.cache/lm-studio/models).", OptionType::kBool, OnReload::kLive},
      {"scan_llamacpp", nullptr, "CORRAL_SCAN_LLAMACPP", "true",
       "List llama.cpp's download cache (LLAMA_CACHE or ~/.cache/llama.cpp).", OptionType::kBool, OnReload::kLive},
      // Proxy data plane.
      {"max_body_bytes", "--max-body-bytes", "CORRAL_MAX_BODY_BYTES", "33554432",
       "Largest request body the proxy accepts (bytes); larger ones get 413.", OptionType::kInt, OnReload::kLive},
      {"proxy_preconnect", nullptr, "CORRAL_PROXY_PRECONNECT", "true",
       "Keep one spare connection to each model's llama-server (it closes its connection after every "
       "stream), so the next request does not wait for a connect.",
       OptionType::kBool, OnReload::kRestart},
      {"proxy_process", nullptr, "CORRAL_PROXY_PROCESS", "true",
       "Run the proxy (everything that parses network input) in its own process, restarted if it dies, "
       "so a crash there never costs a loaded model. false: in the daemon's process.",
       OptionType::kBool, OnReload::kRestart},
      {"proxy_threads", "--proxy-threads", "CORRAL_PROXY_THREADS", "0",
       "Proxy event-loop threads; 0 = min(CPU threads, 4).", OptionType::kInt, OnReload::kRestart},
      {"proxy_client_timeout_s", "--proxy-client-timeout", "CORRAL_PROXY_CLIENT_TIMEOUT", "60",
       "Seconds a client may idle on a keep-alive connection, or stall sending or reading.", OptionType::kInt,
       OnReload::kLive},
      {"proxy_upstream_timeout_s", "--proxy-upstream-timeout", "CORRAL_PROXY_UPSTREAM_TIMEOUT", "600",
       "Seconds without a byte from llama-server before the proxy gives up (504 or cut).", OptionType::kInt,
       OnReload::kLive},
      {"max_json_depth", "--max-json-depth", "CORRAL_MAX_JSON_DEPTH", "128",
       "Deepest nesting of arrays/objects the proxy accepts in a JSON request body (1..1024); deeper ones "
       "get 400 before anything parses them.",
       OptionType::kInt, OnReload::kRestart},
      {"cors_origins", "--cors-origins", "CORRAL_CORS_ORIGINS", "",
       "Browser origins allowed to call the proxy, comma-separated (e.g. http://localhost:3000); '*' = any. "
       "Requests from other web origins get 403; empty = none (the proxy's own origin always works).",
       OptionType::kString, OnReload::kRestart},
      // LAN (issue 13): TLS material and the open-door rule.
      {"tls_cert", "--tls-cert", "CORRAL_TLS_CERT", "",
       "PEM certificate chain for the https:// listen addresses. Empty: a local CA and server certificate "
       "made on first use in $XDG_CONFIG_HOME/corral/tls (corral tls show).",
       OptionType::kPath, OnReload::kRestart},
      {"tls_key", "--tls-key", "CORRAL_TLS_KEY", "", "PEM private key of --tls-cert.", OptionType::kPath,
       OnReload::kRestart},
      {"allow_unauthenticated_lan", "--allow-unauthenticated-lan", "CORRAL_ALLOW_UNAUTHENTICATED_LAN", "false",
       "Serve a routable (non-loopback) listen address with no API key. Anyone who can reach it may use every "
       "model; without it such a bind is refused (exit 72).",
       OptionType::kBool, OnReload::kRestart},
      {"require_key_on_loopback", nullptr, "CORRAL_REQUIRE_KEY_ON_LOOPBACK", "false",
       "Ask for an API key on loopback listen addresses too (routable ones always ask once keys exist).",
       OptionType::kBool, OnReload::kRestart},
      {"max_connections", "--max-connections", "CORRAL_MAX_CONNECTIONS", "4096",
       "Client connections the proxy holds open at once (also kept below half the open-file limit); "
       "beyond it a new connection gets 503.",
       OptionType::kInt, OnReload::kRestart},
      {"max_connections_per_client", "--max-connections-per-client", "CORRAL_MAX_CONNECTIONS_PER_CLIENT", "2048",
       "Client connections open at once from one IP address (all local programs share 127.0.0.1); beyond it 503.",
       OptionType::kInt, OnReload::kRestart},
      {"max_buffered_body_bytes", "--max-buffered-body-bytes", "CORRAL_MAX_BUFFERED_BODY_BYTES", "268435456",
       "Request body bytes the proxy buffers at once across all connections; a request beyond it gets 503 "
       "(one request always fits).",
       OptionType::kInt, OnReload::kRestart},
      {"model_ttl_s", "--model-ttl", "CORRAL_MODEL_TTL", "0",
       "Seconds a model started on demand by a request may stay idle before it is unloaded; 0 = never. "
       "Models started with `corral start` stay until stopped. Ollama clients' keep_alive overrides it.",
       OptionType::kInt, OnReload::kLive},
      // Supervisor (issue 5).
      {"memory_budget", "--memory-budget", "CORRAL_MEMORY_BUDGET", "auto",
       "Memory the running models may use together, e.g. 12GiB; 'auto' = total RAM minus "
       "max(1 GiB, 10%). A start that does not fit is refused unless --force.",
       OptionType::kString, OnReload::kLive},
      {"health_timeout", nullptr, "CORRAL_HEALTH_TIMEOUT", "60",
       "Seconds a model may take to become ready, plus health_timeout_per_gib per GiB of model.", OptionType::kInt,
       OnReload::kLive},
      {"health_timeout_per_gib", nullptr, "CORRAL_HEALTH_TIMEOUT_PER_GIB", "30",
       "Extra readiness seconds per GiB of model file.", OptionType::kInt, OnReload::kLive},
      {"stop_timeout", nullptr, "CORRAL_STOP_TIMEOUT", "10",
       "Seconds between SIGTERM and SIGKILL when stopping a model.", OptionType::kInt, OnReload::kLive},
      {"liveness_timeout", nullptr, "CORRAL_LIVENESS_TIMEOUT", "15",
       "Seconds a ready model's /health may go unanswered before it is killed as unresponsive "
       "(and restarted if it has restart on); 0 = never.",
       OptionType::kInt, OnReload::kRestart},
      // KV state across unloads (issue 17).
      {"kv_keep", "--kv-keep", "CORRAL_KV_KEEP", "true",
       "Keep a model's KV cache across unloads: Corral starts llama-server with --slot-save-path (a "
       "directory under its state dir), saves the slots before it unloads the model and restores them when "
       "it starts again, so a conversation continues without re-reading its prompt. Per model: "
       "models.NAME.kv_keep. See docs/kv.md.",
       OptionType::kBool, OnReload::kLive},
      {"kv_keep_budget", "--kv-keep-budget", "CORRAL_KV_KEEP_BUDGET", "4GiB",
       "Disk space for the saved KV states of all models together, e.g. 4GiB; the least recently saved "
       "go first.",
       OptionType::kString, OnReload::kLive},
      // Speculative decoding (issue 17).
      {"spec", "--spec", "CORRAL_SPEC", "auto",
       "Speculative decoding: 'auto' = the model's own MTP heads when it has them, else the smallest catalog "
       "model with the same vocabulary and architecture family and at most a quarter of its parameters as "
       "the draft, else none; 'off' = none; or a draft model's name. Per model: models.NAME.spec. See "
       "docs/spec.md.",
       OptionType::kString, OnReload::kLive},
      // The web dashboard's Bench page (issue 16).
      {"bench_results_dir", "--bench-results-dir", "CORRAL_BENCH_RESULTS_DIR", "",
       "A folder of `corral bench` reports (e.g. a checkout's bench/results) the web dashboard lists beside "
       "the runs it started ($XDG_STATE_HOME/corral/bench). Read only.",
       OptionType::kPath, OnReload::kRestart},
      // The stock llama.cpp web UI under /llama/ (issue 16, docs/proxy.md).
      {"llama_ui", "--llama-ui", "CORRAL_LLAMA_UI", "auto",
       "The stock llama.cpp web UI, served under /llama/ on the proxy port: a folder holding a built "
       "tools/ui (`make llama-ui`); 'auto' = the pinned engine's build when it was made; 'off' = none. "
       "Read once at start.",
       OptionType::kString, OnReload::kRestart},
  };
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

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return InvalidArgument(key + " must be true or false, got '" + v + "'");
}

Result<int64_t> ParseInt(const OptionDef& def, const std::string& text, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument(std::string(def.key) + " must be an integer in [" + std::to_string(min) + ", " +
                           std::to_string(max) + "], got '" + text + "'");
  }
  return v;
}

// cors_origins: "*" or scheme://host[:port] entries (http or https, nothing after the
// authority), separated by commas or spaces. An Origin header never has a path, so an entry
// with one could never match: refused rather than silently useless.
Result<std::vector<std::string>> ParseOrigins(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&]() -> Status {
    if (cur.empty()) return Status::Ok();
    std::string o = cur;
    cur.clear();
    while (!o.empty() && o.back() == '/') o.pop_back();
    if (o != "*") {
      size_t scheme = o.find("://");
      std::string s = scheme == std::string::npos ? "" : o.substr(0, scheme);
      std::string authority = scheme == std::string::npos ? "" : o.substr(scheme + 3);
      bool ok =
          (s == "http" || s == "https") && !authority.empty() && authority.find_first_of("/?#@") == std::string::npos;
      for (char ch : o) ok = ok && static_cast<unsigned char>(ch) > 0x20 && ch != 0x7F;
      if (!ok) {
        return InvalidArgument("cors_origins entries must be '*' or scheme://host[:port] (http or https), got '" + o +
                               "'");
      }
    }
    out.push_back(o);
    return Status::Ok();
  };
  for (char ch : text) {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      CORRAL_RETURN_IF_ERROR(flush());
    } else {
      cur += ch;
    }
  }
  CORRAL_RETURN_IF_ERROR(flush());
  return out;
}

Status Assign(Config& c, const OptionDef& def, const std::vector<std::string>& values) {
  std::string key = def.key;
  std::string one = values.empty() ? std::string() : values.back();
  if (def.type == OptionType::kPath) one = ExpandHome(one);
  if (key == "model_paths") {
    c.model_paths.clear();
    for (const auto& v : values) c.model_paths.push_back(ExpandHome(v));
  } else if (key == "llama_server") {
    c.llama_server = one;
  } else if (key == "listen") {
    std::string_view rest = one;
    while (!rest.empty()) {  // each entry [http://|https://]HOST:PORT; the proxy parses them fully
      std::string_view entry = rest.substr(0, rest.find(','));
      rest = entry.size() == rest.size() ? std::string_view() : rest.substr(entry.size() + 1);
      if (entry.find(':') == std::string_view::npos) {
        return InvalidArgument("listen must be HOST:PORT or https://HOST:PORT (comma-separated), got '" + one + "'");
      }
    }
    c.listen = one;
  } else if (key == "log_level") {
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
    bool known = false;
    for (const char* l : kLevels) known = known || one == l;
    if (!known) return InvalidArgument("log_level must be trace|debug|info|warn|error, got '" + one + "'");
    c.log_level = one;
  } else if (key == "memory_budget") {
    c.memory_budget = one.empty() ? "auto" : one;
  } else if (key == "health_timeout" || key == "health_timeout_per_gib" || key == "stop_timeout") {
    int v = -1;
    try {
      size_t used = 0;
      v = std::stoi(one, &used);
      if (used != one.size()) v = -1;
    } catch (...) {
      v = -1;
    }
    if (v < 0 || v > 86400)
      return InvalidArgument(key + " must be a whole number of seconds 0..86400, got '" + one + "'");
    (key == "health_timeout" ? c.health_timeout_s
     : key == "stop_timeout" ? c.stop_timeout_s
                             : c.health_timeout_per_gib_s) = v;
  } else if (def.type == OptionType::kBool) {
    CORRAL_ASSIGN_OR_RETURN(bool b, ParseBool(key, one));
    bool* field = key == "scan_huggingface"            ? &c.scan_huggingface
                  : key == "scan_ollama"               ? &c.scan_ollama
                  : key == "scan_lmstudio"             ? &c.scan_lmstudio
                  : key == "scan_llamacpp"             ? &c.scan_llamacpp
                  : key == "proxy_preconnect"          ? &c.proxy_preconnect
                  : key == "proxy_process"             ? &c.proxy_process
                  : key == "allow_unauthenticated_lan" ? &c.allow_unauthenticated_lan
                  : key == "require_key_on_loopback"   ? &c.require_key_on_loopback
                  : key == "kv_keep"                   ? &c.kv_keep
                                                       : nullptr;
    if (field == nullptr) return Internal(std::string("bool option without a Config field: ") + def.key);
    *field = b;
  } else if (key == "max_body_bytes") {
    CORRAL_ASSIGN_OR_RETURN(c.max_body_bytes, ParseInt(def, one, 1, int64_t{1} << 40));
  } else if (key == "proxy_threads") {
    CORRAL_ASSIGN_OR_RETURN(c.proxy_threads, ParseInt(def, one, 0, 256));
  } else if (key == "proxy_client_timeout_s") {
    CORRAL_ASSIGN_OR_RETURN(c.proxy_client_timeout_s, ParseInt(def, one, 1, 86400));
  } else if (key == "proxy_upstream_timeout_s") {
    CORRAL_ASSIGN_OR_RETURN(c.proxy_upstream_timeout_s, ParseInt(def, one, 1, 86400));
  } else if (key == "liveness_timeout") {
    CORRAL_ASSIGN_OR_RETURN(c.liveness_timeout_s, ParseInt(def, one, 0, 86400));
  } else if (key == "model_ttl_s") {
    CORRAL_ASSIGN_OR_RETURN(c.model_ttl_s, ParseInt(def, one, 0, int64_t{365} * 86400));
  } else if (key == "max_json_depth") {
    CORRAL_ASSIGN_OR_RETURN(c.max_json_depth, ParseInt(def, one, 1, 1024));
  } else if (key == "max_connections") {
    CORRAL_ASSIGN_OR_RETURN(c.max_connections, ParseInt(def, one, 1, 1'000'000));
  } else if (key == "max_connections_per_client") {
    CORRAL_ASSIGN_OR_RETURN(c.max_connections_per_client, ParseInt(def, one, 1, 1'000'000));
  } else if (key == "max_buffered_body_bytes") {
    CORRAL_ASSIGN_OR_RETURN(c.max_buffered_body_bytes, ParseInt(def, one, 1, int64_t{1} << 40));
  } else if (key == "cors_origins") {
    CORRAL_ASSIGN_OR_RETURN(c.cors_origins, ParseOrigins(one));
  } else if (key == "tls_cert") {
    c.tls_cert = one;
  } else if (key == "tls_key") {
    c.tls_key = one;
  } else if (key == "kv_keep_budget") {
    c.kv_keep_budget = one;
  } else if (key == "spec") {
    CORRAL_RETURN_IF_ERROR(CheckSpecSetting(one).WithContext("spec"));
    c.spec = one;
  } else if (key == "bench_results_dir") {
    c.bench_results_dir = one;
  } else if (key == "llama_ui") {
    c.llama_ui = one.empty() ? "auto" : one == "auto" || one == "off" ? one : ExpandHome(one);
  } else {
    return Internal(std::string("option without a Config field: ") + def.key);
  }
  return Status::Ok();
}

// The current value of an option as text (the inverse of Assign).
std::vector<std::string> Get(const Config& c, const OptionDef& def) {
  std::string key = def.key;
  if (key == "model_paths") return c.model_paths;
  if (key == "llama_server") return {c.llama_server};
  if (key == "listen") return {c.listen};
  if (key == "log_level") return {c.log_level};
  if (key == "memory_budget") return {c.memory_budget};
  if (key == "health_timeout") return {std::to_string(c.health_timeout_s)};
  if (key == "health_timeout_per_gib") return {std::to_string(c.health_timeout_per_gib_s)};
  if (key == "stop_timeout") return {std::to_string(c.stop_timeout_s)};
  if (key == "liveness_timeout") return {std::to_string(c.liveness_timeout_s)};
  if (key == "scan_huggingface") return {c.scan_huggingface ? "true" : "false"};
  if (key == "scan_ollama") return {c.scan_ollama ? "true" : "false"};
  if (key == "scan_lmstudio") return {c.scan_lmstudio ? "true" : "false"};
  if (key == "scan_llamacpp") return {c.scan_llamacpp ? "true" : "false"};
  if (key == "max_body_bytes") return {std::to_string(c.max_body_bytes)};
  if (key == "proxy_threads") return {std::to_string(c.proxy_threads)};
  if (key == "proxy_preconnect") return {c.proxy_preconnect ? "true" : "false"};
  if (key == "proxy_process") return {c.proxy_process ? "true" : "false"};
  if (key == "proxy_client_timeout_s") return {std::to_string(c.proxy_client_timeout_s)};
  if (key == "proxy_upstream_timeout_s") return {std::to_string(c.proxy_upstream_timeout_s)};
  if (key == "model_ttl_s") return {std::to_string(c.model_ttl_s)};
  if (key == "max_json_depth") return {std::to_string(c.max_json_depth)};
  if (key == "max_connections") return {std::to_string(c.max_connections)};
  if (key == "max_connections_per_client") return {std::to_string(c.max_connections_per_client)};
  if (key == "max_buffered_body_bytes") return {std::to_string(c.max_buffered_body_bytes)};
  if (key == "tls_cert") return {c.tls_cert};
  if (key == "tls_key") return {c.tls_key};
  if (key == "allow_unauthenticated_lan") return {c.allow_unauthenticated_lan ? "true" : "false"};
  if (key == "require_key_on_loopback") return {c.require_key_on_loopback ? "true" : "false"};
  if (key == "kv_keep") return {c.kv_keep ? "true" : "false"};
  if (key == "kv_keep_budget") return {c.kv_keep_budget};
  if (key == "spec") return {c.spec};
  if (key == "bench_results_dir") return {c.bench_results_dir};
  if (key == "llama_ui") return {c.llama_ui};
  if (key == "cors_origins") {
    std::string joined;
    for (const auto& o : c.cors_origins) joined += (joined.empty() ? "" : ",") + o;
    return {joined};
  }
  return {};
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
  if (std::string_view(def.key) == "cors_origins" && node.IsSequence()) {  // a YAML list reads as one
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar()) return InvalidArgument("cors_origins must be a list of origins");
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

// models: REF: {ttl, ctx, args, pinned, restart}. Strict: unknown keys and wrong types are errors
// naming the model and the key.
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
    ModelSettings m;
    m.ref = kv.first.Scalar();
    m.line = kv.first.Mark().line >= 0 ? kv.first.Mark().line + 1 : 0;
    for (const auto& other : out) {
      if (other.ref == m.ref) return ModelError(file, kv.first, "models." + m.ref, "listed twice");
    }
    const std::string where = "models." + m.ref;
    const YAML::Node& v = kv.second;
    if (v.IsNull()) {
      out.push_back(std::move(m));
      continue;
    }
    if (!v.IsMap()) return ModelError(file, v, where, "must be a mapping with ttl, ctx, args, pinned or restart");
    for (const auto& field : v) {
      if (!field.first.IsScalar()) return ModelError(file, field.first, where, "keys must be names");
      const std::string key = field.first.Scalar();
      const YAML::Node& value = field.second;
      const std::string at = where + "." + key;
      if (key == "ttl") {
        auto t = ScalarInt(value, 0, int64_t{365} * 86400);
        if (!t.ok())
          return ModelError(file, value, at, "seconds idle before unload (0 = never) " + t.status().message());
        m.ttl_s = *t;
      } else if (key == "ctx") {
        auto c = ScalarInt(value, 0, kMaxModelCtx);
        if (!c.ok()) return ModelError(file, value, at, "context size " + c.status().message());
        m.ctx = static_cast<uint32_t>(*c);
      } else if (key == "args") {
        if (!value.IsSequence()) {
          return ModelError(file, value, at, "must be a list of strings, e.g. [\"--threads\", \"2\"]");
        }
        if (value.size() > kMaxModelArgs) {
          return ModelError(file, value, at, "more than " + std::to_string(kMaxModelArgs) + " arguments");
        }
        for (const auto& a : value) {
          if (!a.IsScalar()) return ModelError(file, a, at, "must be a list of strings");
          if (a.Scalar().size() > kMaxModelArgBytes) {
            return ModelError(file, a, at,
                              "an argument is longer than " + std::to_string(kMaxModelArgBytes) + " bytes");
          }
          m.args.push_back(a.Scalar());
        }
      } else if (key == "kv_keep") {
        if (!value.IsScalar()) return ModelError(file, value, at, "must be true or false");
        auto b = ParseBool(at, value.Scalar());
        if (!b.ok()) return ModelError(file, value, at, "must be true or false, got '" + value.Scalar() + "'");
        m.kv_keep = *b;
      } else if (key == "spec") {
        if (!value.IsScalar()) return ModelError(file, value, at, "must be auto, off or a draft model's name");
        if (Status st = CheckSpecSetting(value.Scalar()); !st.ok()) return ModelError(file, value, at, st.message());
        m.spec = value.Scalar();
      } else if (key == "pinned" || key == "restart") {
        if (!value.IsScalar()) return ModelError(file, value, at, "must be true or false");
        auto b = ParseBool(at, value.Scalar());
        if (!b.ok()) return ModelError(file, value, at, "must be true or false, got '" + value.Scalar() + "'");
        (key == "pinned" ? m.pinned : m.restart) = *b;
      } else {
        return ModelError(file, field.first, where,
                          "unknown key '" + key + "' (known: ttl, ctx, args, pinned, restart, kv_keep, spec)");
      }
    }
    if (m.pinned && m.ttl_s && *m.ttl_s > 0) {
      return ModelError(file, kv.first, where,
                        "pinned: true never unloads, so ttl: " + std::to_string(*m.ttl_s) + " cannot apply; drop one");
    }
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
    Status st = Assign(c, def, *values);
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
  Config c;
  c.config_file = config_file;
  for (const auto& def : Registry()) {
    CORRAL_RETURN_IF_ERROR(Assign(c, def,
                                  def.type == OptionType::kPathList ? SplitList(def.default_value)
                                                                    : std::vector<std::string>{def.default_value}));
    c.source[def.key] = "default";
  }

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
    Status st = Assign(c, def, values);
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
    Status st = Assign(c, def, it->second);
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
    CORRAL_RETURN_IF_ERROR(Assign(c, def, Get(running, def)));
    c.source[def.key] = "flag";
  }
  return c;
}

void KeepRestartOptions(Config& next, const Config& running) {
  for (const auto& def : Registry()) {
    if (def.reload != OnReload::kRestart) continue;
    if (!Assign(next, def, Get(running, def)).ok()) continue;  // running values are valid
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
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ":") + x;
    return s;
  };
  for (const auto& def : Registry()) {
    std::string a = join(Get(before, def)), b = join(Get(after, def));
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
    std::vector<std::string> values = Get(c, def);
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
