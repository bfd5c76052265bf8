// Speculative decoding's acceptance, per running child and per model file, and the rule that
// turns a draft off when it cannot pay (issue 17).
//
// Input: every finished request whose upstream `timings` carried draft_n / draft_n_accepted
// (proxy::RequestRecord.draft_tokens / draft_accepted). Output:
//   - per child, the drafted and accepted totals since that child started (`corral ps`);
//   - per model file, a fallback mark: "the next start runs without the draft", with the
//     reason. The launch builder asks DisabledReason(model_path) before it adds the draft
//     flags; nothing here stops or restarts a child (a busy model keeps its streams; the mark
//     takes effect at its next start: TTL, eviction, `corral stop` + start, a crash restart).
//
// The rule (SpecRule): draft tokens are summed per model file in consecutive windows of at
// least `window_tokens`; a window whose acceptance (accepted / drafted) is below
// `min_acceptance` marks the file. Below ~30 % a draft usually costs more than it saves (each
// verified batch pays for the drafted tokens it throws away), so 256 tokens at < 30 % is a
// cheap, explicit trigger. A mark lasts until Clear() (the daemon calls it on a config reload:
// the new config may be the fix) or the daemon restarts.
//
// Thread-safety: none; the owner (ModelRouter) calls it under its own mutex. Memory: at most
// kMaxEntries children and kMaxEntries files are tracked; past that, new ones are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace corral::daemon {

struct SpecRule {
  uint64_t window_tokens = 256;  // draft tokens per decision window
  double min_acceptance = 0.30;  // a window below this marks the model
};

class SpecStats {
 public:
  static constexpr size_t kMaxEntries = 1024;

  struct Totals {
    uint64_t drafted = 0;
    uint64_t accepted = 0;
    double acceptance() const {
      return drafted == 0 ? 0 : static_cast<double>(accepted) / static_cast<double>(drafted);
    }
  };

  explicit SpecStats(SpecRule rule = {}) : rule_(rule) {}

  // One finished request served by `child` (whose current process started at `start_stamp`:
  // a new stamp resets the child's totals) for the model file `model_path`. drafted < 0
  // (no draft in this response) or inconsistent counts are ignored. Returns the reason when
  // this observation newly marks `model_path`, for the caller to log.
  std::optional<std::string> Observe(const std::string& child, int64_t start_stamp, const std::string& model_path,
                                     int64_t drafted, int64_t accepted);

  // The child's totals since it started; nullopt when it has drafted nothing yet.
  std::optional<Totals> ForChild(const std::string& child) const;
  // Why the next start of `model_path` should run without its draft; nullopt = no mark.
  std::optional<std::string> DisabledReason(const std::string& model_path) const;
  // Children that are gone (`alive` says false): their totals go with them.
  void ForgetChildren(const std::function<bool(const std::string&)>& alive);
  // Forgets every mark and window (a config reload).
  void Clear();

  const SpecRule& rule() const { return rule_; }

 private:
  struct ChildEntry {
    int64_t start_stamp = 0;
    Totals totals;
  };
  struct FileEntry {
    Totals window;           // the current window
    std::string off_reason;  // non-empty: marked
  };
  SpecRule rule_;
  std::map<std::string, ChildEntry> children_;
  std::map<std::string, FileEntry> files_;
};

}  // namespace corral::daemon
