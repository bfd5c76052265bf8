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
       OptionType::kPathList},
      {"llama_server", "--llama-server", "CORRAL_LLAMA_SERVER", "",
       "The llama-server binary to launch. Empty: llama-server on PATH, else the pinned build.", OptionType::kPath},
      {"listen", "--listen", "CORRAL_LISTEN", "127.0.0.1:11450",
       "Proxy listen address HOST:PORT. Loopback unless told otherwise.", OptionType::kString},
      {"log_level", "--log-level", "CORRAL_LOG_LEVEL", "info", "Log level: trace, debug, info, warn, error.",
       OptionType::kString},
      // Catalog sources (issue 4): each cache of another tool can be switched off.
      {"scan_huggingface", nullptr, "CORRAL_SCAN_HUGGINGFACE", "true",
       "List models in the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub).",
       OptionType::kBool},
      {"scan_ollama", nullptr, "CORRAL_SCAN_OLLAMA", "true",
       "List Ollama's models (OLLAMA_MODELS or ~/.ollama/models).", OptionType::kBool},
      {"scan_lmstudio", nullptr, "CORRAL_SCAN_LMSTUDIO", "true",
       "List LM Studio's models (~/.lmstudio/models, ~/.cache/lm-studio/models).", OptionType::kBool},
      {"scan_llamacpp", nullptr, "CORRAL_SCAN_LLAMACPP", "true",
       "List llama.cpp's download cache (LLAMA_CACHE or ~/.cache/llama.cpp).", OptionType::kBool},
      // Proxy data plane.
      {"max_body_bytes", "--max-body-bytes", "CORRAL_MAX_BODY_BYTES", "33554432",
       "Largest request body the proxy accepts (bytes); larger ones get 413.", OptionType::kInt},
      {"proxy_threads", "--proxy-threads", "CORRAL_PROXY_THREADS", "0",
       "Proxy event-loop threads; 0 = min(CPU threads, 4).", OptionType::kInt},
      {"proxy_client_timeout_s", "--proxy-client-timeout", "CORRAL_PROXY_CLIENT_TIMEOUT", "60",
       "Seconds a client may idle on a keep-alive connection, or stall sending or reading.", OptionType::kInt},
      {"proxy_upstream_timeout_s", "--proxy-upstream-timeout", "CORRAL_PROXY_UPSTREAM_TIMEOUT", "600",
       "Seconds without a byte from llama-server before the proxy gives up (504 or cut).", OptionType::kInt},
      {"model_ttl_s", "--model-ttl", "CORRAL_MODEL_TTL", "0",
       "Seconds a model started on demand by a request may stay idle before it is unloaded; 0 = never. "
       "Models started with `corral start` stay until stopped. Ollama clients' keep_alive overrides it.",
       OptionType::kInt},
      // Supervisor (issue 5).
      {"memory_budget", "--memory-budget", "CORRAL_MEMORY_BUDGET", "auto",
       "Memory the running models may use together, e.g. 12GiB; 'auto' = total RAM minus "
       "max(1 GiB, 10%). A start that does not fit is refused unless --force.",
       OptionType::kString},
      {"health_timeout", nullptr, "CORRAL_HEALTH_TIMEOUT", "60",
       "Seconds a model may take to become ready, plus health_timeout_per_gib per GiB of model.", OptionType::kInt},
      {"health_timeout_per_gib", nullptr, "CORRAL_HEALTH_TIMEOUT_PER_GIB", "30",
       "Extra readiness seconds per GiB of model file.", OptionType::kInt},
      {"stop_timeout", nullptr, "CORRAL_STOP_TIMEOUT", "10",
       "Seconds between SIGTERM and SIGKILL when stopping a model.", OptionType::kInt},
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
    if (!one.empty() && one.find(':') == std::string::npos) {
      return InvalidArgument("listen must be HOST:PORT, got '" + one + "'");
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
    bool* field = key == "scan_huggingface" ? &c.scan_huggingface
                  : key == "scan_ollama"    ? &c.scan_ollama
                  : key == "scan_lmstudio"  ? &c.scan_lmstudio
                  : key == "scan_llamacpp"  ? &c.scan_llamacpp
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
  } else if (key == "model_ttl_s") {
    CORRAL_ASSIGN_OR_RETURN(c.model_ttl_s, ParseInt(def, one, 0, int64_t{365} * 86400));
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
  if (key == "scan_huggingface") return {c.scan_huggingface ? "true" : "false"};
  if (key == "scan_ollama") return {c.scan_ollama ? "true" : "false"};
  if (key == "scan_lmstudio") return {c.scan_lmstudio ? "true" : "false"};
  if (key == "scan_llamacpp") return {c.scan_llamacpp ? "true" : "false"};
  if (key == "max_body_bytes") return {std::to_string(c.max_body_bytes)};
  if (key == "proxy_threads") return {std::to_string(c.proxy_threads)};
  if (key == "proxy_client_timeout_s") return {std::to_string(c.proxy_client_timeout_s)};
  if (key == "proxy_upstream_timeout_s") return {std::to_string(c.proxy_upstream_timeout_s)};
  if (key == "model_ttl_s") return {std::to_string(c.model_ttl_s)};
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
  if (!node.IsScalar()) return InvalidArgument(std::string(def.key) + " must be a single value");
  out.push_back(node.as<std::string>());
  return out;
}

}  // namespace

const std::vector<OptionDef>& Options() {
  return Registry();
}

Status ApplyConfigText(Config& c, const std::string& text, const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsNull() && !root.IsMap()) return InvalidArgument(file_name + ": the top level must be a mapping");
  if (root.IsNull()) return Status::Ok();
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
    auto* opt = app.add_option(def.flag, out.by_key[def.key], def.help);
    if (def.type != OptionType::kPathList) opt->expected(1);
    if (def.env != nullptr) opt->description(std::string(def.help) + " (env " + def.env + ")");
    opt->type_name(def.type == OptionType::kPathList ? "PATH..." : "VALUE");
  }
}

Result<Config> Load(const FlagValues& flags) {
  Config c;
  c.config_file = flags.config_file;
  if (c.config_file.empty()) {
    const char* env = std::getenv("CORRAL_CONFIG");
    c.config_file = (env != nullptr && *env != '\0') ? std::string(env) : DefaultConfigFile();
  }
  c.config_file = ExpandHome(c.config_file);

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

  for (const auto& def : Registry()) {
    auto it = flags.by_key.find(def.key);
    if (it == flags.by_key.end() || it->second.empty()) continue;
    Status st = Assign(c, def, it->second);
    if (!st.ok()) return st.WithContext(std::string("flag ") + def.flag);
    c.source[def.key] = "flag";
  }
  return c;
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
  return out.str();
}

std::string OptionsMarkdown() {
  std::ostringstream out;
  out << "| config key | flag | environment | default | meaning |\n|---|---|---|---|---|\n";
  for (const auto& d : Registry()) {
    out << "| `" << d.key << "` | " << (d.flag ? std::string("`") + d.flag + "`" : "") << " | "
        << (d.env ? std::string("`") + d.env + "`" : "") << " | `" << d.default_value << "` | " << d.help << " |\n";
  }
  return out.str();
}

}  // namespace corral::config
