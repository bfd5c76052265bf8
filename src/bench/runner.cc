#include "bench/runner.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "bench/client.h"
#include "common/fs.h"
#include "common/interrupt.h"
#include "common/subprocess.h"

namespace corral::bench {

namespace {

constexpr uint64_t kMaxPromptBytes = 1 << 20;
constexpr size_t kMaxErrorSamples = 3;

struct WorkloadShape {
  const char* name;
  const char* file;
  int max_tokens;
  int concurrency;
  int smoke_max_tokens;
  int passages;  // rag_prefill: the text is sent as this many numbered retrieved passages
};

// Token counts follow issue 7; the prompt sizes come from the text files.
constexpr WorkloadShape kShapes[] = {
    {"chat_turn", "chat_turn.txt", 64, 1, 16, 1},
    {"rag_prefill", "rag_prefill.txt", 64, 1, 8, 5},  // ~1.6k tokens x 5 = ~8k tokens
    {"agent_decode", "agent_decode.txt", 256, 1, 24, 1},
    {"parallel_4", "parallel_4.txt", 32, 4, 8, 1},
    {"burst", "burst.txt", 32, 1, 8, 1},
};

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string CellLabel(const Workload& w, int concurrency) {
  return w.levels.empty() ? w.name : w.name + "@" + std::to_string(concurrency);
}

}  // namespace

const std::vector<std::string>& WorkloadNames() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v;
    for (const auto& s : kShapes) v.emplace_back(s.name);
    return v;
  }();
  return kNames;
}

std::string WorkloadDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("CORRAL_BENCH_WORKLOADS"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  std::string built = std::string(CORRAL_SOURCE_DIR) + "/bench/workloads";
  if (std::filesystem::is_directory(built, ec)) return built;
  return "bench/workloads";
}

std::string SourceTreeCommit() {
  constexpr auto kGitTimeout = std::chrono::seconds(10);
  auto head = RunCapture({"git", "-C", CORRAL_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"}, kGitTimeout, 4096);
  if (!head.ok() || head->exit_code != 0) return "";
  std::string commit = head->output.substr(0, head->output.find('\n'));
  auto status = RunCapture({"git", "-C", CORRAL_SOURCE_DIR, "status", "--porcelain", "--untracked-files=no"},
                           kGitTimeout, 1 << 16);
  if (status.ok() && status->exit_code == 0 && !status->output.empty()) commit += "+dirty";
  return commit;
}

Result<Workload> LoadWorkload(const std::string& dir, const std::string& name, bool smoke) {
  const WorkloadShape* shape = nullptr;
  for (const auto& s : kShapes) {
    if (name == s.name) shape = &s;
  }
  if (shape == nullptr) {
    std::string known;
    for (const auto& n : WorkloadNames()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown workload '" + name + "' (known: " + known + ")");
  }
  Workload w;
  w.name = shape->name;
  w.prompt_file = dir + "/" + shape->file;
  auto text = ReadFileBounded(w.prompt_file, kMaxPromptBytes);
  if (!text.ok()) return text.status().WithContext("workload " + name);
  w.prompt = *text;
  while (!w.prompt.empty() && (w.prompt.back() == '\n' || w.prompt.back() == ' ')) w.prompt.pop_back();
  if (w.prompt.empty()) return InvalidArgument("workload " + name + ": " + w.prompt_file + " is empty");
  if (shape->passages > 1) {
    const int passages = smoke ? 1 : shape->passages;
    std::string joined;
    for (int p = 1; p <= passages; ++p) {
      joined += "Passage " + std::to_string(p) + " of " + std::to_string(passages) + ":\n" + w.prompt + "\n\n";
    }
    joined +=
        "Question: using the passages above, explain when and why the embankments were built and what they changed.";
    w.prompt = std::move(joined);
  }
  w.max_tokens = smoke ? shape->smoke_max_tokens : shape->max_tokens;
  w.concurrency = shape->concurrency;
  if (w.name == "burst") w.levels = smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 2, 4, 8, 16, 32, 64};
  return w;
}

std::string ChatBody(const Workload& workload, const Target& target, uint64_t seed) {
  nlohmann::json body = {
      {"messages", nlohmann::json::array({{{"role", "user"}, {"content", workload.prompt}}})},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"temperature", 0},
      {"seed", seed},
      {"max_tokens", workload.max_tokens},
      {"n_predict", workload.max_tokens},
      {"ignore_eos", true},
      // rag_prefill measures prompt processing, so the server must not reuse a cached prefix.
      {"cache_prompt", workload.name != "rag_prefill"},
  };
  if (!target.model.empty()) body["model"] = target.model;
  return body.dump();
}

std::vector<RequestRecord> RunRequests(const std::vector<Target>& targets, const std::vector<Workload>& workloads,
                                       const RunOptions& options, const Progress& progress) {
  std::vector<RequestRecord> records;
  std::vector<Endpoint> endpoints;
  for (const auto& t : targets) {
    auto ep = EndpointOf(t);
    endpoints.push_back(ep.ok() ? *ep : Endpoint{});
  }
  for (const auto& w : workloads) {
    const std::vector<int> levels = w.levels.empty() ? std::vector<int>{w.concurrency} : w.levels;
    for (int level : levels) {
      const std::string label = CellLabel(w, level);
      for (int run = -options.warmup; run < options.runs; ++run) {
        // ABBA: even runs in the given order, odd runs reversed.
        std::vector<size_t> order(targets.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        if ((run + options.warmup) % 2 == 1) std::reverse(order.begin(), order.end());
        for (size_t ti : order) {
          if (Interrupted()) return records;
          const Target& t = targets[ti];
          std::vector<StreamRequest> requests(static_cast<size_t>(level),
                                              StreamRequest{"/v1/chat/completions", ChatBody(w, t, options.seed)});
          std::vector<StreamTrace> traces;
          if (endpoints[ti].host.empty()) {
            traces.resize(requests.size());
            for (auto& tr : traces) tr.error = "bad target URL '" + t.url + "'";
          } else {
            traces = RunStreams(endpoints[ti], requests, options.request_timeout);
          }
          int failed = 0;
          std::string first_error;
          for (size_t s = 0; s < traces.size(); ++s) {
            RequestRecord r;
            r.target = t.name;
            r.workload = label;
            r.run = run;
            r.stream = static_cast<int>(s);
            r.concurrency = level;
            r.warmup = run < 0;
            FinishRecord(traces[s], w.max_tokens, r);
            if (!r.ok && failed++ == 0) first_error = r.error;
            records.push_back(std::move(r));
          }
          if (progress) {
            std::string line =
                label +
                (run < 0 ? " warm-up" : " run " + std::to_string(run + 1) + "/" + std::to_string(options.runs)) + ": " +
                t.name + (failed == 0 ? " ok" : " " + std::to_string(failed) + " failed");
            if (failed > 0) line += " (" + first_error + ")";
            progress(line);
          }
        }
      }
    }
  }
  return records;
}

const std::vector<std::string>& MetricNames() {
  static const std::vector<std::string> kNames = {"ttft_ms", "decode_tps", "itl_p50_ms",        "itl_p99_ms",
                                                  "e2e_ms",  "prompt_tps", "server_decode_tps", "server_prompt_tps"};
  return kNames;
}

double MetricValue(const RequestRecord& r, const std::string& m) {
  if (m == "ttft_ms") return r.ttft_ms;
  if (m == "decode_tps") return r.decode_tps;
  if (m == "itl_p50_ms") return r.itl_p50_ms;
  if (m == "itl_p99_ms") return r.itl_p99_ms;
  if (m == "e2e_ms") return r.e2e_ms;
  if (m == "prompt_tps") return r.prompt_tps;
  if (m == "server_decode_tps") {
    return r.has_server_timings && r.server_predicted_ms > 0 ? r.server_predicted_n * 1000.0 / r.server_predicted_ms
                                                             : -1;
  }
  if (m == "server_prompt_tps") {
    return r.has_server_timings && r.server_prompt_ms > 0 ? r.server_prompt_n * 1000.0 / r.server_prompt_ms : -1;
  }
  return -1;
}

bool HigherIsBetter(const std::string& metric) {
  return metric.find("tps") != std::string::npos;
}

Aggregate Summarise(const std::vector<RequestRecord>& records, const std::vector<Target>& targets,
                    const RunOptions& options) {
  Aggregate agg;
  // Cells in first-seen workload order, then target order.
  std::vector<std::string> labels;
  for (const auto& r : records) {
    if (std::find(labels.begin(), labels.end(), r.workload) == labels.end()) labels.push_back(r.workload);
  }
  // values[label][target][metric]
  std::map<std::string, std::map<std::string, std::map<std::string, std::vector<double>>>> values;
  // paired[label][target][metric][(run, stream)] = value
  std::map<std::string, std::map<std::string, std::map<std::string, std::map<std::pair<int, int>, double>>>> paired;
  for (const auto& label : labels) {
    for (const auto& t : targets) {
      Cell cell;
      cell.workload = label;
      cell.target = t.name;
      std::map<int, std::pair<int64_t, double>> per_run;  // run -> (tokens, max e2e)
      std::set<std::string> seen_errors;
      for (const auto& r : records) {
        if (r.workload != label || r.target != t.name || r.warmup) continue;
        cell.concurrency = r.concurrency;
        ++cell.requests;
        if (!r.ok) {
          ++cell.errors;
          if (seen_errors.insert(r.error).second && cell.error_samples.size() < kMaxErrorSamples) {
            cell.error_samples.push_back(r.error);
          }
          continue;
        }
        for (const auto& m : MetricNames()) {
          const double v = MetricValue(r, m);
          if (v >= 0) {
            values[label][t.name][m].push_back(v);
            paired[label][t.name][m][{r.run, r.stream}] = v;
          }
        }
        auto& pr = per_run[r.run];
        pr.first += r.completion_tokens;
        pr.second = std::max(pr.second, r.e2e_ms);
      }
      if (cell.requests == 0) continue;
      for (const auto& m : MetricNames()) {
        const auto& v = values[label][t.name][m];
        if (v.empty()) continue;
        Summary s = Summarize(v);
        if (s.n >= 3 && s.cv > options.noisy_cv) cell.noisy.push_back(m);
        cell.metrics[m] = s;
      }
      std::vector<double> agg_tps;
      for (const auto& [run, pr] : per_run) {
        if (pr.second > 0) agg_tps.push_back(static_cast<double>(pr.first) * 1000.0 / pr.second);
      }
      cell.aggregate_tps = Summarize(agg_tps);
      values[label][t.name]["aggregate_tps"] = agg_tps;
      agg.cells.push_back(std::move(cell));
    }
  }
  if (targets.size() < 2) return agg;
  // Every target against the first; a target naming another in compare_to also against it.
  std::vector<std::pair<std::string, std::string>> pairs;  // (baseline, target)
  for (size_t ti = 1; ti < targets.size(); ++ti) pairs.emplace_back(targets.front().name, targets[ti].name);
  for (const auto& t : targets) {
    if (t.compare_to.empty() || t.compare_to == targets.front().name || t.compare_to == t.name) continue;
    if (std::any_of(targets.begin(), targets.end(), [&](const Target& o) { return o.name == t.compare_to; })) {
      pairs.emplace_back(t.compare_to, t.name);
    }
  }
  for (const auto& label : labels) {
    for (const auto& [base, target] : pairs) {
      for (const std::string m : {"ttft_ms", "decode_tps", "itl_p50_ms", "e2e_ms", "aggregate_tps"}) {
        const auto& a = values[label][base][m];
        const auto& b = values[label][target][m];
        if (a.empty() || b.empty()) continue;
        if (m == "aggregate_tps" && label.find('@') == std::string::npos && label != "parallel_4") continue;
        CellComparison c;
        c.workload = label;
        c.baseline = base;
        c.target = target;
        c.metric = m;
        uint64_t seed = Fnv1a(m, Fnv1a(target, Fnv1a(label))) ^ options.seed;
        if (base != targets.front().name) seed = Fnv1a(base, seed);
        c.result = BootstrapCompare(a, b, seed, options.bootstrap_resamples);
        if (m != "aggregate_tps") {
          std::vector<double> ratios;
          for (const auto& [key, value] : paired[label][target][m]) {
            auto base_it = paired[label][base][m].find(key);
            if (base_it == paired[label][base][m].end() || base_it->second <= 0) continue;
            ratios.push_back(value / base_it->second);
          }
          c.pairs = static_cast<int>(ratios.size());
          c.paired_ratio = BootstrapMedian(ratios, seed ^ 0x5EEDULL, options.bootstrap_resamples);
        }
        agg.comparisons.push_back(std::move(c));
      }
    }
  }
  return agg;
}

}  // namespace corral::bench
