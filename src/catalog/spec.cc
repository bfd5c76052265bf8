#include "catalog/spec.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

namespace corral::catalog {
namespace {

// The target's size in the unit both sides know: parameters, else file bytes.
bool MuchSmaller(const Model& draft, const Model& target) {
  if (draft.n_params != 0 && target.n_params != 0) return draft.n_params * kMaxDraftRatio <= target.n_params;
  return draft.size_bytes != 0 && draft.size_bytes * kMaxDraftRatio <= target.size_bytes;
}

std::string Params(const Model& m) {
  return m.n_params != 0 ? HumanCount(m.n_params) + " parameters" : HumanBytes(m.size_bytes);
}

// Counts what ruled candidates out, so "none" can say why.
struct AutoTally {
  size_t same_vocab = 0;   // same vocabulary (and family), but not much smaller
  size_t other_vocab = 0;  // same family, another vocabulary
};

SpecChoice AutoChoice(const Model& target, const std::vector<Model>& models) {
  SpecChoice c;
  c.setting = "auto";
  if (target.info.nextn_layers > 0) {
    c.kind = SpecKind::kMtp;
    c.reason = "auto: the model has " + std::to_string(target.info.nextn_layers) +
               " multi-token-prediction layer(s) (nextn_predict_layers)";
    return c;
  }
  if (target.info.vocab_hash == 0) {
    c.reason = "auto: the model's header has no token list to compare drafts by";
    return c;
  }
  const std::string family = ArchFamily(target.architecture);
  const Model* best = nullptr;
  AutoTally tally;
  for (const Model& m : models) {
    if (m.path == target.path || m.info.IsProjector() || IsEmbeddingModel(m.info)) continue;
    if (ArchFamily(m.architecture) != family) continue;
    if (m.info.vocab_hash != target.info.vocab_hash) {
      ++tally.other_vocab;
      continue;
    }
    if (!MuchSmaller(m, target)) {
      ++tally.same_vocab;
      continue;
    }
    auto key = [](const Model& x) { return std::tie(x.n_params, x.size_bytes, x.name); };
    if (best == nullptr || key(m) < key(*best)) best = &m;
  }
  if (best != nullptr) {
    c.kind = SpecKind::kDraft;
    c.draft = *best;
    c.reason = "auto: the smallest catalog model with the same vocabulary and architecture family (" + Params(*best) +
               " vs " + Params(target) + ")";
    return c;
  }
  c.reason = "auto: no catalog model of the " + family + " family shares this vocabulary and has at most 1/" +
             std::to_string(kMaxDraftRatio) + " of its parameters (" + std::to_string(tally.same_vocab) +
             " same vocabulary but too big, " + std::to_string(tally.other_vocab) + " another vocabulary)";
  return c;
}

Result<SpecChoice> NamedChoice(const Model& target, std::string_view setting, const DraftResolver& resolve) {
  const std::string name(setting);
  auto draft = resolve(setting);
  if (!draft.ok()) {
    return Status(draft.status().code(), "spec: draft model '" + name + "': " + draft.status().message());
  }
  SpecChoice c;
  c.setting = name;
  if (draft->path == target.path) {  // a global named draft, started on its own
    c.reason = "the named draft '" + name + "' is this model itself";
    return c;
  }
  if (draft->info.vocab_hash == 0 || draft->info.vocab_hash != target.info.vocab_hash) {
    return InvalidArgument("spec: draft model " + draft->name + " does not share the vocabulary of " + target.name +
                           " (vocab hash " + (draft->info.vocab_hash ? VocabHashText(draft->info.vocab_hash) : "none") +
                           " vs " + (target.info.vocab_hash ? VocabHashText(target.info.vocab_hash) : "none") + ", " +
                           std::to_string(draft->info.n_vocab) + " vs " + std::to_string(target.info.n_vocab) +
                           " tokens): llama-server cannot verify its drafts; name another or use auto or off");
  }
  c.kind = SpecKind::kDraft;
  c.reason = "named in the config (same vocabulary; " + Params(*draft) + " vs " + Params(target) + ")";
  c.draft = std::move(*draft);
  return c;
}

}  // namespace

std::string_view to_string(SpecKind kind) {
  switch (kind) {
    case SpecKind::kNone: return "none";
    case SpecKind::kMtp: return "mtp";
    case SpecKind::kDraft: return "draft";
  }
  return "?";
}

std::string ArchFamily(std::string_view architecture) {
  std::string a(architecture);
  if (a.size() > 3 && a.ends_with("moe")) a.resize(a.size() - 3);
  if (a.ends_with("-") || a.ends_with("_")) a.pop_back();
  return a;
}

Result<SpecChoice> ChooseSpec(const Model& target, const std::vector<Model>& models, std::string_view setting,
                              const DraftResolver& resolve) {
  CORRAL_RETURN_IF_ERROR(config::CheckSpecSetting(setting).WithContext("spec"));
  if (setting == "off") {
    SpecChoice c;
    c.setting = "off";
    c.reason = "off in the config";
    return c;
  }
  if (setting == "auto") return AutoChoice(target, models);
  return NamedChoice(target, setting, resolve);
}

Result<SpecChoice> ChooseSpec(const Model& target, const Catalog& catalog, std::string_view setting) {
  return ChooseSpec(target, catalog.models(), setting,
                    [&catalog](std::string_view ref) { return catalog.Resolve(ref); });
}

std::string SpecSettingFor(const config::Config& config, const Catalog& catalog, const std::string& model_path) {
  for (const auto& m : config.models) {
    auto model = catalog.Resolve(m.ref);
    if (!model.ok() || model->path != model_path) continue;
    return m.spec.empty() ? config.spec : m.spec;  // the first entry for the file applies
  }
  return config.spec;
}

nlohmann::json SpecJson(const SpecChoice& c) {
  return nlohmann::json{{"kind", to_string(c.kind)},
                        {"setting", c.setting},
                        {"draft", c.draft ? c.draft->name : ""},
                        {"draft_path", c.draft ? c.draft->path : ""},
                        {"reason", c.reason}};
}

std::string SpecLine(const SpecChoice& c) {
  switch (c.kind) {
    case SpecKind::kDraft: return "draft " + (c.draft ? c.draft->name : std::string("?")) + " (" + c.reason + ")";
    case SpecKind::kMtp: return "mtp (" + c.reason + ")";
    case SpecKind::kNone: break;
  }
  return "none (" + c.reason + ")";
}

}  // namespace corral::catalog
