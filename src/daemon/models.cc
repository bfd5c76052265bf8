#include "daemon/models.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "common/fs.h"
#include "common/paths.h"
#include "supervisor/launch.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {
bool IsRegularFile(const std::string& p, uint64_t* size) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}
}  // namespace

namespace {
ResolvedModel FromCatalog(catalog::Model model) {
  ResolvedModel m;
  m.name = model.name;
  m.path = model.path;
  m.size_bytes = model.size_bytes;
  m.catalog = std::move(model);
  return m;
}
}  // namespace

Result<ResolvedModel> ResolveModel(const config::Config& config, std::string_view ref) {
  CORRAL_RETURN_IF_ERROR(catalog::CheckReference(ref));
  const std::string r = ExpandHome(ref);
  ResolvedModel m;
  if (IsRegularFile(r, &m.size_bytes)) {
    std::error_code ec;
    fs::path abs = fs::absolute(r, ec);
    m.path = ec ? r : abs.lexically_normal().string();
    // The catalog says whether this file is one of its models, and which names are taken.
    // Without a catalog (it failed to load) the file is read on its own.
    auto cat = catalog::Catalog::Load(config);
    auto model = cat.ok() ? cat->ResolveFile(m.path) : catalog::ModelFromFile(m.path);
    if (model.ok()) return FromCatalog(std::move(*model));
    if (model.status().code() == StatusCode::kInvalidArgument) {
      return model.status();  // e.g. a multimodal projector: not a model
    }
    // An unreadable header: llama-server decides (and says why not).
    m.name = fs::path(m.path).stem().string();
    if (cat.ok() && cat->FindExact(m.name) != nullptr) {
      const std::string base = m.name + "-path";
      m.name = base;
      for (int n = 2; n < 1000 && cat->FindExact(m.name) != nullptr; ++n) m.name = base + "-" + std::to_string(n);
    }
    return m;
  }
  CORRAL_ASSIGN_OR_RETURN(catalog::Catalog cat, catalog::Catalog::Load(config));
  CORRAL_ASSIGN_OR_RETURN(catalog::Model model, cat.Resolve(ref));
  return FromCatalog(std::move(model));
}

Result<ResolvedModel> ResolveRequestModel(const catalog::Catalog& catalog, std::string_view ref) {
  CORRAL_ASSIGN_OR_RETURN(catalog::Model model, catalog.ResolveName(ref));
  return FromCatalog(std::move(model));
}

uint64_t EstimateModelMemory(const config::Config& /*config*/, const ResolvedModel& model, uint32_t ctx) {
  if (model.catalog) {
    auto e = catalog::EstimateMemory(*model.catalog, ctx);
    if (e.ok()) return e->total_bytes;
  }
  // No header facts: the weights are the file (mmap'd), the KV cache a per-token guess that
  // scales with the model, plus a fixed compute-buffer allowance.
  constexpr uint64_t kComputeBytes = 64ULL << 20;
  const uint64_t n_ctx = ctx != 0 ? ctx : 4096;
  const uint64_t per_token = std::max<uint64_t>(uint64_t{16} * 1024, model.size_bytes / (uint64_t{64} * 1024));
  return model.size_bytes + n_ctx * per_token + kComputeBytes;
}

Result<catalog::SpecChoice> ApplySpec(supervisor::LaunchSpec& spec, const ResolvedModel& model,
                                      const catalog::Catalog& catalog, std::string_view setting) {
  spec.spec_mtp = false;
  spec.draft_path.clear();
  spec.draft_model.clear();
  catalog::SpecChoice choice;
  if (!model.catalog) {
    CORRAL_RETURN_IF_ERROR(config::CheckSpecSetting(setting).WithContext("spec"));
    choice.setting = std::string(setting);
    choice.reason = "the model's header could not be read, so no draft can be matched to it";
  } else {
    CORRAL_ASSIGN_OR_RETURN(choice, catalog::ChooseSpec(*model.catalog, catalog, setting));
  }
  spec.spec_note = catalog::SpecLine(choice);
  if (choice.kind == catalog::SpecKind::kMtp) spec.spec_mtp = true;
  if (choice.kind == catalog::SpecKind::kDraft && choice.draft) {
    spec.draft_path = choice.draft->path;
    spec.draft_model = choice.draft->name;
    // llama-server gives the draft the target's context.
    const uint32_t ctx = spec.ctx != 0 ? spec.ctx : model.catalog->n_ctx_train;
    auto e = catalog::EstimateMemory(*choice.draft, ctx);
    spec.reserved_bytes += e.ok() ? e->total_bytes : choice.draft->size_bytes;
  }
  return choice;
}

Result<LaunchPlan> BuildLaunchSpec(const config::Config& config, const ResolvedModel& model,
                                   const LaunchSettings& settings, const LaunchRequest& request,
                                   const catalog::Catalog& catalog) {
  LaunchPlan plan;
  supervisor::LaunchSpec& spec = plan.spec;
  spec.name = request.name;
  spec.model = model.name;
  spec.model_path = model.path;
  spec.model_bytes = model.size_bytes;
  spec.ctx = request.ctx;
  spec.port = request.port;
  spec.raw_args = request.raw_args;
  spec.env = request.env;
  spec.force = request.force;
  spec.restart = request.restart;
  // The config's `models:` settings are the defaults where the request gives none.
  if (settings.model) {
    if (spec.ctx == 0) spec.ctx = settings.model->ctx;
    if (spec.raw_args.empty()) spec.preset_args = settings.model->args;
    spec.restart = spec.restart || settings.model->restart;
  }
  spec.reserved_bytes = EstimateModelMemory(config, model, spec.ctx);
  spec.kv_root = settings.kv_root;  // --slot-save-path: KV state saved at unload, restored at start
  spec.kv_budget_bytes = settings.kv_root.empty() ? 0 : settings.kv_budget_bytes;
  CORRAL_ASSIGN_OR_RETURN(plan.spec_choice, ApplySpec(spec, model, catalog, settings.spec_setting));
  return plan;
}

Status ValidateDaemonConfig(const config::Config& config) {
  CORRAL_RETURN_IF_ERROR(MemoryBudgetBytes(config, 0).status());
  if (auto kv = supervisor::ParseByteSize(config.kv_keep_budget); !kv.ok()) {
    return kv.status().WithContext("kv_keep_budget");
  }
  CORRAL_RETURN_IF_ERROR(config::CheckSpecSetting(config.spec).WithContext(config.config_file + ": spec"));
  for (const auto& m : config.models) {
    const std::string where = config.config_file + ":" + std::to_string(m.line) + ": models." + m.ref;
    Status s = supervisor::CheckRawArgs(m.args);
    if (!s.ok()) return InvalidArgument(where + ".args: " + s.message());
    if (!m.spec.empty()) CORRAL_RETURN_IF_ERROR(config::CheckSpecSetting(m.spec).WithContext(where + ".spec"));
  }
  return Status::Ok();
}

Result<uint64_t> MemoryBudgetBytes(const config::Config& config, uint64_t total_memory_bytes) {
  if (config.memory_budget == "auto" || config.memory_budget.empty()) {
    return total_memory_bytes != 0 ? supervisor::DefaultMemoryBudget(total_memory_bytes) : 0;
  }
  auto b = supervisor::ParseByteSize(config.memory_budget);
  if (!b.ok()) return b.status().WithContext("memory_budget");
  return *b;
}

std::string ChildNameFor(std::string_view model_name) {
  std::string out;
  for (char c : model_name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
    out += ok ? c : '-';
  }
  while (!out.empty() && (out[0] == '.' || out[0] == '-')) out.erase(0, 1);
  if (out.size() > 64) out.resize(64);
  if (out.empty()) out = "model";
  return out;
}

}  // namespace corral::daemon
