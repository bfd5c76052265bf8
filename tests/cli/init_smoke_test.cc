// `corral init --yes --json` with a synthetic model on disk: the smoke test starts the daemon
// (none is up), starts the model with the real llama-server and streams one answer through the
// proxy; the report names the model and the proxy URL. `--smoke-model` with a name that matches
// nothing fails the smoke test with a clear error and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace corral::testing {
namespace {

class InitSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = PrivateDaemonEnv(dir_);
    env_["HF_HUB_CACHE"] = dir_.File("hub");
    env_["OLLAMA_MODELS"] = dir_.File("ollama");
    env_["LLAMA_CACHE"] = dir_.File("llama.cpp");
    std::filesystem::create_directories(dir_.File("data/corral/models"));
  }
  void TearDown() override { RunCorral({"daemon", "stop"}, env_); }
  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(InitSmoke, StreamsOneAnswerThroughTheProxy) {
  ASSERT_FALSE(MakeModel(dir_.File("data/corral/models"), "smoke-tiny.gguf", {"--name", "smoke-tiny"}).empty());
  auto r = RunCorral({"init", "--yes", "--json"}, env_, std::chrono::seconds(120));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out << r.err;
  EXPECT_EQ(r.exit_code, 0) << j.dump(2) << r.err;
  EXPECT_TRUE(j["ok"].get<bool>());
  const auto& s = j["smoke"];
  EXPECT_TRUE(s.value("ran", false)) << s.dump();
  EXPECT_TRUE(s.value("ok", false)) << s.dump();
  EXPECT_EQ(s["model"], j["models"][0]["name"]);
  EXPECT_EQ(s.value("proxy_url", std::string()).rfind("http://127.0.0.1:", 0), 0u) << s.dump();
  // The daemon it started is up, with the model loaded.
  auto ps = RunCorral({"ps", "--json", "--no-spawn"}, env_);
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_NE(ps.out.find(j["models"][0]["name"].get<std::string>()), std::string::npos) << ps.out;
}

TEST_F(InitSmoke, UnknownSmokeModelFailsClearly) {
  auto r = RunCorral({"init", "--yes", "--json", "--smoke-model", "no-such-model"}, env_, std::chrono::seconds(120));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_FALSE(j["smoke"]["ok"].get<bool>());
  EXPECT_NE(j["smoke"]["error"].get<std::string>().find("no-such-model"), std::string::npos) << j["smoke"].dump();
}

}  // namespace
}  // namespace corral::testing
