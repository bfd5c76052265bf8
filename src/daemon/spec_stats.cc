#include "daemon/spec_stats.h"

#include <cstdio>

namespace corral::daemon {
namespace {

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", fraction * 100);
  return buf;
}

}  // namespace

std::optional<std::string> SpecStats::Observe(const std::string& child, int64_t start_stamp,
                                              const std::string& model_path, int64_t drafted, int64_t accepted) {
  if (drafted <= 0 || accepted < 0 || accepted > drafted) return std::nullopt;
  const auto d = static_cast<uint64_t>(drafted), a = static_cast<uint64_t>(accepted);
  if (!child.empty() && (children_.size() < kMaxEntries || children_.contains(child))) {
    ChildEntry& c = children_[child];
    if (c.start_stamp != start_stamp) c = ChildEntry{start_stamp, {}};
    c.totals.drafted += d;
    c.totals.accepted += a;
  }
  if (model_path.empty() || (files_.size() >= kMaxEntries && !files_.contains(model_path))) return std::nullopt;
  FileEntry& f = files_[model_path];
  if (!f.off_reason.empty()) return std::nullopt;  // marked already: the running child keeps its draft
  f.window.drafted += d;
  f.window.accepted += a;
  if (f.window.drafted < rule_.window_tokens) return std::nullopt;
  const Totals w = f.window;
  f.window = {};
  if (w.acceptance() >= rule_.min_acceptance) return std::nullopt;
  f.off_reason = "draft acceptance " + Percent(w.acceptance()) + " over " + std::to_string(w.drafted) +
                 " draft tokens is below " + Percent(rule_.min_acceptance) + "; the next start runs without the draft";
  return f.off_reason;
}

std::optional<SpecStats::Totals> SpecStats::ForChild(const std::string& child) const {
  auto it = children_.find(child);
  if (it == children_.end() || it->second.totals.drafted == 0) return std::nullopt;
  return it->second.totals;
}

std::optional<std::string> SpecStats::DisabledReason(const std::string& model_path) const {
  auto it = files_.find(model_path);
  if (it == files_.end() || it->second.off_reason.empty()) return std::nullopt;
  return it->second.off_reason;
}

void SpecStats::ForgetChildren(const std::function<bool(const std::string&)>& alive) {
  std::erase_if(children_, [&](const auto& kv) { return !alive(kv.first); });
}

void SpecStats::Clear() {
  files_.clear();
}

}  // namespace corral::daemon
