#include "catalog/names.h"

#include <algorithm>
#include <set>

namespace corral::catalog {
namespace {

constexpr size_t kMaxCandidatesShown = 10;
constexpr std::string_view kDefaultQuant = "q4_k_m";  // llama.cpp's -hf and Ollama's hf.co default

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

// "owner/repo" (exactly one '/', both sides non-empty, no ':'): a repo name.
bool IsRepo(std::string_view s) {
  const size_t slash = s.find('/');
  return slash != std::string_view::npos && slash > 0 && slash + 1 < s.size() &&
         s.find('/', slash + 1) == std::string_view::npos && s.find(':') == std::string_view::npos;
}

// True when `token` is one of the '-', '_' or '.' separated runs of `stem` (any case), or a
// run of several of them ("UD-Q4_K_XL" in "Qwen3-8B-UD-Q4_K_XL").
bool StemHasToken(std::string_view stem, std::string_view token) {
  if (token.empty()) return false;
  const std::string ls = Lower(stem), lt = Lower(token);
  size_t pos = 0;
  while ((pos = ls.find(lt, pos)) != std::string::npos) {
    const size_t end = pos + lt.size();
    const bool start_ok = pos == 0 || ls[pos - 1] == '-' || ls[pos - 1] == '.';
    const bool end_ok = end == ls.size() || ls[end] == '-' || ls[end] == '.';
    if (start_ok && end_ok) return true;
    ++pos;
  }
  return false;
}

Status Candidates(StatusCode code, std::string_view ref, const std::vector<NameEntry>& entries,
                  const std::vector<size_t>& hits) {
  std::string msg;
  if (code == StatusCode::kAmbiguous) {
    msg = "'" + std::string(ref) + "' matches " + std::to_string(hits.size()) + " models:";
  } else {
    msg = "no model matches '" + std::string(ref) + "'";
    if (hits.empty()) {
      msg += entries.empty() ? " (no models found; see corral list)" : " (see corral list)";
      return {code, msg};
    }
    msg += "; known models:";
  }
  for (size_t k = 0; k < hits.size() && k < kMaxCandidatesShown; ++k) {
    msg += " " + entries[hits[k]].name + (k + 1 < hits.size() && k + 1 < kMaxCandidatesShown ? "," : "");
  }
  if (hits.size() > kMaxCandidatesShown) {
    msg += " (and " + std::to_string(hits.size() - kMaxCandidatesShown) + " more)";
  }
  return {code, msg};
}

}  // namespace

std::string NormalizeReference(std::string_view ref) {
  for (std::string_view prefix : {"hf.co/", "huggingface.co/", "https://huggingface.co/", "https://hf.co/"}) {
    if (ref.size() > prefix.size() && EqualsNoCase(ref.substr(0, prefix.size()), prefix)) {
      ref.remove_prefix(prefix.size());
      break;
    }
  }
  constexpr std::string_view kLatest = ":latest";
  if (ref.size() > kLatest.size() && EqualsNoCase(ref.substr(ref.size() - kLatest.size()), kLatest)) {
    ref.remove_suffix(kLatest.size());
  }
  return std::string(ref);
}

std::string ModelFileStem(const std::string& path) {
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (name.size() > 5 && Lower(name.substr(name.size() - 5)) == ".gguf") name.resize(name.size() - 5);
  // "-00001-of-00003": gguf-split's shard suffix.
  constexpr size_t kSuffix = 15;
  if (name.size() > kSuffix) {
    const std::string_view tail = std::string_view(name).substr(name.size() - kSuffix);
    bool shard = tail[0] == '-' && tail.substr(6, 4) == "-of-";
    for (size_t k : {1u, 2u, 3u, 4u, 5u, 10u, 11u, 12u, 13u, 14u}) shard = shard && tail[k] >= '0' && tail[k] <= '9';
    if (shard) name.resize(name.size() - kSuffix);
  }
  return name;
}

std::vector<std::string> OtherNames(const NameEntry& e) {
  std::vector<std::string> out;
  std::set<std::string> seen{Lower(e.name)};
  for (const auto& a : e.aliases) seen.insert(Lower(a));
  auto add = [&](const std::string& n) {
    if (!n.empty() && seen.insert(Lower(n)).second) out.push_back(n);
  };
  add(e.stem);
  add(e.origin);
  if (IsRepo(e.origin) && !e.quant.empty()) {
    add(e.origin + ":" + e.quant);
    add("hf.co/" + e.origin + ":" + e.quant);
  }
  return out;
}

Result<size_t> MatchReference(std::string_view ref_view, const std::vector<NameEntry>& entries) {
  const std::string ref(ref_view);
  const std::string lref = Lower(ref);
  std::vector<size_t> hits;
  auto one_or_many = [&](const std::vector<size_t>& h) -> Result<size_t> {
    if (h.size() == 1) return h[0];
    return Candidates(StatusCode::kAmbiguous, ref, entries, h);
  };
  // 1, 2: canonical names and aliases.
  for (size_t i = 0; i < entries.size(); ++i) {
    if (Lower(entries[i].name) == lref) return i;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    for (const auto& a : entries[i].aliases) {
      if (Lower(a) == lref) hits.push_back(i);
    }
  }
  if (!hits.empty()) return one_or_many(hits);

  // 3: other names, exactly, after normalisation.
  const std::string norm = Lower(NormalizeReference(ref));
  for (size_t i = 0; i < entries.size(); ++i) {
    const NameEntry& e = entries[i];
    if (Lower(e.name) == norm) return i;  // "NAME:latest", "hf.co/NAME"
    bool hit = Lower(e.stem) == norm || Lower(e.origin) == norm;
    for (const auto& a : e.aliases) hit = hit || Lower(a) == norm;
    if (hit) hits.push_back(i);
  }
  // owner/repo:TAG: the repo's file whose quant (or a stem token) is TAG.
  const size_t colon = norm.rfind(':');
  if (hits.empty() && colon != std::string::npos && IsRepo(std::string_view(norm).substr(0, colon))) {
    const std::string repo = norm.substr(0, colon), tag = norm.substr(colon + 1);
    for (size_t i = 0; i < entries.size(); ++i) {
      const NameEntry& e = entries[i];
      if (Lower(e.origin) == repo && (Lower(e.quant) == tag || StemHasToken(e.stem, tag))) hits.push_back(i);
    }
  }
  // owner/repo with several files: its Q4_K_M, when there is exactly one.
  if (hits.size() > 1 && IsRepo(norm)) {
    std::vector<size_t> preferred;
    for (size_t i : hits) {
      if (Lower(entries[i].origin) == norm && Lower(entries[i].quant) == kDefaultQuant) preferred.push_back(i);
    }
    if (preferred.size() == 1) return preferred[0];
  }
  if (!hits.empty()) return one_or_many(hits);

  // 4: unique substring.
  for (size_t i = 0; i < entries.size(); ++i) {
    const NameEntry& e = entries[i];
    bool hit = Lower(e.name).find(lref) != std::string::npos || Lower(e.origin).find(lref) != std::string::npos ||
               Lower(e.stem).find(lref) != std::string::npos;
    for (const auto& a : e.aliases) hit = hit || Lower(a).find(lref) != std::string::npos;
    if (hit) hits.push_back(i);
  }
  if (!hits.empty()) return one_or_many(hits);
  std::vector<size_t> all(entries.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return Candidates(StatusCode::kNotFound, ref, entries, all);
}

}  // namespace corral::catalog
