// A test fixture for a private daemon (isolated XDG dirs, proxy on a free loopback port):
// the CLI run against it, JSON answers, the proxy's port, catalog names and running
// children. Shared by the daemon tests. Test-only code.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace corral::testing {

class PrivateDaemonTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  void SetUp() override { env_ = PrivateDaemonEnv(dir_); }
  void TearDown() override { Corral({"daemon", "stop"}); }

  RunResult Corral(const std::vector<std::string>& args) { return RunCorral(args, env_); }
  json Json(const std::vector<std::string>& args) {
    RunResult r = Corral(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  // Starts the daemon in the background; returns its proxy's port (and remembers its pid).
  int StartDaemon() {
    RunResult r = Corral({"daemon", "start"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json status = Json({"status", "--json"});
    pid_ = status["daemon"].value("pid", 0);
    std::string base = status["proxy"].value("base_url", std::string());
    size_t colon = base.rfind(':');
    return colon == std::string::npos ? 0 : std::stoi(base.substr(colon + 1));
  }
  // Canonical catalog name of the model in FILE_STEM.gguf ("" when not listed).
  std::string NameOf(const std::string& file_stem) {
    json listing = Json({"list", "--json"});
    if (std::getenv("CORRAL_TEST_DEBUG") != nullptr) std::cerr << listing.dump() << "\n";
    for (const auto& m : listing["models"]) {
      for (const auto& f : m["files"]) {
        if (f.get<std::string>().ends_with("/" + file_stem + ".gguf")) return m["name"];
      }
    }
    return "";
  }
  json Ps() { return Json({"ps", "--json"})["models"]; }
  // A short deterministic chat completion request for MODEL.
  static std::string Chat(const std::string& model, int tokens = 4) {
    return json{{"model", model},
                {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                {"max_tokens", tokens},
                {"temperature", 0}}
        .dump();
  }
  // Names of the running children, sorted.
  std::vector<std::string> Running() {
    std::vector<std::string> out;
    for (const auto& m : Ps()) out.push_back(m["name"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  int pid_ = 0;
};

}  // namespace corral::testing
