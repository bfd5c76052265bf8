// Model names: the one set of rules that turns what a person or a client typed into one
// model. The catalog (Catalog::Resolve / ResolveName) applies them to its models; the proxy
// applies the same function to the list the daemon sends it (/api/show, /v1/models/{id}),
// so a name that works for `/api/chat` works for `/api/show`, `corral stop` and `corral logs`.
//
// Rules, first that matches wins (docs/catalog.md, "Names"):
//   1. the canonical name (any case);
//   2. an alias from the config (any case);
//   3. another name of the model, exactly (any case), after dropping an `hf.co/` or
//      `huggingface.co/` prefix and a `:latest` tag: the file stem (`bar-tiny` for
//      `bar-tiny.gguf`, the first shard's stem without `-00001-of-0000N`), the source tool's
//      name (`llama3.2:3b`, `owner/repo`) and, for Hugging Face repos, `owner/repo:QUANT`.
//      `owner/repo` alone names the repo's only model, else its Q4_K_M (llama.cpp's and
//      Ollama's default), else the candidates;
//   4. a unique substring (any case) of a canonical name, alias, stem or origin.
// Several models at one rule: kAmbiguous naming them; none: kNotFound naming what exists.
// No rule here reads the filesystem: paths are the catalog's business (CLI only).
//
// Thread-safety: pure functions over plain values. Module corral_names (common only), so the
// proxy can use it without depending on the catalog's loader.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::catalog {

// One model as the rules see it.
struct NameEntry {
  std::string name;                  // canonical
  std::vector<std::string> aliases;  // from the config
  std::string stem;                  // the file stem; "" when unknown
  std::string origin;                // the source tool's name: "llama3.2:3b", "owner/repo"; may be ""
  std::string quant;                 // "Q4_K_M": owner/repo:QUANT, and a repo's default
};

// The index into `entries` of the one model `ref` names, or kNotFound / kAmbiguous whose
// message names the candidates (at most 10). `ref` is not checked for control characters
// here (CheckReference does that first).
Result<size_t> MatchReference(std::string_view ref, const std::vector<NameEntry>& entries);

// `ref` without an `hf.co/` / `huggingface.co/` prefix and a `:latest` tag.
std::string NormalizeReference(std::string_view ref);

// The names rule 3 accepts for one model, for listings (`/v1/models` "names", `/api/tags`):
// the stem, the origin and, when the origin is a repo (`owner/repo`), `owner/repo:QUANT` and
// `hf.co/owner/repo:QUANT` (Ollama's spelling). Deduplicated (any case), none equal to the
// canonical name or an alias.
std::vector<std::string> OtherNames(const NameEntry& entry);

// The file stem of a model file: `bar-tiny` for `/m/bar-tiny.gguf`, `big` for
// `/m/big-00001-of-00003.gguf`.
std::string ModelFileStem(const std::string& path);

}  // namespace corral::catalog
