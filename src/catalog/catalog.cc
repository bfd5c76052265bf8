#include "catalog/catalog.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "catalog/discovery.h"
#include "catalog/index_cache.h"
#include "common/fs.h"
#include "common/paths.h"

namespace corral::catalog {
namespace {

constexpr uint64_t kMaxConfigBytes = 4u << 20;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Lower-case letters, digits, '.' and '_'; anything else becomes one '-'.
std::string Slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
    if (keep) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && (out.back() == '-' || out.back() == '.')) out.pop_back();
  while (!out.empty() && (out.front() == '-' || out.front() == '.')) out.erase(out.begin());
  return out;
}

bool HasToken(const std::string& slug, const std::string& token) {
  if (token.empty()) return true;
  size_t pos = 0;
  while ((pos = slug.find(token, pos)) != std::string::npos) {
    const bool start_ok = pos == 0 || slug[pos - 1] == '-';
    const size_t end = pos + token.size();
    const bool end_ok = end == slug.size() || slug[end] == '-';
    if (start_ok && end_ok) return true;
    ++pos;
  }
  return false;
}

std::string RemoveToken(std::string slug, const std::string& token) {
  if (token.empty()) return slug;
  size_t pos = 0;
  while ((pos = slug.find(token, pos)) != std::string::npos) {
    const bool start_ok = pos == 0 || slug[pos - 1] == '-';
    const size_t end = pos + token.size();
    const bool end_ok = end == slug.size() || slug[end] == '-';
    if (start_ok && end_ok) {
      size_t from = pos == 0 ? 0 : pos - 1;
      slug.erase(from, end - from + (pos == 0 && end < slug.size() ? 1 : 0));
      continue;
    }
    ++pos;
  }
  return slug;
}

// "7b", "0.5b", "8x7b", "135m": a token that already says the size.
bool IsSizeToken(std::string_view t) {
  if (t.size() < 2) return false;
  const char unit = t.back();
  if (unit != 'k' && unit != 'm' && unit != 'b' && unit != 't') return false;
  bool digit = false;
  for (char c : t.substr(0, t.size() - 1)) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != 'x') {
      return false;
    }
  }
  return digit && t[0] >= '0' && t[0] <= '9';
}

bool HasSizeToken(const std::string& slug) {
  size_t start = 0;
  while (start <= slug.size()) {
    size_t end = slug.find('-', start);
    if (end == std::string::npos) end = slug.size();
    if (IsSizeToken(std::string_view(slug).substr(start, end - start))) return true;
    start = end + 1;
  }
  return false;
}

std::string SizeSlug(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ULL) {
    std::snprintf(buf, sizeof(buf), "%.1fb", static_cast<double>(n) / 1e9);
  } else if (n >= 1000000ULL) {
    std::snprintf(buf, sizeof(buf), "%.0fm", static_cast<double>(n) / 1e6);
  } else if (n >= 1000ULL) {
    std::snprintf(buf, sizeof(buf), "%.0fk", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(n));
  }
  std::string s = buf;
  if (s.size() > 3 && s.compare(s.size() - 3, 2, ".0") == 0) s.erase(s.size() - 3, 2);
  return s;
}

std::string FileStem(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (auto split = ParseSplitName(name)) return split->prefix;
  if (name.size() > 5 && Lower(name.substr(name.size() - 5)) == ".gguf") name.resize(name.size() - 5);
  return name;
}

uint32_t SourceRank(const std::string& source) {
  static const char* kOrder[] = {"user", "huggingface", "ollama", "lmstudio", "llama.cpp", "path"};
  for (uint32_t k = 0; k < 6; ++k) {
    if (source == kOrder[k]) return k;
  }
  return 6;
}

std::string SourceTag(const std::string& source) {
  if (source == "huggingface") return "hf";
  if (source == "llama.cpp") return "llamacpp";
  return source;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string DirOf(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

// The projector in `candidates` that fits `model_path` best: the only one, else the one
// whose file name shares the longest prefix with the model's (after "mmproj-").
std::string PickProjector(const std::string& model_path, const std::vector<std::string>& candidates) {
  if (candidates.empty()) return {};
  if (candidates.size() == 1) return candidates[0];
  const std::string model = Lower(FileStem(model_path));
  std::string best;
  size_t best_len = 0;
  for (const auto& c : candidates) {
    std::string stem = Lower(FileStem(c));
    for (std::string_view p : {"mmproj-", "mmproj_", "mmproj"}) {
      if (stem.rfind(p, 0) == 0) {
        stem = stem.substr(p.size());
        break;
      }
    }
    size_t n = 0;
    while (n < stem.size() && n < model.size() && stem[n] == model[n]) ++n;
    if (n > best_len) {
      best_len = n;
      best = c;
    }
  }
  return best.empty() ? candidates[0] : best;
}

Result<std::map<std::string, std::string>> ReadAliases(const std::string& config_file) {
  std::map<std::string, std::string> out;
  if (config_file.empty() || ::access(config_file.c_str(), F_OK) != 0) return out;
  CORRAL_ASSIGN_OR_RETURN(std::string text, ReadFileBounded(config_file, kMaxConfigBytes));
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return out;
    YAML::Node aliases = root["aliases"];
    if (!aliases) return out;
    if (!aliases.IsMap()) return InvalidArgument(config_file + ": aliases must be a mapping of alias: model");
    for (const auto& kv : aliases) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        return InvalidArgument(config_file + ": each alias must map a name to a model reference");
      }
      out[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(config_file + ": " + e.msg);
  }
  return out;
}

}  // namespace

std::string BaseName(const ModelInfo& info, const std::string& fallback_path) {
  const std::string quant = Lower(info.quant);
  std::string family = Slug(!info.basename.empty() ? info.basename
                            : !info.name.empty()   ? info.name
                                                   : FileStem(fallback_path));
  if (family.empty()) family = "model";
  family = RemoveToken(family, quant);
  if (family.empty()) family = "model";
  std::string out = family;
  const std::string finetune = Slug(info.finetune);
  if (!finetune.empty() && !HasToken(out, finetune)) out += "-" + finetune;
  const std::string size = !info.size_label.empty() ? Slug(info.size_label)
                           : info.n_params != 0     ? SizeSlug(info.n_params)
                                                    : std::string();
  if (!size.empty() && !HasToken(out, size) && !HasSizeToken(out)) out += "-" + size;
  if (!quant.empty()) out += "-" + quant;
  return out;
}

Result<Sources> SourcesFromConfig(const config::Config& config) {
  Sources s;
  s.user = config.model_paths;
  s.user.push_back(DefaultModelDir());
  const std::string home = Env("HOME");
  const std::string xdg_cache = !Env("XDG_CACHE_HOME").empty() ? Env("XDG_CACHE_HOME") : home + "/.cache";
  if (config.scan_huggingface) {
    if (!Env("HF_HUB_CACHE").empty()) {
      s.huggingface = Env("HF_HUB_CACHE");
    } else if (!Env("HF_HOME").empty()) {
      s.huggingface = Env("HF_HOME") + "/hub";
    } else {
      s.huggingface = xdg_cache + "/huggingface/hub";
    }
  }
  if (config.scan_ollama) s.ollama = !Env("OLLAMA_MODELS").empty() ? Env("OLLAMA_MODELS") : home + "/.ollama/models";
  if (config.scan_lmstudio) s.lmstudio = {home + "/.lmstudio/models", home + "/.cache/lm-studio/models"};
  if (config.scan_llamacpp) s.llamacpp = !Env("LLAMA_CACHE").empty() ? Env("LLAMA_CACHE") : xdg_cache + "/llama.cpp";
  s.index_file = CacheDir() + "/catalog/index.json";
  if (config.aliases) {
    s.aliases = *config.aliases;  // the snapshot config::Load accepted (a daemon's reload keeps it whole)
  } else {
    CORRAL_ASSIGN_OR_RETURN(s.aliases, ReadAliases(config.config_file));
  }
  return s;
}

Result<Catalog> Catalog::Load(const config::Config& config) {
  CORRAL_ASSIGN_OR_RETURN(Sources s, SourcesFromConfig(config));
  return Load(s);
}

Result<Catalog> Catalog::Load(const Sources& sources) {
  Catalog cat;
  DiscoveryResult found =
      Discover({sources.user, sources.huggingface, sources.ollama, sources.lmstudio, sources.llamacpp});
  cat.warnings_ = std::move(found.warnings);
  Index index = Index::Load(sources.index_file);

  struct Item {
    const FoundFile* file;
    ModelInfo info;
  };
  std::vector<Item> items;
  items.reserve(found.files.size());
  for (const auto& f : found.files) {
    ++cat.stats_.files_seen;
    Index::Entry* e = index.Find(f.real_path, f.size, f.mtime_ns);
    if (e == nullptr) {
      ++cat.stats_.headers_read;
      auto info = ReadModelInfo(f.path);
      Index::Entry fresh;
      fresh.size = f.size;
      fresh.mtime_ns = f.mtime_ns;
      fresh.ok = info.ok();
      if (info.ok()) {
        fresh.info = std::move(info).value();
      } else {
        fresh.error = info.status().message();
      }
      index.Put(f.real_path, std::move(fresh));
      e = index.Find(f.real_path, f.size, f.mtime_ns);
    } else {
      ++cat.stats_.index_hits;
    }
    if (!e->ok) {
      cat.warnings_.push_back(e->error);
      continue;
    }
    items.push_back({&f, e->info});
  }
  if (Status st = index.Save(sources.index_file); !st.ok()) {
    cat.warnings_.push_back("index cache not saved: " + st.message());
  }

  // Projectors, by directory.
  std::map<std::string, std::vector<std::string>> projectors;
  for (const auto& it : items) {
    if (it.info.IsProjector()) projectors[DirOf(it.file->path)].push_back(it.file->path);
  }

  // Split shards: grouped by their common prefix; shard 1 stands for the model.
  std::map<std::string, std::map<uint32_t, const Item*>> shards;
  for (const auto& it : items) {
    if (it.info.IsProjector()) continue;
    if (auto split = ParseSplitName(it.file->path); split && split->count > 1) {
      shards[split->prefix + "/" + std::to_string(split->count)][split->no] = &it;
    }
  }

  for (const auto& it : items) {
    if (it.info.IsProjector()) continue;
    Model m;
    m.info = it.info;
    m.path = it.file->path;
    m.files = {it.file->path};
    m.size_bytes = it.file->size;
    m.mtime_s = it.file->mtime_ns / 1000000000;
    if (auto split = ParseSplitName(it.file->path); split && split->count > 1) {
      if (split->no != 1) continue;  // listed with shard 1
      const auto& group = shards[split->prefix + "/" + std::to_string(split->count)];
      if (group.size() != split->count) {
        cat.warnings_.push_back(it.file->path + ": split model has " + std::to_string(group.size()) + " of " +
                                std::to_string(split->count) + " shards; not listed");
        continue;
      }
      m.files.clear();
      m.size_bytes = 0;
      m.info.n_params = m.info.tensor_bytes = m.info.n_tensors = 0;
      for (const auto& [no, shard] : group) {
        m.files.push_back(shard->file->path);
        m.size_bytes += shard->file->size;
        m.info.n_params += shard->info.n_params;
        m.info.tensor_bytes += shard->info.tensor_bytes;
        m.info.n_tensors += shard->info.n_tensors;
      }
    }
    m.source = it.file->source;
    m.origin = it.file->origin;
    // Ollama blobs are named by digest: no name anyone types.
    if (m.source != "ollama") m.stem = ModelFileStem(m.path);
    m.mmproj = !it.file->mmproj.empty() ? it.file->mmproj : PickProjector(m.path, projectors[DirOf(m.path)]);
    m.architecture = m.info.architecture;
    m.n_params = m.info.n_params;
    m.quant = m.info.quant;
    m.n_ctx_train = m.info.n_ctx_train;
    // Ollama blobs are named by digest: their tag is the better fallback name.
    m.name = BaseName(m.info, m.source == "ollama" ? m.origin : m.path);
    cat.models_.push_back(std::move(m));
  }

  // Unique names: the first by (source rank, path) keeps the base name, the others get the
  // source as a suffix, then a short hash of the path. Stable for a given set of files.
  std::stable_sort(cat.models_.begin(), cat.models_.end(), [](const Model& a, const Model& b) {
    if (SourceRank(a.source) != SourceRank(b.source)) return SourceRank(a.source) < SourceRank(b.source);
    return a.path < b.path;
  });
  std::map<std::string, std::string> taken;  // name → source of its holder
  for (auto& m : cat.models_) {
    auto holder = taken.find(m.name);
    if (holder != taken.end()) {
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a(m.path)));
      std::vector<std::string> tries;
      if (holder->second != m.source) tries.push_back(m.name + "-" + SourceTag(m.source));
      const std::string stem = Slug(FileStem(m.path));
      if (!stem.empty() && !HasToken(m.name, stem) && m.source != "ollama") tries.push_back(m.name + "-" + stem);
      tries.push_back(m.name + "-" + SourceTag(m.source) + "-" + std::string(hex, 6));
      for (const auto& t : tries) {
        if (taken.count(t) == 0) {
          m.name = t;
          break;
        }
      }
    }
    taken.emplace(m.name, m.source);
  }
  std::sort(cat.models_.begin(), cat.models_.end(), [](const Model& a, const Model& b) { return a.name < b.name; });

  for (const auto& m : cat.models_) cat.entries_.push_back(m.Names());
  // Aliases from config: each must resolve to exactly one model and not shadow a name.
  for (const auto& [alias, ref] : sources.aliases) {
    if (taken.count(alias) != 0) {
      cat.warnings_.push_back("alias '" + alias + "' is also a model name; ignored");
      continue;
    }
    auto target = cat.Resolve(ref);
    if (!target.ok()) {
      cat.warnings_.push_back("alias '" + alias + "': " + target.status().message());
      continue;
    }
    for (auto& m : cat.models_) {
      if (m.path == target->path) m.aliases.push_back(alias);
    }
  }
  cat.entries_.clear();
  for (const auto& m : cat.models_) cat.entries_.push_back(m.Names());
  return cat;
}

Result<Model> ModelFromFile(const std::string& path, std::string source) {
  CORRAL_ASSIGN_OR_RETURN(ModelInfo info, ReadModelInfo(path));
  if (info.IsProjector()) return InvalidArgument(path + " is a multimodal projector (mmproj), not a model");
  Model m;
  m.info = info;
  m.path = path;
  m.files = {path};
  m.source = std::move(source);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    m.size_bytes = static_cast<uint64_t>(st.st_size);
    m.mtime_s = st.st_mtim.tv_sec;
  }
  if (auto split = ParseSplitName(path); split && split->count > 1) {
    SplitName first = *split;
    m.path = SplitPath(first, 1);
    m.files.clear();
    m.size_bytes = 0;
    m.info.n_params = m.info.tensor_bytes = m.info.n_tensors = 0;
    for (uint32_t no = 1; no <= split->count; ++no) {
      const std::string shard = SplitPath(first, no);
      auto si = ReadModelInfo(shard);
      if (!si.ok()) return si.status().WithContext("shard " + std::to_string(no) + " of " + path);
      if (no == 1) {
        const uint64_t p = m.info.n_params, b = m.info.tensor_bytes, n = m.info.n_tensors;
        m.info = *si;
        m.info.n_params = p, m.info.tensor_bytes = b, m.info.n_tensors = n;
      }
      m.info.n_params += si->n_params;
      m.info.tensor_bytes += si->tensor_bytes;
      m.info.n_tensors += si->n_tensors;
      if (::stat(shard.c_str(), &st) == 0) m.size_bytes += static_cast<uint64_t>(st.st_size);
      m.files.push_back(shard);
    }
  }
  m.architecture = m.info.architecture;
  m.n_params = m.info.n_params;
  m.quant = m.info.quant;
  m.n_ctx_train = m.info.n_ctx_train;
  m.name = BaseName(m.info, m.path);
  m.stem = ModelFileStem(m.path);
  return m;
}

bool IsEmbeddingModel(const ModelInfo& info) {
  return info.pooling_type >= 1 && info.pooling_type <= 3;
}

std::vector<std::string> Capabilities(const Model& m) {
  if (IsEmbeddingModel(m.info)) return {"embedding"};
  std::vector<std::string> out = {"completion"};
  if (m.info.template_tools) out.push_back("tools");
  if (m.info.template_thinking) out.push_back("thinking");
  if (!m.mmproj.empty()) out.push_back("vision");
  return out;
}

std::string HumanBytes(uint64_t b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  } else {
    std::snprintf(buf, sizeof(buf), v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  }
  return buf;
}

std::string HumanCount(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ULL) {
    std::snprintf(buf, sizeof(buf), "%.1fB", static_cast<double>(n) / 1e9);
  } else if (n >= 1000000ULL) {
    std::snprintf(buf, sizeof(buf), "%.0fM", static_cast<double>(n) / 1e6);
  } else if (n >= 1000ULL) {
    std::snprintf(buf, sizeof(buf), "%.0fK", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(n));
  }
  return buf;
}

nlohmann::json ModelJson(const Model& m) {
  return nlohmann::json{{"name", m.name},
                        {"aliases", m.aliases},
                        {"names", OtherNames(m.Names())},
                        {"capabilities", Capabilities(m)},
                        {"source", m.source},
                        {"origin", m.origin},
                        {"path", m.path},
                        {"files", m.files},
                        {"mmproj", m.mmproj},
                        {"architecture", m.architecture},
                        {"n_params", m.n_params},
                        {"quant", m.quant},
                        {"n_ctx_train", m.n_ctx_train},
                        {"size_bytes", m.size_bytes},
                        {"chat_template", m.info.chat_template},
                        {"tokenizer", m.info.tokenizer},
                        {"n_vocab", m.info.n_vocab},
                        {"n_layer", m.info.n_layer},
                        {"n_embd", m.info.n_embd},
                        {"n_head", m.info.n_head},
                        {"n_head_kv", m.info.HeadKv(0)},
                        {"n_swa", m.info.n_swa},
                        {"vocab_hash", VocabHashText(m.info.vocab_hash)},
                        {"nextn_predict_layers", m.info.nextn_layers},
                        {"general_name", m.info.name}};
}

nlohmann::json EstimateJson(const MemoryEstimate& e) {
  return nlohmann::json{{"n_ctx", e.n_ctx},
                        {"weights_bytes", e.weights_bytes},
                        {"kv_bytes", e.kv_bytes},
                        {"compute_bytes", e.compute_bytes},
                        {"total_bytes", e.total_bytes}};
}

Status CheckReference(std::string_view ref) {
  if (ref.empty()) return InvalidArgument("empty model reference");
  if (ref.size() > kMaxReferenceBytes) {
    return InvalidArgument("model reference too long (" + std::to_string(ref.size()) + " bytes; at most " +
                           std::to_string(kMaxReferenceBytes) + ")");
  }
  for (char c : ref) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", u);
      return InvalidArgument(std::string("model reference contains a control character (") + hex +
                             "); model names never do");
    }
  }
  return Status::Ok();
}

const Model* Catalog::FindExact(std::string_view name) const {
  const std::string lname = Lower(name);
  for (const auto& m : models_) {
    if (Lower(m.name) == lname) return &m;
  }
  for (const auto& m : models_) {
    for (const auto& a : m.aliases) {
      if (Lower(a) == lname) return &m;
    }
  }
  return nullptr;
}

Result<Model> Catalog::ResolveFile(const std::string& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
  for (const auto& m : models_) {
    for (const auto& f : m.files) {
      struct stat fs {};
      if (::stat(f.c_str(), &fs) == 0 && fs.st_dev == st.st_dev && fs.st_ino == st.st_ino) return m;
    }
  }
  CORRAL_ASSIGN_OR_RETURN(Model m, ModelFromFile(path));
  // A name belongs to one file: a file outside the catalog never takes a catalog model's
  // name (its metadata may say anything), so a request by that name keeps reaching the
  // catalog's file.
  if (FindExact(m.name) != nullptr) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a(m.path)));
    m.name += "-" + SourceTag(m.source) + "-" + std::string(hex, 6);
  }
  return m;
}

Result<Model> Catalog::Resolve(std::string_view ref_view) const {
  CORRAL_RETURN_IF_ERROR(CheckReference(ref_view));
  const std::string ref(ref_view);
  // A path: a known model's file (links included), else read on the spot.
  if (ref.find('/') != std::string::npos || Lower(ref).ends_with(".gguf")) {
    struct stat st {};
    const std::string p = ExpandHome(ref);
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return ResolveFile(p);
  }
  return MatchName(ref);
}

Result<Model> Catalog::ResolveName(std::string_view ref) const {
  CORRAL_RETURN_IF_ERROR(CheckReference(ref));
  bool pathlike = ref.front() == '/' || ref.front() == '~' || ref.find('\\') != std::string_view::npos;
  size_t start = 0;
  while (!pathlike && start <= ref.size()) {
    size_t end = ref.find('/', start);
    if (end == std::string_view::npos) end = ref.size();
    const std::string_view part = ref.substr(start, end - start);
    pathlike = part == "." || part == "..";
    start = end + 1;
  }
  if (pathlike) {
    return InvalidArgument(
        "model references in requests are model names, not file paths (see `corral list` for the names)");
  }
  return MatchName(std::string(ref));
}

Result<Model> Catalog::MatchName(const std::string& ref) const {
  CORRAL_ASSIGN_OR_RETURN(size_t index, MatchReference(ref, entries_));
  return models_[index];
}

}  // namespace corral::catalog
