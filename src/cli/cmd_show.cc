// `corral show MODEL`: everything the catalog knows about one model, with memory estimates
// at the default and the native context. MODEL is a name, alias, unique substring or path;
// none or several matches exit with 66 and the candidates.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "catalog/catalog.h"
#include "catalog/spec.h"
#include "cli/commands.h"

namespace corral::cli {
namespace {

constexpr uint32_t kDefaultContext = 4096;  // the context shown as "default" (capped at native)

struct ShowArgs {
  std::string model;
  uint32_t ctx = 0;
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
};

int RunShow(const GlobalOptions& global, const ShowArgs& args) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  auto cat = catalog::Catalog::Load(*config);
  if (!cat.ok()) return Fail(ExitCodeFor(cat.status()), "show: " + cat.status().message());
  auto model = cat->Resolve(args.model);
  if (!model.ok()) {
    const StatusCode code = model.status().code();
    ExitCode exit = code == StatusCode::kNotFound || code == StatusCode::kAmbiguous ? ExitCode::kModelReference
                                                                                    : ExitCodeFor(model.status());
    return Fail(exit, "show: " + model.status().message());
  }
  const catalog::Model& m = *model;
  std::vector<uint32_t> contexts;
  if (args.ctx != 0) contexts.push_back(args.ctx);
  if (m.n_ctx_train != 0)
    contexts.push_back(std::min(kDefaultContext, m.n_ctx_train));
  else
    contexts.push_back(kDefaultContext);
  if (m.n_ctx_train != 0 && m.n_ctx_train != contexts.back()) contexts.push_back(m.n_ctx_train);
  std::vector<catalog::MemoryEstimate> estimates;
  for (uint32_t c : contexts) {
    auto e = catalog::EstimateMemory(m, c, args.cache_type_k, args.cache_type_v);
    if (!e.ok()) return Fail(ExitCodeFor(e.status()), "show: " + e.status().message());
    estimates.push_back(*e);
  }
  // Speculative decoding as a start would choose it (docs/spec.md).
  auto spec = catalog::ChooseSpec(m, *cat, catalog::SpecSettingFor(*config, *cat, m.path));
  if (global.json) {
    nlohmann::json j = catalog::ModelJson(m);
    j["spec"] = spec.ok() ? catalog::SpecJson(*spec) : nlohmann::json{{"error", spec.status().message()}};
    j["memory"] = nlohmann::json::array();
    for (const auto& e : estimates) {
      nlohmann::json je = catalog::EstimateJson(e);
      je["cache_type_k"] = args.cache_type_k;
      je["cache_type_v"] = args.cache_type_v;
      j["memory"].push_back(je);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("name          %s\n", m.name.c_str());
  for (const auto& a : m.aliases) std::printf("alias         %s\n", a.c_str());
  if (!m.info.name.empty()) std::printf("general.name  %s\n", m.info.name.c_str());
  std::printf("architecture  %s\n", m.architecture.c_str());
  std::printf("parameters    %s (%llu)\n", catalog::HumanCount(m.n_params).c_str(),
              static_cast<unsigned long long>(m.n_params));
  std::printf("quant         %s\n", m.quant.empty() ? "?" : m.quant.c_str());
  std::printf("context       %u native\n", m.n_ctx_train);
  std::printf("layers        %u (n_embd %u, heads %u, kv heads %u%s)\n", m.info.n_layer, m.info.n_embd, m.info.n_head,
              m.info.HeadKv(0), m.info.n_swa != 0 ? (", sliding window " + std::to_string(m.info.n_swa)).c_str() : "");
  std::printf("tokenizer     %s, %llu tokens\n", m.info.tokenizer.empty() ? "?" : m.info.tokenizer.c_str(),
              static_cast<unsigned long long>(m.info.n_vocab));
  if (m.info.vocab_hash != 0) std::printf("vocab hash    %s\n", catalog::VocabHashText(m.info.vocab_hash).c_str());
  if (m.info.nextn_layers != 0) std::printf("mtp layers    %u (nextn_predict_layers)\n", m.info.nextn_layers);
  std::printf("speculative   %s\n",
              spec.ok() ? catalog::SpecLine(*spec).c_str() : ("refused at start: " + spec.status().message()).c_str());
  std::printf("chat template %s\n", m.info.chat_template ? "yes" : "no");
  std::printf("found in      %s%s\n", m.source.c_str(), m.origin.empty() ? "" : (" (" + m.origin + ")").c_str());
  std::printf("size          %s\n", catalog::HumanBytes(m.size_bytes).c_str());
  for (const auto& f : m.files) std::printf("file          %s\n", f.c_str());
  if (!m.mmproj.empty()) std::printf("mmproj        %s\n", m.mmproj.c_str());
  std::printf("memory (KV cache %s/%s):\n", args.cache_type_k.c_str(), args.cache_type_v.c_str());
  std::printf("  %8s  %10s  %10s  %10s  %10s\n", "context", "weights", "kv cache", "compute", "total");
  for (const auto& e : estimates) {
    std::printf("  %8u  %10s  %10s  %10s  %10s\n", e.n_ctx, catalog::HumanBytes(e.weights_bytes).c_str(),
                catalog::HumanBytes(e.kv_bytes).c_str(), catalog::HumanBytes(e.compute_bytes).c_str(),
                catalog::HumanBytes(e.total_bytes).c_str());
  }
  return 0;
}

}  // namespace

static void RegisterShow(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto args = std::make_shared<ShowArgs>();
  auto* c = app.add_subcommand("show", "Show one model: metadata, files, where it was found, memory estimates");
  c->add_option("model", args->model, "A model name, alias, unique substring or path")->required();
  c->add_option("--ctx,-c", args->ctx, "Also estimate memory at this context");
  c->add_option("--cache-type-k", args->cache_type_k, "KV cache type for K (f16, q8_0, ...)")->capture_default_str();
  c->add_option("--cache-type-v", args->cache_type_v, "KV cache type for V")->capture_default_str();
  c->add_flag("--json", global.json, "Print JSON");
  c->callback([&global, &run, args] { run = [&global, args] { return RunShow(global, *args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterShow);

}  // namespace corral::cli
