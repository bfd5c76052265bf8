// Model references and memory estimates for the daemon: the ONE place that turns what the
// user typed into a file to launch, and the ONE place that estimates a launch's memory.
// (The catalog module replaces both bodies when it lands: Catalog::Resolve, EstimateMemory.)
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/options.h"

namespace corral::daemon {

struct ResolvedModel {
  std::string name;  // canonical name: the default child name
  std::string path;  // passed to llama-server -m
  uint64_t size_bytes = 0;
};

// kNotFound / kAmbiguous (CLI exit 66) with a message naming what was tried.
Result<ResolvedModel> ResolveModel(const config::Config& config, std::string_view ref);

// Bytes a llama-server with this model and context is expected to need (weights + KV cache
// + compute buffers). ctx 0 = llama-server's default.
uint64_t EstimateModelMemory(const config::Config& config, const ResolvedModel& model, uint32_t ctx);

// A valid child name derived from a model name ("Qwen2.5 7B" → "Qwen2.5-7B").
std::string ChildNameFor(std::string_view model_name);

}  // namespace corral::daemon
