// `corral init`: the curated pick by memory class, the parser of `llama-server --list-devices`,
// the config text it writes (parsed back by config::ApplyConfigText and config::Load), and the
// binary on a private HOME with --yes --json --no-smoke: written once, kept the second time,
// replaced with --force and a 0600 backup; synthetic models in a models directory are listed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/init_plan.h"
#include "config/options.h"
#include "support/test_support.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;
using cli::init::kGiB;

TEST(InitPlan, PickByMemoryClass) {
  EXPECT_EQ(cli::init::PickCurated(0)->ref, "Qwen/Qwen3-0.6B-GGUF:Q8_0");
  EXPECT_EQ(cli::init::PickCurated(3 * kGiB)->ref, "Qwen/Qwen3-0.6B-GGUF:Q8_0");
  EXPECT_EQ(cli::init::PickCurated(4 * kGiB)->ref, "unsloth/Qwen3-1.7B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(8 * kGiB - 1)->ref, "unsloth/Qwen3-1.7B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(14 * kGiB)->ref, "unsloth/Qwen3-4B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(16 * kGiB)->ref, "unsloth/Qwen3-8B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(47 * kGiB)->ref, "unsloth/gemma-3-12b-it-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(48 * kGiB)->ref, "unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(141 * kGiB)->ref, "unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M");
  EXPECT_EQ(cli::init::PickCurated(UINT64_MAX)->ref, "unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M");
}

TEST(InitPlan, TableIsSane) {
  // One primary per class; every file fits its class with room (≤ 40% of the memory), refs
  // are owner/repo:QUANT, and larger classes never offer smaller primaries.
  uint64_t last_min = 0, last_size = 0;
  for (const auto& m : cli::init::kCurated) {
    const std::string ref(m.ref);
    EXPECT_NE(ref.find('/'), std::string::npos) << ref;
    EXPECT_NE(ref.find(':'), std::string::npos) << ref;
    EXPECT_GE(m.min_memory, last_min) << ref;  // sorted by class
    last_min = m.min_memory;
    if (m.min_memory > 0) {
      EXPECT_LE(m.file_bytes * 10, m.min_memory * 4) << ref;
    }
    if (m.primary) {
      EXPECT_GE(m.file_bytes, last_size) << ref;
      last_size = m.file_bytes;
      int primaries = 0;
      for (const auto& o : cli::init::kCurated) primaries += o.primary && o.min_memory == m.min_memory ? 1 : 0;
      EXPECT_EQ(primaries, 1) << ref;
    }
  }
  auto alts = cli::init::Alternatives(cli::init::PickCurated(8 * kGiB));
  ASSERT_EQ(alts.size(), 2u);
  EXPECT_EQ(alts[0]->ref, "ggml-org/gemma-3-4b-it-GGUF:Q4_K_M");
}

TEST(InitPlan, ParseListDevices) {
  EXPECT_TRUE(cli::init::ParseListDevices("Available devices:\n  (none)\n").empty());
  EXPECT_TRUE(cli::init::ParseListDevices("").empty());
  EXPECT_TRUE(cli::init::ParseListDevices("garbage: 1 (2 MiB, 1 MiB free)\n").empty());  // not in the list
  auto d = cli::init::ParseListDevices(
      "ggml_cuda_init: found 2 CUDA devices:\nAvailable devices:\n  CUDA0: NVIDIA H200 (143167 MiB, 142515 MiB free)\n"
      "  Vulkan1: AMD Radeon (RADV NAVI31) (24560 MiB, 20000 MiB free)\r\n  Metal: Apple M2\nlog line after\n"
      "  Bogus0: after the list (1 MiB, 1 MiB free)\n");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].name, "CUDA0");
  EXPECT_EQ(d[0].backend, "CUDA");
  EXPECT_EQ(d[0].description, "NVIDIA H200");
  EXPECT_EQ(d[0].total_bytes, uint64_t{143167} << 20);
  EXPECT_EQ(d[0].free_bytes, uint64_t{142515} << 20);
  EXPECT_EQ(d[1].backend, "Vulkan");
  EXPECT_EQ(d[1].description, "AMD Radeon (RADV NAVI31)");
  EXPECT_EQ(d[1].total_bytes, uint64_t{24560} << 20);
  EXPECT_EQ(d[2].name, "Metal");
  EXPECT_EQ(d[2].total_bytes, 0u);
}

TEST(InitPlan, ConfigTextParsesBack) {
  cli::init::ConfigFacts f;
  f.date = "2026-12-02";
  f.machine = "2 CPU threads, 8 GiB RAM, GPU: none";
  f.llama_server = "/opt/llama \"odd\" path/llama-server";
  f.engine_source = "config";
  f.listen = "127.0.0.1:11999";
  f.model_dir = "/home/u/.local/share/corral/models";
  config::Config c;
  Status s = config::ApplyConfigText(c, cli::init::RenderConfig(f), "config.yaml");
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << cli::init::RenderConfig(f);
  EXPECT_EQ(c.llama_server, f.llama_server);
  EXPECT_EQ(c.listen, "127.0.0.1:11999");
  EXPECT_EQ(c.memory_budget, "auto");
  EXPECT_TRUE(c.model_paths.empty());
  EXPECT_TRUE(c.models.empty());
  ASSERT_TRUE(c.aliases.has_value());
  EXPECT_TRUE(c.aliases->empty());
  f.engine_source = "pinned";  // the default search finds it anyway: left commented out
  config::Config d;
  ASSERT_TRUE(config::ApplyConfigText(d, cli::init::RenderConfig(f), "config.yaml").ok());
  EXPECT_EQ(d.source.count("llama_server"), 0u);
}

class InitCli : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = PrivateDaemonEnv(dir_);
    env_["HF_HUB_CACHE"] = dir_.File("hub");
    env_["OLLAMA_MODELS"] = dir_.File("ollama");
    env_["LLAMA_CACHE"] = dir_.File("llama.cpp");
    env_["CORRAL_LISTEN"] = "127.0.0.1:0";
  }
  nlohmann::json Init(std::vector<std::string> extra, int expected_exit = 0) {
    std::vector<std::string> args = {"init", "--yes", "--json", "--no-smoke"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunCorral(args, env_, std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
  std::string ConfigFile() const { return dir_.File("config/corral/config.yaml"); }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static unsigned Mode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 0777;
  }
  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(InitCli, WritesConfigThatLoadsKeepsItThenReplacesWithBackup) {
  auto j = Init({});
  EXPECT_TRUE(j["ok"].get<bool>()) << j.dump(2);
  EXPECT_EQ(j["config"]["action"], "written");
  EXPECT_EQ(j["config"]["path"], ConfigFile());
  EXPECT_EQ(Mode(ConfigFile()), 0600u);
  EXPECT_GT(j["hardware"]["cpu_threads"].get<int>(), 0);
  EXPECT_GT(j["hardware"]["ram_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(j["engine"]["found"].get<bool>()) << j["engine"].dump();
  EXPECT_EQ(j["engine"]["path"], PinnedLlamaServer());
  EXPECT_EQ(j["engine"]["backends"][0], "CPU");
  EXPECT_TRUE(j["models"].empty());
  EXPECT_EQ(j["smoke"]["skipped"], "--no-smoke");
  EXPECT_FALSE(j["suggestion"]["pulled"].get<bool>());  // --yes never downloads
  EXPECT_FALSE(j["suggestion"]["ref"].get<std::string>().empty());
  EXPECT_FALSE(fs::exists(dir_.File("hub")));

  // Parsed back by the real loader (env overrides listen; the file's own values are read).
  config::FlagValues flags;
  flags.config_file = ConfigFile();
  auto c = config::Load(flags);
  ASSERT_TRUE(c.ok()) << c.status().message() << "\n" << Read(ConfigFile());
  EXPECT_EQ(c->source.at("memory_budget"), "file");
  EXPECT_EQ(c->source.at("scan_ollama"), "file");
  // CORRAL_LISTEN of this run is not written down: the file says the default.
  EXPECT_NE(Read(ConfigFile()).find("listen: \"127.0.0.1:11450\""), std::string::npos) << Read(ConfigFile());

  // Run again: the file is kept as it is.
  std::ofstream(ConfigFile(), std::ios::app) << "# my own edit\n";
  const std::string edited = Read(ConfigFile());
  j = Init({});
  EXPECT_EQ(j["config"]["action"], "kept");
  EXPECT_EQ(Read(ConfigFile()), edited);

  // --force: replaced, the old one kept as a 0600 backup next to it.
  j = Init({"--force"});
  EXPECT_EQ(j["config"]["action"], "replaced");
  const std::string backup = j["config"].value("backup", std::string());
  ASSERT_FALSE(backup.empty()) << j["config"].dump();
  EXPECT_EQ(Read(backup), edited);
  EXPECT_EQ(Mode(backup), 0600u);
  EXPECT_EQ(Read(ConfigFile()).find("# my own edit"), std::string::npos);
  EXPECT_EQ(Mode(ConfigFile()), 0600u);
}

TEST_F(InitCli, BrokenConfigIsKeptAndReported) {
  fs::create_directories(dir_.File("config/corral"));
  std::ofstream(ConfigFile()) << "listen: [oops\n";
  auto j = Init({});
  EXPECT_NE(j.value("config_error", std::string()).find("config.yaml"), std::string::npos) << j.dump(2);
  EXPECT_EQ(j["config"]["action"], "kept");
  EXPECT_EQ(Read(ConfigFile()), "listen: [oops\n");
}

TEST_F(InitCli, FindsModelsOnDisk) {
  const std::string models = dir_.File("data/corral/models");
  fs::create_directories(models);
  ASSERT_FALSE(MakeModel(models, "alpha-tiny.gguf", {"--name", "alpha-tiny"}).empty());
  const std::string extra = dir_.File("extra");
  fs::create_directories(extra);
  ASSERT_FALSE(MakeModel(extra, "beta-tiny.gguf", {"--name", "beta-tiny", "--seed", "7"}).empty());
  env_["CORRAL_MODEL_PATHS"] = extra;
  auto j = Init({});
  ASSERT_EQ(j["models"].size(), 2u) << j["models"].dump(2);
  std::set<std::string> paths;
  for (const auto& m : j["models"]) paths.insert(m["path"].get<std::string>());
  EXPECT_EQ(paths.count(models + "/alpha-tiny.gguf"), 1u) << j["models"].dump(2);
  EXPECT_EQ(paths.count(extra + "/beta-tiny.gguf"), 1u) << j["models"].dump(2);
}

}  // namespace
}  // namespace corral::testing
