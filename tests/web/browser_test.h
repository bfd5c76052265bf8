// The base of the browser tests (tests/web): a private daemon (support/daemon_fixture.h),
// Debian's headless Chromium and puppeteer-core from the build's npm tree, and Drive(), which
// runs one Node script against the daemon's proxy with the daemon's environment. A test
// skips, saying why, when the browser or puppeteer-core is missing.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include "support/daemon_fixture.h"

#ifndef CORRAL_WEB_NPM
#error "CORRAL_WEB_NPM (build/web-npm/node_modules) must be defined"
#endif

namespace corral::testing {

class BrowserTest : public PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
      if (::access(p, X_OK) == 0) {
        chromium_ = p;
        break;
      }
    }
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (make test installs it: deps/test-packages.txt)";
    if (::access(CORRAL_WEB_NPM "/puppeteer-core", R_OK) != 0) {
      GTEST_SKIP() << "puppeteer-core is missing from " CORRAL_WEB_NPM " (the build's npm ci puts it there)";
    }
  }

  // Runs `node script args` with the daemon's environment, the browser's (CORRAL_CHROMIUM,
  // CORRAL_WEB_NPM, CORRAL_PROXY_PORT, CORRAL_SHOTS) and `vars`; its output is appended to
  // out_. Bounded by coreutils' `timeout`. Returns the exit status (-1: did not run).
  int Drive(const std::string& script, const std::string& args, int port, const std::string& shots,
            const std::map<std::string, std::string>& vars, int timeout_s) {
    std::string cmd = "env";
    for (const auto& [k, v] : env_) cmd += " " + k + "='" + v + "'";
    for (const auto& [k, v] : vars) cmd += " " + k + "='" + v + "'";
    cmd += " CORRAL_PROXY_PORT=" + std::to_string(port) + " CORRAL_SHOTS='" + shots + "'";
    cmd += " CORRAL_WEB_NPM='" CORRAL_WEB_NPM "' CORRAL_CHROMIUM='" + chromium_ + "'";
    cmd += " HOME='" + dir_.path() + "'";  // chromium's profile and crash dirs stay in the temp dir
    cmd += " timeout -k 5 " + std::to_string(timeout_s) + " node '" + script + "' " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out_.append(buf, n);
    const int rc = ::pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  std::string chromium_;
  std::string out_;
};

}  // namespace corral::testing
