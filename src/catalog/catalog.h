// The model catalog: every GGUF model on this machine, found without copying a byte — the
// user's own paths and the caches of Hugging Face, Ollama, LM Studio and llama.cpp — with a
// stable human name each, a resolver for model references and a memory estimate.
//
// Sources, layouts, naming rules and the estimate method: docs/catalog.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog/model_info.h"
#include "catalog/names.h"
#include "common/status.h"
#include "config/options.h"

namespace corral::catalog {

// One servable model (a projector is not one; it is paired via `mmproj`).
// Thread-safety: a plain value.
struct Model {
  std::string name;                  // canonical, stable, unique across caches ("family-size-quant" style)
  std::vector<std::string> aliases;  // from config
  std::string path;                  // the file to pass to llama-server -m (first shard for split models)
  std::vector<std::string> files;    // every file of the model (all shards)
  std::string mmproj;                // paired multimodal projector, or ""
  std::string source;        // "user", "huggingface", "ollama", "lmstudio", "llama.cpp" ("path": read on the spot)
  std::string architecture;  // general.architecture
  uint64_t n_params = 0;
  std::string quant;         // "Q4_0", "F16", ...
  uint32_t n_ctx_train = 0;  // native context
  uint64_t size_bytes = 0;   // sum of files
  int64_t mtime_s = 0;       // the (first) file's modification time, Unix seconds; 0 = unknown

  // Added beyond the contract.
  std::string origin;  // the name the source tool uses: "llama3.2:3b", "org/repo", "publisher/repo"
  std::string stem;    // the file stem ("bar-tiny"; a split model's without -00001-of-0000N)
  ModelInfo info;      // the header facts (tensor bytes summed over shards)

  // The model as the name rules see it (catalog/names.h).
  NameEntry Names() const { return {name, aliases, stem, origin, quant}; }
};

struct MemoryEstimate {
  uint32_t n_ctx = 0;
  uint64_t weights_bytes = 0, kv_bytes = 0, compute_bytes = 0, total_bytes = 0;
};

// How llama-server will run; the defaults are llama-server's own.
struct EstimateOptions {
  uint32_t n_ubatch = 512;
  uint32_t n_seq = 4;      // parallel slots (llama-server's default -np)
  bool flash_attn = true;  // llama-server's "auto" turns it on for the CPU backend
};

// Estimated RAM a llama-server with this model and context needs. n_ctx 0 = the native
// context. Cache types: f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1.
Result<MemoryEstimate> EstimateMemory(const Model& m, uint32_t n_ctx, std::string_view cache_type_k = "f16",
                                      std::string_view cache_type_v = "f16");
Result<MemoryEstimate> EstimateMemory(const Model& m, uint32_t n_ctx, std::string_view cache_type_k,
                                      std::string_view cache_type_v, const EstimateOptions& options);

// Where to look. Built from the config and the environment by SourcesFromConfig(); tests
// fill it directly. An empty directory string means "not scanned".
struct Sources {
  std::vector<std::string> user;               // config model_paths + DefaultModelDir(): directories or files
  std::string huggingface;                     // hub cache: models--ORG--NAME/snapshots/REV/...
  std::string ollama;                          // OLLAMA_MODELS: manifests/ + blobs/
  std::vector<std::string> lmstudio;           // PUBLISHER/REPO/FILE.gguf trees
  std::string llamacpp;                        // LLAMA_CACHE
  std::string index_file;                      // the index cache; "" = no cache
  std::map<std::string, std::string> aliases;  // alias → reference
};
Result<Sources> SourcesFromConfig(const config::Config& config);

// Thread-safety: immutable after Load; safe to read from many threads.
class Catalog {
 public:
  // Scans user paths and every enabled cache (using the on-disk index cache).
  static Result<Catalog> Load(const config::Config& config);
  static Result<Catalog> Load(const Sources& sources);

  const std::vector<Model>& models() const { return models_; }
  // Files that could not be read or were incomplete: one line each, for the user to see.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Accepts a canonical name, an alias, a unique substring, or a path to a .gguf file
  // (ResolveFile). For the local user (CLI, control socket) only: a reference that comes
  // from the network goes through ResolveName.
  // No match: StatusCode::kNotFound; several: StatusCode::kAmbiguous; the message names
  // the candidates (the CLI maps both to exit code 66). A reference CheckReference refuses:
  // kInvalidArgument.
  Result<Model> Resolve(std::string_view ref) const;

  // Names only, never the filesystem: the rules of catalog/names.h (canonical name, alias,
  // file stem, origin, "owner/repo:QUANT", "hf.co/...", unique substring). A
  // reference that looks like a path (leading '/' or '~', a "." or ".." component) is
  // refused with kInvalidArgument before any matching. For model references from requests.
  Result<Model> ResolveName(std::string_view ref) const;

  // The model whose canonical name (any case) or alias is exactly `name`; nullptr when
  // none. No substrings, no paths: the one file a name belongs to.
  const Model* FindExact(std::string_view name) const;

  // The model in the regular file at `path` (a .gguf, links followed): the catalog's own
  // entry when the file is one of its models' files (same device and inode), else read on
  // the spot (source "path"); then a name a catalog model already holds (canonical or
  // alias) is never given to another file: it gets a "-path-HASH" suffix, as duplicate
  // names in the catalog get theirs.
  Result<Model> ResolveFile(const std::string& path) const;

  // Index statistics of the last Load: entries reused and files read.
  struct Stats {
    size_t files_seen = 0;
    size_t index_hits = 0;
    size_t headers_read = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  // The name rules (catalog/names.h) over models_ (the name half of Resolve).
  Result<Model> MatchName(const std::string& ref) const;

  std::vector<Model> models_;
  std::vector<NameEntry> entries_;  // models_[i].Names(), built once by Load
  std::vector<std::string> warnings_;
  Stats stats_;
};

// Refuses a model reference no model can have: empty, longer than kMaxReferenceBytes, or
// holding a control character (bytes 0x00-0x1f and 0x7f: CR, LF, NUL, ESC ...). The
// message never repeats the reference (it may be a terminal escape or a header break).
inline constexpr size_t kMaxReferenceBytes = 1024;
Status CheckReference(std::string_view ref);

// The model a single GGUF file (and its sibling shards) makes, read on the spot.
Result<Model> ModelFromFile(const std::string& path, std::string source = "path");

// What the model can do, in Ollama's words (/api/show "capabilities"): "embedding" for an
// embedding model (a pooling type in its header), else "completion" plus "tools" and
// "thinking" (from the chat template) and "vision" (a paired projector).
std::vector<std::string> Capabilities(const Model& m);
// True for a model made to embed (its header names a pooling type).
bool IsEmbeddingModel(const ModelInfo& info);

// "1.5 GiB", "812 MiB", "4.0 KiB", "17 B".
std::string HumanBytes(uint64_t bytes);
// "1.2B", "25M", "800K".
std::string HumanCount(uint64_t n);
// The model as JSON (the shape `corral list --json` and `corral show --json` print).
nlohmann::json ModelJson(const Model& m);
nlohmann::json EstimateJson(const MemoryEstimate& e);

// The canonical name's base ("family-size-quant") for a model, before disambiguation.
std::string BaseName(const ModelInfo& info, const std::string& path);

}  // namespace corral::catalog
