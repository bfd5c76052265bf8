// POST /api/pull on the proxy (issue 14): Ollama's pull, answered by `corral pull`.
//
// Each pull runs `corral pull --json -- REF` as a child process (the proxy's own binary, so the
// same code, resume, cache layout, token and HF_ENDPOINT rules as the CLI) in its own process
// group, and one thread per pull reads its stdout: every JSON line becomes Ollama's progress
// NDJSON (pull/ollama_progress.h). The proxy's workers never block on it; at most `max_jobs`
// pulls run at once. Cancel() (the client left, the proxy stops) sends SIGINT to the child's
// group: the partial download is kept and the next pull resumes it. `corral pull` tells a
// running daemon to rescan its catalog before it prints "success" (cmd_pull.cc), so a client
// that lists /api/tags next sees the model; `on_models_changed`, when given, runs before the
// "success" lines are handed on too.
//
// Thread-safety: PullJobs is thread-safe. Callbacks run on the job's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace corral::proxy {

// The body of POST /api/pull: {"model" (or the legacy "name"): REF, "stream": true}.
// "insecure" is accepted and ignored. kInvalidArgument with a client-facing message,
// including for a REF that could not be a model reference (empty, a leading '-', control
// characters, over 1024 bytes).
struct OllamaPullRequest {
  std::string model;
  bool stream = true;
};
Result<OllamaPullRequest> ParseOllamaPullRequest(std::string_view body);

// How a pull ended.
struct PullOutcome {
  bool ok = false;
  bool cancelled = false;
  std::string code;     // `corral pull --json`'s error code ("not found", ...); "" when unknown
  std::string message;  // the error for the client
};
// The HTTP status for a failed pull answered at once (stream:false): 404 for not_found, 400
// for invalid_argument, 403 for access denied, 507 for no disk space, else 500.
int PullErrorStatus(const PullOutcome& outcome);

class PullJobs {
 public:
  struct Callbacks {
    std::function<void(std::string ndjson)> on_lines;  // Ollama NDJSON lines, in order
    std::function<void(const PullOutcome&)> on_done;   // exactly once, after the last on_lines
  };
  class Job;

  // `command`: argv of `corral [--config FILE] pull --json` (argv[0] a path); the reference
  // is appended after "--". `on_models_changed` may be empty.
  PullJobs(std::vector<std::string> command, size_t max_jobs, std::function<void()> on_models_changed);
  ~PullJobs();  // StopAll()
  PullJobs(const PullJobs&) = delete;
  PullJobs& operator=(const PullJobs&) = delete;

  // Starts a pull of `ref`. nullptr when max_jobs pulls run already or the child could not
  // be started (`why` says which: kResourceExhausted / kUnavailable).
  std::shared_ptr<Job> Start(const std::string& ref, Callbacks callbacks, Status* why);
  // Stops a pull (SIGINT to its group); its on_done still comes (cancelled). Idempotent.
  static void Cancel(Job& job);
  // Cancels every pull and joins their threads (a child that ignores SIGINT for 5 s is
  // killed). After it, no callback runs. Idempotent.
  void StopAll();
  size_t running() const;

 private:
  void ReapLocked() CORRAL_REQUIRES(mu_);

  const std::vector<std::string> command_;
  const size_t max_jobs_;
  const std::function<void()> on_models_changed_;
  mutable Mutex mu_;
  std::vector<std::shared_ptr<Job>> jobs_ CORRAL_GUARDED_BY(mu_);
  bool stopped_ CORRAL_GUARDED_BY(mu_) = false;  // StopAll ran: Start refuses
};

}  // namespace corral::proxy
