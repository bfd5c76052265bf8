// `corral model ...`: model tools. `corral model synth` writes synthetic GGUF models.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/interrupt.h"
#include "common/paths.h"
#include "synth/synth.h"

namespace corral::cli {
namespace {

struct SynthArgs {
  synth::Options options;
  bool list_presets = false;
};

int RunSynth(const GlobalOptions& global, SynthArgs& args) {
  if (args.list_presets) {
    for (const auto& p : synth::Presets()) {
      std::printf("%-7s n_embd=%-5u n_layer=%-3u n_head=%-3u n_head_kv=%-3u n_ff=%-5u ctx=%-5u %s\n", p.name,
                  p.dims.n_embd, p.dims.n_layer, p.dims.n_head, p.dims.n_head_kv, p.dims.n_ff, p.dims.n_ctx, p.summary);
    }
    return 0;
  }
  synth::Options& o = args.options;
  if (o.out_path.empty()) {
    o.out_path = DefaultModelDir() + "/synth-" + o.preset + "-" + o.vocab + "-" + o.type + ".gguf";
  }
  InstallInterruptHandlers();
  const bool tty = ::isatty(2) != 0 && !global.json;
  auto progress = [tty](size_t done, size_t total) {
    if (!tty) return;
    std::fprintf(stderr, "\rwriting tensors %zu/%zu", done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
  auto report = synth::Synthesize(o, progress);
  if (!report.ok()) {
    if (tty) std::fprintf(stderr, "\n");
    ExitCode code =
        report.status().code() == StatusCode::kInvalidArgument || report.status().code() == StatusCode::kAlreadyExists
            ? ExitCode::kUsage
            : ExitCode::kOther;
    if (report.status().code() == StatusCode::kUnavailable) code = ExitCode::kEngineMissing;
    return Fail(code, "model synth: " + report.status().message());
  }
  const auto& r = *report;
  if (global.json) {
    nlohmann::json j = {{"path", r.path},
                        {"name", r.name},
                        {"n_params", r.n_params},
                        {"n_vocab", r.n_vocab},
                        {"file_bytes", r.file_bytes},
                        {"chat_template", r.chat_template},
                        {"dims",
                         {{"n_embd", r.dims.n_embd},
                          {"n_layer", r.dims.n_layer},
                          {"n_head", r.dims.n_head},
                          {"n_head_kv", r.dims.n_head_kv},
                          {"n_ff", r.dims.n_ff},
                          {"n_ctx", r.dims.n_ctx}}}};
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("wrote %s: %s, %.1fM parameters, %.1f MiB, vocab %u%s\n", r.path.c_str(), r.name.c_str(),
                static_cast<double>(r.n_params) / 1e6, static_cast<double>(r.file_bytes) / (1024.0 * 1024.0), r.n_vocab,
                r.chat_template ? ", chat template" : "");
  }
  return 0;
}

}  // namespace

static void RegisterModel(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto* model = app.add_subcommand("model", "Model tools");
  model->require_subcommand(1);
  auto args = std::make_shared<SynthArgs>();
  auto* s = model->add_subcommand("synth", "Write a synthetic GGUF model (real tokenizer, random weights)");
  synth::Options& o = args->options;
  s->add_option("--out,-o", o.out_path, "Output file (default: the model directory)")->type_name("PATH");
  s->add_option("--preset", o.preset, "Size preset: tiny, small, medium, large")->capture_default_str();
  s->add_option("--type", o.type, "Weight type: f16, q8_0, q4_0")->capture_default_str();
  s->add_option("--vocab", o.vocab,
                "Tokenizer: a vocab name of the llama.cpp tree (llama-spm, llama-bpe, qwen2, ...) or a path")
      ->capture_default_str();
  s->add_option("--arch", o.arch, "Architecture")->capture_default_str();
  s->add_option("--seed", o.seed, "Random seed for the weights")->capture_default_str();
  s->add_option("--name", o.name, "general.name written into the file");
  s->add_option("--n-embd", o.overrides.n_embd, "Embedding width (overrides the preset)");
  s->add_option("--n-layer", o.overrides.n_layer, "Number of layers");
  s->add_option("--n-head", o.overrides.n_head, "Attention heads");
  s->add_option("--n-head-kv", o.overrides.n_head_kv, "KV heads (grouped-query attention)");
  s->add_option("--n-ff", o.overrides.n_ff, "Feed-forward width");
  s->add_option("--ctx", o.overrides.n_ctx, "Native context length");
  s->add_option("--identity-from", o.identity_from,
                "Layers from K on are near identity (attn_output, ffn_down scaled by 1e-3): with the same seed, "
                "a model written with --n-layer K is a draft with high acceptance (docs/spec.md)")
      ->type_name("K");
  s->add_flag("--force", o.force, "Overwrite an existing file");
  s->add_flag("--list-presets", args->list_presets, "List the presets and exit");
  s->add_flag("--json", global.json, "Print the result as JSON");
  s->callback([&global, &run, args] { run = [&global, args] { return RunSynth(global, *args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterModel);

}  // namespace corral::cli
