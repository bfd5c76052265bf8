// Suite S (issue 17): decode speed of one model by raw llama-server without and with a draft
// model (speculative decoding), alternated request by request like every other suite, plus
// the draft's acceptance from llama-server's own timings.
//
// Method: two llama-server processes on the same model file with the same knobs (normalized
// mode: the same ctx, batch, KV type, threads, layers, slots); the second also gets the
// pinned llama-server's draft flags (DraftArgs). The runner alternates them (ABBA) with
// warm-ups discarded; the report gives medians, the paired ratio of decode tok/s (draft /
// no-draft) with its bootstrap interval, and acceptance = sum accepted / sum drafted.
// Thread-safety: RunSuiteS blocks its caller and owns the two servers it starts.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "bench/owned_target.h"
#include "bench/suites.h"
#include "bench/system.h"
#include "common/fs.h"

namespace corral::bench {

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(300);  // a large model with its draft loads slowly
constexpr const char* kBaseline = "no-draft";
constexpr const char* kDraft = "draft";

}  // namespace

std::vector<std::string> DraftArgs(const SuiteSOptions& s) {
  std::vector<std::string> args = {"--spec-type", "draft-simple", "--spec-draft-model", s.draft_path};
  if (s.draft_max > 0) args.insert(args.end(), {"--spec-draft-n-max", std::to_string(s.draft_max)});
  // The draft's layers where the target's go (normalized mode pins the target's -ngl).
  if (s.mode == "normalized") args.insert(args.end(), {"--spec-draft-ngl", std::to_string(s.knobs.gpu_layers)});
  return args;
}

std::vector<SpecRow> SummariseSpec(const std::vector<RequestRecord>& records, const std::string& draft_target) {
  std::vector<SpecRow> rows;
  for (const auto& r : records) {
    if (r.warmup || r.target != draft_target) continue;
    auto it = std::find_if(rows.begin(), rows.end(), [&](const SpecRow& row) { return row.workload == r.workload; });
    if (it == rows.end()) {
      rows.push_back(SpecRow{r.workload});
      it = rows.end() - 1;
    }
    ++it->requests;
    if (r.server_draft_n < 0) continue;
    ++it->with_counts;
    it->drafted += r.server_draft_n;
    it->accepted += r.server_draft_accepted;
  }
  for (auto& row : rows) {
    if (row.drafted > 0) row.acceptance = static_cast<double>(row.accepted) / static_cast<double>(row.drafted);
  }
  return rows;
}

SuiteResult RunSuiteS(const SuiteSOptions& so, const std::vector<Workload>& workloads, const RunOptions& options,
                      const Progress& progress) {
  SuiteResult s;
  s.suite = "S";
  s.title = "speculative";
  auto fail = [&](const std::string& why) {
    s.status = "failed";
    s.reason = why;
    return s;
  };
  std::error_code ec;
  if (so.llama_server.empty() || so.model_path.empty()) return fail("suite S needs a llama-server binary and --model");
  if (so.draft_path.empty()) return fail("suite S needs --draft PATH (the draft model's GGUF)");
  if (!std::filesystem::is_regular_file(so.draft_path, ec)) return fail("draft model " + so.draft_path + " not found");
  OwnedTargetSetup setup;
  if (so.mode == "normalized") setup.knob_args = NormalizedArgs(so.knobs, setup.knobs);
  setup.mode = so.mode;
  setup.timeout = kStartTimeout;
  std::vector<std::unique_ptr<LocalServer>> started;  // stopped when the suite ends
  auto start_target = [&](const std::string& name, const std::vector<std::string>& more) -> Result<Target> {
    if (progress) progress("starting llama-server (" + name + ")");
    CORRAL_ASSIGN_OR_RETURN(
        Target t, StartOwnedTarget(name, {so.llama_server, "-m", so.model_path, "--host", "127.0.0.1", "--port", "0"},
                                   more, setup, started));
    t.model.clear();  // single-model mode: no model field needed
    return t;
  };
  auto base = start_target(kBaseline, {});
  if (!base.ok()) return fail("llama-server without a draft: " + base.status().message());
  const std::vector<std::string> draft_args = DraftArgs(so);
  auto with = start_target(kDraft, draft_args);
  if (!with.ok()) return fail("llama-server with the draft: " + with.status().message());
  with->knobs["draft"] = so.draft_path;
  s.targets = {std::move(base).value(), std::move(with).value()};

  SpecSummary spec;
  spec.model_path = so.model_path;
  spec.draft_path = so.draft_path;
  if (auto h = Sha256File(so.draft_path); h.ok()) spec.draft_sha256 = *h;
  spec.draft_args = draft_args;
  s.records = RunRequests(s.targets, workloads, options, progress);
  s.aggregate = Summarise(s.records, s.targets, options);
  spec.rows = SummariseSpec(s.records, kDraft);
  int64_t drafted = 0, baseline_drafted = 0;
  for (const auto& row : spec.rows) drafted += row.drafted;
  for (const auto& r : s.records) baseline_drafted += r.target == kBaseline && r.server_draft_n > 0 ? 1 : 0;
  s.checks.push_back({"the draft target drafted (timings.draft_n > 0)", drafted > 0,
                      std::to_string(drafted) + " draft tokens over the measured requests"});
  s.checks.push_back({"the baseline did not draft", baseline_drafted == 0,
                      std::to_string(baseline_drafted) + " requests with draft counts"});
  s.spec = std::move(spec);
  s.status = "ran";
  return s;
}

}  // namespace corral::bench
