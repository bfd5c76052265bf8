// Speculative decoding for one model: whether Corral gives llama-server a draft model (or
// the model's own multi-token-prediction heads), which one, and why — from the `spec`
// setting (config: global and per model) and the catalog. Rules and flags: docs/spec.md.
//
// Thread-safety: pure functions over plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "catalog/catalog.h"
#include "common/status.h"
#include "config/options.h"

namespace corral::catalog {

enum class SpecKind {
  kNone,   // no speculative decoding
  kMtp,    // the model's own MTP heads (--spec-type draft-mtp)
  kDraft,  // a separate draft model (--spec-type draft-simple --spec-draft-model FILE)
};
std::string_view to_string(SpecKind kind);  // "none", "mtp", "draft"

// What was chosen. Plain value.
struct SpecChoice {
  SpecKind kind = SpecKind::kNone;
  std::string setting;         // what it was chosen from: "auto", "off" or the name given
  std::optional<Model> draft;  // kDraft: the draft model
  std::string reason;          // why this choice, or why none: one sentence for show/dry-run
};

// "Much smaller": a draft chosen by auto has at most 1/kMaxDraftRatio of the target's
// parameters (of its file size when either parameter count is unknown).
inline constexpr uint64_t kMaxDraftRatio = 4;

// The architecture family: general.architecture without a trailing "moe" ("qwen3moe" and
// "qwen3" are one family; a dense small model drafts for its MoE sibling).
std::string ArchFamily(std::string_view architecture);

// Resolves a draft model's name (Catalog::Resolve in the daemon and the CLI).
using DraftResolver = std::function<Result<Model>(std::string_view)>;

// Chooses for `target` among `models` by `setting`:
//   off  → none.
//   auto → the target's MTP heads when info.nextn_layers > 0; else the smallest model (by
//          parameters, then file size, then name) that is not the target's file, not a
//          projector or an embedding model, has the target's vocab_hash and ArchFamily and
//          at most 1/kMaxDraftRatio of its parameters; else none, and the reason says why.
//   NAME → resolve(NAME); none when that is the target's own file (a global draft started
//          on its own). kInvalidArgument when its vocabulary differs from the target's
//          (llama-server would refuse the pair), naming both; resolve's kNotFound /
//          kAmbiguous pass through with the setting named.
// A setting CheckSpecSetting refuses is kInvalidArgument.
Result<SpecChoice> ChooseSpec(const Model& target, const std::vector<Model>& models, std::string_view setting,
                              const DraftResolver& resolve);
// The same over a catalog (Catalog::Resolve for a named draft).
Result<SpecChoice> ChooseSpec(const Model& target, const Catalog& catalog, std::string_view setting);

// The setting that applies to the model at `model_path`: the spec of its `models:` entry
// (the first whose reference `catalog` resolves to that file), else config.spec.
std::string SpecSettingFor(const config::Config& config, const Catalog& catalog, const std::string& model_path);

// {"kind", "setting", "draft", "draft_path", "reason"} for show --json and the dry-run plan.
nlohmann::json SpecJson(const SpecChoice& choice);
// One line: "draft tiny-draft (auto: ...)", "mtp (...)", "none (...)".
std::string SpecLine(const SpecChoice& choice);

}  // namespace corral::catalog
