// `corral list` and `corral show` through the real binary: byte-stable TSV when piped,
// --json, filters, exit code 66 for no or several matches.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "catalog/catalog_fixture.h"

namespace corral::catalog {
namespace {

using corral::testing::Copy;
using corral::testing::RunCorral;
using corral::testing::SyntheticModels;
using corral::testing::TempDir;
using corral::testing::WriteText;

struct CliTree {
  TempDir root;
  std::map<std::string, std::string> env;
  CliTree() {
    const auto& m = SyntheticModels::Get();
    Copy(m.alpha, root.File("models/alpha.gguf"));
    Copy(m.beta, root.File("models/beta.gguf"));
    WriteText(root.File("models/bad.gguf"), "GGUF");
    WriteText(root.File("config/corral/config.yaml"), "aliases:\n  chat: alpha\n");
    env = {{"HOME", root.File("home")},
           {"XDG_CONFIG_HOME", root.File("config")},
           {"XDG_DATA_HOME", root.File("data")},
           {"XDG_CACHE_HOME", root.File("cache")},
           {"CORRAL_CACHE_DIR", root.File("cache/corral")},
           {"CORRAL_MODEL_PATHS", root.File("models")},
           {"HF_HUB_CACHE", root.File("none")},
           {"OLLAMA_MODELS", root.File("none")},
           {"LLAMA_CACHE", root.File("none")}};
  }
};

TEST(CatalogCli, ListTsvIsByteStable) {
  CliTree t;
  auto cold = RunCorral({"list"}, t.env);
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  auto warm = RunCorral({"list"}, t.env);
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  EXPECT_EQ(cold.out, warm.out);  // from the index the second time, same bytes
  const std::string header = "name\tsource\torigin\tarchitecture\tparams\tquant\tctx\tsize_bytes\tmmproj\tpath\n";
  ASSERT_EQ(cold.out.substr(0, header.size()), header);
  EXPECT_NE(cold.out.find("alpha-4m-f16\tuser\t\tllama\t"), std::string::npos) << cold.out;
  EXPECT_NE(cold.out.find("beta-4m-q8_0\tuser\t\tllama\t"), std::string::npos) << cold.out;
  EXPECT_EQ(std::count(cold.out.begin(), cold.out.end(), '\n'), 3);
  EXPECT_NE(cold.err.find("bad.gguf"), std::string::npos) << "the broken file is a warning: " << cold.err;
}

TEST(CatalogCli, ListJsonAndFilters) {
  CliTree t;
  auto r = RunCorral({"list", "--json"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["models"].size(), 2u);
  EXPECT_EQ(j["models"][0]["name"], "alpha-4m-f16");
  EXPECT_EQ(j["models"][0]["aliases"], nlohmann::json::array({"chat"}));
  EXPECT_EQ(j["models"][0]["quant"], "F16");
  EXPECT_EQ(j["models"][0]["n_ctx_train"], 512);
  EXPECT_EQ(j["models"][1]["quant"], "Q8_0");
  EXPECT_EQ(j["warnings"].size(), 1u);

  auto q8 = RunCorral({"list", "--quant", "q8_0"}, t.env);
  EXPECT_EQ(std::count(q8.out.begin(), q8.out.end(), '\n'), 2) << q8.out;
  EXPECT_NE(q8.out.find("beta-4m-q8_0"), std::string::npos);
  auto sub = RunCorral({"list", "alp"}, t.env);
  EXPECT_NE(sub.out.find("alpha-4m-f16"), std::string::npos);
  EXPECT_EQ(sub.out.find("beta"), std::string::npos);
  auto src = RunCorral({"list", "--source", "ollama"}, t.env);
  EXPECT_EQ(std::count(src.out.begin(), src.out.end(), '\n'), 1) << src.out;
  auto arch = RunCorral({"list", "--arch", "qwen2"}, t.env);
  EXPECT_EQ(std::count(arch.out.begin(), arch.out.end(), '\n'), 1) << arch.out;
}

TEST(CatalogCli, ShowPrintsTheModelAndEstimates) {
  CliTree t;
  auto r = RunCorral({"show", "chat"}, t.env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"alpha-4m-f16", "architecture  llama", "context       512 native", "chat template",
                           "tokenizer     llama, 32000 tokens", "found in      user", "alpha.gguf", "kv cache"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  }
  auto j = RunCorral({"show", "beta", "--json", "--ctx", "2048"}, t.env);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["name"], "beta-4m-q8_0");
  EXPECT_EQ(doc["n_head_kv"], 2);
  ASSERT_EQ(doc["memory"].size(), 2u);  // --ctx, and the default, which is capped at the native 1024
  EXPECT_EQ(doc["memory"][0]["n_ctx"], 2048);
  EXPECT_EQ(doc["memory"][1]["n_ctx"], 1024);
  // 2 layers x 2048 cells x (2 kv heads x 16 dims) x 2 bytes x (K + V)
  EXPECT_EQ(doc["memory"][0]["kv_bytes"], 2 * 2048 * 32 * 2 * 2);
  EXPECT_GT(doc["memory"][0]["weights_bytes"].get<uint64_t>(), 4000000u);
}

TEST(CatalogCli, NoOrSeveralMatchesExit66) {
  CliTree t;
  auto none = RunCorral({"show", "nonesuch"}, t.env);
  EXPECT_EQ(none.exit_code, 66);
  EXPECT_NE(none.err.find("no model matches 'nonesuch'"), std::string::npos) << none.err;
  auto several = RunCorral({"show", "4m"}, t.env);
  EXPECT_EQ(several.exit_code, 66);
  EXPECT_NE(several.err.find("alpha-4m-f16"), std::string::npos) << several.err;
  EXPECT_NE(several.err.find("beta-4m-q8_0"), std::string::npos) << several.err;
  auto bad_type = RunCorral({"show", "alpha", "--cache-type-k", "q9"}, t.env);
  EXPECT_EQ(bad_type.exit_code, 64) << bad_type.err;
}

TEST(CatalogCli, ASourceSwitchedOffByConfig) {
  CliTree t;
  // An Ollama tree that is listed, then switched off in config.yaml.
  const auto& m = SyntheticModels::Get();
  const std::string digest(64, 'e');
  Copy(m.beta, t.root.File("ollama/blobs/sha256-" + digest));
  WriteText(t.root.File("ollama/manifests/registry.ollama.ai/library/beta/1b"),
            R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + digest + "\"}]}");
  t.env["OLLAMA_MODELS"] = t.root.File("ollama");
  auto on = RunCorral({"list", "--source", "ollama"}, t.env);
  EXPECT_NE(on.out.find("beta:1b"), std::string::npos) << on.out << on.err;
  WriteText(t.root.File("config/corral/config.yaml"), "scan_ollama: false\n");
  auto off = RunCorral({"list", "--source", "ollama"}, t.env);
  EXPECT_EQ(off.out.find("beta:1b"), std::string::npos) << off.out;
  t.env["CORRAL_SCAN_OLLAMA"] = "true";  // the environment beats the file
  auto env_on = RunCorral({"list", "--source", "ollama"}, t.env);
  EXPECT_NE(env_on.out.find("beta:1b"), std::string::npos) << env_on.out;
}

}  // namespace
}  // namespace corral::catalog
