// The stock llama.cpp web UI (the pinned engine's tools/ui, built by scripts/llama-ui.sh) in
// headless Chromium against a real daemon with two synthetic models, served by Corral's proxy
// under /llama/ (docs/proxy.md): the page loads with no console error, its model picker lists
// the catalog (router mode), choosing a model loads it, a chat message streams an answer
// through Corral, and the UI's own requests include the router-mode ones. Driven by
// tests/web/llama_ui.mjs; screenshots go to build/<preset>/test-artifacts/llama-ui.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

#if !defined(CORRAL_LLAMA_UI_SCRIPT) || !defined(CORRAL_WEB_NPM) || !defined(CORRAL_LLAMA_UI_SHOTS) || \
    !defined(CORRAL_LLAMA_UI_DIR)
#error "CORRAL_LLAMA_UI_SCRIPT, CORRAL_WEB_NPM, CORRAL_LLAMA_UI_SHOTS and CORRAL_LLAMA_UI_DIR must be defined"
#endif

namespace corral {
namespace {

std::string Chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

class LlamaUiBrowserTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    if (::access(CORRAL_LLAMA_UI_DIR "/index.html", R_OK) != 0) {
      GTEST_SKIP() << "the llama.cpp web UI is not built at " CORRAL_LLAMA_UI_DIR " (make llama-ui; make test does it)";
    }
    chromium_ = Chromium();
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (make test installs it: deps/test-packages.txt)";
    if (::access(CORRAL_WEB_NPM "/puppeteer-core", R_OK) != 0) {
      GTEST_SKIP() << "puppeteer-core is missing from " CORRAL_WEB_NPM " (the build's npm ci puts it there)";
    }
    ASSERT_TRUE(testing::MakeAlphaBravo(dir_.File("data/corral/models")));
    env_["CORRAL_LLAMA_UI"] = CORRAL_LLAMA_UI_DIR;
  }
  // Runs the browser script; its output is the test's log. Bounded by `timeout` (coreutils).
  int Drive(int port, const std::string& model, const std::string& other) {
    std::string cmd = "env";
    for (const auto& [k, v] : env_) cmd += " " + k + "='" + v + "'";
    cmd += " CORRAL_LLAMA_UI_URL='http://127.0.0.1:" + std::to_string(port) + "/llama/'";
    cmd += " CORRAL_PROXY_PORT=" + std::to_string(port) + " CORRAL_MODEL='" + model + "' CORRAL_OTHER_MODEL='" + other +
           "'";
    cmd += " CORRAL_SHOTS='" CORRAL_LLAMA_UI_SHOTS "' CORRAL_WEB_NPM='" CORRAL_WEB_NPM "' CORRAL_CHROMIUM='" +
           chromium_ + "'";
    cmd += " HOME='" + dir_.path() + "'";  // chromium's profile and crash dirs stay in the temp dir
    cmd += " timeout -k 5 240 node '" CORRAL_LLAMA_UI_SCRIPT "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out_.append(buf, n);
    int rc = ::pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::string chromium_;
  std::string out_;
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
