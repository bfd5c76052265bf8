// Catalog listing benchmark: 1000 distinct GGUF files (32000-token vocabulary each, like the
// synthetic models) in one user directory, listed cold (no index: every header read) and
// warm (index cache valid: stat + one JSON file). DESIGN.md's target: warm <= 200 ms.
//   build/release/bench/catalog_bench [--benchmark_filter=...] (CORRAL_BENCH_FILES=N to change 1000)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "catalog/catalog.h"
#include "catalog/gguf_builder.h"

namespace {

using corral::catalog::Catalog;
using corral::catalog::Sources;

constexpr int kVocab = 32000;

std::string BenchFile(int n) {
  corral::testing::GgufBuilder b;
  b.Header(3, 2, 12);
  b.KvStr("general.architecture", "llama");
  b.KvStr("general.name", "Bench Model " + std::to_string(n));
  b.KvU32("general.file_type", 1);
  b.KvU32("llama.context_length", 4096);
  b.KvU32("llama.embedding_length", 64);
  b.KvU32("llama.block_count", 2);
  b.KvU32("llama.feed_forward_length", 128);
  b.KvU32("llama.attention.head_count", 4);
  b.KvU32("llama.attention.head_count_kv", 4);
  b.KvStr("tokenizer.ggml.model", "llama");
  b.KvStr("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
  b.Key("tokenizer.ggml.tokens", 9).ArrayHead(8, kVocab);
  for (int t = 0; t < kVocab; ++t) b.Str("tok" + std::to_string(t));
  b.Tensor("output_norm.weight", {64}, 0, 0);
  b.Tensor("token_embd.weight", {64, 16}, 1, 256);
  b.PadTo(32).Zeros(256 + 64 * 16 * 2);
  return b.bytes();
}

struct Tree {
  std::string dir;
  Sources sources;
  int files = 1000;
  Tree() {
    if (const char* n = std::getenv("CORRAL_BENCH_FILES")) files = std::atoi(n);
    char tmpl[] = "/tmp/corral-catalog-bench.XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::filesystem::create_directories(dir + "/models");
    for (int k = 0; k < files; ++k) {
      // 10 sub-directories of 100, like a few repos' worth of files.
      const std::string sub = dir + "/models/repo" + std::to_string(k % 10);
      std::filesystem::create_directories(sub);
      std::ofstream(sub + "/model-" + std::to_string(k) + ".gguf", std::ios::binary) << BenchFile(k);
    }
    sources.user = {dir + "/models"};
    sources.index_file = dir + "/index.json";
  }
  ~Tree() { std::filesystem::remove_all(dir); }
};

Tree& GetTree() {
  static Tree tree;
  return tree;
}

void BM_ListCold(benchmark::State& state) {
  Tree& t = GetTree();
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove(t.sources.index_file);
    state.ResumeTiming();
    auto cat = Catalog::Load(t.sources);
    if (!cat.ok() || static_cast<int>(cat->models().size()) != t.files) state.SkipWithError("wrong model count");
  }
  state.counters["files"] = t.files;
}

void BM_ListWarm(benchmark::State& state) {
  Tree& t = GetTree();
  (void)Catalog::Load(t.sources);  // builds the index
  for (auto _ : state) {
    auto cat = Catalog::Load(t.sources);
    if (!cat.ok() || cat->stats().headers_read != 0 || static_cast<int>(cat->models().size()) != t.files) {
      state.SkipWithError("warm listing read headers");
    }
  }
  state.counters["files"] = t.files;
}

BENCHMARK(BM_ListCold)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_ListWarm)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr, "WARNING: built with assertions on (not a release build); numbers are not representative\n");
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
