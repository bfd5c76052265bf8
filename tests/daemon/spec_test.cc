// Speculative decoding, automatically (issue 17, docs/spec.md), end to end through the daemon
// with the real llama-server on synthetic models: a target whose layers from 1 on are near
// identity (`corral model synth --identity-from 1`) and its one-layer draft (same seed), so
// the draft predicts the target's next token. Checked: auto picks the smallest compatible
// model and skips one that is not much smaller; a named draft is launched with the pinned
// llama-server's flags and the answer's timings report drafted and accepted tokens; a named
// draft with another vocabulary is refused with a clear error (start, on demand, show).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using nlohmann::json;
using testing::RunResult;

// The pair: 64 wide, 4 layers (target) or 1 layer (draft), the same seed and vocabulary.
std::vector<std::string> PairDims(const std::string& name, const std::string& layers) {
  return {"--n-embd", "64",     "--n-head", "4",      "--n-ff", "128",       "--ctx",
          "1024",     "--seed", "7",        "--name", name,     "--n-layer", layers};
}

class SpecTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    const std::string models = dir_.File("data/corral/models");
    std::vector<std::string> target = PairDims("target", "4");
    target.insert(target.end(), {"--identity-from", "1"});
    ASSERT_FALSE(testing::MakeModel(models, "target.gguf", target).empty());
    ASSERT_FALSE(testing::MakeModel(models, "pairdraft.gguf", PairDims("pairdraft", "1")).empty());
    std::vector<std::string> other = PairDims("othervocab", "1");
    other.insert(other.end(), {"--vocab", "gpt-2"});
    ASSERT_FALSE(testing::MakeModel(models, "othervocab.gguf", other).empty());
  }
  void WriteConfig(const std::string& yaml) {
    ASSERT_TRUE(MakeDirs(dir_.File("config/corral")).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_.File("config/corral/config.yaml"), yaml).ok());
  }
  json Plan(const std::string& model) { return Json({"start", model, "--dry-run", "--json"})["plan"]; }
  static std::string DraftOf(const json& argv) {
    for (size_t i = 0; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--spec-draft-model") return argv[i + 1];
    }
    return "";
  }
};

TEST_F(SpecTest, AutoPicksTheSmallestCompatibleDraftOnlyWhenMuchSmaller) {
  const std::string target = NameOf("target"), draft = NameOf("pairdraft");
  ASSERT_FALSE(target.empty());
  // target and its draft are alike in size (the shared embeddings dominate): no draft.
  json plan = Plan(target);
  EXPECT_EQ(DraftOf(plan["argv"]), "") << plan.dump();
  EXPECT_EQ(plan["spec"]["kind"], "none") << plan.dump();
  EXPECT_NE(plan["spec"]["reason"].get<std::string>().find("too big"), std::string::npos) << plan.dump();
  // A model six times larger with the same vocabulary: the smallest compatible one drafts.
  ASSERT_FALSE(testing::MakeModel(dir_.File("data/corral/models"), "big.gguf", {"--name", "big"}).empty());
  plan = Plan(NameOf("big"));
  EXPECT_TRUE(DraftOf(plan["argv"]).ends_with("/pairdraft.gguf")) << plan.dump();
  EXPECT_EQ(plan["spec"]["kind"], "draft");
  EXPECT_EQ(plan["spec"]["draft"], draft);
  RunResult show = Corral({"show", NameOf("big")});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("speculative   draft " + draft + " (auto"), std::string::npos) << show.out;
  RunResult text = Corral({"start", NameOf("big"), "--dry-run"});
  EXPECT_NE(text.out.find("# speculative decoding: draft " + draft), std::string::npos) << text.out;
  // off, globally (a daemon started with it).
  Corral({"daemon", "stop"});
  env_["CORRAL_SPEC"] = "off";
  plan = Plan(NameOf("big"));
  EXPECT_EQ(DraftOf(plan["argv"]), "");
  EXPECT_EQ(plan["spec"]["kind"], "none");
}

TEST_F(SpecTest, NamedDraftIsLaunchedAndTheAnswerReportsDraftTokens) {
  const std::string target = NameOf("target"), draft = NameOf("pairdraft");
  WriteConfig("models:\n  " + target + ":\n    spec: " + draft + "\n");
  json plan = Plan(target);
  EXPECT_TRUE(DraftOf(plan["argv"]).ends_with("/pairdraft.gguf")) << plan.dump();
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  // On demand through the proxy; greedy, so the target's choice is the draft's.
  const std::string body = json{
      {"model", target},
      {"messages", {{{"role", "user"}, {"content", "tell me a story"}}}},
      {"max_tokens", 48},
      {"temperature", 0}}.dump();
  auto r = testing::Http("POST", port, "/v1/chat/completions", body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  const json timings = json::parse(r->body)["timings"];
  const int64_t drafted = timings.value("draft_n", 0), accepted = timings.value("draft_n_accepted", 0);
  EXPECT_GT(drafted, 0) << timings.dump();
  // The draft is the target's first layer and the rest is near identity: most drafts hold.
  EXPECT_GE(accepted * 2, drafted) << timings.dump();
  const json ps = Ps();
  ASSERT_EQ(ps.size(), 1U) << ps.dump();
  EXPECT_TRUE(DraftOf(ps[0]["argv"]).ends_with("/pairdraft.gguf")) << ps.dump();
}

TEST_F(SpecTest, NamedDraftWithAnotherVocabularyIsRefused) {
  const std::string target = NameOf("target"), other = NameOf("othervocab");
  WriteConfig("models:\n  " + target + ":\n    spec: " + other + "\n");
  RunResult show = Corral({"show", target});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("refused at start"), std::string::npos) << show.out;
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  RunResult start = Corral({"start", target});
  EXPECT_EQ(start.exit_code, 64) << start.out << start.err;
  EXPECT_NE(start.err.find("does not share the vocabulary of " + target), std::string::npos) << start.err;
  auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(target));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->status, 200);
  EXPECT_NE(r->body.find("does not share the vocabulary"), std::string::npos) << r->body;
  EXPECT_TRUE(Running().empty());
}

}  // namespace
}  // namespace corral
