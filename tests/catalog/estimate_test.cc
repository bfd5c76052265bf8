// Memory estimates against what the real llama-server allocates on synthetic models. The
// server's own log lines (model / KV / compute / output buffer sizes) are parsed and
// compared; the table printed here is the one docs/catalog.md reports. Also unit checks of
// the KV formula for grouped-query attention, quantised caches and sliding-window layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <regex>

#include "catalog/catalog.h"
#include "support/test_support.h"

namespace corral::catalog {
namespace {

using corral::testing::LlamaServer;
using corral::testing::MakeModel;
using corral::testing::TempDir;

// Sum of every "<what> buffer size = X MiB" line in the log, in bytes.
double LoggedMiB(const std::string& log, const std::string& what) {
  std::regex re(what + " buffer size = *([0-9.]+) MiB");
  double sum = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it) {
    sum += std::stod((*it)[1].str());
  }
  return sum;
}

double MiB(uint64_t b) {
  return static_cast<double>(b) / (1024.0 * 1024.0);
}

struct Case {
  const char* label;
  std::vector<std::string> synth;
  uint32_t n_ctx;
  const char* cache_type;
  const char* n_ubatch;
};

TEST(EstimateVsLlamaServer, WithinTolerance) {
  TempDir dir;
  const std::vector<Case> cases = {
      {"tiny f16 c512",
       {"--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128", "--ctx", "512"},
       512,
       "f16",
       "512"},
      {"tiny f16 c8192",
       {"--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128", "--ctx", "512"},
       8192,
       "f16",
       "512"},
      {"256x4 f16 c4096",
       {"--n-embd", "256", "--n-layer", "4", "--n-head", "8", "--n-ff", "1024", "--ctx", "4096"},
       4096,
       "f16",
       "512"},
      {"256x4 q8_0-kv c4096",
       {"--n-embd", "256", "--n-layer", "4", "--n-head", "8", "--n-ff", "1024", "--ctx", "4096"},
       4096,
       "q8_0",
       "512"},
      {"256x4 q4_0 c1000",
       {"--n-embd", "256", "--n-layer", "4", "--n-head", "8", "--n-ff", "1024", "--ctx", "4096", "--type", "q4_0"},
       1000,
       "f16",
       "512"},
      {"512x4 gqa c8192",
       {"--n-embd", "512", "--n-layer", "4", "--n-head", "8", "--n-head-kv", "2", "--n-ff", "2048", "--ctx", "8192"},
       8192,
       "f16",
       "512"},
      {"bpe ff4096 c2048",
       {"--n-embd", "128", "--n-layer", "2", "--n-head", "4", "--n-ff", "4096", "--ctx", "2048", "--vocab",
        "llama-bpe"},
       2048,
       "f16",
       "512"},
      {"256x4 ub256 c16384",
       {"--n-embd", "256", "--n-layer", "4", "--n-head", "8", "--n-ff", "1024", "--ctx", "4096"},
       16384,
       "f16",
       "256"},
  };
  std::printf("| case | weights est/actual MiB | KV est/actual MiB | compute+output est/actual MiB | total error |\n");
  std::printf("|---|---|---|---|---|\n");
  std::map<std::string, std::string> made;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    std::string key;
    for (const auto& a : c.synth) key += a + " ";
    if (made.count(key) == 0) {
      made[key] = MakeModel(dir.path(), "m" + std::to_string(made.size()) + ".gguf", c.synth);
    }
    const std::string path = made[key];
    ASSERT_FALSE(path.empty());
    auto model = ModelFromFile(path);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EstimateOptions opt;
    opt.n_ubatch = static_cast<uint32_t>(std::stoul(c.n_ubatch));
    auto est = EstimateMemory(*model, c.n_ctx, c.cache_type, c.cache_type, opt);
    ASSERT_TRUE(est.ok()) << est.status().ToString();
    auto server = LlamaServer::Start(path, {"-c", std::to_string(c.n_ctx), "-ctk", c.cache_type, "-ctv", c.cache_type,
                                            "-ub", c.n_ubatch, "-lv", "4"});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    const std::string log = (*server)->log();
    // Mapped weights plus any repacked copy (Q4_0 on x86 is repacked into a second buffer).
    const double weights = LoggedMiB(log, "model");
    const double mapped = LoggedMiB(log, "CPU_Mapped model");
    const double kv = LoggedMiB(log, "KV");
    const double compute = LoggedMiB(log, "compute") + LoggedMiB(log, "output");
    ASSERT_GT(weights, 0) << log;
    ASSERT_GT(kv, 0) << log;
    ASSERT_GT(compute, 0) << log;
    const double actual = weights + kv + compute;
    const double error = (MiB(est->total_bytes) - actual) / actual * 100.0;
    std::printf("| %s | %.2f / %.2f%s | %.2f / %.2f | %.2f / %.2f | %+.1f %% |\n", c.label, MiB(est->weights_bytes),
                weights, mapped != weights ? " (mapped + repacked)" : "", MiB(est->kv_bytes), kv,
                MiB(est->compute_bytes), compute, error);
    EXPECT_NEAR(MiB(est->kv_bytes), kv, 0.01 + kv * 0.01);
    if (weights == mapped) {
      EXPECT_NEAR(MiB(est->weights_bytes), mapped, 0.02 + mapped * 0.02);
    } else {
      // Repacked: the mapped range still spans the repacked tensors, so the two buffers
      // overlap; the tensor bytes lie between the larger buffer and their sum.
      EXPECT_GE(MiB(est->weights_bytes), std::max(mapped, weights - mapped));
      EXPECT_LE(MiB(est->weights_bytes), weights);
    }
    EXPECT_NEAR(MiB(est->compute_bytes), compute, 0.5 + compute * 0.25);
  }
}

TEST(Estimate, KvFormulaGqaQuantAndSlidingWindow) {
  Model m;
  m.name = "x";
  m.info.n_layer = 4;
  m.info.n_embd = 512;
  m.info.n_head = 8;
  m.info.n_head_kv = {2};
  m.info.n_embd_head_k = m.info.n_embd_head_v = 64;
  m.info.n_ctx_train = 8192;
  m.info.tensor_bytes = 1000;
  auto full = EstimateMemory(m, 1000);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->kv_bytes, 4u * 1024 * (128 * 2) * 2);  // 1000 cells pad to 1024
  EXPECT_EQ(full->weights_bytes, 1000u);
  EXPECT_EQ(full->total_bytes, full->weights_bytes + full->kv_bytes + full->compute_bytes);
  auto q8 = EstimateMemory(m, 1024, "q8_0", "q8_0");
  EXPECT_EQ(q8->kv_bytes, 4u * 1024 * (128 / 32 * 34) * 2);
  auto native = EstimateMemory(m, 0);
  EXPECT_EQ(native->n_ctx, 8192u);
  // Per-layer KV heads (some layers without attention).
  m.info.n_head_kv = {2, 0, 2, 0};
  EXPECT_EQ(EstimateMemory(m, 1024)->kv_bytes, 2u * 1024 * (128 * 2) * 2);
  // Sliding window: layers 0-2 keep pad(256 x 4 + 512, 256) = 1536 cells, layer 3 all 8192.
  m.info.n_head_kv = {2};
  m.info.n_swa = 256;
  m.info.swa_layers = {true, true, true, false};
  EXPECT_EQ(EstimateMemory(m, 8192)->kv_bytes, (3u * 1536 + 8192) * (128 * 2) * 2);
  EXPECT_EQ(EstimateMemory(m, 1024)->kv_bytes, 4u * 1024 * (128 * 2) * 2);  // window wider than context
  EXPECT_EQ(EstimateMemory(m, 1024, "q9").status().code(), StatusCode::kInvalidArgument);
  m.info.n_ctx_train = 0;
  EXPECT_EQ(EstimateMemory(m, 0).status().code(), StatusCode::kInvalidArgument);
  m.info.n_layer = 4000000000u;  // a hostile block_count must not make the estimate loop for minutes
  EXPECT_EQ(EstimateMemory(m, 1024).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace corral::catalog
