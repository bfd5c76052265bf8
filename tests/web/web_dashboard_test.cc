// The web dashboard in headless Chromium (Debian's chromium, driven by puppeteer-core from
// tests/web/dashboard.mjs) against a real daemon with synthetic models: no console error,
// load / pin / unpin / unload, the charts move after requests, an activity row, a streamed
// playground answer, a log streaming a new line and searched, the activity row's client
// address, the Bench page showing a committed report and a run started from the page, and
// a load refused by a too-small budget with the daemon's message. Screenshots go to
// build/<preset>/test-artifacts/web.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/test_support.h"
#include "web/browser_test.h"

#if !defined(CORRAL_WEB_SCRIPT) || !defined(CORRAL_WEB_SHOTS)
#error "CORRAL_WEB_SCRIPT and CORRAL_WEB_SHOTS must be defined"
#endif

namespace corral {
namespace {

const std::vector<std::string> kTinyDims = {"--n-embd", "64",     "--n-layer", "2",     "--n-head",
                                            "4",        "--n-ff", "128",       "--ctx", "512"};

class WebDashboardTest : public testing::BrowserTest {
 protected:
  void SetUp() override {
    BrowserTest::SetUp();
    if (IsSkipped()) return;
    std::vector<std::string> a = kTinyDims;
    a.insert(a.end(), {"--name", "alpha", "--seed", "1"});
    ASSERT_FALSE(testing::MakeModel(dir_.File("data/corral/models"), "alpha.gguf", a).empty());
  }
  int Drive(const std::string& mode, int port, const std::string& model) {
    return BrowserTest::Drive(CORRAL_WEB_SCRIPT, mode, port, CORRAL_WEB_SHOTS,
                              {{"CORRAL_UI_URL", "http://127.0.0.1:" + std::to_string(port) + "/ui/"},
                               {"CORRAL_MODEL", model},
                               {"CORRAL_BENCH_REPORT", kReport}},
                              300);
  }
  // A committed `corral bench` report, put where the daemon lists reports (its state folder).
  static constexpr const char* kReport = "20261202T021728Z";
  void CopyReport() {
    std::error_code ec;
    const std::string to = dir_.File("state/corral/bench/") + kReport;
    std::filesystem::create_directories(to, ec);
    std::filesystem::copy(std::string(CORRAL_TEST_SOURCE_DIR "/bench/results/") + kReport, to,
                          std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing,
                          ec);
    ASSERT_FALSE(ec) << ec.message();
  }
};

TEST_F(WebDashboardTest, ModelsChartsActivityPlaygroundLogsBench) {
  CopyReport();
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string model = NameOf("alpha");
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(Drive("full", port, model), 0) << out_;
  std::cout << out_;
}

TEST_F(WebDashboardTest, TooSmallBudgetShowsTheRefusal) {
  env_["CORRAL_MEMORY_BUDGET"] = "4MiB";
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string model = NameOf("alpha");
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(Drive("refusal", port, model), 0) << out_;
  std::cout << out_;
}

}  // namespace
}  // namespace corral
