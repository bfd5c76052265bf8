// libFuzzer: the hub's JSON answers (tree listing, revision) and what is chosen from them.
// Nothing the server sends may crash, hang or allocate without bound; a path that survives
// parsing must be safe to create under a snapshot directory.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pull/hub.h"
#include "pull/ollama_progress.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)corral::pull::ParseRevision(text);
  (void)corral::pull::OllamaPullLines(text);
  (void)corral::pull::ParsePullRef(text.substr(0, 256));
  auto files = corral::pull::ParseTree(text);
  if (!files.ok()) return 0;
  for (const auto& f : *files) {
    if (!corral::pull::SafeRepoPath(f.path)) std::abort();
    (void)corral::pull::QuantOf(f.path);
  }
  (void)corral::pull::Choose({"o/r", "", ""}, *files, uint64_t{8} << 30, true);
  (void)corral::pull::Choose({"o/r", "Q4_K_M", ""}, *files, 0, true);
  return 0;
}
