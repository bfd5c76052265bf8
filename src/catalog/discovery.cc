#include "catalog/discovery.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/fs.h"

namespace corral::catalog {
namespace {

constexpr int kMaxDepth = 10;                     // directory levels below a root
constexpr uint64_t kMaxManifestBytes = 1u << 20;  // an Ollama manifest is a few hundred bytes
constexpr size_t kMaxFilesPerRoot = 1u << 20;     // a runaway tree stops here

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t k = 0; k < suffix.size(); ++k) {
    char c = s[s.size() - suffix.size() + k];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[k]) return false;
  }
  return true;
}

struct Walker {
  DiscoveryResult& out;
  std::set<std::pair<dev_t, ino_t>> seen_files;  // dedupe across every source

  // Stats `path` (following symlinks) and adds it if it is a new regular file.
  void AddFile(const std::string& path, const std::string& source, const std::string& origin,
               const std::string& mmproj = "") {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int e = errno;
      struct stat lst {};
      if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
        out.warnings.push_back(path + ": broken symlink (" + std::strerror(e) + ")");
      } else {
        out.warnings.push_back(path + ": " + std::strerror(e));
      }
      return;
    }
    if (!S_ISREG(st.st_mode)) return;
    if (!seen_files.insert({st.st_dev, st.st_ino}).second) {
      // A link to a file already listed: it keeps the place it was first found in, and takes
      // this cache's name for it when it had none (a user link into the hub cache is still
      // `owner/repo`: the names people type, issue 14).
      for (auto& seen : out.files) {
        if (seen.dev == st.st_dev && seen.ino == st.st_ino && seen.origin.empty()) seen.origin = origin;
      }
      return;
    }
    FoundFile f;
    f.path = path;
    char* real = ::realpath(path.c_str(), nullptr);
    f.real_path = real != nullptr ? std::string(real) : path;
    std::free(real);
    // Both directories: the one it was found in and the one a link leads to.
    mode_t dir_modes = 0;
    for (const std::string* p : {&f.path, &f.real_path}) {
      struct stat dst {};
      const size_t slash = p->rfind('/');
      const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p->substr(0, slash);
      if (::stat(dir.c_str(), &dst) == 0) dir_modes |= dst.st_mode;
    }
    if (IsForeignInOpenPlace(st.st_uid, st.st_mode, dir_modes, ::geteuid())) {
      out.warnings.push_back(path + ": owned by another user (uid " + std::to_string(st.st_uid) +
                             ") in a place anyone can write; not listed (move it to a directory of yours "
                             "to use it)");
      return;
    }
    f.source = source;
    f.origin = origin;
    f.mmproj = mmproj;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    out.files.push_back(std::move(f));
  }

  // Every *.gguf below `dir` (sorted), following directory symlinks without looping.
  void CollectGguf(const std::string& dir, int depth, std::set<std::pair<dev_t, ino_t>>& dirs_seen,
                   std::vector<std::string>& found) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !dirs_seen.insert({st.st_dev, st.st_ino}).second) return;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      out.warnings.push_back(dir + ": cannot list (" + std::strerror(errno) + ")");
      return;
    }
    std::vector<std::pair<std::string, bool>> entries;  // name, maybe a directory
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name.empty() || name[0] == '.') continue;  // ., .., hidden (.locks, .cache, ...)
      const bool maybe_dir = e->d_type == DT_DIR || e->d_type == DT_LNK || e->d_type == DT_UNKNOWN;
      entries.emplace_back(std::string(name), maybe_dir);
    }
    ::closedir(d);
    std::sort(entries.begin(), entries.end());
    for (const auto& [name, maybe_dir] : entries) {
      if (found.size() >= kMaxFilesPerRoot) return;
      const std::string path = dir + "/" + name;
      if (EndsWithNoCase(name, ".gguf")) {
        found.push_back(path);
        continue;
      }
      if (IsIncompleteDownload(name)) continue;
      if (maybe_dir && depth < kMaxDepth) {
        struct stat cst {};
        if (::stat(path.c_str(), &cst) == 0 && S_ISDIR(cst.st_mode)) CollectGguf(path, depth + 1, dirs_seen, found);
      }
    }
  }

  void WalkTree(const std::string& root, const std::string& source,
                const std::function<std::string(const std::string&)>& origin_of) {
    struct stat st {};
    if (root.empty() || ::stat(root.c_str(), &st) != 0) return;  // an absent cache is normal
    if (S_ISREG(st.st_mode)) {
      AddFile(root, source, origin_of(root));
      return;
    }
    std::set<std::pair<dev_t, ino_t>> dirs_seen;
    std::vector<std::string> found;
    CollectGguf(root, 0, dirs_seen, found);
    for (const auto& path : found) AddFile(path, source, origin_of(path));
  }
};

// "root/a/b/c" relative to root → {"a","b","c"}.
std::vector<std::string> RelParts(const std::string& root, const std::string& path) {
  std::vector<std::string> parts;
  if (path.size() <= root.size() + 1) return parts;
  std::string rel = path.substr(root.size() + 1);
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    if (slash > start) parts.push_back(rel.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// "models--meta-llama--Llama-3.2-1B" → "meta-llama/Llama-3.2-1B"; "" when not a repo dir.
std::string HubRepoName(std::string_view dir) {
  constexpr std::string_view kPrefix = "models--";
  if (dir.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string rest(dir.substr(kPrefix.size()));
  size_t sep = rest.find("--");
  if (sep != std::string::npos) rest = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
  return rest;
}

std::string HubOrigin(const std::string& path) {
  size_t pos = path.rfind("/models--");
  if (pos == std::string::npos) return {};
  size_t end = path.find('/', pos + 1);
  return HubRepoName(
      std::string_view(path).substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1));
}

bool IsHexDigest(std::string_view hex) {
  if (hex.size() != 64) return false;
  return std::all_of(hex.begin(), hex.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// One hub repo: the revision refs/main names first; a file of an older revision is skipped
// when the main revision has a file at the same relative path (an updated download), so
// only revisions with files main lacks add entries. Identical blobs collapse by inode anyway.
void ScanHubRepo(Walker& w, const std::string& repo_dir, const std::string& origin) {
  const std::string snapshots = repo_dir + "/snapshots";
  std::string main_rev;
  if (auto ref = ReadFileBounded(repo_dir + "/refs/main", 256); ref.ok()) {
    main_rev = *ref;
    while (!main_rev.empty() && (main_rev.back() == '\n' || main_rev.back() == ' ')) main_rev.pop_back();
    if (main_rev.find('/') != std::string::npos || main_rev.find("..") != std::string::npos) main_rev.clear();
  }
  std::vector<std::string> revisions;
  if (DIR* d = ::opendir(snapshots.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') revisions.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  std::sort(revisions.begin(), revisions.end());
  auto main_it = std::find(revisions.begin(), revisions.end(), main_rev);
  if (main_it != revisions.end()) std::rotate(revisions.begin(), main_it, main_it + 1);
  std::set<std::string> in_main;
  for (const auto& rev : revisions) {
    const std::string rev_dir = snapshots + "/" + rev;
    std::set<std::pair<dev_t, ino_t>> dirs_seen;
    std::vector<std::string> found;
    w.CollectGguf(rev_dir, 0, dirs_seen, found);
    for (const auto& path : found) {
      const std::string rel = path.substr(rev_dir.size());
      if (rev == main_rev) {
        in_main.insert(rel);
      } else if (in_main.count(rel) != 0) {
        continue;  // superseded by the main revision
      }
      w.AddFile(path, "huggingface", origin);
    }
  }
}

void ScanOllama(Walker& w, const std::string& root) {
  const std::string manifests = root + "/manifests";
  struct stat st {};
  if (root.empty() || ::stat(manifests.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  // Manifests sit at REGISTRY/NAMESPACE/NAME/TAG; collect every file at that depth.
  std::vector<std::string> files;
  std::function<void(const std::string&, int)> walk = [&](const std::string& dir, int depth) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      w.out.warnings.push_back(dir + ": cannot list (" + std::strerror(errno) + ")");
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      const std::string p = dir + "/" + n;
      struct stat s {};
      if (::stat(p.c_str(), &s) != 0) continue;
      if (depth < 3 && S_ISDIR(s.st_mode)) walk(p, depth + 1);
      if (depth == 3 && S_ISREG(s.st_mode)) files.push_back(p);
    }
  };
  walk(manifests, 0);
  for (const auto& file : files) {
    std::vector<std::string> parts = RelParts(manifests, file);
    if (parts.size() != 4) continue;
    std::string name = parts[2] + ":" + parts[3];
    if (parts[0] != "registry.ollama.ai") {
      name = parts[0] + "/" + parts[1] + "/" + name;
    } else if (parts[1] != "library") {
      name = parts[1] + "/" + name;
    }
    auto text = ReadFileBounded(file, kMaxManifestBytes);
    if (!text.ok()) {
      w.out.warnings.push_back(file + ": " + text.status().message());
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("layers") || !j["layers"].is_array()) {
      w.out.warnings.push_back(file + ": not an Ollama manifest (no layers array)");
      continue;
    }
    std::string model_blob;
    std::string projector_blob;
    for (const auto& layer : j["layers"]) {
      if (!layer.is_object()) continue;
      auto media = layer.find("mediaType");
      auto digest = layer.find("digest");
      if (media == layer.end() || digest == layer.end() || !media->is_string() || !digest->is_string()) continue;
      const std::string d = digest->get<std::string>();
      if (d.size() != 71 || d.substr(0, 7) != "sha256:" || !IsHexDigest(std::string_view(d).substr(7))) {
        w.out.warnings.push_back(file + ": layer digest '" + d.substr(0, 80) + "' is not sha256:<64 hex>");
        continue;
      }
      const std::string blob = root + "/blobs/sha256-" + d.substr(7);
      if (*media == "application/vnd.ollama.image.model") model_blob = blob;
      if (*media == "application/vnd.ollama.image.projector") projector_blob = blob;
    }
    if (model_blob.empty()) continue;  // e.g. an embedding-less adapter manifest
    if (::access(model_blob.c_str(), F_OK) != 0) {
      w.out.warnings.push_back(name + ": manifest names blob " + model_blob + ", which is missing");
      continue;
    }
    w.AddFile(model_blob, "ollama", name, projector_blob);
  }
}

}  // namespace

bool IsIncompleteDownload(std::string_view name) {
  for (std::string_view s : {".part", ".incomplete", ".downloading", ".downloadInProgress", ".tmp", ".crdownload"}) {
    if (EndsWith(name, s)) return true;
  }
  return name.find(".tmp.") != std::string_view::npos;  // our own AtomicFile temporaries
}

bool IsForeignInOpenPlace(uid_t owner, mode_t file_mode, mode_t dir_mode, uid_t me) {
  if (owner == me || owner == 0) return false;
  return (file_mode & S_IWOTH) != 0 || (dir_mode & S_IWOTH) != 0;
}

DiscoveryResult Discover(const DiscoveryInput& in) {
  DiscoveryResult out;
  Walker w{out, {}};
  for (const auto& root : in.user) {
    w.WalkTree(root, "user", [](const std::string&) { return std::string(); });
  }
  if (!in.huggingface.empty()) {
    DIR* d = ::opendir(in.huggingface.c_str());
    if (d != nullptr) {
      std::vector<std::string> repos;
      while (dirent* e = ::readdir(d)) {
        if (!HubRepoName(e->d_name).empty()) repos.emplace_back(e->d_name);
      }
      ::closedir(d);
      std::sort(repos.begin(), repos.end());
      for (const auto& repo : repos) ScanHubRepo(w, in.huggingface + "/" + repo, HubRepoName(repo));
    }
  }
  ScanOllama(w, in.ollama);
  for (const auto& root : in.lmstudio) {
    w.WalkTree(root, "lmstudio", [&root](const std::string& path) {
      auto parts = RelParts(root, path);
      return parts.size() >= 3 ? parts[0] + "/" + parts[1] : std::string();
    });
  }
  w.WalkTree(in.llamacpp, "llama.cpp", [](const std::string& path) { return HubOrigin(path); });
  return out;
}

}  // namespace corral::catalog
