// Memory estimates, modelled on what the pinned llama-server allocates (docs/catalog.md has
// the derivation and the measured error table):
//   weights  = the tensor table's bytes (what llama-server maps as its model buffer)
//   kv       = per layer: cells × (K row + V row), cells = n_ctx padded to 256; sliding-window
//              layers keep min(cells, pad(n_swa × n_seq + n_ubatch, 256)) cells; the K/V row of
//              layer l is n_embd_head × n_head_kv(l) elements of the cache type
//   compute  = the scheduler's graph buffer at one ubatch: the f16 KQ mask (cells × n_ubatch × 2)
//              plus the widest feed-forward activations (n_ubatch × (12 n_ff + 16 n_embd) bytes,
//              fitted on synthetic models; without flash attention the KQ scores
//              cells × n_ubatch × n_head × 4 come on top), plus the logits output buffer
//              (n_vocab × 4 bytes × n_seq)
#include <algorithm>

#include "catalog/catalog.h"

namespace corral::catalog {
namespace {

constexpr uint32_t kCellPad = 256;        // llama.cpp pads the KV cache to this many cells
constexpr uint32_t kMaxLayers = 1 << 16;  // more than any real model; a bigger block_count is a lie

uint64_t Pad(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

Result<const GgmlTypeTraits*> CacheType(std::string_view name) {
  static constexpr std::string_view kAllowed[] = {"f32",  "f16",    "bf16", "q8_0", "q4_0",
                                                  "q4_1", "iq4_nl", "q5_0", "q5_1"};
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (std::find(std::begin(kAllowed), std::end(kAllowed), lower) == std::end(kAllowed)) {
    return InvalidArgument("unknown KV cache type '" + std::string(name) +
                           "' (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1)");
  }
  for (uint32_t id = 0; id < GgmlTypeCount(); ++id) {
    const GgmlTypeTraits* t = FindGgmlType(id);
    if (t == nullptr) continue;
    std::string tn = t->name;
    for (char& c : tn) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (tn == lower) return t;
  }
  return Internal("cache type table out of step: " + lower);
}

uint64_t RowBytes(const GgmlTypeTraits* t, uint64_t elems) {
  return (elems + t->block_elems - 1) / t->block_elems * t->block_bytes;
}

}  // namespace

Result<MemoryEstimate> EstimateMemory(const Model& m, uint32_t n_ctx, std::string_view cache_type_k,
                                      std::string_view cache_type_v) {
  return EstimateMemory(m, n_ctx, cache_type_k, cache_type_v, EstimateOptions{});
}

Result<MemoryEstimate> EstimateMemory(const Model& m, uint32_t n_ctx, std::string_view cache_type_k,
                                      std::string_view cache_type_v, const EstimateOptions& opt) {
  const ModelInfo& in = m.info;
  if (n_ctx == 0) n_ctx = in.n_ctx_train;
  if (n_ctx == 0) return InvalidArgument(m.name + ": no context given and the file has no native context");
  if (opt.n_ubatch == 0 || opt.n_seq == 0) return InvalidArgument("n_ubatch and n_seq must be positive");
  if (in.n_layer > kMaxLayers) {
    return InvalidArgument(m.name + ": block_count " + std::to_string(in.n_layer) + " is implausible; no estimate");
  }
  CORRAL_ASSIGN_OR_RETURN(const GgmlTypeTraits* tk, CacheType(cache_type_k));
  CORRAL_ASSIGN_OR_RETURN(const GgmlTypeTraits* tv, CacheType(cache_type_v));

  MemoryEstimate e;
  e.n_ctx = n_ctx;
  e.weights_bytes = in.tensor_bytes;

  const uint64_t cells = Pad(n_ctx, kCellPad);
  const uint64_t swa_cells =
      std::min<uint64_t>(cells, Pad(static_cast<uint64_t>(in.n_swa) * opt.n_seq + opt.n_ubatch, kCellPad));
  for (uint32_t il = 0; il < in.n_layer; ++il) {
    const uint64_t n_kv = in.HeadKv(il);
    const bool swa = il < in.swa_layers.size() && in.swa_layers[il];
    const uint64_t c = swa ? swa_cells : cells;
    e.kv_bytes +=
        c * (RowBytes(tk, uint64_t{in.n_embd_head_k} * n_kv) + RowBytes(tv, uint64_t{in.n_embd_head_v} * n_kv));
  }

  const uint64_t ub = opt.n_ubatch;
  uint64_t compute = cells * ub * 2 + ub * (12 * uint64_t{in.n_ff} + 16 * uint64_t{in.n_embd});
  if (!opt.flash_attn) compute += cells * ub * in.n_head * 4;
  compute += in.n_vocab * 4 * opt.n_seq;
  e.compute_bytes = compute;
  e.total_bytes = e.weights_bytes + e.kv_bytes + e.compute_bytes;
  return e;
}

}  // namespace corral::catalog
