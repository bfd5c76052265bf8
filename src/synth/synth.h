// `corral model synth`: writes a real GGUF model that the pinned llama-server loads and
// generates from. The tokenizer (and chat template, where present) is copied from a vocab
// file of the llama.cpp tree; weights are random from a seed. The output is gibberish and
// the speed is real: it is the embedded default for the demo, the tests and the benchmarks.
//
// Determinism: the same options give byte-identical files. Each tensor's values come from
// its own PRNG stream seeded by (seed, tensor name), so the bytes do not depend on the
// order or chunking of generation.
//
// The file is written through ggml's own gguf API (metadata) and streamed tensor by tensor
// (data), so a 1B-parameter model never has to be held in memory at once. It is written
// atomically: on any failure or Ctrl+C no partial file is left at the target path.
//
// Thread-safety: Synthesize() may run concurrently for different outputs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral::synth {

struct Dims {
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t n_ff = 0;
  uint32_t n_ctx = 0;  // llama.context_length (the native context)
};

struct Preset {
  const char* name;
  const char* summary;
  Dims dims;
};

// tiny (~25M with the llama-spm vocab), small (~100M), medium (~350M), large (~1B).
const std::vector<Preset>& Presets();

struct Options {
  std::string out_path;
  std::string arch = "llama";
  std::string vocab = "llama-spm";  // ggml-vocab-NAME.gguf of the pinned tree, or a path
  std::string preset = "tiny";
  std::string type = "f16";  // f16 | q8_0 | q4_0
  uint64_t seed = 42;
  Dims overrides;      // non-zero fields replace the preset's
  std::string name;    // general.name; default "corral-synth-<preset>-<type>"
  bool force = false;  // overwrite an existing file
  // Layers >= identity_from (0 = off) are near identity in the residual stream: their
  // attn_output and ffn_down weights are scaled by kIdentityScale, so the layer adds almost
  // nothing. A draft written with the same seed, vocab, type and dims but n_layer =
  // identity_from shares the first layers bit for bit (tensor values are seeded by (seed,
  // tensor name)) and predicts nearly the same next token: a speculative-decoding pair with
  // high acceptance (docs/spec.md).
  uint32_t identity_from = 0;
};

// The factor applied to attn_output / ffn_down of the near-identity layers.
inline constexpr float kIdentityScale = 1e-3F;

struct Report {
  std::string path;
  std::string name;
  Dims dims;
  uint32_t n_vocab = 0;
  uint64_t n_params = 0;
  uint64_t file_bytes = 0;
  bool chat_template = false;
};

// Called after each tensor with (tensors done, tensors total).
using Progress = std::function<void(size_t, size_t)>;

// Validates `options` (clear InvalidArgument errors) and writes the model.
Result<Report> Synthesize(const Options& options, const Progress& progress = {});

// Resolves a vocab name ("llama-spm") or path to a vocab file path.
Result<std::string> ResolveVocab(const std::string& vocab);

}  // namespace corral::synth
