// argv building, raw-arg refusal, log parsing, sizes: pure functions.
#include "supervisor/launch.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace corral::supervisor {
namespace {

TEST(LaunchTest, ArgvIsExactlyWhatTheUserWouldType) {
  LaunchSpec spec;
  spec.model_path = "/m/a model.gguf";
  spec.ctx = 2048;
  spec.preset_args = {"--threads", "4"};
  spec.raw_args = {"--temp", "0.5", "--no-warmup"};
  EXPECT_EQ(BuildArgv("/bin/llama-server", spec),
            (std::vector<std::string>{"/bin/llama-server", "-m", "/m/a model.gguf", "--host", "127.0.0.1", "--port",
                                      "0", "-c", "2048", "--threads", "4", "--temp", "0.5", "--no-warmup"}));
  spec.ctx = 0;
  spec.port = 8081;
  spec.preset_args.clear();
  spec.raw_args.clear();
  EXPECT_EQ(BuildArgv("ls", spec),
            (std::vector<std::string>{"ls", "-m", "/m/a model.gguf", "--host", "127.0.0.1", "--port", "8081"}));
}

// Issue 11 (10): llama-server's answers said "model": "/abs/path.gguf"; --alias NAME makes
// them say the model's name, unless the user's own args name an alias.
TEST(LaunchTest, ModelNameIsPassedAsAliasUnlessTheArgsGiveOne) {
  LaunchSpec spec;
  spec.model = "alpha-4m-f16";
  spec.model_path = "/m/alpha.gguf";
  EXPECT_EQ(BuildArgv("ls", spec), (std::vector<std::string>{"ls", "-m", "/m/alpha.gguf", "--host", "127.0.0.1",
                                                             "--port", "0", "--alias", "alpha-4m-f16"}));
  for (const std::vector<std::string>& own :
       std::vector<std::vector<std::string>>{{"-a", "mine"}, {"--alias", "mine"}, {"--alias=mine"}}) {
    spec.raw_args = own;
    std::vector<std::string> want = {"ls", "-m", "/m/alpha.gguf", "--host", "127.0.0.1", "--port", "0"};
    want.insert(want.end(), own.begin(), own.end());
    EXPECT_EQ(BuildArgv("ls", spec), want) << own[0];
    spec.raw_args.clear();
    spec.preset_args = own;
    EXPECT_EQ(BuildArgv("ls", spec), want) << "preset " << own[0];
    spec.preset_args.clear();
  }
}

// Issue 17: speculative decoding flags of the pinned llama-server, unless the user chose.
TEST(LaunchTest, SpecFlagsForADraftOrMtpUnlessTheArgsChoose) {
  LaunchSpec spec;
  spec.model_path = "/m/big.gguf";
  spec.draft_path = "/m/small draft.gguf";
  const std::vector<std::string> base = {"ls", "-m", "/m/big.gguf", "--host", "127.0.0.1", "--port", "0"};
  std::vector<std::string> want = base;
  want.insert(want.end(),
              {"--spec-type", "draft-simple", "--spec-draft-model", "/m/small draft.gguf", "--spec-draft-n-max", "8"});
  EXPECT_EQ(BuildArgv("ls", spec), want);
  spec.draft_path.clear();
  spec.spec_mtp = true;
  want = base;
  want.insert(want.end(), {"--spec-type", "draft-mtp"});
  EXPECT_EQ(BuildArgv("ls", spec), want);
  spec.spec_mtp = false;
  EXPECT_EQ(BuildArgv("ls", spec), base);
  spec.draft_path = "/m/small.gguf";
  for (const std::vector<std::string>& own : std::vector<std::vector<std::string>>{{"--spec-type", "ngram-mod"},
                                                                                   {"--spec-type=none"},
                                                                                   {"-md", "/x.gguf"},
                                                                                   {"--model-draft", "/x.gguf"},
                                                                                   {"--spec-draft-model=/x.gguf"},
                                                                                   {"-hfd", "org/repo"},
                                                                                   {"--spec-default"}}) {
    spec.raw_args = own;
    want = base;
    want.insert(want.end(), own.begin(), own.end());
    EXPECT_EQ(BuildArgv("ls", spec), want) << own[0];
    EXPECT_TRUE(PassesSpec(own)) << own[0];
  }
  EXPECT_FALSE(PassesSpec({"--spec-draft-n-max", "8", "--threads", "2"}));
}

TEST(LaunchTest, OwnedFlagsAreRefusedInEveryForm) {
  for (const char* flag : {"--host", "--port", "--api-key", "--api-key-file", "--ssl-key-file", "--ssl-cert-file"}) {
    Status s = CheckRawArgs({"--temp", "1", flag, "x"});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << flag;
    EXPECT_NE(s.message().find(flag), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("owned by Corral"), std::string::npos);
    std::string eq = std::string(flag) + "=x";
    EXPECT_FALSE(CheckRawArgs({eq}).ok()) << eq;
  }
  EXPECT_FALSE(CheckRawArgs({"-m", "other.gguf"}).ok());
  EXPECT_FALSE(CheckRawArgs({"--model=other.gguf"}).ok());
}

TEST(LaunchTest, OrdinaryFlagsPass) {
  EXPECT_TRUE(CheckRawArgs({}).ok());
  EXPECT_TRUE(CheckRawArgs({"--threads", "2", "-ngl", "99", "--hostile", "--ports", "-c", "512"}).ok());
  // A value that looks like an owned flag is still a flag position here: refuse rather than guess.
  EXPECT_FALSE(CheckRawArgs({"--alias", "--port"}).ok());
}

TEST(LaunchTest, ShellQuote) {
  EXPECT_EQ(ShellQuote({"llama-server", "-m", "/a b/c.gguf", "it's", ""}),
            "llama-server -m '/a b/c.gguf' 'it'\\''s' ''");
}

TEST(LaunchTest, ParseListeningPort) {
  EXPECT_EQ(ParseListeningPort("0.00.1 I srv  llama_server: listening on http://127.0.0.1:45895\n"), 45895);
  EXPECT_EQ(ParseListeningPort("a\nb listening on http://127.0.0.1:1\n"), 1);
  EXPECT_EQ(ParseListeningPort("listening on http://[::1]:8080\n"), 8080);
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:"), 0);    // split across reads
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:80"), 0);  // maybe 8080 once the rest arrives
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:8a\nlistening on http://h:7 x"), 7);
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:99999\n"), 0);  // not a port
  EXPECT_EQ(ParseListeningPort("listening on http://127.0.0.1:0\n"), 0);
  EXPECT_EQ(ParseListeningPort("nothing here"), 0);
  EXPECT_EQ(ParseListeningPort(""), 0);
}

TEST(LaunchTest, ParseByteSize) {
  EXPECT_EQ(*ParseByteSize("1000"), 1000u);
  EXPECT_EQ(*ParseByteSize("8GiB"), 8ULL << 30);
  EXPECT_EQ(*ParseByteSize("512 MiB"), 512ULL << 20);
  EXPECT_EQ(*ParseByteSize("1.5g"), 3ULL << 29);
  EXPECT_EQ(*ParseByteSize("2KB"), 2048u);
  for (const char* bad : {"", "GiB", "-1", "0", "12 parsecs", "1e999", "99999999999TiB", "1..2G"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

TEST(LaunchTest, FormatBytes) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536ULL << 20), "1.5 GiB");
}

TEST(LaunchTest, MemTotalAndBudget) {
  EXPECT_EQ(*ParseMemTotal("MemFree: 1 kB\nMemTotal:       16384 kB\n"), 16384ULL * 1024);
  EXPECT_FALSE(ParseMemTotal("MemFree: 1 kB\n").ok());
  EXPECT_EQ(DefaultMemoryBudget(64ULL << 30), (64ULL << 30) - (64ULL << 30) / 10);
  EXPECT_EQ(DefaultMemoryBudget(4ULL << 30), 3ULL << 30);  // the 1 GiB floor
  EXPECT_GT(*TotalMemoryBytes(), 0u);
  EXPECT_GT(ProcessRssBytes(::getpid()), 0u);
  EXPECT_EQ(ProcessRssBytes(-5), 0u);
}

}  // namespace
}  // namespace corral::supervisor
