// `corral connect CLIENT [--write] [--model M] [--key K]`: the exact settings that point a
// client at Corral's proxy. Printed by default; with --write merged into the client's own
// config file (the old file kept as FILE.corral-backup-UNIXTIME, the new one written
// atomically). Env-only clients get an env file to `source` under $XDG_CONFIG_HOME/corral/env.
//
// Keys: when the proxy needs an API key (issue 13), `--key` (or CORRAL_API_KEY) is written
// where the client reads its key; without one a placeholder "corral" goes there (clients
// refuse an empty key; the loopback proxy without keys ignores it). KeyForClients() is the
// hook for the key store.
#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "catalog/catalog.h"
#include "cli/commands.h"
#include "common/fs.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxClientConfigBytes = 4u << 20;

struct ConnectArgs {
  std::string client;
  bool write = false;
  std::string model;
  std::string key;
};

struct Target {
  std::string base;   // http://127.0.0.1:11450
  std::string model;  // a name the proxy resolves
  std::string key;    // what the client sends as its key
  bool real_key = false;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string Home() {
  return Env("HOME");
}

std::string XdgConfig() {
  return !Env("XDG_CONFIG_HOME").empty() ? Env("XDG_CONFIG_HOME") : Home() + "/.config";
}

// The key a client should send: --key, else CORRAL_API_KEY, else a placeholder.
// Hook for issue 13's key store (a per-client key could be minted here).
std::pair<std::string, bool> KeyForClients(const std::string& flag) {
  if (!flag.empty()) return {flag, true};
  if (!Env("CORRAL_API_KEY").empty()) return {Env("CORRAL_API_KEY"), true};
  return {"corral", false};
}

std::string BaseUrl(const config::Config& c) {
  std::string listen = c.listen.empty() ? std::string(defaults::kListen) : c.listen;
  if (listen.rfind("0.0.0.0:", 0) == 0) listen = "127.0.0.1:" + listen.substr(8);
  if (listen.rfind("[::]:", 0) == 0) listen = "[::1]:" + listen.substr(5);
  return "http://" + listen;
}

// A TOML basic string (quotes, backslashes and control bytes escaped).
std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// A POSIX shell single-quoted word.
std::string ShellWord(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string EnvLines(const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  for (const auto& [k, v] : vars) out += "export " + k + "=" + ShellWord(v) + "\n";
  return out;
}

// What one client gets: the file (empty for env-only clients), the text to print, and how
// to merge into an existing file.
struct Snippet {
  std::string file;
  std::string text;                                              // printed, and written when there is no file yet
  std::function<Result<std::string>(const std::string&)> merge;  // existing contents -> new contents
  std::string note;                                              // how to use it
};

Result<json> ParseJsonFile(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(file + " is not a JSON object; not changed");
  return j;
}

std::vector<std::pair<std::string, std::string>> OpenAIEnv(const Target& t) {
  return {{"OPENAI_BASE_URL", t.base + "/v1"}, {"OPENAI_API_BASE", t.base + "/v1"}, {"OPENAI_API_KEY", t.key}};
}

Result<Snippet> SnippetFor(const std::string& client, const Target& t) {
  Snippet s;
  if (client == "claude-code" || client == "claude") {
    s.file = Home() + "/.claude/settings.json";
    json env = {{"ANTHROPIC_BASE_URL", t.base},
                {"ANTHROPIC_AUTH_TOKEN", t.key},
                {"ANTHROPIC_MODEL", t.model},
                {"ANTHROPIC_SMALL_FAST_MODEL", t.model}};
    s.text = json{{"env", env}}.dump(2) + "\n";
    s.merge = [env, file = s.file](const std::string& old) -> Result<std::string> {
      CORRAL_ASSIGN_OR_RETURN(json j, ParseJsonFile(old, file));
      if (!j["env"].is_object()) j["env"] = json::object();
      for (const auto& [k, v] : env.items()) j["env"][k] = v;
      return j.dump(2) + "\n";
    };
    s.note = "Claude Code reads `env` from ~/.claude/settings.json (or export the same variables).";
  } else if (client == "codex") {
    const std::string home = !Env("CODEX_HOME").empty() ? Env("CODEX_HOME") : Home() + "/.codex";
    s.file = home + "/config.toml";
    s.text = "[model_providers.corral]\nname = \"Corral\"\nbase_url = " + TomlString(t.base + "/v1") +
             "\nwire_api = \"responses\"\n" + (t.real_key ? "env_key = \"CORRAL_API_KEY\"\n" : "") +
             "\n[profiles.corral]\nmodel_provider = \"corral\"\nmodel = " + TomlString(t.model) + "\n";
    // Tables only, appended (or replaced when a previous `corral connect` wrote them), so the
    // user's top-level keys stay as they are.
    s.merge = [text = s.text](const std::string& old) -> Result<std::string> {
      std::string out;
      std::istringstream in(old);
      std::string line;
      bool skipping = false;
      while (std::getline(in, line)) {
        if (!line.empty() && line[0] == '[') {
          skipping = line.rfind("[model_providers.corral]", 0) == 0 || line.rfind("[profiles.corral]", 0) == 0;
        }
        if (!skipping) out += line + "\n";
      }
      while (out.size() >= 2 && out.substr(out.size() - 2) == "\n\n") out.pop_back();
      if (!out.empty()) out += "\n";
      return out + text;
    };
    s.note = "Then: codex --profile corral" + std::string(t.real_key ? " (with CORRAL_API_KEY exported)" : "");
  } else if (client == "opencode") {
    s.file = XdgConfig() + "/opencode/opencode.json";
    json provider = {{"npm", "@ai-sdk/openai-compatible"},
                     {"name", "Corral"},
                     {"options", {{"baseURL", t.base + "/v1"}, {"apiKey", t.key}}},
                     {"models", {{t.model, {{"name", t.model}}}}}};
    s.text = json{{"$schema", "https://opencode.ai/config.json"}, {"provider", {{"corral", provider}}}}.dump(2) + "\n";
    s.merge = [provider, file = s.file](const std::string& old) -> Result<std::string> {
      CORRAL_ASSIGN_OR_RETURN(json j, ParseJsonFile(old, file));
      if (!j["provider"].is_object()) j["provider"] = json::object();
      j["provider"]["corral"] = provider;
      return j.dump(2) + "\n";
    };
    s.note = "Then pick corral/" + t.model + " in opencode (/models).";
  } else if (client == "continue") {
    s.file = Home() + "/.continue/config.yaml";
    YAML::Node model;
    model["name"] = "Corral " + t.model;
    model["provider"] = "openai";
    model["model"] = t.model;
    model["apiBase"] = t.base + "/v1";
    model["apiKey"] = t.key;
    YAML::Node root;
    root["name"] = "Local config";
    root["version"] = "1.0.0";
    root["schema"] = "v1";
    root["models"].push_back(model);
    YAML::Emitter e;
    e << root;
    s.text = std::string(e.c_str()) + "\n";
    s.merge = [model, base = t.base, file = s.file](const std::string& old) -> Result<std::string> {
      try {
        YAML::Node cur = YAML::Load(old);
        if (!cur.IsMap() && !cur.IsNull()) return InvalidArgument(file + " is not a YAML mapping; not changed");
        YAML::Node models(YAML::NodeType::Sequence);
        if (cur["models"] && cur["models"].IsSequence()) {
          for (const auto& m : cur["models"]) {
            if (!(m.IsMap() && m["apiBase"] && m["apiBase"].as<std::string>("") == base + "/v1")) models.push_back(m);
          }
        }
        models.push_back(model);
        cur["models"] = models;
        YAML::Emitter out;
        out << cur;
        return std::string(out.c_str()) + "\n";
      } catch (const YAML::Exception& ex) {
        return InvalidArgument(file + ": " + ex.msg + "; not changed");
      }
    };
    s.note = "Continue picks the model up from ~/.continue/config.yaml.";
  } else if (client == "aider") {
    s.file = Home() + "/.aider.conf.yml";
    YAML::Node root;
    root["openai-api-base"] = t.base + "/v1";
    root["openai-api-key"] = t.key;
    root["model"] = "openai/" + t.model;
    YAML::Emitter e;
    e << root;
    s.text = std::string(e.c_str()) + "\n";
    s.merge = [root, file = s.file](const std::string& old) -> Result<std::string> {
      try {
        YAML::Node cur = YAML::Load(old);
        if (!cur.IsMap() && !cur.IsNull()) return InvalidArgument(file + " is not a YAML mapping; not changed");
        for (const auto& kv : root) cur[kv.first.as<std::string>()] = kv.second;
        YAML::Emitter out;
        out << cur;
        return std::string(out.c_str()) + "\n";
      } catch (const YAML::Exception& ex) {
        return InvalidArgument(file + ": " + ex.msg + "; not changed");
      }
    };
    s.note = "Aider reads ~/.aider.conf.yml (or: aider --openai-api-base ... --model openai/" + t.model + ").";
  } else if (client == "open-webui" || client == "openwebui") {
    s.file = XdgConfig() + "/corral/env/open-webui.env";
    s.text = EnvLines({{"OLLAMA_BASE_URL", t.base},
                       {"OPENAI_API_BASE_URL", t.base + "/v1"},
                       {"OPENAI_API_KEY", t.key},
                       {"DEFAULT_MODELS", t.model}});
    s.note = "Open WebUI reads these from its environment (docker run --env-file, or source the file).";
  } else if (client == "openai" || client == "openai-sdk" || client == "env") {
    s.file = XdgConfig() + "/corral/env/openai.env";
    auto vars = OpenAIEnv(t);
    vars.emplace_back("OPENAI_MODEL", t.model);
    s.text = EnvLines(vars);
    s.note = "Any OpenAI SDK (Python, JS, LangChain, Vercel AI SDK) reads OPENAI_BASE_URL and OPENAI_API_KEY.";
  } else {
    return InvalidArgument("unknown client '" + client +
                           "'; one of: claude-code, codex, opencode, continue, aider, open-webui, openai");
  }
  return s;
}

int RunConnect(const GlobalOptions& global, const ConnectArgs& a) {
  if (Status s = catalog::CheckReference(a.client); !s.ok()) return Fail(ExitCode::kUsage, "connect: " + s.message());
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  Target t;
  t.base = BaseUrl(*config);
  std::tie(t.key, t.real_key) = KeyForClients(a.key);
  if (!a.model.empty()) {
    if (Status s = catalog::CheckReference(a.model); !s.ok()) return Fail(ExitCode::kUsage, "connect: " + s.message());
    t.model = a.model;
  } else {
    auto cat = catalog::Catalog::Load(*config);
    if (cat.ok() && !cat->models().empty()) t.model = cat->models().front().name;
    if (t.model.empty()) {
      return Fail(ExitCode::kModelReference, "connect: no models found (see corral list); name one with --model");
    }
  }
  auto snippet = SnippetFor(a.client, t);
  if (!snippet.ok()) return Fail(ExitCode::kUsage, "connect: " + snippet.status().message());
  const Snippet& s = *snippet;
  if (!a.write) {
    if (global.json) {
      std::cout << json{{"client", a.client}, {"file", s.file}, {"text", s.text}, {"note", s.note}}.dump(2) << "\n";
    } else {
      std::cout << "# " << s.file << "\n" << s.text << "# " << s.note << "\n";
    }
    return 0;
  }
  std::string contents = s.text;
  std::error_code ec;
  if (std::filesystem::exists(s.file, ec)) {
    auto old = ReadFileBounded(s.file, kMaxClientConfigBytes);
    if (!old.ok()) return Fail(ExitCode::kOther, "connect: " + old.status().message());
    if (s.merge) {
      auto merged = s.merge(*old);
      if (!merged.ok()) return Fail(ExitCode::kOther, "connect: " + merged.status().message());
      contents = *merged;
    }
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::string backup = s.file + ".corral-backup-" + std::to_string(now);
    for (int n = 2; std::filesystem::exists(backup, ec) && n < 1000; ++n) {  // two writes in one second
      backup = s.file + ".corral-backup-" + std::to_string(now) + "-" + std::to_string(n);
    }
    if (Status st = WriteFileAtomic(backup, *old, 0600); !st.ok()) {
      return Fail(ExitCode::kOther, "connect: backup not written: " + st.message());
    }
    std::cout << "backup: " << backup << "\n";
  }
  std::filesystem::create_directories(std::filesystem::path(s.file).parent_path(), ec);
  // 0600: the file may hold a key.
  if (Status st = WriteFileAtomic(s.file, contents, 0600); !st.ok()) {
    return Fail(ExitCode::kOther, "connect: " + st.message());
  }
  std::cout << "wrote " << s.file << "\n" << s.note << "\n";
  return 0;
}

void RegisterConnect(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto args = std::make_shared<ConnectArgs>();
  auto* cmd =
      app.add_subcommand("connect",
                         "Print (or --write) the settings that point a client at Corral: claude-code, codex, opencode, "
                         "continue, aider, open-webui, openai");
  cmd->add_option("client", args->client, "The client")->required();
  cmd->add_flag("--write", args->write, "Merge the settings into the client's config file (backup kept)");
  cmd->add_option("--model", args->model, "The model name to configure (default: the first in corral list)");
  cmd->add_option("--key", args->key, "The API key the client should send (default: $CORRAL_API_KEY)");
  cmd->add_flag("--json", global.json, "Print JSON");
  cmd->callback([&global, &run, args] { run = [&global, args] { return RunConnect(global, *args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterConnect);

}  // namespace
}  // namespace corral::cli
