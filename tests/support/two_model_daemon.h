// A private daemon (daemon_fixture.h) whose models directory holds two tiny synthetic
// models, "alpha" (seed 1) and "bravo" (seed 2), alike but for their weights: the fixture
// the KV-keep, speculative-decoding and router-mode tests had each written for themselves.
// Test-only code.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral::testing {

class TwoModelDaemonTest : public PrivateDaemonTest {
 protected:
  // `ctx`: the models' training context (--ctx of the model maker).
  explicit TwoModelDaemonTest(int ctx = 1024) : ctx_(ctx) {}

  void SetUp() override {
    PrivateDaemonTest::SetUp();
    const std::string models = dir_.File("data/corral/models");
    alpha_path_ = MakeModel(models, "alpha.gguf", Dims("alpha", "1"));
    bravo_path_ = MakeModel(models, "bravo.gguf", Dims("bravo", "2"));
    ASSERT_FALSE(alpha_path_.empty());
    ASSERT_FALSE(bravo_path_.empty());
  }

  std::string alpha_path_, bravo_path_;

 private:
  std::vector<std::string> Dims(const char* name, const char* seed) const {
    return {"--n-embd", "64",    "--n-layer",          "2",      "--n-head", "4",      "--n-ff",
            "128",      "--ctx", std::to_string(ctx_), "--name", name,       "--seed", seed};
  }
  int ctx_;
};

}  // namespace corral::testing
