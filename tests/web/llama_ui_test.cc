// The stock llama.cpp web UI (the pinned engine's tools/ui, built by scripts/llama-ui.sh) in
// headless Chromium against a real daemon with two synthetic models, served by Corral's proxy
// under /llama/ (docs/proxy.md): the page loads with no console error, its model picker lists
// the catalog (router mode), choosing a model loads it, a chat message streams an answer
// through Corral, and the UI's own requests include the router-mode ones. Driven by
// tests/web/llama_ui.mjs; screenshots go to build/<preset>/test-artifacts/llama-ui.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

#include "support/test_support.h"
#include "web/browser_test.h"

#if !defined(CORRAL_LLAMA_UI_SCRIPT) || !defined(CORRAL_LLAMA_UI_SHOTS) || !defined(CORRAL_LLAMA_UI_DIR)
#error "CORRAL_LLAMA_UI_SCRIPT, CORRAL_LLAMA_UI_SHOTS and CORRAL_LLAMA_UI_DIR must be defined"
#endif

namespace corral {
namespace {

class LlamaUiBrowserTest : public testing::BrowserTest {
 protected:
  void SetUp() override {
    BrowserTest::SetUp();
    if (IsSkipped()) return;
    if (::access(CORRAL_LLAMA_UI_DIR "/index.html", R_OK) != 0) {
      GTEST_SKIP() << "the llama.cpp web UI is not built at " CORRAL_LLAMA_UI_DIR " (make llama-ui; make test does it)";
    }
    ASSERT_TRUE(testing::MakeAlphaBravo(dir_.File("data/corral/models")));
    env_["CORRAL_LLAMA_UI"] = CORRAL_LLAMA_UI_DIR;
  }
  int Drive(int port, const std::string& model, const std::string& other) {
    return BrowserTest::Drive(CORRAL_LLAMA_UI_SCRIPT, "", port, CORRAL_LLAMA_UI_SHOTS,
                              {{"CORRAL_LLAMA_UI_URL", "http://127.0.0.1:" + std::to_string(port) + "/llama/"},
                               {"CORRAL_MODEL", model},
                               {"CORRAL_OTHER_MODEL", other}},
                              240);
  }
};

TEST_F(LlamaUiBrowserTest, PickerLoadsAModelAndAChatStreamsThroughCorral) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  ASSERT_FALSE(alpha.empty());
  ASSERT_FALSE(bravo.empty());
  EXPECT_EQ(Drive(port, alpha, bravo), 0) << out_;
  std::cout << out_;
  // The model the UI loaded runs under Corral (started by the UI's POST /models/load).
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});
}

}  // namespace
}  // namespace corral
