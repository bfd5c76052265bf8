// Discovery: walks the user's model paths and the caches of other tools and returns every
// GGUF file there, deduplicated by (device, inode) so a symlink, a hard link or a file seen
// through two caches is listed once. Reads no GGUF bytes (the catalog does, via the index).
//
// Layouts (docs/catalog.md):
//   user         any tree of *.gguf files, or single files
//   huggingface  HUB/models--ORG--NAME/snapshots/REV/**.gguf  (symlinks into ../../blobs/)
//   ollama       ROOT/manifests/REGISTRY/NAMESPACE/NAME/TAG (JSON) → ROOT/blobs/sha256-HEX
//   lmstudio     ROOT/PUBLISHER/REPO/**.gguf
//   llama.cpp    LLAMA_CACHE/**.gguf (flat "org_repo_file.gguf" or a hub-style tree)
// Incomplete downloads (.part, .incomplete, .downloading, .downloadInProgress, .tmp) are
// skipped; unreadable directories and files become warnings, never errors.
//
// Thread-safety: Discover() is a free function; safe to call concurrently.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace corral::catalog {

struct FoundFile {
  std::string path;       // as found (a snapshot symlink, a blob, a user file)
  std::string real_path;  // symlinks resolved: the index cache key
  std::string source;     // "user", "huggingface", "ollama", "lmstudio", "llama.cpp"
  std::string origin;     // the source tool's name for it: "llama3.2:3b", "org/repo", ...
  std::string mmproj;     // a projector named by the source itself (Ollama manifests)
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  dev_t dev = 0;
  ino_t ino = 0;
};

struct DiscoveryInput {
  std::vector<std::string> user;
  std::string huggingface;
  std::string ollama;
  std::vector<std::string> lmstudio;
  std::string llamacpp;
};

struct DiscoveryResult {
  std::vector<FoundFile> files;  // in source priority order, then path order
  std::vector<std::string> warnings;
};

DiscoveryResult Discover(const DiscoveryInput& input);

// True for a file another local user could have planted or rewritten: owned by neither
// `me` nor root, while the file itself or its directory (`dir_mode`) is writable by
// everyone (/tmp, a world-writable share). Discovery does not list such files (a warning
// says why): their metadata could claim any model's name. docs/catalog.md.
bool IsForeignInOpenPlace(uid_t owner, mode_t file_mode, mode_t dir_mode, uid_t me);

// True for names of files still being downloaded.
bool IsIncompleteDownload(std::string_view name);

}  // namespace corral::catalog
