#include "config/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
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

// The proxy's hostile-input limits (issue 11): defaults, bounds, and cors_origins as a
// comma list, a YAML list or an environment variable.
TEST_F(ConfigTest, ProxyHardeningOptions) {
  auto c = Load(FlagsWithFile(""));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_json_depth, 128);
  EXPECT_TRUE(c->cors_origins.empty());
  EXPECT_EQ(c->max_connections, 4096);
  EXPECT_EQ(c->max_connections_per_client, 2048);
  EXPECT_EQ(c->max_buffered_body_bytes, 256LL << 20);
  c =
      Load(FlagsWithFile("max_json_depth: 64\nmax_connections: 10\nmax_connections_per_client: 2\n"
                         "max_buffered_body_bytes: 1000\n"
                         "cors_origins: [\"http://localhost:3000\", \"https://a.example/\"]\n"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_json_depth, 64);
  EXPECT_EQ(c->max_connections, 10);
  EXPECT_EQ(c->max_connections_per_client, 2);
  EXPECT_EQ(c->max_buffered_body_bytes, 1000);
  EXPECT_EQ(c->cors_origins, (std::vector<std::string>{"http://localhost:3000", "https://a.example"}));
  ::setenv("CORRAL_CORS_ORIGINS", "http://a:1, http://b:2", 1);
  c = Load(FlagsWithFile(""));
  ::unsetenv("CORRAL_CORS_ORIGINS");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cors_origins, (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_NE(Describe(*c).find("cors_origins: \"http://a:1,http://b:2\""), std::string::npos) << Describe(*c);
  for (const char* bad :
       {"max_json_depth: 0\n", "max_json_depth: 5000\n", "max_connections: 0\n", "max_connections_per_client: -1\n",
        "max_buffered_body_bytes: 0\n", "cors_origins: localhost:3000\n", "cors_origins: http://a.example/path\n",
        "cors_origins: ftp://a.example\n", "cors_origins: {a: b}\n"}) {
    EXPECT_FALSE(Load(FlagsWithFile(bad)).ok()) << bad;
  }
  auto star = Load(FlagsWithFile("cors_origins: \"*\"\n"));
  ASSERT_TRUE(star.ok()) << star.status().ToString();
  EXPECT_EQ(star->cors_origins, (std::vector<std::string>{"*"}));
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
    EXPECT_FALSE(std::holds_alternative<std::monostate>(d.field)) << d.key << " is bound to no Config field";
    if (d.flag) {
      EXPECT_EQ(std::string(d.flag).rfind("--", 0), 0U) << d.flag;
    }
    if (d.env) {
      EXPECT_EQ(std::string(d.env).rfind("CORRAL_", 0), 0U) << d.env;
    }
    EXPECT_EQ(FindOption(d.key), &d);
  }
  EXPECT_EQ(FindOption("no_such_option"), nullptr);
  auto c = Load(FlagsWithFile(""));
  ASSERT_TRUE(c.ok());
  std::string text = Describe(*c);
  for (const auto& d : Options()) EXPECT_NE(text.find(std::string(d.key) + ":"), std::string::npos) << d.key;
}

// Issue 12 item 5: the registry binds each option once. Every option round-trips from text
// to its Config field and back, through the file, the environment and a flag alike.
std::vector<std::string> SampleValues(const OptionDef& d) {
  static const std::map<std::string, std::string> kText = {{"listen", "127.0.0.1:9,https://[::1]:10"},
                                                           {"memory_budget", "12GiB"},
                                                           {"kv_keep_budget", "1GiB"},
                                                           {"spec", "off"},
                                                           {"llama_ui", "off"},
                                                           {"cors_origins", "http://a:1,https://b"}};
  switch (d.type) {
    case OptionType::kBool: return {d.default_value == "true" ? "false" : "true"};
    case OptionType::kInt:
    case OptionType::kSeconds: return {std::to_string(d.max)};
    case OptionType::kEnum: return {d.choices.back()};
    case OptionType::kPath: return {std::string("/tmp/corral-sample-") + d.key};
    case OptionType::kPathList: return {"/a", "/b"};
    case OptionType::kString:
    case OptionType::kList: break;
  }
  auto it = kText.find(d.key);
  return it == kText.end() ? std::vector<std::string>{} : std::vector<std::string>{it->second};
}

TEST_F(ConfigTest, EveryOptionRoundTripsThroughFileEnvAndFlag) {
  for (const auto& d : Options()) {
    SCOPED_TRACE(d.key);
    const std::vector<std::string> sample = SampleValues(d);
    ASSERT_FALSE(sample.empty()) << "give the new option a sample value here";
    ASSERT_NE(GetOption(Config{}, d), sample) << "the sample must differ from the default";
    // Set from text, read back, printed.
    Config c;
    Status st = SetOption(c, d, sample);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(GetOption(c, d), sample);
    const std::string shown = Describe(c);
    if (d.type == OptionType::kPathList) {
      for (const auto& v : sample) EXPECT_NE(shown.find("  - \"" + v + "\""), std::string::npos) << shown;
    } else {
      EXPECT_NE(shown.find(std::string(d.key) + ": \"" + sample[0] + "\""), std::string::npos) << shown;
    }
    // The other options keep their defaults.
    for (const auto& other : Options()) {
      if (&other != &d) {
        EXPECT_EQ(GetOption(c, other), GetOption(Config{}, other)) << other.key;
      }
    }
    // The same value from config.yaml, the environment and a flag.
    std::string yaml = std::string(d.key) + ":";
    if (d.type == OptionType::kPathList) {
      for (const auto& v : sample) yaml += "\n  - \"" + v + "\"";
    } else {
      yaml += " \"" + sample[0] + "\"";
    }
    auto from_file = Load(FlagsWithFile(yaml + "\n"));
    ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
    EXPECT_EQ(GetOption(*from_file, d), sample);
    EXPECT_EQ(from_file->source[d.key], "file");
    if (d.env != nullptr) {
      std::string text = sample[0];
      for (size_t i = 1; i < sample.size(); ++i) text += ":" + sample[i];
      ::setenv(d.env, text.c_str(), 1);
      auto from_env = Load(FlagsWithFile(""));
      ::unsetenv(d.env);
      ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
      EXPECT_EQ(GetOption(*from_env, d), sample);
      EXPECT_EQ(from_env->source[d.key], "env");
    }
    if (d.flag != nullptr) {
      FlagValues f = FlagsWithFile("");
      f.by_key[d.key] = sample;
      auto from_flag = Load(f);
      ASSERT_TRUE(from_flag.ok()) << from_flag.status().ToString();
      EXPECT_EQ(GetOption(*from_flag, d), sample);
      EXPECT_EQ(from_flag->source[d.key], "flag");
      auto reloaded = Reload(*from_flag);  // a flag's value survives a reload
      ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
      EXPECT_EQ(GetOption(*reloaded, d), sample);
    }
  }
}

TEST_F(ConfigTest, IntegerOptionsRejectValuesOutsideTheirRange) {
  size_t checked = 0;
  for (const auto& d : Options()) {
    if (d.type != OptionType::kInt && d.type != OptionType::kSeconds) continue;
    SCOPED_TRACE(d.key);
    ++checked;
    ASSERT_LT(d.min, d.max);
    Config c;
    EXPECT_TRUE(SetOption(c, d, {std::to_string(d.min)}).ok());
    EXPECT_EQ(GetOption(c, d), std::vector<std::string>{std::to_string(d.min)});
    EXPECT_TRUE(SetOption(c, d, {std::to_string(d.max)}).ok());
    for (const std::string& bad : {std::to_string(d.min - 1), std::to_string(d.max + 1), std::string("12x"),
                                   std::string(""), std::string("1.5")}) {
      Status st = SetOption(c, d, {bad});
      ASSERT_FALSE(st.ok()) << bad;
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      const std::string range = d.type == OptionType::kSeconds
                                    ? std::to_string(d.min) + ".." + std::to_string(d.max)
                                    : "[" + std::to_string(d.min) + ", " + std::to_string(d.max) + "]";
      EXPECT_EQ(st.message().find(std::string(d.key) + " must be "), 0U) << st.message();
      EXPECT_NE(st.message().find(range), std::string::npos) << st.message();
      EXPECT_NE(st.message().find("got '" + bad + "'"), std::string::npos) << st.message();
    }
    EXPECT_EQ(GetOption(c, d), std::vector<std::string>{std::to_string(d.max)});  // refused values change nothing
    // The file names itself and the key.
    auto file = Load(FlagsWithFile(std::string(d.key) + ": " + std::to_string(d.max + 1) + "\n"));
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.status().message().find("config.yaml: " + std::string(d.key) + " must be"), std::string::npos)
        << file.status().message();
  }
  EXPECT_GE(checked, 10U);
  // The other kinds' messages.
  Config c;
  EXPECT_EQ(SetOption(c, *FindOption("log_level"), {"loud"}).message(),
            "log_level must be trace|debug|info|warn|error, got 'loud'");
  EXPECT_EQ(SetOption(c, *FindOption("kv_keep"), {"maybe"}).message(), "kv_keep must be true or false, got 'maybe'");
  EXPECT_EQ(SetOption(c, *FindOption("listen"), {"11450"}).message(),
            "listen must be HOST:PORT or https://HOST:PORT (comma-separated), got '11450'");
  EXPECT_NE(SetOption(c, *FindOption("cors_origins"), {"http://a/x"}).message().find("got 'http://a/x'"),
            std::string::npos);
  EXPECT_EQ(SetOption(c, *FindOption("spec"), {""}).message().find("spec: "), 0U);
}

// One source of each default: Config's member initialisers, shown by `corral config options`
// (and the proxy's come from common/proxy_defaults.h, which ProxyOptions uses too).
TEST_F(ConfigTest, DefaultsAreTheDocumentedOnes) {
  const std::map<std::string, std::string> documented = {
      {"model_paths", ""},
      {"llama_server", ""},
      {"listen", "127.0.0.1:11450"},
      {"log_level", "info"},
      {"scan_huggingface", "true"},
      {"scan_ollama", "true"},
      {"scan_lmstudio", "true"},
      {"scan_llamacpp", "true"},
      {"max_body_bytes", "33554432"},
      {"proxy_preconnect", "true"},
      {"proxy_process", "true"},
      {"proxy_threads", "0"},
      {"proxy_client_timeout_s", "60"},
      {"proxy_upstream_timeout_s", "600"},
      {"max_json_depth", "128"},
      {"cors_origins", ""},
      {"tls_cert", ""},
      {"tls_key", ""},
      {"allow_unauthenticated_lan", "false"},
      {"require_key_on_loopback", "false"},
      {"max_connections", "4096"},
      {"max_connections_per_client", "2048"},
      {"max_buffered_body_bytes", "268435456"},
      {"model_ttl_s", "0"},
      {"memory_budget", "auto"},
      {"health_timeout", "60"},
      {"health_timeout_per_gib", "30"},
      {"stop_timeout", "10"},
      {"liveness_timeout", "15"},
      {"kv_keep", "true"},
      {"kv_keep_budget", "4GiB"},
      {"spec", "auto"},
      {"bench_results_dir", ""},
      {"llama_ui", "auto"},
  };
  ASSERT_EQ(Options().size(), documented.size());
  auto loaded = Load(FlagsWithFile(""));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const std::string table = OptionsMarkdown();
  for (const auto& d : Options()) {
    SCOPED_TRACE(d.key);
    ASSERT_EQ(documented.count(d.key), 1U);
    EXPECT_EQ(d.default_value, documented.at(d.key));
    EXPECT_EQ(GetOption(*loaded, d), GetOption(Config{}, d));  // Load starts from Config{}
    EXPECT_EQ(loaded->source[d.key], "default");
    EXPECT_NE(table.find("| `" + std::string(d.key) + "` |"), std::string::npos);
    EXPECT_NE(table.find("| `" + d.default_value + "` |"), std::string::npos);
    // A default is a value the option accepts.
    Config c;
    EXPECT_TRUE(SetOption(c, d, GetOption(Config{}, d)).ok());
  }
}

// The models: section (per-model settings) and aliases.
TEST_F(ConfigTest, ModelsSectionParses) {
  auto c =
      Load(FlagsWithFile("aliases:\n  fast: corral-tiny\nmodels:\n  corral-tiny-bpe:\n    ttl: 300\n    ctx: 4096\n"
                         "    args: [\"--threads\", \"2\"]\n  other:\n    pinned: true\n    restart: true\n  bare:\n"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->aliases.has_value());
  EXPECT_EQ(c->aliases->at("fast"), "corral-tiny");
  ASSERT_EQ(c->models.size(), 3U);
  EXPECT_EQ(c->models[0].ref, "corral-tiny-bpe");
  EXPECT_EQ(c->models[0].line, 4);
  EXPECT_EQ(c->models[0].ttl_s, 300);
  EXPECT_EQ(c->models[0].ctx, 4096U);
  EXPECT_EQ(c->models[0].args, (std::vector<std::string>{"--threads", "2"}));
  EXPECT_FALSE(c->models[0].pinned);
  EXPECT_EQ(c->models[1].ref, "other");
  EXPECT_TRUE(c->models[1].pinned);
  EXPECT_TRUE(c->models[1].restart);
  EXPECT_FALSE(c->models[0].restart);
  EXPECT_FALSE(c->models[1].ttl_s.has_value());
  EXPECT_EQ(c->models[2].ref, "bare");
  EXPECT_EQ(c->models[2].ctx, 0U);
  const std::string text = Describe(*c);
  EXPECT_NE(text.find("\"fast\": \"corral-tiny\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"corral-tiny-bpe\": ttl 300, ctx 4096, args [--threads 2]"), std::string::npos) << text;

  // ttl 0 means "never": set, not absent.
  c = Load(FlagsWithFile("models:\n  m:\n    ttl: 0\n"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->models[0].ttl_s, 0);
  // No file, or a file without the sections: aliases known to be empty.
  FlagValues none;
  none.config_file = dir_.File("absent.yaml");
  c = Load(none);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->aliases.has_value());
  EXPECT_TRUE(c->aliases->empty());
  EXPECT_TRUE(c->models.empty());
}

// Each bad entry is an error that names the file, the model and the key.
TEST_F(ConfigTest, ModelsSectionIsValidatedStrictly) {
  struct Case {
    const char* yaml;
    const char* must_mention;
  };
  const Case cases[] = {
      {"models:\n  tiny:\n    tll: 5\n", "models.tiny: unknown key 'tll'"},
      {"models:\n  tiny:\n    ttl: -1\n", "models.tiny.ttl"},
      {"models:\n  tiny:\n    ttl: soon\n", "models.tiny.ttl"},
      {"models:\n  tiny:\n    ttl: [1]\n", "models.tiny.ttl"},
      {"models:\n  tiny:\n    ctx: 4k\n", "models.tiny.ctx"},
      {"models:\n  tiny:\n    ctx: 99999999999\n", "models.tiny.ctx"},
      {"models:\n  tiny:\n    args: --threads 2\n", "models.tiny.args: must be a list"},
      {"models:\n  tiny:\n    args: [[\"--threads\"]]\n", "models.tiny.args"},
      {"models:\n  tiny:\n    pinned: maybe\n", "models.tiny.pinned"},
      {"models:\n  tiny:\n    restart: often\n", "models.tiny.restart"},
      {"models:\n  tiny:\n    pinned: true\n    ttl: 60\n", "models.tiny"},
      {"models:\n  tiny: 5\n", "models.tiny: must be a mapping"},
      {"models: [tiny]\n", "models: must be a mapping"},
      {"models:\n  ? [a, b]\n  : {ttl: 1}\n", "models: each key"},
      {"aliases: [a, b]\n", "aliases: must be a mapping"},
      {"aliases:\n  fast: [a]\n", "aliases"},
  };
  for (const auto& k : cases) {
    auto c = Load(FlagsWithFile(k.yaml));
    ASSERT_FALSE(c.ok()) << k.yaml;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << k.yaml;
    EXPECT_NE(c.status().message().find(k.must_mention), std::string::npos) << k.yaml << " -> " << c.status().message();
    EXPECT_NE(c.status().message().find("config.yaml:"), std::string::npos) << c.status().message();
  }
  // A line number points at the entry.
  auto c = Load(FlagsWithFile("listen: 127.0.0.1:1\nmodels:\n  a: {}\n  tiny:\n    ttl: -5\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("config.yaml:5: models.tiny.ttl"), std::string::npos) << c.status().message();
}

// Speculative decoding (docs/spec.md): spec globally and per model; bad values name the key.
TEST_F(ConfigTest, SpecGlobalAndPerModel) {
  FlagValues none;
  none.config_file = dir_.File("absent.yaml");
  auto c = Load(none);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->spec, "auto");
  c = Load(FlagsWithFile("spec: off\nmodels:\n  big:\n    spec: tiny-draft\n  other:\n    ttl: 5\n"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->spec, "off");
  EXPECT_EQ(c->models[0].spec, "tiny-draft");
  EXPECT_EQ(c->models[1].spec, "");  // unset: the global one applies
  EXPECT_NE(Describe(*c).find("spec tiny-draft"), std::string::npos) << Describe(*c);
  ::setenv("CORRAL_SPEC", "auto", 1);
  c = Load(FlagsWithFile("spec: off\n"));
  ::unsetenv("CORRAL_SPEC");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->spec, "auto");
  for (const char* bad : {"spec: \"\"\n", "spec: \"a\\x01b\"\n", "models:\n  big:\n    spec: [a]\n",
                          "models:\n  big:\n    spec: \"\"\n"}) {
    auto b = Load(FlagsWithFile(bad));
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("spec"), std::string::npos) << b.status().message();
  }
  EXPECT_TRUE(CheckSpecSetting("Qwen2.5-0.5B-Instruct-Q8_0").ok());
  EXPECT_FALSE(CheckSpecSetting(std::string(kMaxSpecBytes + 1, 'x')).ok());
}

TEST_F(ConfigTest, ModelsSectionIsBounded) {
  std::string many = "models:\n";
  for (size_t i = 0; i <= kMaxModelSettings; ++i) many += "  m" + std::to_string(i) + ": {}\n";
  auto c = Load(FlagsWithFile(many));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("more than"), std::string::npos) << c.status().message();

  std::string args = "models:\n  m:\n    args: [";
  for (size_t i = 0; i <= kMaxModelArgs; ++i) args += std::string(i ? "," : "") + "\"-x\"";
  c = Load(FlagsWithFile(args + "]\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("models.m.args"), std::string::npos) << c.status().message();
}

// Reload re-reads the file and the environment but keeps what came from flags.
TEST_F(ConfigTest, ReloadKeepsFlagValuesAndRereadsTheFile) {
  FlagValues f = FlagsWithFile("log_level: debug\nmodel_ttl_s: 5\n");
  f.by_key["listen"] = {"127.0.0.1:3000"};
  f.by_key["model_ttl_s"] = {"7"};
  auto running = Load(f);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  ASSERT_TRUE(WriteFileAtomic(f.config_file,
                              "log_level: warn\nlisten: 127.0.0.1:9\nmodel_ttl_s: 99\n"
                              "aliases: {fast: x}\nmodels:\n  x: {ttl: 3}\n")
                  .ok());
  auto next = Reload(*running);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->log_level, "warn");
  EXPECT_EQ(next->listen, "127.0.0.1:3000");  // flag
  EXPECT_EQ(next->model_ttl_s, 7);            // flag
  EXPECT_EQ(next->source["listen"], "flag");
  ASSERT_EQ(next->models.size(), 1U);
  EXPECT_EQ(next->aliases->at("fast"), "x");

  // A broken file: an error, and the running config is untouched.
  ASSERT_TRUE(WriteFileAtomic(f.config_file, "models:\n  x: {ttl: -1}\n").ok());
  EXPECT_FALSE(Reload(*running).ok());
  EXPECT_EQ(running->log_level, "debug");
}

TEST_F(ConfigTest, DiffNamesChangesAndWhatNeedsARestart) {
  auto a = Load(FlagsWithFile("log_level: debug\naliases: {fast: x, gone: y}\nmodels:\n  x: {ttl: 3}\n  y: {}\n"));
  auto b =
      Load(FlagsWithFile("log_level: warn\nlisten: 127.0.0.1:9\naliases: {fast: z, new: y}\n"
                         "models:\n  x: {ttl: 4}\n  z: {ctx: 8}\n"));
  ASSERT_TRUE(a.ok() && b.ok());
  std::map<std::string, ConfigChange> by_key;
  for (const auto& ch : Diff(*a, *b)) by_key[ch.key] = ch;
  ASSERT_EQ(by_key.count("log_level"), 1U);
  EXPECT_EQ(by_key["log_level"].before, "debug");
  EXPECT_EQ(by_key["log_level"].after, "warn");
  EXPECT_EQ(by_key["log_level"].reload, OnReload::kLive);
  ASSERT_EQ(by_key.count("listen"), 1U);
  EXPECT_EQ(by_key["listen"].reload, OnReload::kRestart);
  EXPECT_EQ(by_key["aliases.fast"].after, "z");
  EXPECT_EQ(by_key["aliases.gone"].after, "");
  EXPECT_EQ(by_key["aliases.new"].before, "");
  EXPECT_EQ(by_key["models.x"].after, "ttl 4");
  EXPECT_EQ(by_key["models.y"].after, "");
  EXPECT_EQ(by_key["models.z"].after, "ctx 8");
  EXPECT_EQ(by_key.size(), 8U);
  EXPECT_TRUE(Diff(*a, *a).empty());

  // The listener, the proxy's thread count, its hostile-input limits (fixed when the proxy
  // starts) and the engine need a restart; the rest apply live.
  for (const auto& d : Options()) {
    const std::string k = d.key;
    const bool restart = k == "listen" || k == "proxy_threads" || k == "proxy_preconnect" || k == "llama_server" ||
                         k == "max_json_depth" || k == "cors_origins" || k == "max_connections" ||
                         k == "max_connections_per_client" || k == "max_buffered_body_bytes" || k == "proxy_process" ||
                         k == "liveness_timeout" || k == "tls_cert" || k == "tls_key" ||
                         k == "allow_unauthenticated_lan" || k == "require_key_on_loopback" ||
                         k == "bench_results_dir" || k == "llama_ui";
    EXPECT_EQ(d.reload, restart ? OnReload::kRestart : OnReload::kLive) << k;
  }
}

}  // namespace
}  // namespace corral::config
