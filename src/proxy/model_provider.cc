#include "proxy/model_provider.h"

#include <algorithm>
#include <cctype>

#include "catalog/names.h"
#include "common/url.h"

namespace corral::proxy {

std::string Endpoint::ToString() const {
  return BracketHost(host) + ":" + std::to_string(port);
}

std::string_view to_string(ModelState state) {
  switch (state) {
    case ModelState::kStopped: return "stopped";
    case ModelState::kStarting: return "starting";
    case ModelState::kLoading: return "loading";
    case ModelState::kReady: return "ready";
    case ModelState::kStopping: return "stopping";
    case ModelState::kFailed: return "failed";
  }
  return "unknown";
}

std::string_view to_string(EnsureErrorCode code) {
  switch (code) {
    case EnsureErrorCode::kNotFound: return "not_found";
    case EnsureErrorCode::kStartFailed: return "start_failed";
    case EnsureErrorCode::kQueueFull: return "queue_full";
    case EnsureErrorCode::kTimeout: return "timeout";
    case EnsureErrorCode::kUnavailable: return "unavailable";
  }
  return "unknown";
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Levenshtein distance, bounded inputs (model names), O(n*m) with two rows.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

namespace {
catalog::NameEntry EntryOf(const ModelInfo& m) {
  return {m.name, m.aliases, m.stem, m.origin, m.quantization};
}
}  // namespace

const ModelInfo* FindModel(std::string_view ref, const std::vector<ModelInfo>& models, std::string* why) {
  // Paths never name a model here: a reference with a '/' is only ever an owner/repo name.
  std::vector<catalog::NameEntry> entries;
  entries.reserve(models.size());
  for (const auto& m : models) entries.push_back(EntryOf(m));
  auto hit = catalog::MatchReference(ref, entries);
  if (hit.ok()) return &models[*hit];
  if (why != nullptr) *why = hit.status().message();
  return nullptr;
}

std::vector<std::string> NamesOf(const ModelInfo& m) {
  std::vector<std::string> out = {m.name};
  out.insert(out.end(), m.aliases.begin(), m.aliases.end());
  for (auto& n : catalog::OtherNames(EntryOf(m))) out.push_back(std::move(n));
  return out;
}

std::vector<std::string> CloseMatches(std::string_view name, const std::vector<std::string>& candidates, size_t limit) {
  constexpr size_t kMaxNameForDistance = 256;
  std::string want = Lower(name.substr(0, kMaxNameForDistance));
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& c : candidates) {
    std::string lc = Lower(c);
    size_t score;
    if (!want.empty() && (lc.find(want) != std::string::npos || want.find(lc) != std::string::npos)) {
      score = 0;
    } else {
      size_t d = EditDistance(want, lc.substr(0, kMaxNameForDistance));
      size_t allowed = std::max<size_t>(2, std::max(want.size(), lc.size()) / 3);
      if (d > allowed) continue;
      score = d;
    }
    scored.emplace_back(score, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (auto& [s, c] : scored) {
    if (out.size() >= limit) break;
    out.push_back(c);
  }
  return out;
}

}  // namespace corral::proxy
