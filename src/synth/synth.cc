#include "synth/synth.h"

#include <ggml.h>
#include <gguf.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "common/fs.h"
#include "common/interrupt.h"
#include "engine/engine.h"

namespace corral::synth {
namespace {

constexpr size_t kChunkFloats = size_t{4} << 20;  // rows generated per step, bounded memory
constexpr float kRmsEps = 1e-5F;
constexpr float kRopeFreqBase = 10000.0F;

struct GgufDeleter {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlDeleter {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlDeleter>;

// splitmix64: tiny, fast, and fully specified, so files are identical on every platform.
struct SplitMix64 {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float NextSigned() { return static_cast<float>(static_cast<double>(Next() >> 40) / 8388608.0 - 1.0); }
};

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

struct TypeInfo {
  const char* name;
  ggml_type type;
  uint32_t file_type;  // llama_ftype
};

constexpr TypeInfo kTypes[] = {
    {"f16", GGML_TYPE_F16, 1},
    {"q8_0", GGML_TYPE_Q8_0, 7},
    {"q4_0", GGML_TYPE_Q4_0, 2},
};

struct TensorSpec {
  std::string name;
  int64_t ne0;  // row length (input features)
  int64_t ne1;  // rows; 1 for vectors
  bool is_norm;
  float gain = 1.0F;  // multiplies the random values (kIdentityScale for near-identity layers)
};

std::vector<TensorSpec> LlamaTensors(const Dims& d, uint32_t n_vocab, uint32_t identity_from) {
  const int64_t head_dim = d.n_embd / d.n_head;
  const int64_t n_embd_kv = head_dim * d.n_head_kv;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", d.n_embd, n_vocab, false});
  for (uint32_t i = 0; i < d.n_layer; ++i) {
    std::string p = "blk." + std::to_string(i) + ".";
    // A near-identity layer writes (almost) nothing back into the residual stream.
    const float out_gain = identity_from != 0 && i >= identity_from ? kIdentityScale : 1.0F;
    t.push_back({p + "attn_norm.weight", d.n_embd, 1, true});
    t.push_back({p + "attn_q.weight", d.n_embd, d.n_embd, false});
    t.push_back({p + "attn_k.weight", d.n_embd, n_embd_kv, false});
    t.push_back({p + "attn_v.weight", d.n_embd, n_embd_kv, false});
    t.push_back({p + "attn_output.weight", d.n_embd, d.n_embd, false, out_gain});
    t.push_back({p + "ffn_norm.weight", d.n_embd, 1, true});
    t.push_back({p + "ffn_gate.weight", d.n_embd, d.n_ff, false});
    t.push_back({p + "ffn_down.weight", d.n_ff, d.n_embd, false, out_gain});
    t.push_back({p + "ffn_up.weight", d.n_embd, d.n_ff, false});
  }
  t.push_back({"output_norm.weight", d.n_embd, 1, true});
  t.push_back({"output.weight", d.n_embd, n_vocab, false});
  return t;
}

Status Validate(const Options& o, const Dims& d, const TypeInfo& type) {
  if (o.out_path.empty()) return InvalidArgument("--out PATH is required");
  if (o.arch != "llama") return InvalidArgument("unknown --arch '" + o.arch + "' (supported: llama)");
  auto positive = [](uint32_t v, const char* what) -> Status {
    if (v == 0) return InvalidArgument(std::string(what) + " must be positive");
    return Status::Ok();
  };
  CORRAL_RETURN_IF_ERROR(positive(d.n_embd, "--n-embd"));
  CORRAL_RETURN_IF_ERROR(positive(d.n_layer, "--n-layer"));
  CORRAL_RETURN_IF_ERROR(positive(d.n_head, "--n-head"));
  CORRAL_RETURN_IF_ERROR(positive(d.n_head_kv, "--n-head-kv"));
  CORRAL_RETURN_IF_ERROR(positive(d.n_ff, "--n-ff"));
  CORRAL_RETURN_IF_ERROR(positive(d.n_ctx, "--ctx"));
  if (d.n_embd > 16384 || d.n_layer > 256 || d.n_ff > 65536 || d.n_head > 256 || d.n_ctx > (1U << 20)) {
    return InvalidArgument(
        "dimensions too large (limits: n_embd 16384, n_layer 256, n_ff 65536, n_head 256, ctx 1048576)");
  }
  if (o.identity_from >= d.n_layer) {
    return InvalidArgument("--identity-from " + std::to_string(o.identity_from) + " must be below --n-layer " +
                           std::to_string(d.n_layer) + " (layers from it on are near identity)");
  }
  if (d.n_embd % d.n_head != 0) return InvalidArgument("--n-embd must be a multiple of --n-head");
  if (d.n_head % d.n_head_kv != 0) return InvalidArgument("--n-head must be a multiple of --n-head-kv");
  if ((d.n_embd / d.n_head) % 2 != 0) return InvalidArgument("the head size (n_embd / n_head) must be even for RoPE");
  const int64_t blck = ggml_blck_size(type.type);
  if (d.n_embd % blck != 0 || d.n_ff % blck != 0) {
    return InvalidArgument(std::string("--n-embd and --n-ff must be multiples of ") + std::to_string(blck) +
                           " for type " + type.name);
  }
  return Status::Ok();
}

// Writes one tensor's bytes: random values scaled by 1/sqrt(fan_in), norms all ones.
Status WriteTensor(AtomicFile& out, const TensorSpec& t, ggml_type type, uint64_t seed) {
  SplitMix64 rng{seed ^ Fnv1a(t.name)};
  const float scale = t.gain / std::sqrt(static_cast<float>(t.ne0));
  if (t.is_norm) {
    std::vector<float> ones(static_cast<size_t>(t.ne0), 1.0F);
    return out.Write(ones.data(), ones.size() * sizeof(float));
  }
  const int64_t rows_per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunkFloats) / t.ne0);
  std::vector<float> src;
  std::vector<uint8_t> dst;
  for (int64_t row = 0; row < t.ne1; row += rows_per_chunk) {
    if (Interrupted()) return Cancelled("interrupted");
    const int64_t nrows = std::min(rows_per_chunk, t.ne1 - row);
    src.resize(static_cast<size_t>(nrows * t.ne0));
    for (float& v : src) v = rng.NextSigned() * scale;
    const size_t bytes = ggml_row_size(type, t.ne0) * static_cast<size_t>(nrows);
    dst.resize(bytes);
    if (type == GGML_TYPE_F16) {
      ggml_fp32_to_fp16_row(src.data(), reinterpret_cast<ggml_fp16_t*>(dst.data()), static_cast<int64_t>(src.size()));
    } else {
      ggml_quantize_chunk(type, src.data(), dst.data(), 0, nrows, t.ne0, nullptr);
    }
    CORRAL_RETURN_IF_ERROR(out.Write(dst.data(), dst.size()));
  }
  return Status::Ok();
}

}  // namespace

const std::vector<Preset>& Presets() {
  static const std::vector<Preset> kPresets = {
      {"tiny", "~25M parameters with the llama-spm vocab", {288, 6, 6, 6, 768, 2048}},
      {"small", "~100M parameters", {768, 8, 12, 4, 2048, 4096}},
      {"medium", "~350M parameters", {1024, 20, 16, 8, 2816, 4096}},
      {"large", "~1B parameters", {2048, 20, 32, 8, 5632, 4096}},
  };
  return kPresets;
}

Result<std::string> ResolveVocab(const std::string& vocab) {
  if (vocab.find('/') != std::string::npos || vocab.ends_with(".gguf")) {
    if (::access(vocab.c_str(), R_OK) != 0) return NotFound("vocab file " + vocab + " is not readable");
    return vocab;
  }
  CORRAL_ASSIGN_OR_RETURN(std::string dir, engine::VocabDir());
  std::string path = dir + "/ggml-vocab-" + vocab + ".gguf";
  if (::access(path.c_str(), R_OK) != 0) {
    std::string known;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string f = e.path().filename().string();
      if (f.starts_with("ggml-vocab-") && f.ends_with(".gguf")) {
        known += (known.empty() ? "" : ", ") + f.substr(11, f.size() - 16);
      }
    }
    return NotFound("no vocab '" + vocab + "' in " + dir + " (known: " + known + ")");
  }
  return path;
}

Result<Report> Synthesize(const Options& o, const Progress& progress) {
  const Preset* preset = nullptr;
  for (const auto& p : Presets()) {
    if (o.preset == p.name) preset = &p;
  }
  if (preset == nullptr) return InvalidArgument("unknown --preset '" + o.preset + "' (tiny, small, medium, large)");
  const TypeInfo* type = nullptr;
  for (const auto& t : kTypes) {
    if (o.type == t.name) type = &t;
  }
  if (type == nullptr) return InvalidArgument("unknown --type '" + o.type + "' (f16, q8_0, q4_0)");

  Dims d = preset->dims;
  const Dims& ov = o.overrides;
  if (ov.n_embd) d.n_embd = ov.n_embd;
  if (ov.n_layer) d.n_layer = ov.n_layer;
  if (ov.n_head) d.n_head = ov.n_head;
  if (ov.n_head_kv)
    d.n_head_kv = ov.n_head_kv;
  else if (ov.n_head)
    d.n_head_kv = ov.n_head;
  if (ov.n_ff) d.n_ff = ov.n_ff;
  if (ov.n_ctx) d.n_ctx = ov.n_ctx;
  CORRAL_RETURN_IF_ERROR(Validate(o, d, *type));

  if (!o.force && ::access(o.out_path.c_str(), F_OK) == 0) {
    return Status(StatusCode::kAlreadyExists, o.out_path + " exists (use --force to overwrite)");
  }

  CORRAL_ASSIGN_OR_RETURN(std::string vocab_path, ResolveVocab(o.vocab));
  gguf_init_params vp{/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufPtr vocab(gguf_init_from_file(vocab_path.c_str(), vp));
  if (!vocab) return Corrupt("cannot read vocab file " + vocab_path);
  // Keep only the tokenizer from the vocab file.
  for (int64_t i = gguf_get_n_kv(vocab.get()) - 1; i >= 0; --i) {
    std::string key = gguf_get_key(vocab.get(), i);
    if (!key.starts_with("tokenizer.")) gguf_remove_key(vocab.get(), key.c_str());
  }
  const int64_t tokens_id = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
  if (tokens_id < 0) return Corrupt(vocab_path + " has no tokenizer.ggml.tokens");
  const auto n_vocab = static_cast<uint32_t>(gguf_get_arr_n(vocab.get(), tokens_id));

  Report report;
  report.path = o.out_path;
  report.dims = d;
  report.n_vocab = n_vocab;
  report.name = o.name.empty() ? "corral-synth-" + o.preset + "-" + o.type : o.name;
  report.chat_template = gguf_find_key(vocab.get(), "tokenizer.chat_template") >= 0;

  GgufPtr out(gguf_init_empty());
  gguf_context* g = out.get();
  gguf_set_val_str(g, "general.architecture", "llama");
  gguf_set_val_str(g, "general.name", report.name.c_str());
  gguf_set_val_str(g, "general.description", "synthetic model written by corral model synth; random weights");
  gguf_set_val_u32(g, "general.file_type", type->file_type);
  gguf_set_val_u32(g, "general.quantization_version", GGML_QNT_VERSION);
  gguf_set_val_u64(g, "corral.synth.seed", o.seed);
  if (o.identity_from != 0) gguf_set_val_u32(g, "corral.synth.identity_from", o.identity_from);
  gguf_set_val_u32(g, "llama.context_length", d.n_ctx);
  gguf_set_val_u32(g, "llama.embedding_length", d.n_embd);
  gguf_set_val_u32(g, "llama.block_count", d.n_layer);
  gguf_set_val_u32(g, "llama.feed_forward_length", d.n_ff);
  gguf_set_val_u32(g, "llama.attention.head_count", d.n_head);
  gguf_set_val_u32(g, "llama.attention.head_count_kv", d.n_head_kv);
  gguf_set_val_u32(g, "llama.rope.dimension_count", d.n_embd / d.n_head);
  gguf_set_val_f32(g, "llama.rope.freq_base", kRopeFreqBase);
  gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", kRmsEps);
  gguf_set_val_u32(g, "llama.vocab_size", n_vocab);
  gguf_set_kv(g, vocab.get());

  const std::vector<TensorSpec> specs = LlamaTensors(d, n_vocab, o.identity_from);
  ggml_init_params gp{ggml_tensor_overhead() * (specs.size() + 1), nullptr, /*no_alloc=*/true};
  GgmlPtr meta(ggml_init(gp));
  if (!meta) return Internal("ggml_init failed");
  for (const auto& s : specs) {
    ggml_type tt = s.is_norm ? GGML_TYPE_F32 : type->type;
    ggml_tensor* t =
        s.ne1 == 1 ? ggml_new_tensor_1d(meta.get(), tt, s.ne0) : ggml_new_tensor_2d(meta.get(), tt, s.ne0, s.ne1);
    ggml_set_name(t, s.name.c_str());
    gguf_add_tensor(g, t);
    report.n_params += static_cast<uint64_t>(s.ne0 * s.ne1);
  }

  std::string parent = std::filesystem::path(o.out_path).parent_path().string();
  if (!parent.empty()) CORRAL_RETURN_IF_ERROR(MakeDirs(parent));
  AtomicFile file;
  CORRAL_RETURN_IF_ERROR(file.Open(o.out_path, 0644));
  std::vector<uint8_t> header(gguf_get_meta_size(g));
  gguf_get_meta_data(g, header.data());
  CORRAL_RETURN_IF_ERROR(file.Write(header.data(), header.size()));
  const size_t alignment = gguf_get_alignment(g);
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    CORRAL_RETURN_IF_ERROR(
        WriteTensor(file, s, s.is_norm ? GGML_TYPE_F32 : type->type, o.seed).WithContext("writing " + s.name));
    CORRAL_RETURN_IF_ERROR(file.PadTo(alignment));
    if (progress) progress(i + 1, specs.size());
  }
  report.file_bytes = file.offset();
  CORRAL_RETURN_IF_ERROR(file.Commit());
  return report;
}

}  // namespace corral::synth
