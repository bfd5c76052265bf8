// Model references and memory estimates for the daemon: the ONE place that turns what the
// user typed into a file to launch (catalog::Catalog::Resolve), and the ONE place that
// estimates a launch's memory (catalog::EstimateMemory).
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/spec.h"
#include "common/status.h"
#include "config/options.h"
#include "supervisor/launch.h"

namespace corral::daemon {

struct ResolvedModel {
  std::string name;  // canonical name: the default child name
  std::string path;  // passed to llama-server -m
  uint64_t size_bytes = 0;
  // The catalog's view; unset for a file whose header the catalog could not read (it is
  // still launched: llama-server is the judge of what it can load, and says why not).
  std::optional<catalog::Model> catalog;
};

// For the control plane (`corral start`: the local user over the 0600 socket): a path to a
// regular file, or a name through Catalog::Load + Resolve. A file that is one of the
// catalog's models is that model (its name, its path); another file gets its metadata name
// unless a catalog model holds that name (then "-path-HASH" is added: a name belongs to one
// file). kNotFound / kAmbiguous (CLI exit 66) name the candidates; a reference with a
// control character is kInvalidArgument.
Result<ResolvedModel> ResolveModel(const config::Config& config, std::string_view ref);

// For a model named by a network request (the router's on-demand start): catalog names
// only (canonical name, alias, origin, unique substring; Catalog::ResolveName), never a
// path and never the filesystem. Messages carry names, never paths.
Result<ResolvedModel> ResolveRequestModel(const catalog::Catalog& catalog, std::string_view ref);

// Bytes a llama-server with this model and context is expected to need (weights + KV cache
// + compute buffers). ctx 0 = llama-server's default.
uint64_t EstimateModelMemory(const config::Config& config, const ResolvedModel& model, uint32_t ctx);

// Speculative decoding for a launch (catalog/spec.h, docs/spec.md): chooses by `setting`
// over `catalog` and fills spec.spec_mtp, draft_path, draft_model and spec_note; the draft's
// memory (at the launch's context) is added to spec.reserved_bytes. A model without header
// facts gets none. Errors are ChooseSpec's: a named draft that is missing (kNotFound,
// kAmbiguous) or does not fit (kInvalidArgument); the launch must then be refused.
Result<catalog::SpecChoice> ApplySpec(supervisor::LaunchSpec& spec, const ResolvedModel& model,
                                      const catalog::Catalog& catalog, std::string_view setting);

// What the router knows about a model file when it is launched (ModelRouter::
// LaunchSettingsFor, read under one lock): its `models:` entry, the KV state kept across
// unloads (docs/kv.md) and the speculative-decoding setting in force (docs/spec.md).
struct LaunchSettings {
  std::optional<config::ModelSettings> model;  // its `models:` entry, if any
  std::string kv_root;                         // "" = no KV state kept for it
  uint64_t kv_budget_bytes = 0;
  std::string spec_setting = "auto";  // auto | off | a draft's name (off after a fallback mark)
};

// What the one who asks for the start says: `corral start`'s flags; all unset for an
// on-demand start (the model's settings decide alone).
struct LaunchRequest {
  std::string name;                   // the child's name (chosen by the caller)
  uint32_t ctx = 0;                   // 0 = the model's `ctx` setting
  int port = 0;                       // 0 = any free port
  std::vector<std::string> raw_args;  // empty = the model's `args` (as preset args)
  std::vector<std::string> env;       // empty = the daemon's environment
  bool restart = false;               // or the model's `restart`
  bool force = false;
};

struct LaunchPlan {
  supervisor::LaunchSpec spec;
  catalog::SpecChoice spec_choice;
};

// THE launch spec builder: `corral start` (daemon.cc) and the router's on-demand start both
// call it, so the two cannot drift. Fills the spec from `model`, the request (which wins
// where it says something) and `settings`; reserves the estimated memory, the KV root and
// the speculative choice (ApplySpec over `catalog`, whose errors it returns).
Result<LaunchPlan> BuildLaunchSpec(const config::Config& config, const ResolvedModel& model,
                                   const LaunchSettings& settings, const LaunchRequest& request,
                                   const catalog::Catalog& catalog);

// What the config module cannot check alone: the memory budget parses, and every
// `models:` entry's args pass the same refusal rules as `corral start -- ARGS`, and every
// spec setting is auto, off or a possible model name (CheckSpecSetting). The message
// names the file, the model and the key. Used at start-up and before a reload is applied.
Status ValidateDaemonConfig(const config::Config& config);

// The memory budget in bytes: memory_budget, or for "auto" the default share of
// `total_memory_bytes` (0 when unknown: no admission check).
Result<uint64_t> MemoryBudgetBytes(const config::Config& config, uint64_t total_memory_bytes);

// A valid child name derived from a model name ("Qwen2.5 7B" → "Qwen2.5-7B").
std::string ChildNameFor(std::string_view model_name);

}  // namespace corral::daemon
