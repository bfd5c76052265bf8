// ModelInfo: what the catalog keeps about one GGUF file — the facts a listing, a name and a
// memory estimate need, extracted from the header once and stored in the index cache so a
// warm listing never opens the file again.
//
// Thread-safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "catalog/gguf_reader.h"
#include "common/status.h"

namespace corral::catalog {

struct ModelInfo {
  // general.*
  std::string architecture;         // general.architecture
  std::string type;                 // general.type ("model", "mmproj", ...)
  std::string name;                 // general.name
  std::string basename;             // general.basename
  std::string finetune;             // general.finetune
  std::string size_label;           // general.size_label
  uint32_t file_type = UINT32_MAX;  // general.file_type (llama_ftype); UINT32_MAX = absent
  std::string quant;                // "Q4_K_M": from file_type, else the dominant tensor type

  // Tensor table (summed over every shard once the shards are merged).
  uint64_t n_params = 0;
  uint64_t tensor_bytes = 0;
  uint64_t n_tensors = 0;

  // Hyper-parameters ({arch}.*), 0 when absent.
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_ff = 0;                // the largest feed-forward width over layers
  uint32_t n_head = 0;              // the largest over layers
  std::vector<uint32_t> n_head_kv;  // per layer (one entry = the same for every layer)
  uint32_t n_embd_head_k = 0;       // key_length, else n_embd / n_head
  uint32_t n_embd_head_v = 0;       // value_length, else n_embd / n_head
  uint32_t n_swa = 0;               // attention.sliding_window
  std::vector<bool> swa_layers;     // per layer: true = sliding-window layer; empty = none

  // Tokenizer and template.
  std::string tokenizer;  // tokenizer.ggml.model ("llama", "gpt2", ...)
  uint64_t n_vocab = 0;   // tokenizer.ggml.tokens count (or {arch}.vocab_size)
  bool chat_template = false;
  bool template_tools = false;     // the chat template renders tool definitions
  bool template_thinking = false;  // the chat template knows reasoning (<think>, enable_thinking, ...)
  int32_t pooling_type = -1;       // {arch}.pooling_type: 0 none, 1 mean, 2 cls, 3 last, 4 rank; -1 absent
  // The vocabulary's identity (speculative decoding needs target and draft to share it):
  // a hash of tokenizer.ggml.model and .pre, the tokens (StringListDigest: trailing padding
  // left out) and the BOS/EOS ids and flags; 0 = the file has no token list.
  uint64_t vocab_hash = 0;
  uint32_t nextn_layers = 0;  // {arch}.nextn_predict_layers: multi-token-prediction (MTP) heads

  // Splits (gguf-split): 0 when not split.
  uint32_t split_no = 0;
  uint32_t split_count = 0;

  // A multimodal projector (general.type mmproj or architecture clip), not a model to serve.
  bool IsProjector() const;
  uint32_t HeadKv(uint32_t layer) const;
};

// Extracts the summary from a parsed header (read with the default, array-eliding options).
ModelInfo ExtractModelInfo(const GgufFile& file);

// vocab_hash as 16 hex digits; "" for 0.
std::string VocabHashText(uint64_t vocab_hash);

// Reads the header of `path` and extracts its summary.
Result<ModelInfo> ReadModelInfo(const std::string& path);

// JSON round trip for the index cache. FromJson fails on a malformed entry.
nlohmann::json ToJson(const ModelInfo& info);
Result<ModelInfo> ModelInfoFromJson(const nlohmann::json& j);

}  // namespace corral::catalog
