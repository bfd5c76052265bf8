// `corral pull`: one model from a Hugging Face hub (or a mirror: HF_ENDPOINT) into the shared
// hub cache (hub_cache.h). The steps, each an error value on failure:
//   1. GET {endpoint}/api/models/{repo}/revision/{rev}        → the commit (401/403 gated, 404)
//   2. GET {endpoint}/api/models/{repo}/tree/{commit}?recursive=true → files with LFS sha256
//   3. choose the model's files (hub.h: quant, shards, mmproj) and check the disk has room
//   4. each file: GET {endpoint}/{repo}/resolve/{commit}/{path} (redirects to the CDN; the token
//      only goes to the endpoint's host) into blobs/SHA.incomplete, resumed with Range after a
//      cut (retried here, or by running pull again), sha256 checked, renamed to blobs/SHA
//   5. the snapshot links, then refs/{rev}
// Offline (--offline, HF_HUB_OFFLINE=1): steps 1-2 come from the cache; nothing is fetched.
//
// Thread-safety: Pull() runs on the caller's thread; `on_event` is called on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "pull/http.h"
#include "pull/hub.h"

namespace corral::pull {

struct PullOptions {
  std::string endpoint;  // "https://huggingface.co" or HF_ENDPOINT, no trailing slash
  std::string hub_dir;   // HubCacheDir()
  std::string revision = "main";
  bool offline = false;
  bool with_mmproj = true;
  uint64_t budget_bytes = 0;                   // for the default quant choice; 0 = no limit
  int retries = 3;                             // per file, after a cut or a stall (each resumes)
  std::chrono::milliseconds retry_delay{500};  // doubled after each retry
  HttpOptions http;
};

struct PullEvent {
  enum class Kind { kResolved, kFileStart, kProgress, kFileDone, kRetry };
  Kind kind = Kind::kProgress;
  std::string file;     // path inside the repo
  std::string sha256;   // the file's (kFileStart, kProgress, kFileDone, kRetry)
  uint64_t done = 0;    // bytes of this file on disk
  uint64_t total = 0;   // its size (kResolved: all files together)
  std::string message;  // kResolved: what was chosen and why; kRetry: the error
};
using EventFn = std::function<void(const PullEvent&)>;

struct PullResult {
  std::string repo;
  std::string commit;
  std::string quant;
  std::vector<std::string> files;  // snapshot paths of the model (shards in order)
  std::string mmproj;              // snapshot path, or ""
  uint64_t total_bytes = 0;
  uint64_t downloaded_bytes = 0;  // fetched in this run (0: everything was cached)
  double seconds = 0;
};

// The endpoint: $HF_ENDPOINT (trailing slashes dropped) or https://huggingface.co.
std::string DefaultEndpoint();

// Codes: kInvalidArgument (bad ref/revision), kNotFound (repo, revision or quant; the message
// lists what there is), kFailedPrecondition (401/403: how to log in; a download of the same
// file in progress elsewhere), kResourceExhausted (disk space: the numbers; memory budget),
// kCorrupt (sha256 mismatch: the file is removed; malformed listing), kTimeout (stalled),
// kUnavailable (network), kCancelled (Ctrl+C: the partial file is kept for a resume).
Result<PullResult> Pull(const PullRef& ref, const PullOptions& options, const EventFn& on_event);

}  // namespace corral::pull
