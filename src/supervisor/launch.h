// How a llama-server child is launched: the argv the user would type by hand, the flags
// Corral owns, and small /proc readers the supervisor and the admission check use.
// Thread-safety: stateless functions.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::supervisor {

// What to launch. Plain value; the supervisor copies it.
struct LaunchSpec {
  std::string name;                      // unique among live children ("tiny", "tiny-2")
  std::string model;                     // the model's canonical name (for ps)
  std::string model_path;                // passed as -m
  uint64_t model_bytes = 0;              // file size, scales the health timeout
  uint64_t reserved_bytes = 0;           // memory the admission check reserves for this child
  uint32_t ctx = 0;                      // -c N; 0 = llama-server's default (omitted)
  int port = 0;                          // --port; 0 = the kernel picks, Corral learns it from the log
  std::vector<std::string> preset_args;  // from the config's presets
  std::vector<std::string> raw_args;     // after `--` on the command line
  std::vector<std::string> env;          // "K=V" for the child; empty = the daemon's own environment
  bool force = false;                    // skip the memory admission check
  bool restart = false;                  // restart with backoff when it crashes after being ready
  // KV state kept across unloads (kv_state.h, docs/kv.md): the root its saved slots live
  // under (a directory per identity below it; adds --slot-save-path to the argv), "" = off;
  // and the disk budget of all saved states together.
  std::string kv_root;
  uint64_t kv_budget_bytes = 0;
  // Speculative decoding (catalog/spec.h, docs/spec.md): the model's own MTP heads, or a
  // draft model file ("" = none); spec_note says what was chosen and why (dry-run, logs).
  bool spec_mtp = false;
  std::string draft_path;
  std::string draft_model;  // the draft's name
  std::string spec_note;
};

// Tokens a draft model proposes per step when Corral adds it (--spec-draft-n-max). The
// pinned llama-server's default is 3; on this project's measured pair (docs/spec.md: a
// 349M target, its 77M one-layer draft, ~95 % acceptance, CPU) 3 made decode 0.86-0.90x of
// no draft, 4 made it 1.16x and 8 made it 1.29x: verifying a step costs about the same for 3
// tokens as for 8, so a draft that is right should be allowed to say more. A wrong one costs
// the draft's own decode, which the acceptance fallback (spec_stats.h) bounds. The user's
// own --spec-draft-n-max comes later on the command line and wins.
inline constexpr int kDraftTokensPerStep = 8;

// Flags Corral owns: the child must bind loopback on the port Corral asked for, and
// authentication/TLS are the proxy's job. Refused in raw and preset args.
const std::vector<std::string_view>& OwnedFlags();

// Refuses owned flags (also in --flag=value form) and -m/--model (the model comes from the
// reference). The message names the flag and what to do instead.
Status CheckRawArgs(const std::vector<std::string>& args);

// True when `args` choose speculative decoding themselves (--spec-type, --spec-default, a
// draft model or draft repository in any spelling of the pinned llama-server): then Corral
// adds no speculative flags of its own.
bool PassesSpec(const std::vector<std::string>& args);

// The exact argv: LLAMA_SERVER -m MODEL --host 127.0.0.1 --port P [-c N] [--alias NAME]
// [--slot-save-path KV_DIR] [SPEC] [preset] [raw]. SPEC is `--spec-type draft-mtp` (spec_mtp)
// or `--spec-type draft-simple --spec-draft-model DRAFT --spec-draft-n-max 8` (draft_path;
// kDraftTokensPerStep), left out when the
// preset or raw args pass their own (PassesSpec). --slot-save-path is there when the spec keeps KV
// state (KvKeeps in kv_state.h; KV_DIR = KvDirFor). --alias gives the model's name (spec.model) to llama-server, so its
// answers say "model": NAME instead of the file's absolute path; left out when spec.model
// is empty or the preset or raw args pass their own -a/--alias.
std::vector<std::string> BuildArgv(const std::string& llama_server, const LaunchSpec& spec);

// A shell-quoted single line for display (`corral start --dry-run`).
std::string ShellQuote(const std::vector<std::string>& argv);

// The port in a llama-server log line "... listening on http://127.0.0.1:PORT", or 0.
// Scans `text` (any number of lines); returns the first match.
int ParseListeningPort(std::string_view text);

// "8GiB", "512MiB", "1.5G", "1000000" (bytes) → bytes. Units are binary (K/M/G/T, with or
// without "iB"/"B"). Errors on anything else, zero or overflow.
Result<uint64_t> ParseByteSize(std::string_view text);
// 1536 MiB → "1.5 GiB".
std::string FormatBytes(uint64_t bytes);

// MemTotal from /proc/meminfo (or the given file's text), in bytes.
Result<uint64_t> ParseMemTotal(std::string_view meminfo_text);
Result<uint64_t> TotalMemoryBytes();
// The default memory budget: total RAM minus a margin for the OS and the daemon
// (max(1 GiB, 10 %)).
uint64_t DefaultMemoryBudget(uint64_t total_bytes);
// Resident set size of a process (VmRSS), 0 when unknown.
uint64_t ProcessRssBytes(pid_t pid);

}  // namespace corral::supervisor
