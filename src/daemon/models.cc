#include "daemon/models.h"

#include <sys/stat.h>

#include <cctype>
#include <filesystem>

#include "common/fs.h"
#include "common/paths.h"

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

Result<ResolvedModel> ResolveModel(const config::Config& config, std::string_view ref) {
  if (ref.empty()) return NotFound("empty model reference");
  std::string r = ExpandHome(ref);
  ResolvedModel m;
  // 1. A path to a GGUF file.
  if (IsRegularFile(r, &m.size_bytes)) {
    std::error_code ec;
    fs::path abs = fs::absolute(r, ec);
    m.path = ec ? r : abs.lexically_normal().string();
    m.name = fs::path(m.path).stem().string();
    return m;
  }
  // 2. A file name (with or without .gguf) in the model directory or a configured path.
  std::vector<std::string> dirs = {DefaultModelDir()};
  for (const auto& p : config.model_paths) dirs.push_back(p);
  std::vector<ResolvedModel> found;
  for (const auto& d : dirs) {
    for (const std::string& candidate : {d + "/" + r, d + "/" + r + ".gguf"}) {
      ResolvedModel c;
      if (IsRegularFile(candidate, &c.size_bytes)) {
        c.path = candidate;
        c.name = fs::path(candidate).stem().string();
        bool dup = false;
        for (const auto& f : found) dup = dup || f.path == c.path;
        if (!dup) found.push_back(c);
      }
    }
  }
  if (found.size() == 1) return found[0];
  if (found.size() > 1) {
    std::string names;
    for (const auto& f : found) names += "\n  " + f.path;
    return Status(StatusCode::kAmbiguous, "model reference '" + std::string(ref) + "' matches several files:" + names);
  }
  return NotFound("no model matches '" + std::string(ref) + "' (give a path to a .gguf file, or a file name in " +
                  DefaultModelDir() + ")");
}

uint64_t EstimateModelMemory(const config::Config& /*config*/, const ResolvedModel& model, uint32_t ctx) {
  // Until the catalog reads GGUF headers: the weights are the file (mmap'd), the KV cache
  // is bounded by a per-token guess that scales with the model (f16 K+V of a model whose
  // width grows like sqrt(size)), plus a fixed compute-buffer allowance.
  constexpr uint64_t kComputeBytes = 64ULL << 20;
  const uint64_t n_ctx = ctx != 0 ? ctx : 4096;
  const uint64_t per_token = std::max<uint64_t>(uint64_t{16} * 1024, model.size_bytes / (uint64_t{64} * 1024));
  return model.size_bytes + n_ctx * per_token + kComputeBytes;
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
