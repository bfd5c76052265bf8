#include "pull/ollama_progress.h"

#include <nlohmann/json.hpp>

namespace corral::pull {
namespace {

uint64_t U64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string OllamaPullLines(std::string_view line) {
  if (line.empty() || line.size() > kMaxPullLineBytes) return {};
  // Our own lines are flat objects; refuse nesting before the recursive parser sees it.
  size_t depth = 0;
  for (char c : line) {
    if (c == '{' || c == '[') ++depth;
  }
  if (depth > 8) return {};
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return {};
  const std::string event = Str(j, "event");
  auto one = [](const nlohmann::json& o) { return o.dump() + "\n"; };
  if (event == "resolved") return one({{"status", "pulling manifest"}});
  if (event == "start" || event == "progress" || event == "done") {
    const std::string sha = Str(j, "sha256");
    const uint64_t total = U64(j, "total");
    const uint64_t completed = event == "done" ? total : U64(j, "completed");
    return one({{"status", "pulling " + sha.substr(0, 12)},
                {"digest", "sha256:" + sha},
                {"total", total},
                {"completed", completed}});
  }
  if (event == "success") {
    return one({{"status", "verifying sha256 digest"}}) + one({{"status", "writing manifest"}}) +
           one({{"status", "success"}});
  }
  if (event == "error") {
    std::string message = Str(j, "message");
    if (message.empty()) message = "pull failed";
    return one({{"error", message}});
  }
  return {};
}

}  // namespace corral::pull
