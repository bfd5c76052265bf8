#include "pull/hub.h"

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>

namespace corral::pull {
namespace {

constexpr size_t kMaxJsonDepth = 32;  // the hub's answers nest 3 deep
constexpr size_t kMaxRefBytes = 2048;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char Upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

std::string UpperStr(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Upper(c);
  return out;
}

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t k = 0; k < suffix.size(); ++k) {
    if (Upper(s[s.size() - suffix.size() + k]) != Upper(suffix[k])) return false;
  }
  return true;
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// nlohmann's parser recurses per nesting level; refuse deep documents before it sees them.
bool DepthWithin(std::string_view json, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t k = 0; k < json.size(); ++k) {
    const char c = json[k];
    if (in_string) {
      if (c == '\\') {
        ++k;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what) {
  if (text.size() > kMaxListingBytes) {
    return Status(StatusCode::kResourceExhausted,
                  std::string(what) + ": answer larger than " + std::to_string(kMaxListingBytes >> 20) + " MiB");
  }
  if (!DepthWithin(text, kMaxJsonDepth)) return Corrupt(std::string(what) + ": JSON nested too deep");
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(std::string(what) + ": not JSON");
  return j;
}

bool IsLowerHex(std::string_view s, size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Known quantisation names, best quality first. The rank is the position from the end.
constexpr std::array<std::string_view, 40> kQuants = {
    "F32",    "BF16",    "F16",     "Q8_0",   "Q6_K_L", "Q6_K",    "Q5_K_XL", "Q5_K_L", "Q5_K_M",  "Q5_K_S",
    "Q5_1",   "Q5_0",    "Q4_K_XL", "Q4_K_L", "Q4_K_M", "Q4_K_S",  "Q4_1",    "Q4_0",   "IQ4_NL",  "IQ4_XS",
    "MXFP4",  "Q3_K_XL", "Q3_K_L",  "Q3_K_M", "IQ3_M",  "IQ3_S",   "Q3_K_S",  "IQ3_XS", "IQ3_XXS", "Q2_K_XL",
    "Q2_K_L", "Q2_K",    "IQ2_M",   "IQ2_S",  "IQ2_XS", "IQ2_XXS", "IQ1_M",   "IQ1_S",  "TQ2_0",   "TQ1_0"};

bool IsSep(char c) {
  return c == '-' || c == '.' || c == '_' || c == '/';
}

std::string JoinQuants(const std::vector<Candidate>& cands) {
  std::string out;
  for (const auto& c : cands) {
    if (!out.empty()) out += ", ";
    out += c.quant.empty() ? c.name : c.quant;
  }
  return out;
}

}  // namespace

bool ValidRepoId(std::string_view repo) {
  const size_t slash = repo.find('/');
  if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos) return false;
  for (std::string_view part : {repo.substr(0, slash), repo.substr(slash + 1)}) {
    if (part.empty() || part.size() > 96 || part[0] == '.' || part[0] == '-') return false;
    if (part.find("..") != std::string_view::npos) return false;
    for (char c : part) {
      if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
  }
  return true;
}

bool SafeRepoPath(std::string_view path) {
  if (path.empty() || path.size() > kMaxRepoPathBytes || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.size() > kMaxPathComponentBytes) return false;
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f || c == '\\') return false;
    }
    start = end + 1;
  }
  return true;
}

bool ValidCommit(std::string_view sha) {
  return IsLowerHex(sha, 40);
}

bool ValidRevision(std::string_view rev) {
  if (rev.empty() || rev.size() > 256 || rev.front() == '/' || rev.front() == '-' || rev.back() == '/') return false;
  if (rev.find("..") != std::string_view::npos || rev.find("//") != std::string_view::npos) return false;
  return std::all_of(rev.begin(), rev.end(),
                     [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-' || c == '/'; });
}

Result<PullRef> ParsePullRef(std::string_view text) {
  if (text.empty() || text.size() > kMaxRefBytes) return InvalidArgument("expected owner/repo[:QUANT | /FILE.gguf]");
  std::string_view s = text;
  for (std::string_view prefix : {"https://", "http://"}) {
    if (s.substr(0, prefix.size()) == prefix) s.remove_prefix(prefix.size());
  }
  for (std::string_view host : {"hf.co/", "huggingface.co/", "www.huggingface.co/"}) {
    if (s.substr(0, host.size()) == host) s.remove_prefix(host.size());
  }
  PullRef ref;
  // owner/repo is the first two components; the rest is a file path.
  const size_t first = s.find('/');
  if (first == std::string_view::npos) {
    return InvalidArgument("'" + std::string(text) + "' is not owner/repo[:QUANT | /FILE.gguf]");
  }
  size_t second = s.find('/', first + 1);
  std::string_view repo_part = s.substr(0, second);
  std::string_view rest = second == std::string_view::npos ? std::string_view() : s.substr(second + 1);
  if (const size_t colon = repo_part.find(':'); colon != std::string_view::npos) {
    ref.quant = std::string(repo_part.substr(colon + 1));
    repo_part = repo_part.substr(0, colon);
    if (!rest.empty()) return InvalidArgument("give either :QUANT or /FILE, not both");
  }
  // A web URL: owner/repo/blob/main/FILE or owner/repo/resolve/main/FILE.
  for (std::string_view web : {"blob/", "resolve/"}) {
    if (rest.substr(0, web.size()) == web) {
      const size_t slash = rest.find('/', web.size());
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
  }
  ref.repo = std::string(repo_part);
  if (!ValidRepoId(ref.repo)) return InvalidArgument("'" + ref.repo + "' is not a valid owner/repo");
  if (!rest.empty()) {
    if (!SafeRepoPath(rest) || !EndsWithNoCase(rest, ".gguf")) {
      return InvalidArgument("'" + std::string(rest) + "' is not a .gguf file path inside the repo");
    }
    ref.file = std::string(rest);
  }
  if (!ref.quant.empty()) {
    if (ref.quant == "latest") {
      ref.quant.clear();  // Ollama's default tag
    } else if (ref.quant.size() > 32 || !std::all_of(ref.quant.begin(), ref.quant.end(),
                                                     [](char c) { return IsAlnum(c) || c == '_' || c == '-'; })) {
      return InvalidArgument("'" + ref.quant + "' is not a quantisation name (like Q4_K_M)");
    }
  }
  return ref;
}

Result<RevisionInfo> ParseRevision(std::string_view json) {
  CORRAL_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(json, "revision answer"));
  if (!j.is_object()) return Corrupt("revision answer: not a JSON object");
  RevisionInfo info;
  auto sha = j.find("sha");
  if (sha == j.end() || !sha->is_string() || !ValidCommit(sha->get_ref<const std::string&>())) {
    return Corrupt("revision answer: no 40-hex 'sha' commit");
  }
  info.commit = sha->get<std::string>();
  if (auto g = j.find("gated"); g != j.end() && g->is_string()) {
    const auto& v = g->get_ref<const std::string&>();
    info.gated = v.size() <= 16 ? v : "manual";
  }
  return info;
}

Result<std::vector<RemoteFile>> ParseTree(std::string_view json) {
  CORRAL_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(json, "file listing"));
  if (!j.is_array()) return Corrupt("file listing: not a JSON array");
  if (j.size() > kMaxListingEntries) {
    return Status(StatusCode::kResourceExhausted,
                  "file listing: more than " + std::to_string(kMaxListingEntries) + " entries");
  }
  std::vector<RemoteFile> out;
  for (const auto& e : j) {
    if (!e.is_object()) return Corrupt("file listing: an entry is not an object");
    auto type = e.find("type");
    auto path = e.find("path");
    if (type == e.end() || !type->is_string() || path == e.end() || !path->is_string()) {
      return Corrupt("file listing: an entry without 'type' and 'path'");
    }
    if (*type != "file") continue;
    RemoteFile f;
    f.path = path->get<std::string>();
    const std::string shown = f.path.substr(0, 120);
    if (!SafeRepoPath(f.path)) return Corrupt("file listing: unsafe file name '" + shown + "'");
    auto size = e.find("size");
    if (size == e.end() || !size->is_number_unsigned()) return Corrupt("file listing: '" + shown + "' has no size");
    f.size = size->get<uint64_t>();
    if (auto lfs = e.find("lfs"); lfs != e.end() && lfs->is_object()) {
      auto oid = lfs->find("oid");
      if (oid == lfs->end() || !oid->is_string() || !IsLowerHex(oid->get_ref<const std::string&>(), 64)) {
        return Corrupt("file listing: '" + shown + "' has no sha256 (lfs.oid)");
      }
      f.sha256 = oid->get<std::string>();
      if (auto ls = lfs->find("size");
          ls != lfs->end() && (!ls->is_number_unsigned() || ls->get<uint64_t>() != f.size)) {
        return Corrupt("file listing: '" + shown + "': lfs.size disagrees with size");
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::string QuantOf(std::string_view file_name) {
  std::string up = UpperStr(BaseName(file_name));
  if (EndsWithNoCase(up, ".GGUF")) up.resize(up.size() - 5);
  // The longest known name that starts after a separator and ends at one (or at the end).
  std::string best;
  for (size_t pos = 0; pos < up.size(); ++pos) {
    if (pos > 0 && !IsSep(up[pos - 1])) continue;
    for (std::string_view q : kQuants) {
      if (up.compare(pos, q.size(), q) != 0) continue;
      const size_t end = pos + q.size();
      if (end < up.size() && !IsSep(up[end])) continue;
      if (q.size() > best.size()) best = std::string(q);
    }
  }
  return best;
}

int QuantRank(std::string_view quant) {
  const std::string up = UpperStr(quant);
  for (size_t k = 0; k < kQuants.size(); ++k) {
    if (kQuants[k] == up) return static_cast<int>(kQuants.size() - k);
  }
  return 0;
}

ShardIndex ShardOf(std::string_view file_name) {
  std::string_view s = BaseName(file_name);
  if (!EndsWithNoCase(s, ".gguf")) return {};
  s.remove_suffix(5);
  // ...-00001-of-00003
  constexpr size_t kLen = 5 + 4 + 5;  // "00001" "-of-" "00003"
  if (s.size() < kLen + 1 || s[s.size() - kLen - 1] != '-') return {};
  const std::string_view tail = s.substr(s.size() - kLen);
  if (tail.substr(5, 4) != "-of-") return {};
  auto num = [](std::string_view d) {
    int v = 0;
    for (char c : d) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  const int index = num(tail.substr(0, 5));
  const int count = num(tail.substr(9, 5));
  if (index < 1 || count < 1 || index > count) return {};
  return {index, count};
}

bool IsMmproj(std::string_view path) {
  return UpperStr(BaseName(path)).find("MMPROJ") != std::string::npos;
}

std::vector<Candidate> Candidates(const std::vector<RemoteFile>& files) {
  std::map<std::string, Candidate> by_name;
  std::map<std::string, std::map<int, RemoteFile>> shards;
  std::map<std::string, int> shard_count;
  for (const auto& f : files) {
    if (!EndsWithNoCase(f.path, ".gguf") || IsMmproj(f.path)) continue;
    const ShardIndex sh = ShardOf(f.path);
    std::string name = f.path.substr(0, f.path.size() - 5);
    if (sh.count > 0) name.resize(name.size() - 15);  // "-00001-of-00003"
    if (sh.count > 0) {
      auto& count = shard_count[name];
      if (count != 0 && count != sh.count) count = -1;  // inconsistent: left out below
      if (count == 0) count = sh.count;
      shards[name][sh.index] = f;
    } else {
      shard_count[name] = 0;
      shards[name][1] = f;
    }
  }
  std::vector<Candidate> out;
  for (auto& [name, parts] : shards) {
    const int count = shard_count[name];
    if (count < 0) continue;
    if (count > 0 && parts.size() != static_cast<size_t>(count)) continue;  // a shard is missing
    Candidate c;
    c.name = name;
    c.quant = QuantOf(parts.begin()->second.path);
    for (auto& [idx, f] : parts) {
      c.bytes += f.size;
      c.files.push_back(f);
    }
    out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    const int ra = QuantRank(a.quant), rb = QuantRank(b.quant);
    if (ra != rb) return ra > rb;
    if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
    return a.name < b.name;
  });
  return out;
}

uint64_t RunBytes(uint64_t bytes) {
  return bytes + bytes / 10 + (uint64_t{512} << 20);
}

Result<Selection> Choose(const PullRef& ref, const std::vector<RemoteFile>& files, uint64_t budget_bytes,
                         bool with_mmproj) {
  const std::vector<Candidate> cands = Candidates(files);
  if (cands.empty()) return NotFound(ref.repo + " has no GGUF model files");
  Selection sel;
  const Candidate* pick = nullptr;
  if (!ref.file.empty()) {
    for (const auto& c : cands) {
      for (const auto& f : c.files) {
        if (f.path == ref.file) pick = &c;
      }
    }
    if (pick == nullptr) {
      std::string names;
      for (const auto& c : cands) names += "\n  " + c.files.front().path;
      return NotFound(ref.repo + " has no file '" + ref.file + "'; its GGUF files:" + names);
    }
  } else if (!ref.quant.empty()) {
    const std::string want = UpperStr(ref.quant);
    for (const auto& c : cands) {
      if (c.quant == want) {
        pick = &c;
        break;
      }
    }
    if (pick == nullptr) {
      return NotFound(ref.repo + " has no file for quant " + want + "; the quants there: " + JoinQuants(cands));
    }
  } else {
    auto fits = [&](const Candidate& c) { return budget_bytes == 0 || RunBytes(c.bytes) <= budget_bytes; };
    const int q4 = QuantRank("Q4_K_M");
    for (const auto& c : cands) {
      if (c.quant == "Q4_K_M" && fits(c)) {
        pick = &c;
        break;
      }
    }
    for (const auto& c : cands) {  // best first: the first that fits at or below Q4_K_M
      if (pick == nullptr && QuantRank(c.quant) <= q4 && QuantRank(c.quant) > 0 && fits(c)) pick = &c;
    }
    for (const auto& c : cands) {  // else the smallest that fits
      if (fits(c) && (pick == nullptr || (QuantRank(pick->quant) > q4 && c.bytes < pick->bytes))) pick = &c;
    }
    if (pick == nullptr) {
      return Status(StatusCode::kResourceExhausted,
                    "no quant of " + ref.repo + " fits the memory budget of " + std::to_string(budget_bytes >> 20) +
                        " MiB; the quants there: " + JoinQuants(cands) + " (name one with " + ref.repo + ":QUANT)");
    }
    sel.notes.push_back(pick->quant == "Q4_K_M" ? "Q4_K_M: the default, it fits the memory budget"
                                                : (pick->quant.empty() ? pick->name : pick->quant) +
                                                      ": the best quant that fits the memory budget");
  }
  sel.model = *pick;
  if (with_mmproj) {
    // The projector next to the model; F16 before BF16, F32, Q8_0, others.
    const std::string dir = sel.model.name.find('/') == std::string::npos
                                ? std::string()
                                : sel.model.name.substr(0, sel.model.name.rfind('/') + 1);
    const RemoteFile* best = nullptr;
    int best_score = -1;
    for (const auto& f : files) {
      if (!IsMmproj(f.path) || !EndsWithNoCase(f.path, ".gguf")) continue;
      const std::string fdir =
          f.path.find('/') == std::string::npos ? std::string() : f.path.substr(0, f.path.rfind('/') + 1);
      if (fdir != dir) continue;
      const std::string q = QuantOf(f.path);
      const int score = q == "F16" ? 4 : q == "BF16" ? 3 : q == "F32" ? 2 : q == "Q8_0" ? 1 : 0;
      if (score > best_score) {
        best = &f;
        best_score = score;
      }
    }
    if (best != nullptr) sel.mmproj.push_back(*best);
  }
  return sel;
}

}  // namespace corral::pull
