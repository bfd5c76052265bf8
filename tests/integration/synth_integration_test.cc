// The synthetic models load in the real pinned llama-server and generate tokens; the
// corral CLI reports bad input with the documented exit codes and leaves no partial file.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <thread>

extern char** environ;

#include "common/fs.h"
#include "support/test_support.h"

namespace corral {
namespace {

using testing::LlamaServer;
using testing::RunCorral;

struct Variant {
  const char* type;
  const char* vocab;
};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << v.type << "/" << v.vocab;
}

class SynthLoadsTest : public ::testing::TestWithParam<Variant> {};

TEST_P(SynthLoadsTest, LlamaServerGeneratesTokens) {
  testing::TempDir dir;
  const Variant v = GetParam();
  std::string model = testing::MakeModel(dir.path(), "m.gguf", {"--type", v.type, "--vocab", v.vocab});
  ASSERT_FALSE(model.empty());
  auto server = LlamaServer::Start(model, {"-c", "512", "-np", "1"});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto res = testing::Http("POST", (*server)->port(), "/completion",
                           R"({"prompt":"Hello","n_predict":8,"temperature":0,"seed":1})");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->body.find("\"tokens_predicted\":8"), std::string::npos) << res->body;

  // The chat endpoint works too (template from the vocab or llama-server's default).
  auto chat = testing::Http("POST", (*server)->port(), "/v1/chat/completions",
                            R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})");
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->status, 200) << chat->body;
  EXPECT_NE(chat->body.find("\"completion_tokens\":4"), std::string::npos) << chat->body;
}

INSTANTIATE_TEST_SUITE_P(Types, SynthLoadsTest,
                         ::testing::Values(Variant{"f16", "llama-spm"}, Variant{"q8_0", "llama-spm"},
                                           Variant{"q4_0", "llama-spm"}, Variant{"q8_0", "llama-bpe"},
                                           Variant{"q4_0", "qwen2"}),
                         [](const ::testing::TestParamInfo<Variant>& p) {
                           std::string n = std::string(p.param.type) + "_" + p.param.vocab;
                           for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

TEST(SynthCliTest, DeterministicByHash) {
  testing::TempDir dir;
  std::string a = testing::MakeModel(dir.path(), "a.gguf", {"--seed", "7"});
  std::string b = testing::MakeModel(dir.path(), "b.gguf", {"--seed", "7"});
  std::string c = testing::MakeModel(dir.path(), "c.gguf", {"--seed", "8"});
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  EXPECT_EQ(*Sha256File(a), *Sha256File(b));
  EXPECT_NE(*Sha256File(a), *Sha256File(c));
}

TEST(SynthCliTest, BadInputsGiveUsageExitCodes) {
  testing::TempDir dir;
  auto r = RunCorral({"model", "synth", "--out", dir.File("x.gguf"), "--type", "q3"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("--type"), std::string::npos) << r.err;
  r = RunCorral({"model", "synth", "--out", dir.File("x.gguf"), "--n-layer", "banana"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  r = RunCorral({"model", "synth", "--out", "/proc/nope/x.gguf"});
  EXPECT_EQ(r.exit_code, 71) << r.err;
  EXPECT_NE(r.err.find("/proc/nope"), std::string::npos) << r.err;
  r = RunCorral({"no-such-command"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.gguf")));
}

TEST(SynthCliTest, InterruptLeavesNoPartialFile) {
  testing::TempDir dir;
  std::string out = dir.File("big.gguf");
  std::string bin = testing::CorralBinary();
  std::vector<std::string> args_s = {bin, "model", "synth", "--preset", "large", "--out", out};
  std::vector<char*> argv;
  for (auto& a : args_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  // Wait until the temporary file exists and has data, then interrupt.
  bool writing = false;
  for (int i = 0; i < 3000 && !writing; ++i) {
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      if (e.path().filename().string().find(".tmp.") != std::string::npos && e.file_size() > (1 << 20)) writing = true;
    }
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(writing);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "partial or temporary file left behind";
}

TEST(VersionCliTest, PrintsCorralAndLlamaCppCommit) {
  auto r = RunCorral({"--version"}, {{"CORRAL_LLAMA_SERVER", testing::PinnedLlamaServer()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("corral "), std::string::npos);
  EXPECT_NE(r.out.find("de3ff81"), std::string::npos) << r.out;
  r = RunCorral({"--version"}, {{"CORRAL_LLAMA_SERVER", "/nonexistent"}});
  EXPECT_EQ(r.exit_code, 70) << r.out;
}

}  // namespace
}  // namespace corral
