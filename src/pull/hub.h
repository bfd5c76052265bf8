// The Hugging Face hub's API as data: parsing a pull reference, the JSON answers of
// `GET /api/models/{repo}/revision/{rev}` and `GET /api/models/{repo}/tree/{rev}?recursive=true`,
// and choosing the files of one quantisation (every shard of a split model, the matching mmproj).
// Pure functions over bytes the server sent: every input is bounded and validated (file names
// are paths we will create on disk, so traversal is refused here). No I/O; fuzzed
// (tests/pull/fuzz_hub_listing.cc).
//
// The shapes read (fields not named here are ignored):
//   revision: {"id": "owner/repo", "sha": "<40 hex commit>", "gated": false|"auto"|"manual", ...}
//   tree:     [{"type": "file"|"directory", "path": "dir/x.gguf", "size": N,
//               "lfs": {"oid": "<64 hex sha256>", "size": N, "pointerSize": N}}, ...]
//
// Thread-safety: stateless functions over plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::pull {

// Bounds on what the server may send us.
inline constexpr size_t kMaxListingBytes = 16u << 20;  // a tree listing of ~50k files
inline constexpr size_t kMaxListingEntries = 100000;
inline constexpr size_t kMaxRepoPathBytes = 1024;      // one file's path inside the repo
inline constexpr size_t kMaxPathComponentBytes = 255;  // NAME_MAX

// What the user typed: `owner/repo[:QUANT | /FILE.gguf]`, also spelled `hf.co/owner/repo:QUANT`,
// `huggingface.co/...` or `https://huggingface.co/owner/repo`.
struct PullRef {
  std::string repo;   // "owner/repo"
  std::string quant;  // "Q4_K_M" as typed (matched without case); "" = choose
  std::string file;   // a path inside the repo; "" = by quant
};
Result<PullRef> ParsePullRef(std::string_view text);

// A repo id is OWNER/NAME, each [A-Za-z0-9._-]{1,96}, not starting with '.' or '-', no "..".
bool ValidRepoId(std::string_view repo);
// A relative path inside a repo that is safe to create under a snapshot directory: no empty,
// "." or ".." component, no leading '/', no backslash or control byte, bounded lengths.
bool SafeRepoPath(std::string_view path);
// A git commit id: 40 lowercase hex digits.
bool ValidCommit(std::string_view sha);
// A revision name we may put in a URL and under refs/: a commit, or a branch/tag name of
// [A-Za-z0-9._/-] without "..", a leading '/' or '-'.
bool ValidRevision(std::string_view rev);

struct RevisionInfo {
  std::string commit;  // "sha"
  std::string gated;   // "" (not gated), "auto" or "manual"
};
Result<RevisionInfo> ParseRevision(std::string_view json);

struct RemoteFile {
  std::string path;    // inside the repo (validated with SafeRepoPath)
  uint64_t size = 0;   // bytes
  std::string sha256;  // lowercase hex, from lfs.oid; "" for a file not stored in LFS
};
// Files only (directories dropped). An entry with an unsafe path, a bad sha or a size that
// disagrees with lfs.size is an error naming it, not a skipped line.
Result<std::vector<RemoteFile>> ParseTree(std::string_view json);

// The quantisation named in a GGUF file name ("Qwen3-8B-Q4_K_M.gguf" → "Q4_K_M"), upper case;
// "" when none is recognised.
std::string QuantOf(std::string_view file_name);
// Higher is better quality. 0 for an unknown quant.
int QuantRank(std::string_view quant);
// "x-00002-of-00003.gguf" → {2, 3}; {0, 0} when not a shard name.
struct ShardIndex {
  int index = 0;
  int count = 0;
};
ShardIndex ShardOf(std::string_view file_name);
bool IsMmproj(std::string_view path);

// One downloadable model in the repo: a single file or every shard of a split file.
struct Candidate {
  std::string name;               // the first file's path without ".gguf" and the shard suffix
  std::string quant;              // upper case, "" if unknown
  std::vector<RemoteFile> files;  // shards in order
  uint64_t bytes = 0;
};
// Every model in the listing (mmproj files excluded), sorted by quant rank (best first), then
// name. Split models with a missing shard are left out.
std::vector<Candidate> Candidates(const std::vector<RemoteFile>& files);

// What to download.
struct Selection {
  Candidate model;
  std::vector<RemoteFile> mmproj;  // 0 or 1 file
  std::vector<std::string> notes;  // why this one (printed)
};

// Chooses the model for `ref` from `files`:
// - ref.file: that file (and its sibling shards);
// - ref.quant: the candidate with that quant (the shortest name when several have it);
// - neither: Q4_K_M when it fits `budget_bytes` (0 = no limit), else the best-ranked quant
//   at or below Q4_K_M that fits, else the smallest that fits.
// A model "fits" when its bytes plus 10 % and 512 MiB (context and compute buffers) are within
// the budget. Errors (kNotFound) list the quants or files there are.
Result<Selection> Choose(const PullRef& ref, const std::vector<RemoteFile>& files, uint64_t budget_bytes,
                         bool with_mmproj);

// The memory a model of `bytes` needs to run, as Choose counts it.
uint64_t RunBytes(uint64_t bytes);

}  // namespace corral::pull
