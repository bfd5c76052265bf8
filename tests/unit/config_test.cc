#include "config/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <set>

#include "common/fs.h"
#include "support/test_support.h"

namespace corral::config {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& def : Options()) {
      if (def.env != nullptr) ::unsetenv(def.env);
    }
    ::unsetenv("CORRAL_CONFIG");
  }
  FlagValues FlagsWithFile(const std::string& yaml) {
    FlagValues f;
    f.config_file = dir_.File("config.yaml");
    EXPECT_TRUE(WriteFileAtomic(f.config_file, yaml).ok());
    return f;
  }
  testing::TempDir dir_;
};

TEST_F(ConfigTest, DefaultsWhenNoFile) {
  FlagValues f;
  f.config_file = dir_.File("absent.yaml");
  auto c = Load(f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:11450");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_TRUE(c->model_paths.empty());
  EXPECT_EQ(c->source["listen"], "default");
}

TEST_F(ConfigTest, PrecedenceIsDefaultFileEnvFlag) {
  FlagValues f = FlagsWithFile("listen: 127.0.0.1:1000\nlog_level: debug\nmodel_paths: [/a, /b]\n");
  auto c = Load(f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:1000");
  EXPECT_EQ(c->source["listen"], "file");
  EXPECT_EQ(c->model_paths, (std::vector<std::string>{"/a", "/b"}));

  ::setenv("CORRAL_LISTEN", "127.0.0.1:2000", 1);
  ::setenv("CORRAL_MODEL_PATHS", "/x:/y", 1);
  c = Load(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "127.0.0.1:2000");
  EXPECT_EQ(c->source["listen"], "env");
  EXPECT_EQ(c->model_paths, (std::vector<std::string>{"/x", "/y"}));

  f.by_key["listen"] = {"127.0.0.1:3000"};
  c = Load(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "127.0.0.1:3000");
  EXPECT_EQ(c->source["listen"], "flag");
  EXPECT_EQ(c->log_level, "debug");
  ::unsetenv("CORRAL_LISTEN");
  ::unsetenv("CORRAL_MODEL_PATHS");
}

TEST_F(ConfigTest, BadFileIsAnErrorNamingTheFileAndLine) {
  auto c = Load(FlagsWithFile("listen: [unclosed\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("config.yaml:"), std::string::npos) << c.status().message();
}

TEST_F(ConfigTest, BadValuesAreErrors) {
  EXPECT_FALSE(Load(FlagsWithFile("log_level: loud\n")).ok());
  EXPECT_FALSE(Load(FlagsWithFile("listen: 11450\n")).ok());
  EXPECT_FALSE(Load(FlagsWithFile("model_paths: {a: b}\n")).ok());
  EXPECT_FALSE(Load(FlagsWithFile("- just\n- a list\n")).ok());
  ::setenv("CORRAL_LOG_LEVEL", "shouty", 1);
  auto c = Load(FlagsWithFile(""));
  ::unsetenv("CORRAL_LOG_LEVEL");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CORRAL_LOG_LEVEL"), std::string::npos);
}

TEST_F(ConfigTest, EveryOptionIsDescribedOnce) {
  std::set<std::string> keys, flags, envs;
  for (const auto& d : Options()) {
    EXPECT_TRUE(keys.insert(d.key).second) << d.key;
    if (d.flag) {
      EXPECT_TRUE(flags.insert(d.flag).second) << d.flag;
    }
    if (d.env) {
      EXPECT_TRUE(envs.insert(d.env).second) << d.env;
    }
    EXPECT_NE(std::string(d.help), "");
  }
  auto c = Load(FlagsWithFile(""));
  ASSERT_TRUE(c.ok());
  std::string text = Describe(*c);
  for (const auto& d : Options()) EXPECT_NE(text.find(std::string(d.key) + ":"), std::string::npos) << d.key;
}

}  // namespace
}  // namespace corral::config
