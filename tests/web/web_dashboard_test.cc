// The web dashboard in headless Chromium (Debian's chromium, driven by puppeteer-core from
// tests/web/dashboard.mjs) against a real daemon with synthetic models: no console error,
// load / pin / unpin / unload, the charts move after requests, an activity row, a streamed
// playground answer, a log streaming a new line and searched, the activity row's client
// address, the Bench page showing a committed report and a run started from the page, and
// a load refused by a too-small budget with the daemon's message. Screenshots go to
// build/<preset>/test-artifacts/web.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

#if !defined(CORRAL_WEB_SCRIPT) || !defined(CORRAL_WEB_NPM) || !defined(CORRAL_WEB_SHOTS)
#error "CORRAL_WEB_SCRIPT, CORRAL_WEB_NPM and CORRAL_WEB_SHOTS must be defined"
#endif

namespace corral {
namespace {

const std::vector<std::string> kTinyDims = {"--n-embd", "64",     "--n-layer", "2",     "--n-head",
                                            "4",        "--n-ff", "128",       "--ctx", "512"};

std::string Chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

class WebDashboardTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    chromium_ = Chromium();
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (make test installs it: deps/test-packages.txt)";
    if (::access(CORRAL_WEB_NPM "/puppeteer-core", R_OK) != 0) {
      GTEST_SKIP() << "puppeteer-core is missing from " CORRAL_WEB_NPM " (the build's npm ci puts it there)";
    }
    std::vector<std::string> a = kTinyDims;
    a.insert(a.end(), {"--name", "alpha", "--seed", "1"});
    ASSERT_FALSE(testing::MakeModel(dir_.File("data/corral/models"), "alpha.gguf", a).empty());
  }
  // Runs the browser script; its output is the test's log. Bounded by `timeout` (coreutils).
  int Drive(const std::string& mode, int port, const std::string& model) {
    std::string cmd = "env";
    for (const auto& [k, v] : env_) cmd += " " + k + "='" + v + "'";
    cmd += " CORRAL_UI_URL='http://127.0.0.1:" + std::to_string(port) + "/ui/'";
    cmd += " CORRAL_PROXY_PORT=" + std::to_string(port) + " CORRAL_MODEL='" + model + "'";
    cmd +=
        " CORRAL_SHOTS='" CORRAL_WEB_SHOTS "' CORRAL_WEB_NPM='" CORRAL_WEB_NPM "' CORRAL_CHROMIUM='" + chromium_ + "'";
    cmd += " HOME='" + dir_.path() + "'";  // chromium's profile and crash dirs stay in the temp dir
    cmd += " CORRAL_BENCH_REPORT='" + std::string(kReport) + "'";
    cmd += " timeout -k 5 300 node '" CORRAL_WEB_SCRIPT "' " + mode + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out_.append(buf, n);
    int rc = ::pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
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
  std::string chromium_;
  std::string out_;
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
