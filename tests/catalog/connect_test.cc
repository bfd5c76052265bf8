// `corral connect CLIENT [--write]` through the real binary (issue 14): every client's
// snippet is written into a temporary HOME and parsed back with that format's parser (JSON:
// nlohmann, YAML: yaml-cpp, TOML: Python's tomllib, env files: a POSIX shell); user content
// already there survives, a second write replaces rather than duplicates, a backup is kept.
// Plus the CLI's name rules: `corral show FILE_STEM`.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "catalog/catalog_fixture.h"

namespace corral::catalog {
namespace {

using corral::testing::Copy;
using corral::testing::RunCorral;
using corral::testing::SyntheticModels;
using corral::testing::TempDir;
using corral::testing::WriteText;

struct ConnectTree {
  TempDir root;
  std::map<std::string, std::string> env;
  ConnectTree() {
    Copy(SyntheticModels::Get().alpha, root.File("models/Qwen3-8B-Q4_K_M.gguf"));
    env = {{"HOME", root.File("home")},
           {"XDG_CONFIG_HOME", root.File("config")},
           {"XDG_DATA_HOME", root.File("data")},
           {"XDG_CACHE_HOME", root.File("cache")},
           {"CORRAL_CACHE_DIR", root.File("cache/corral")},
           {"CORRAL_MODEL_PATHS", root.File("models")},
           {"HF_HUB_CACHE", root.File("none")},
           {"OLLAMA_MODELS", root.File("none")},
           {"LLAMA_CACHE", root.File("none")},
           {"CODEX_HOME", root.File("home/.codex")},
           {"CORRAL_API_KEY", ""}};
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(root.File(rel), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t Backups(const std::string& rel) {
    size_t n = 0;
    const std::filesystem::path p = root.File(rel);
    for (const auto& e : std::filesystem::directory_iterator(p.parent_path())) {
      n += e.path().filename().string().rfind(p.filename().string() + ".corral-backup-", 0) == 0 ? 1 : 0;
    }
    return n;
  }
};

// Runs a shell command; its stdout.
std::string Shell(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = ::pclose(f);
  return out;
}

TEST(Connect, EveryClientWritesWhatItsParserReads) {
  ConnectTree t;
  const std::string base = "http://127.0.0.1:11450";
  // Claude Code: settings.json "env", the user's other settings kept.
  WriteText(t.root.File("home/.claude/settings.json"), R"({"theme":"dark","env":{"FOO":"1"}})");
  auto r = RunCorral({"connect", "claude-code", "--write", "--key", "sk-test"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto claude = nlohmann::json::parse(t.Read("home/.claude/settings.json"));
  EXPECT_EQ(claude["theme"], "dark");
  EXPECT_EQ(claude["env"]["FOO"], "1");
  EXPECT_EQ(claude["env"]["ANTHROPIC_BASE_URL"], base);
  EXPECT_EQ(claude["env"]["ANTHROPIC_AUTH_TOKEN"], "sk-test");
  EXPECT_EQ(claude["env"]["ANTHROPIC_MODEL"], "alpha-4m-f16");
  EXPECT_EQ(t.Backups("home/.claude/settings.json"), 1u);

  // opencode: a provider with the model.
  r = RunCorral({"connect", "opencode", "--write", "--model", "Qwen3-8B-Q4_K_M"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto oc = nlohmann::json::parse(t.Read("config/opencode/opencode.json"));
  EXPECT_EQ(oc["provider"]["corral"]["options"]["baseURL"], base + "/v1");
  EXPECT_TRUE(oc["provider"]["corral"]["models"].contains("Qwen3-8B-Q4_K_M"));
  EXPECT_EQ(oc["provider"]["corral"]["options"]["apiKey"], "corral");  // no key: the placeholder

  // Continue: config.yaml, written twice: one Corral model, the user's own kept.
  WriteText(
      t.root.File("home/.continue/config.yaml"),
      "name: Mine\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: GPT\n    provider: openai\n    model: gpt-4o\n");
  for (int k = 0; k < 2; ++k) {
    r = RunCorral({"connect", "continue", "--write"}, t.env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  YAML::Node cont = YAML::Load(t.Read("home/.continue/config.yaml"));
  ASSERT_EQ(cont["models"].size(), 2u) << t.Read("home/.continue/config.yaml");
  EXPECT_EQ(cont["name"].as<std::string>(), "Mine");
  EXPECT_EQ(cont["models"][1]["apiBase"].as<std::string>(), base + "/v1");
  EXPECT_EQ(cont["models"][1]["model"].as<std::string>(), "alpha-4m-f16");
  EXPECT_EQ(t.Backups("home/.continue/config.yaml"), 2u);

  // Aider: .aider.conf.yml keys.
  r = RunCorral({"connect", "aider", "--write"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  YAML::Node aider = YAML::Load(t.Read("home/.aider.conf.yml"));
  EXPECT_EQ(aider["openai-api-base"].as<std::string>(), base + "/v1");
  EXPECT_EQ(aider["model"].as<std::string>(), "openai/alpha-4m-f16");

  // Codex: provider + profile tables appended to the user's config, replaced on a second
  // write (a duplicate table would not parse).
  WriteText(t.root.File("home/.codex/config.toml"), "model = \"o3\"\n\n[mcp_servers.x]\ncommand = \"y\"\n");
  for (int k = 0; k < 2; ++k) {
    r = RunCorral({"connect", "codex", "--write", "--key", "k\"ey"}, t.env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  int status = -1;
  const std::string toml = t.root.File("home/.codex/config.toml");
  std::string parsed =
      Shell("python3 -c 'import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1],\"rb\"))))' " + toml +
                " 2>&1",
            &status);
  if (status != 0 && parsed.find("No module named") != std::string::npos) GTEST_SKIP() << "no tomllib: " << parsed;
  ASSERT_EQ(status, 0) << parsed << "\n" << t.Read("home/.codex/config.toml");
  auto codex = nlohmann::json::parse(parsed);
  EXPECT_EQ(codex["model"], "o3");
  EXPECT_EQ(codex["mcp_servers"]["x"]["command"], "y");
  EXPECT_EQ(codex["model_providers"]["corral"]["base_url"], base + "/v1");
  EXPECT_EQ(codex["model_providers"]["corral"]["env_key"], "CORRAL_API_KEY");
  EXPECT_EQ(codex["profiles"]["corral"]["model"], "alpha-4m-f16");

  // Env-file clients: a shell sources them back.
  for (const std::string client : {"open-webui", "openai"}) {
    r = RunCorral({"connect", client, "--write", "--key", "it's"}, t.env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::string vars = Shell(". " + t.root.File("config/corral/env/openai.env") +
                               " && printf '%s|%s|%s' \"$OPENAI_BASE_URL\" \"$OPENAI_API_KEY\" \"$OPENAI_MODEL\"",
                           &status);
  EXPECT_EQ(vars, base + "/v1|it's|alpha-4m-f16");
  vars =
      Shell(". " + t.root.File("config/corral/env/open-webui.env") + " && printf '%s' \"$OLLAMA_BASE_URL\"", &status);
  EXPECT_EQ(vars, base);
}

TEST(Connect, PrintsByDefaultAndRefusesWhatItCannotDo) {
  ConnectTree t;
  auto r = RunCorral({"connect", "claude-code"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ANTHROPIC_BASE_URL"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(t.root.File("home/.claude/settings.json")));  // printed, not written
  r = RunCorral({"connect", "claude-code", "--json"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(nlohmann::json::parse(j["text"].get<std::string>())["env"].is_object());
  r = RunCorral({"connect", "notepad"}, t.env);
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("unknown client"), std::string::npos) << r.err;
  r = RunCorral({"connect", "codex", "--model", std::string("a\x1b[2Jb")}, t.env);
  EXPECT_EQ(r.exit_code, 64);
  // A config the user broke is left alone.
  WriteText(t.root.File("home/.claude/settings.json"), "{not json");
  r = RunCorral({"connect", "claude-code", "--write"}, t.env);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(t.Read("home/.claude/settings.json"), "{not json");
}

// Issue 14: a file stem is a name (`corral show Qwen3-8B-Q4_K_M` for Qwen3-8B-Q4_K_M.gguf).
TEST(Connect, ShowAcceptsAFileStem) {
  ConnectTree t;
  auto r = RunCorral({"show", "Qwen3-8B-Q4_K_M", "--json"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j.dump().find("Qwen3-8B-Q4_K_M.gguf"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace corral::catalog
