#include "catalog/model_info.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

namespace corral::catalog {
namespace {

// Sliding-window layer patterns llama.cpp applies per architecture when the file gives a
// window but no explicit pattern (src/models/*.cpp: load_swa_pattern(ml, n, dense_first)).
struct SwaDefault {
  const char* arch;
  uint32_t pattern;
  bool dense_first;
};
constexpr SwaDefault kSwaDefaults[] = {
    {"gemma2", 2, false},  {"gemma3", 6, false},     {"gemma-embedding", 6, false}, {"gemma3n", 5, false},
    {"cohere2", 4, false}, {"cohere2moe", 4, true},  {"llama4", 4, false},          {"gpt-oss", 2, false},
    {"exaone4", 4, false}, {"exaone-moe", 4, false}, {"olmo2", 4, false},           {"afmoe", 4, false},
    {"mellum", 4, false},  {"plamo3", 8, false},     {"smallthinker", 4, true},     {"modern-bert", 3, true},
    {"laguna", 4, true},
};

std::vector<bool> SwaPattern(uint32_t n_layer, uint32_t n_pattern, bool dense_first) {
  std::vector<bool> out(n_layer);
  for (uint32_t il = 0; il < n_layer; ++il) {
    out[il] = n_pattern == 0 || (dense_first ? (il % n_pattern != 0) : (il % n_pattern < n_pattern - 1));
  }
  return out;
}

uint32_t Clamp32(uint64_t v) {
  return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
}

// A per-layer key that may be a scalar or an array: the largest value, and the array.
uint32_t MaxOf(const GgufValue* v, std::vector<uint32_t>* per_layer = nullptr) {
  if (v == nullptr) return 0;
  if (v->type != GgufType::kArray) {
    uint32_t x = Clamp32(v->AsUint().value_or(0));
    if (per_layer) *per_layer = {x};
    return x;
  }
  uint32_t best = 0;
  if (per_layer) per_layer->clear();
  for (const auto& item : v->items) {
    uint32_t x = Clamp32(item.AsUint().value_or(0));
    best = std::max(best, x);
    if (per_layer) per_layer->push_back(x);
  }
  return best;
}

// See ModelInfo::vocab_hash. FNV-1a 64 over the fields, each closed by a 0xff byte.
uint64_t VocabHash(const GgufFile& f) {
  const GgufValue* tokens = f.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != GgufType::kArray || tokens->digest == 0) return 0;
  uint64_t h = 0xcbf29ce484222325ULL;
  auto bytes = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xffU) * 0x100000001b3ULL;
  };
  auto number = [&bytes](std::optional<uint64_t> v) { bytes(v ? std::to_string(*v) : std::string("-")); };
  bytes(f.GetString("tokenizer.ggml.model").value_or(""));
  bytes(f.GetString("tokenizer.ggml.pre").value_or(""));
  number(tokens->digest);
  number(f.GetUint("tokenizer.ggml.bos_token_id"));
  number(f.GetUint("tokenizer.ggml.eos_token_id"));
  number(f.GetUint("tokenizer.ggml.add_bos_token"));
  number(f.GetUint("tokenizer.ggml.add_eos_token"));
  return h == 0 ? 1 : h;
}

}  // namespace

std::string VocabHashText(uint64_t vocab_hash) {
  if (vocab_hash == 0) return "";
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(vocab_hash));
  return buf;
}

bool ModelInfo::IsProjector() const {
  return type == "mmproj" || architecture == "clip";
}

uint32_t ModelInfo::HeadKv(uint32_t layer) const {
  if (n_head_kv.empty()) return n_head;
  if (n_head_kv.size() == 1) return n_head_kv[0];
  return layer < n_head_kv.size() ? n_head_kv[layer] : 0;
}

ModelInfo ExtractModelInfo(const GgufFile& f) {
  ModelInfo m;
  m.architecture = f.GetString("general.architecture").value_or("");
  m.type = f.GetString("general.type").value_or("");
  m.name = f.GetString("general.name").value_or("");
  m.basename = f.GetString("general.basename").value_or("");
  m.finetune = f.GetString("general.finetune").value_or("");
  m.size_label = f.GetString("general.size_label").value_or("");
  if (auto ft = f.GetUint("general.file_type")) m.file_type = Clamp32(*ft);
  m.quant = std::string(FileTypeName(m.file_type));

  m.n_params = f.ParamCount();
  m.tensor_bytes = f.TensorBytes();
  m.n_tensors = f.tensors.size();
  if (m.quant.empty() && !f.tensors.empty()) {
    // The type holding the most bytes among matrices (1-d norms stay F32 in every quant).
    std::map<uint32_t, uint64_t> bytes;
    for (const auto& t : f.tensors) {
      if (t.n_dims >= 2) bytes[t.type] += t.nbytes;
    }
    auto best =
        std::max_element(bytes.begin(), bytes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    if (best != bytes.end()) {
      if (const GgmlTypeTraits* tt = FindGgmlType(best->first)) m.quant = tt->name;
    }
  }

  const std::string a = m.architecture + ".";
  m.n_ctx_train = Clamp32(f.GetUint(a + "context_length").value_or(0));
  m.n_embd = Clamp32(f.GetUint(a + "embedding_length").value_or(0));
  m.n_layer = Clamp32(f.GetUint(a + "block_count").value_or(0));
  m.n_ff = MaxOf(f.Find(a + "feed_forward_length"));
  m.n_head = MaxOf(f.Find(a + "attention.head_count"));
  MaxOf(f.Find(a + "attention.head_count_kv"), &m.n_head_kv);
  if (m.n_head_kv.size() > 1 && m.n_head_kv.size() != m.n_layer)
    m.n_head_kv = {MaxOf(f.Find(a + "attention.head_count_kv"))};
  const uint32_t head_dim = m.n_head != 0 ? m.n_embd / m.n_head : 0;
  m.n_embd_head_k = Clamp32(f.GetUint(a + "attention.key_length").value_or(head_dim));
  m.n_embd_head_v = Clamp32(f.GetUint(a + "attention.value_length").value_or(head_dim));
  m.n_swa = Clamp32(f.GetUint(a + "attention.sliding_window").value_or(0));
  if (m.n_swa != 0 && m.n_layer != 0 && m.n_layer <= 4096) {
    const GgufValue* p = f.Find(a + "attention.sliding_window_pattern");
    if (p != nullptr && p->type == GgufType::kArray && !p->elided && p->items.size() == m.n_layer) {
      m.swa_layers.resize(m.n_layer);
      for (uint32_t il = 0; il < m.n_layer; ++il) m.swa_layers[il] = p->items[il].AsUint().value_or(0) != 0;
    } else if (p != nullptr && p->AsUint()) {
      m.swa_layers = SwaPattern(m.n_layer, Clamp32(*p->AsUint()), false);
    } else {
      for (const auto& d : kSwaDefaults) {
        if (m.architecture == d.arch) m.swa_layers = SwaPattern(m.n_layer, d.pattern, d.dense_first);
      }
    }
  }

  m.tokenizer = f.GetString("tokenizer.ggml.model").value_or("");
  if (const GgufValue* tokens = f.Find("tokenizer.ggml.tokens"); tokens && tokens->type == GgufType::kArray) {
    m.n_vocab = tokens->count;
  } else {
    m.n_vocab = f.GetUint(a + "vocab_size").value_or(0);
  }
  m.chat_template = f.Find("tokenizer.chat_template") != nullptr;
  if (auto tmpl = f.GetString("tokenizer.chat_template")) {
    // What Ollama's /api/show calls capabilities, read the way llama.cpp's chat code does:
    // a template that iterates `tools` can call them; one that knows a reasoning block thinks.
    m.template_tools = tmpl->find("tools") != std::string::npos;
    for (const char* mark : {"<think>", "enable_thinking", "reasoning_content", "<|channel|>", "thinking"}) {
      m.template_thinking = m.template_thinking || tmpl->find(mark) != std::string::npos;
    }
  }
  if (auto pooling = f.GetUint(a + "pooling_type"))
    m.pooling_type = static_cast<int32_t>(std::min<uint64_t>(*pooling, 255));
  m.vocab_hash = VocabHash(f);
  m.nextn_layers = Clamp32(f.GetUint(a + "nextn_predict_layers").value_or(0));
  m.split_no = Clamp32(f.GetUint("split.no").value_or(0));
  m.split_count = Clamp32(f.GetUint("split.count").value_or(0));
  if (m.split_count != 0) m.split_no += 1;  // gguf-split numbers shards from 0
  return m;
}

Result<ModelInfo> ReadModelInfo(const std::string& path) {
  GgufReadOptions opt;
  opt.keep_array_items = 4096;  // per-layer arrays; tokenizer arrays are far longer and only counted
  CORRAL_ASSIGN_OR_RETURN(GgufFile f, ReadGgufFile(path, opt));
  return ExtractModelInfo(f);
}

nlohmann::json ToJson(const ModelInfo& m) {
  std::vector<int> swa(m.swa_layers.begin(), m.swa_layers.end());
  return nlohmann::json{{"architecture", m.architecture},
                        {"type", m.type},
                        {"name", m.name},
                        {"basename", m.basename},
                        {"finetune", m.finetune},
                        {"size_label", m.size_label},
                        {"file_type", m.file_type},
                        {"quant", m.quant},
                        {"n_params", m.n_params},
                        {"tensor_bytes", m.tensor_bytes},
                        {"n_tensors", m.n_tensors},
                        {"n_ctx_train", m.n_ctx_train},
                        {"n_embd", m.n_embd},
                        {"n_layer", m.n_layer},
                        {"n_ff", m.n_ff},
                        {"n_head", m.n_head},
                        {"n_head_kv", m.n_head_kv},
                        {"n_embd_head_k", m.n_embd_head_k},
                        {"n_embd_head_v", m.n_embd_head_v},
                        {"n_swa", m.n_swa},
                        {"swa_layers", swa},
                        {"tokenizer", m.tokenizer},
                        {"n_vocab", m.n_vocab},
                        {"chat_template", m.chat_template},
                        {"template_tools", m.template_tools},
                        {"template_thinking", m.template_thinking},
                        {"pooling_type", m.pooling_type},
                        {"vocab_hash", m.vocab_hash},
                        {"nextn_layers", m.nextn_layers},
                        {"split_no", m.split_no},
                        {"split_count", m.split_count}};
}

Result<ModelInfo> ModelInfoFromJson(const nlohmann::json& j) {
  try {
    ModelInfo m;
    m.architecture = j.at("architecture").get<std::string>();
    m.type = j.at("type").get<std::string>();
    m.name = j.at("name").get<std::string>();
    m.basename = j.at("basename").get<std::string>();
    m.finetune = j.at("finetune").get<std::string>();
    m.size_label = j.at("size_label").get<std::string>();
    m.file_type = j.at("file_type").get<uint32_t>();
    m.quant = j.at("quant").get<std::string>();
    m.n_params = j.at("n_params").get<uint64_t>();
    m.tensor_bytes = j.at("tensor_bytes").get<uint64_t>();
    m.n_tensors = j.at("n_tensors").get<uint64_t>();
    m.n_ctx_train = j.at("n_ctx_train").get<uint32_t>();
    m.n_embd = j.at("n_embd").get<uint32_t>();
    m.n_layer = j.at("n_layer").get<uint32_t>();
    m.n_ff = j.at("n_ff").get<uint32_t>();
    m.n_head = j.at("n_head").get<uint32_t>();
    m.n_head_kv = j.at("n_head_kv").get<std::vector<uint32_t>>();
    m.n_embd_head_k = j.at("n_embd_head_k").get<uint32_t>();
    m.n_embd_head_v = j.at("n_embd_head_v").get<uint32_t>();
    m.n_swa = j.at("n_swa").get<uint32_t>();
    for (int x : j.at("swa_layers").get<std::vector<int>>()) m.swa_layers.push_back(x != 0);
    m.tokenizer = j.at("tokenizer").get<std::string>();
    m.n_vocab = j.at("n_vocab").get<uint64_t>();
    m.chat_template = j.at("chat_template").get<bool>();
    m.template_tools = j.at("template_tools").get<bool>();
    m.template_thinking = j.at("template_thinking").get<bool>();
    m.pooling_type = j.at("pooling_type").get<int32_t>();
    m.vocab_hash = j.at("vocab_hash").get<uint64_t>();
    m.nextn_layers = j.at("nextn_layers").get<uint32_t>();
    m.split_no = j.at("split_no").get<uint32_t>();
    m.split_count = j.at("split_count").get<uint32_t>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    return Corrupt(std::string("index entry: ") + e.what());
  }
}

}  // namespace corral::catalog
