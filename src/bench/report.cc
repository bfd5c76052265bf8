#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/fs.h"

namespace corral::bench {

namespace {

using nlohmann::json;

json SummaryJson(const Summary& s) {
  return {{"n", s.n},     {"mean", s.mean}, {"median", s.median}, {"p10", s.p10}, {"p90", s.p90}, {"p99", s.p99},
          {"min", s.min}, {"max", s.max},   {"stddev", s.stddev}, {"cv", s.cv},   {"iqr", s.iqr}, {"mad", s.mad}};
}

json IntervalJson(const Interval& i) {
  return {{"estimate", i.estimate}, {"lo", i.lo}, {"hi", i.hi}, {"valid", i.valid}};
}

json TargetJson(const Target& t) {
  json j = {{"name", t.name},
            {"url", t.url},
            {"model", t.model},
            {"kind", t.kind},
            {"version", t.version},
            {"mode", t.mode},
            {"pid", t.pid},
            {"argv", t.argv},
            {"model_path", t.model_path},
            {"model_sha256", t.model_sha256},
            {"knobs", t.knobs},
            {"unfair_knobs", t.unfair_knobs}};
  if (t.child_pid > 0) {
    j["child_pid"] = t.child_pid;
    j["child_argv"] = t.child_argv;
  }
  // TLS and the key: where the key came from, never the key.
  if (t.url.rfind("https://", 0) == 0) j["tls_ca_file"] = t.ca_file.empty() ? "system roots" : t.ca_file;
  if (!t.api_key.empty()) j["api_key"] = t.api_key_source.empty() ? "given" : t.api_key_source;
  if (!t.compare_to.empty()) j["compare_to"] = t.compare_to;
  return j;
}

json RecordJson(const RequestRecord& r) {
  json j = {{"target", r.target},
            {"workload", r.workload},
            {"run", r.run},
            {"stream", r.stream},
            {"concurrency", r.concurrency},
            {"warmup", r.warmup},
            {"ok", r.ok},
            {"http_status", r.http_status},
            {"connect_ms", r.connect_ms},
            {"ttft_ms", r.ttft_ms},
            {"e2e_ms", r.e2e_ms},
            {"decode_ms", r.decode_ms},
            {"decode_tps", r.decode_tps},
            {"prompt_tps", r.prompt_tps},
            {"itl_p50_ms", r.itl_p50_ms},
            {"itl_p99_ms", r.itl_p99_ms},
            {"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"content_events", r.content_events},
            {"response_bytes", r.response_bytes}};
  if (!r.error.empty()) j["error"] = r.error;
  if (r.handshake_ms >= 0) {
    j["tls_handshake_ms"] = r.handshake_ms;
    j["tls_resumed"] = r.tls_resumed;
  }
  if (r.has_server_timings) {
    j["server_timings"] = {{"prompt_n", r.server_prompt_n},
                           {"prompt_ms", r.server_prompt_ms},
                           {"predicted_n", r.server_predicted_n},
                           {"predicted_ms", r.server_predicted_ms}};
    if (r.server_cache_n >= 0) j["server_timings"]["cache_n"] = r.server_cache_n;
    if (r.server_draft_n >= 0) {
      j["server_timings"]["draft_n"] = r.server_draft_n;
      j["server_timings"]["draft_n_accepted"] = r.server_draft_accepted;
    }
  }
  return j;
}

json NginxJson(const NginxReference& n) {
  return {{"status", n.status},
          {"reason", n.reason},
          {"binary", n.binary},
          {"version", n.version},
          {"version_line", n.version_line},
          {"config", n.config},
          {"error_log", n.error_log},
          {"method",
           "nginx started by the bench with the config below, in front of the same llama-server child; "
           "alternated request by request with direct and proxy (same requests, same statistics)"}};
}

json FootprintJson(const Footprint& f) {
  return {{"status", f.status},
          {"reason", f.reason},
          {"method",
           "open `requested` HTTP/1.1 keep-alive connections to the proxy, each sends GET /health once and then "
           "sits idle for idle_hold_s; VmRSS of the daemon (/proc/<pid>/status; with a proxy process, the sum of both "
           "processes' PSS from smaps_rollup, as their RSS would count shared pages twice) before, with them held, and "
           "sampled every 2 ms during `streams` concurrent streams through the proxy (idle connections still held); "
           "then every idle connection is checked for a close and sent one more GET /health. "
           "per_idle_connection = (with_idle - idle_before) / opened; per_stream = (peak - with_idle) / streams"},
          {"daemon_pid", f.daemon_pid},
          {"requested", f.requested},
          {"opened", f.opened},
          {"open_at_end", f.open_at_end},
          {"answered_again", f.answered_again},
          {"connection_error", f.connection_error},
          {"idle_hold_s", f.idle_hold_s},
          {"nofile",
           {{"bench_soft_before", f.nofile_soft_before},
            {"bench_soft", f.nofile_soft},
            {"bench_hard", f.nofile_hard},
            {"daemon_soft", f.daemon_nofile_soft},
            {"note", f.nofile_note}}},
          {"rss_bytes",
           {{"idle_before", f.rss_idle_before},
            {"with_idle_connections", f.rss_with_idle},
            {"peak_during_streams", f.rss_peak_streams},
            {"after_streams", f.rss_after_streams}}},
          {"rss_samples", f.rss_samples},
          {"streams", f.streams},
          {"stream_errors", f.stream_errors},
          {"stream_error_sample", f.stream_error_sample},
          {"per_idle_connection_bytes", f.per_idle_connection_bytes},
          {"per_stream_bytes", f.per_stream_bytes},
          {"targets", {{"idle_rss_bytes_max", 15 * 1024 * 1024}, {"per_stream_bytes_max", 64 * 1024}}}};
}

// A time that may not have been seen (NaN): null in the JSON.
json MsOrNull(double ms) {
  return std::isfinite(ms) ? json(ms) : json(nullptr);
}

json ColdStartJson(const ColdStart& c) {
  json runs = json::array();
  for (const auto& r : c.runs) {
    runs.push_back({{"ok", r.ok},
                    {"error", r.error},
                    {"send_to_first_token_ms", MsOrNull(r.send_to_first_token_ms)},
                    {"send_to_listening_ms", MsOrNull(r.send_to_listening_ms)},
                    {"listening_to_health_ms", MsOrNull(r.listening_to_health_ms)},
                    {"listening_to_first_token_ms", MsOrNull(r.listening_to_first_token_ms)},
                    {"health_to_first_token_ms", MsOrNull(r.health_to_first_token_ms)},
                    {"server_prompt_ms", MsOrNull(r.server_prompt_ms)},
                    {"listening_to_first_token_less_prompt_ms", MsOrNull(r.listening_to_first_token_less_prompt_ms)},
                    {"child_log_listening_to_task_ms", MsOrNull(r.child_log_listening_to_task_ms)}});
  }
  return {{"status", c.status},
          {"reason", c.reason},
          {"method",
           "stop the model (corral stop), then send one streamed chat request for it through the proxy; a thread "
           "watches the child's log (inotify) for llama-server's 'listening on http://' line and stamps it, then "
           "probes the child's /health directly until 200 and stamps that; all stamps on the bench's steady clock. "
           "(a) = request written -> first content token; (b) = first token - listening line, and first token - "
           "first /health 200. Split of (b): llama-server's own prompt time (its timings) is subtracted to leave "
           "what the daemon and the hop add; and the child's log stamps give its listening line -> the start of "
           "the request's task on llama-server's own clock"},
          {"model_ref", c.model_ref},
          {"log_path", c.log_path},
          {"note", c.note},
          {"repetitions", c.repetitions},
          {"target_ms", 30},
          {"runs", runs},
          {"send_to_first_token_ms", SummaryJson(c.send_to_first_token_ms)},
          {"listening_to_first_token_ms", SummaryJson(c.listening_to_first_token_ms)},
          {"health_to_first_token_ms", SummaryJson(c.health_to_first_token_ms)},
          {"listening_to_health_ms", SummaryJson(c.listening_to_health_ms)},
          {"listening_to_first_token_less_prompt_ms", SummaryJson(c.listening_to_first_token_less_prompt_ms)},
          {"child_log_listening_to_task_ms", SummaryJson(c.child_log_listening_to_task_ms)}};
}

// Suite C's headline per workload and non-baseline target: added TTFT at p50 and p99
// (target cell minus baseline cell) and the paired decode ratio. The baseline is the first
// target; a target with compare_to gets a second row against that one (TLS proxy vs plain).
json HopSummaryJson(const SuiteResult& s) {
  json out = json::array();
  if (s.targets.size() < 2) return out;
  std::vector<std::pair<std::string, std::string>> pairs;  // (baseline, target)
  for (size_t ti = 1; ti < s.targets.size(); ++ti) pairs.emplace_back(s.targets.front().name, s.targets[ti].name);
  for (const auto& t : s.targets) {
    if (t.compare_to.empty() || t.compare_to == s.targets.front().name || t.compare_to == t.name) continue;
    pairs.emplace_back(t.compare_to, t.name);
  }
  auto cell_of = [&](const std::string& w, const std::string& t) -> const Cell* {
    for (const auto& c : s.aggregate.cells) {
      if (c.workload == w && c.target == t) return &c;
    }
    return nullptr;
  };
  for (const auto& first : s.aggregate.cells) {
    if (first.target != s.targets.front().name) continue;
    for (const auto& [base, target] : pairs) {
      const Cell* b = cell_of(first.workload, base);
      const Cell* t = cell_of(first.workload, target);
      if (b == nullptr || t == nullptr) continue;
      json row = {{"workload", b->workload},       {"baseline", base},        {"target", t->target},
                  {"concurrency", t->concurrency}, {"requests", t->requests}, {"errors", t->errors},
                  {"baseline_errors", b->errors}};
      auto bt = b->metrics.find("ttft_ms"), tt = t->metrics.find("ttft_ms");
      if (bt != b->metrics.end() && tt != t->metrics.end()) {
        row["added_ttft_p50_ms"] = tt->second.median - bt->second.median;
        row["added_ttft_p99_ms"] = tt->second.p99 - bt->second.p99;
      }
      for (const auto& c : s.aggregate.comparisons) {
        if (c.workload != b->workload || c.target != t->target || c.baseline != base) continue;
        if (c.metric == "ttft_ms") row["paired_ttft_ratio"] = IntervalJson(c.paired_ratio);
        if (c.metric == "decode_tps") {
          row["paired_decode_ratio"] = IntervalJson(c.paired_ratio);
          row["pairs"] = c.pairs;
        }
        if (c.metric == "aggregate_tps") row["aggregate_tps_ratio"] = IntervalJson(c.result.ratio);
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

// Suite S's headline per workload: decode tok/s without and with the draft (medians), the
// paired ratio (draft / no-draft, requests sent back to back) and the draft's acceptance.
json SpecJson(const SuiteResult& s) {
  const SpecSummary& sp = *s.spec;
  json j = {{"model_path", sp.model_path},
            {"draft_path", sp.draft_path},
            {"draft_sha256", sp.draft_sha256},
            {"draft_args", sp.draft_args},
            {"method",
             "two raw llama-server processes on the same model file and knobs; the second adds draft_args. "
             "Requests alternated ABBA, warm-ups discarded. acceptance = sum(timings.draft_n_accepted) / "
             "sum(timings.draft_n) over the draft target's measured requests; decode_ratio = median of per-pair "
             "ratios of client decode tok/s (draft / no-draft), bootstrap 95 % interval"},
            {"rows", json::array()}};
  if (s.targets.size() < 2) return j;
  const std::string& base = s.targets[0].name;
  const std::string& draft = s.targets[1].name;
  for (const auto& row : sp.rows) {
    json r = {{"workload", row.workload},    {"requests", row.requests},        {"with_counts", row.with_counts},
              {"draft_tokens", row.drafted}, {"accepted_tokens", row.accepted}, {"acceptance", row.acceptance}};
    for (const auto& c : s.aggregate.cells) {
      if (c.workload != row.workload) continue;
      auto m = c.metrics.find("decode_tps");
      if (m == c.metrics.end()) continue;
      if (c.target == base) r["decode_tps_no_draft"] = m->second.median;
      if (c.target == draft) r["decode_tps_draft"] = m->second.median;
    }
    for (const auto& c : s.aggregate.comparisons) {
      if (c.workload != row.workload || c.baseline != base || c.target != draft || c.metric != "decode_tps") continue;
      r["decode_ratio"] = IntervalJson(c.paired_ratio);
      r["decode_ratio_unpaired"] = IntervalJson(c.result.ratio);
      r["pairs"] = c.pairs;
    }
    j["rows"].push_back(std::move(r));
  }
  return j;
}

// The proxy under load: the highest burst level of the run, every target against the first.
// Suite W's headline: per (workload, target) the next turn's TTFT (or the cold start's),
// llama-server's prompt_n / cache_n, and the paired TTFT ratios against the baselines.
json SwapJson(const SuiteResult& s) {
  const SwapSummary& sw = *s.swap;
  json j = {{"words", sw.words},
            {"ctx", sw.ctx},
            {"rounds", sw.rounds},
            {"cold_starts", sw.cold_starts},
            {"conversation_tokens", sw.conversation_tokens},
            {"budget_bytes", sw.budget_bytes},
            {"kv_state_bytes_on_disk", sw.kv_state_bytes},
            {"model_argv", sw.model_argv},
            {"router_argv", sw.router_argv},
            {"models", sw.models},
            {"work_dir", sw.work_dir},
            {"method",
             "two models, a memory budget with room for one. Per round, ABBA: the first turn of a conversation "
             "on A, one request to B (A evicted; warm skips it), the next turn on A: TTFT of that turn, model "
             "start included. kv-restore and warm: a daemon with kv_keep on; kv-off: kv_keep off; router: "
             "llama-server --models-dir --models-max 1. Cold starts: nothing loaded, one short request to A. "
             "prompt_n / cache_n: medians of llama-server's timings; ratios: median of per-round TTFT ratios "
             "(bootstrap 95 % interval)"},
            {"rows", json::array()}};
  for (const auto& row : sw.rows) {
    json r = {{"workload", row.workload},
              {"target", row.target},
              {"requests", row.requests},
              {"errors", row.errors},
              {"ttft_ms", SummaryJson(row.ttft_ms)},
              {"prompt_n", row.prompt_n},
              {"cache_n", row.cache_n},
              {"prompt_ms", row.prompt_ms},
              {"vs", json::array()}};
    for (const auto& c : s.aggregate.comparisons) {
      if (c.workload != row.workload || c.target != row.target || c.metric != "ttft_ms") continue;
      r["vs"].push_back({{"baseline", c.baseline},
                         {"paired_ratio", IntervalJson(c.paired_ratio)},
                         {"ratio", IntervalJson(c.result.ratio)},
                         {"pairs", c.pairs}});
    }
    j["rows"].push_back(std::move(r));
  }
  return j;
}

json LoadJson(const json& hop_summary, const SuiteResult& s) {
  int level = 0;
  for (const auto& c : s.aggregate.cells) {
    if (c.workload.rfind("burst@", 0) == 0) level = std::max(level, c.concurrency);
  }
  if (level == 0) return nullptr;
  const std::string label = "burst@" + std::to_string(level);
  json j = {{"workload", label}, {"concurrency", level}, {"targets", json::array()}};
  for (const auto& c : s.aggregate.cells) {
    if (c.workload != label) continue;
    json t = {{"target", c.target}, {"requests", c.requests}, {"errors", c.errors}};
    if (c.aggregate_tps.n > 0) t["aggregate_tps_median"] = c.aggregate_tps.median;
    for (const auto& h : hop_summary) {
      if (h.value("workload", "") != label || h.value("target", "") != c.target) continue;
      if (h.value("baseline", "") != s.targets.front().name) continue;
      if (h.contains("aggregate_tps_ratio")) t["aggregate_tps_ratio"] = h["aggregate_tps_ratio"];
      if (h.contains("added_ttft_p99_ms")) t["added_ttft_p99_ms"] = h["added_ttft_p99_ms"];
    }
    j["targets"].push_back(std::move(t));
  }
  return j;
}

std::string Fmt(double v, int decimals = 2) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

double Num(const json& j, const char* key, double fallback = 0) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// A metric's median with its spread, "123.4 ±5.6" (IQR/2), or "-" when absent.
std::string MedianCell(const json& metrics, const char* metric, int decimals) {
  if (!metrics.is_object() || !metrics.contains(metric)) return "-";
  const json& s = metrics[metric];
  return Fmt(Num(s, "median"), decimals) + " ±" + Fmt(Num(s, "iqr") / 2, decimals);
}

std::string Plain(const json& metrics, const char* metric, const char* field, int decimals) {
  if (!metrics.is_object() || !metrics.contains(metric)) return "-";
  return Fmt(Num(metrics[metric], field), decimals);
}

std::string PairedCell(const json& c) {
  const json& p = c.value("paired_ratio", json::object());
  if (!p.value("valid", false)) return "-";
  return Fmt(Num(p, "estimate"), 4) + " [" + Fmt(Num(p, "lo"), 4) + ", " + Fmt(Num(p, "hi"), 4) + "] (" +
         Str(c, "pairs") + ")";
}

std::string EscapeMd(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string EscapeXml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string JoinArgv(const json& argv) {
  std::string s;
  if (!argv.is_array()) return s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.is_string() ? a.get<std::string>() : a.dump();
  }
  return s;
}

std::string Mib(double bytes) {
  return Fmt(bytes / (1024.0 * 1024.0), 2) + " MiB";
}

std::string Kib(double bytes) {
  return Fmt(bytes / 1024.0, 1) + " KiB";
}

std::string IntervalText(const json& i, int decimals) {
  if (!i.is_object() || !i.value("valid", false)) return "-";
  return Fmt(Num(i, "estimate"), decimals) + " [" + Fmt(Num(i, "lo"), decimals) + ", " + Fmt(Num(i, "hi"), decimals) +
         "]";
}

// Suite S's summary table.
std::string RenderSuiteSParts(const json& s) {
  const json& sp = s.value("spec", json::object());
  std::string md = "Speculative decoding: `" + EscapeMd(JoinArgv(sp.value("draft_args", json::array()))) +
                   "` (draft SHA-256 " + Str(sp, "draft_sha256").substr(0, 16) + ").\n\n";
  md +=
      "| workload | decode tok/s, no draft | decode tok/s, draft | paired ratio [95 % CI] (pairs) | acceptance | "
      "draft tokens (accepted) |\n|---|---|---|---|---|---|\n";
  for (const auto& r : sp.value("rows", json::array())) {
    const double acc = Num(r, "acceptance", -1);
    md += "| " + Str(r, "workload") + " | " + Fmt(Num(r, "decode_tps_no_draft", NAN), 1) + " | " +
          Fmt(Num(r, "decode_tps_draft", NAN), 1) + " | " + IntervalText(r.value("decode_ratio", json()), 3) + " (" +
          Str(r, "pairs") + ") | " + (acc < 0 ? "-" : Fmt(acc * 100, 1) + " %") + " | " + Str(r, "draft_tokens") +
          " (" + Str(r, "accepted_tokens") + ") |\n";
  }
  return md + "\n";
}

// Suite W's table: the swap's next turn and the cold starts, with the ratios.
std::string RenderSuiteWParts(const json& s) {
  const json& sw = s.value("swap", json::object());
  std::string md = "### Swap and cold start\n\nA conversation of " + Str(sw, "conversation_tokens") +
                   " prompt tokens (" + Str(sw, "words") + " words, -c " + Str(sw, "ctx") + "), " + Str(sw, "rounds") +
                   " rounds; memory budget " + Mib(Num(sw, "budget_bytes")) + " (room for one model); " +
                   Str(sw, "cold_starts") + " cold starts per side. Corral's child for A: `" +
                   EscapeMd(JoinArgv(sw.value("model_argv", json::array()))) +
                   "`. KV state on disk after the run: " + Mib(Num(sw, "kv_state_bytes_on_disk")) + ".\n\n";
  md +=
      "| cell | target | ok/n | TTFT median ms | min-max ms | prompt_n / cache_n | prompt_ms | TTFT paired ratio "
      "[95 % CI] vs |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : sw.value("rows", json::array())) {
    const json& t = r.value("ttft_ms", json::object());
    const int n = r.value("requests", 0), e = r.value("errors", 0);
    std::string vs;
    for (const auto& c : r.value("vs", json::array())) {
      vs += (vs.empty() ? "" : "; ") + EscapeMd(Str(c, "baseline")) + ": " +
            IntervalText(c.value("paired_ratio", json()), 3);
    }
    auto count = [](double v) { return v < 0 ? std::string("-") : Fmt(v, 0); };
    md += "| " + Str(r, "workload") + " | " + EscapeMd(Str(r, "target")) + " | " + std::to_string(n - e) + "/" +
          std::to_string(n) + " | " + Fmt(Num(t, "median"), 1) + " | " + Fmt(Num(t, "min"), 1) + "-" +
          Fmt(Num(t, "max"), 1) + " | " + count(Num(r, "prompt_n", -1)) + " / " + count(Num(r, "cache_n", -1)) + " | " +
          (Num(r, "prompt_ms", -1) < 0 ? "-" : Fmt(Num(r, "prompt_ms"), 1)) + " | " + (vs.empty() ? "-" : vs) + " |\n";
  }
  return md + "\n";
}

// Suite C's parts beyond the cell tables: hop summary, load, nginx, footprint, cold start.
std::string RenderSuiteCParts(const json& s) {
  std::string md;
  const json& hop = s.value("hop_summary", json::array());
  if (!hop.empty()) {
    md +=
        "### Proxy hop, relative to direct\n\n"
        "Added TTFT = target cell minus baseline cell (p50: medians, p99: 99th percentiles); paired ratios = "
        "median of per-pair ratios (target / baseline) of requests sent back to back, with their bootstrap 95 % "
        "interval. The baseline is direct llama-server; a row with another baseline compares two targets that both "
        "ran in the alternation (a TLS proxy against the plain one). Targets: added TTFT p50 <= 0.1 ms, p99 <= "
        "0.5 ms; decode >= 0.995.\n\n"
        "| workload | target | baseline | ok/n | added TTFT p50 ms | added TTFT p99 ms | paired TTFT ratio [95 % CI] "
        "| paired decode ratio [95 % CI] (pairs) |\n|---|---|---|---|---|---|---|---|\n";
    for (const auto& h : hop) {
      const int n = h.value("requests", 0), e = h.value("errors", 0);
      md += "| " + Str(h, "workload") + " | " + EscapeMd(Str(h, "target")) + " | " + EscapeMd(Str(h, "baseline")) +
            " | " + std::to_string(n - e) + "/" + std::to_string(n) + " | " +
            (h.contains("added_ttft_p50_ms") ? Fmt(Num(h, "added_ttft_p50_ms"), 3) : "-") + " | " +
            (h.contains("added_ttft_p99_ms") ? Fmt(Num(h, "added_ttft_p99_ms"), 3) : "-") + " | " +
            IntervalText(h.value("paired_ttft_ratio", json()), 4) + " | " +
            IntervalText(h.value("paired_decode_ratio", json()), 4) +
            (h.contains("pairs") ? " (" + Str(h, "pairs") + ")" : "") + " |\n";
    }
    md += "\n";
  }
  const json& load = s.value("load", json());
  md += "### Proxy under load\n\n";
  if (!load.is_object()) {
    md += "Not measured in this run: add `--workload burst` (concurrency 1 to 64, alternated like every cell).\n\n";
  } else {
    md += "The `" + Str(load, "workload") + "` cell: " + Str(load, "concurrency") +
          " concurrent streams per run, alternated across targets. Aggregate tok/s = completion tokens of a run / "
          "its wall time; ratio = median of target / median of direct with its bootstrap 95 % interval. Targets: "
          "no error, ratio >= 0.99, added TTFT p99 <= 1 ms.\n\n"
          "| target | ok/n | errors | aggregate tok/s (median) | ratio vs direct [95 % CI] | added TTFT p99 ms |\n"
          "|---|---|---|---|---|---|\n";
    for (const auto& t : load.value("targets", json::array())) {
      const int n = t.value("requests", 0), e = t.value("errors", 0);
      md += "| " + EscapeMd(Str(t, "target")) + " | " + std::to_string(n - e) + "/" + std::to_string(n) + " | " +
            std::to_string(e) + " | " +
            (t.contains("aggregate_tps_median") ? Fmt(Num(t, "aggregate_tps_median"), 1) : "-") + " | " +
            IntervalText(t.value("aggregate_tps_ratio", json()), 4) + " | " +
            (t.contains("added_ttft_p99_ms") ? Fmt(Num(t, "added_ttft_p99_ms"), 3) : "-") + " |\n";
    }
    md += "\n";
  }
  const json& ngx = s.value("nginx", json());
  if (ngx.is_object()) {
    md += "### nginx reference: " + Str(ngx, "status") + "\n\n";
    if (Str(ngx, "status") == "ran") {
      md += "`" + EscapeMd(Str(ngx, "version_line")) + "` (" + EscapeMd(Str(ngx, "binary")) + "), target `nginx` " +
            "above: " + EscapeMd(Str(ngx, "method")) + ". The exact nginx.conf:\n\n```nginx\n" + Str(ngx, "config") +
            "```\n\n";
      if (!Str(ngx, "error_log").empty()) {
        md += "nginx's error log after the requests (the reason for any 502 above):\n\n```\n" + Str(ngx, "error_log") +
              (Str(ngx, "error_log").ends_with("\n") ? "" : "\n") + "```\n\n";
      }
    } else {
      md += "nginx was not measured: " + EscapeMd(Str(ngx, "reason")) + "\n\n";
    }
  }
  const json& f = s.value("footprint", json());
  if (f.is_object()) {
    md += "### Daemon footprint: " + Str(f, "status") + "\n\n";
    if (Str(f, "status") != "ran") {
      md += "Not measured: " + EscapeMd(Str(f, "reason")) + "\n\n";
    } else {
      const json& rss = f.value("rss_bytes", json::object());
      const json& nofile = f.value("nofile", json::object());
      md += "Method: " + EscapeMd(Str(f, "method")) + ".\n\n";
      md += "| measure | value | target |\n|---|---|---|\n";
      md += "| idle keep-alive connections opened / requested | " + Str(f, "opened") + " / " + Str(f, "requested") +
            " | all |\n";
      md += "| still open after " + Fmt(Num(f, "idle_hold_s"), 1) + " s idle and the streams | " +
            Str(f, "open_at_end") + " | all |\n";
      md += "| answered one more GET /health | " + Str(f, "answered_again") + " | all |\n";
      md += "| daemon RSS idle, before the connections | " + Mib(Num(rss, "idle_before")) + " | <= 15 MiB |\n";
      md += "| daemon RSS with the idle connections | " + Mib(Num(rss, "with_idle_connections")) + " (" +
            Kib(Num(f, "per_idle_connection_bytes")) + " per connection) | |\n";
      md += "| daemon RSS peak during " + Str(f, "streams") + " concurrent streams (" + Str(f, "rss_samples") +
            " samples) | " + Mib(Num(rss, "peak_during_streams")) + " (" + Kib(Num(f, "per_stream_bytes")) +
            " per stream) | <= 64 KiB per stream |\n";
      md += "| daemon RSS after the streams | " + Mib(Num(rss, "after_streams")) + " | |\n";
      md += "| stream errors | " + Str(f, "stream_errors") + " of " + Str(f, "streams") +
            (Str(f, "stream_error_sample").empty() ? "" : " (" + EscapeMd(Str(f, "stream_error_sample")) + ")") +
            " | 0 |\n";
      md += "| RLIMIT_NOFILE (bench soft before → after / hard; daemon soft) | " + Str(nofile, "bench_soft_before") +
            " → " + Str(nofile, "bench_soft") + " / " + Str(nofile, "bench_hard") + "; " + Str(nofile, "daemon_soft") +
            " | |\n\n";
      if (!Str(f, "connection_error").empty())
        md += "Connection error: " + EscapeMd(Str(f, "connection_error")) + "\n\n";
      if (!Str(nofile, "note").empty()) md += "**Note:** " + EscapeMd(Str(nofile, "note")) + "\n\n";
    }
  }
  const json& cs = s.value("cold_start", json());
  if (cs.is_object()) {
    md += "### Cold start: " + Str(cs, "status") + "\n\n";
    if (Str(cs, "status") == "skipped") {
      md += "Not measured: " + EscapeMd(Str(cs, "reason")) + "\n\n";
    } else {
      md += "Method: " + EscapeMd(Str(cs, "method")) + ". Model reference sent: `" + EscapeMd(Str(cs, "model_ref")) +
            "`. Target: first token <= " + Str(cs, "target_ms") + " ms after llama-server is ready.\n\n";
      if (!Str(cs, "reason").empty()) md += "Failure: " + EscapeMd(Str(cs, "reason")) + "\n\n";
      if (!Str(cs, "note").empty()) md += "**Note:** " + EscapeMd(Str(cs, "note")) + "\n\n";
      md += "| measure | median ms | min | max | n |\n|---|---|---|---|---|\n";
      const std::pair<const char*, const char*> rows[] = {
          {"(a) request sent → first token", "send_to_first_token_ms"},
          {"(b) listening line → first token", "listening_to_first_token_ms"},
          {"(b) first /health 200 → first token", "health_to_first_token_ms"},
          {"listening line → first /health 200", "listening_to_health_ms"},
          {"(b) listening line → first token, less llama-server's prompt time",
           "listening_to_first_token_less_prompt_ms"},
          {"child log: listening line → request's task started (llama-server's clock)",
           "child_log_listening_to_task_ms"}};
      for (const auto& [label, key] : rows) {
        const json& m = cs.value(key, json::object());
        md += std::string("| ") + label + " | " + Fmt(Num(m, "median"), 2) + " | " + Fmt(Num(m, "min"), 2) + " | " +
              Fmt(Num(m, "max"), 2) + " | " + Str(m, "n") + " |\n";
      }
      md += "\n";
      int i = 0;
      for (const auto& r : cs.value("runs", json::array())) {
        ++i;
        if (!r.value("ok", false)) md += "- run " + std::to_string(i) + " failed: " + EscapeMd(Str(r, "error")) + "\n";
      }
      if (i > 0) md += "\n";
    }
  }
  return md;
}

}  // namespace

json ReportJson(const RunInfo& run, const HostInfo& host, const Provenance& p, const std::vector<Workload>& workloads,
                const std::vector<SuiteResult>& suites) {
  json j;
  j["schema_version"] = kSchemaVersion;
  j["tool"] = "corral bench";
  j["created_utc"] = run.created_utc;
  j["finished_utc"] = run.finished_utc;
  j["command"] = run.command;
  j["options"] = {{"runs", run.options.runs},
                  {"warmup", run.options.warmup},
                  {"seed", run.options.seed},
                  {"smoke", run.smoke},
                  {"mode", run.mode},
                  {"noisy_cv", run.options.noisy_cv},
                  {"bootstrap_resamples", run.options.bootstrap_resamples},
                  {"request_timeout_ms", run.options.request_timeout.count()},
                  {"alternation", "ABBA (even runs in target order, odd runs reversed)"},
                  {"sampling", "temperature 0, fixed seed, ignore_eos, n_predict = max_tokens"}};
  j["build"] = {{"optimized", BuiltOptimized()}, {"description", BuildDescription()}, {"allow_debug", run.allow_debug}};
  j["host"] = {{"cpu_model", host.cpu_model},
               {"logical_cores", host.logical_cores},
               {"usable_cores", host.usable_cores},
               {"ram_bytes", host.ram_bytes},
               {"gpu", host.gpu},
               {"kernel", host.kernel},
               {"hostname", host.hostname},
               {"load_average_1m", host.load_average_1m}};
  j["provenance"] = {{"corral_version", p.corral_version},
                     {"corral_commit", p.corral_commit},
                     {"corral_source_commit", p.corral_source_commit},
                     {"llama_cpp_pinned_commit", p.llama_cpp_pinned_commit},
                     {"llama_server", p.llama_server},
                     {"llama_server_commit", p.llama_server_commit},
                     {"llama_server_version", p.llama_server_version}};
  j["workloads"] = json::array();
  for (const auto& w : workloads) {
    j["workloads"].push_back({{"name", w.name},
                              {"prompt_file", w.prompt_file},
                              {"prompt_chars", w.prompt.size()},
                              {"max_tokens", w.max_tokens},
                              {"concurrency", w.concurrency},
                              {"levels", w.levels}});
  }
  j["suites"] = json::array();
  for (const auto& s : suites) {
    json sj = {{"suite", s.suite}, {"title", s.title}, {"status", s.status}, {"reason", s.reason}};
    sj["targets"] = json::array();
    for (const auto& t : s.targets) sj["targets"].push_back(TargetJson(t));
    sj["checks"] = json::array();
    for (const auto& c : s.checks) sj["checks"].push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    sj["daemon_idle_rss_bytes"] = s.daemon_idle_rss_bytes ? json(*s.daemon_idle_rss_bytes) : json(nullptr);
    sj["cells"] = json::array();
    for (const auto& c : s.aggregate.cells) {
      json metrics = json::object();
      for (const auto& [m, sum] : c.metrics) metrics[m] = SummaryJson(sum);
      if (c.aggregate_tps.n > 0) metrics["aggregate_tps"] = SummaryJson(c.aggregate_tps);
      sj["cells"].push_back({{"workload", c.workload},
                             {"target", c.target},
                             {"concurrency", c.concurrency},
                             {"requests", c.requests},
                             {"errors", c.errors},
                             {"error_samples", c.error_samples},
                             {"noisy", c.noisy},
                             {"metrics", metrics}});
    }
    sj["comparisons"] = json::array();
    for (const auto& c : s.aggregate.comparisons) {
      sj["comparisons"].push_back({{"workload", c.workload},
                                   {"baseline", c.baseline},
                                   {"target", c.target},
                                   {"metric", c.metric},
                                   {"diff", IntervalJson(c.result.diff)},
                                   {"ratio", IntervalJson(c.result.ratio)},
                                   {"pairs", c.pairs},
                                   {"paired_ratio", IntervalJson(c.paired_ratio)},
                                   {"significant", c.result.significant}});
    }
    if (s.suite == "C") {
      sj["hop_summary"] = HopSummaryJson(s);
      sj["load"] = LoadJson(sj["hop_summary"], s);
      sj["nginx"] = s.nginx ? NginxJson(*s.nginx) : json(nullptr);
      sj["footprint"] = s.footprint ? FootprintJson(*s.footprint) : json(nullptr);
      sj["cold_start"] = s.cold_start ? ColdStartJson(*s.cold_start) : json(nullptr);
    }
    if (s.spec) sj["spec"] = SpecJson(s);
    if (s.swap) sj["swap"] = SwapJson(s);
    sj["requests"] = json::array();
    for (const auto& r : s.records) sj["requests"].push_back(RecordJson(r));
    j["suites"].push_back(std::move(sj));
  }
  return j;
}

std::string RenderMarkdown(const json& r) {
  std::string md;
  md += "# Corral bench report\n\n";
  const json& host = r.value("host", json::object());
  const json& prov = r.value("provenance", json::object());
  const json& opt = r.value("options", json::object());
  const json& build = r.value("build", json::object());
  md += "- Run: " + Str(r, "created_utc") + " to " + Str(r, "finished_utc") + " (schema " + Str(r, "schema_version") +
        ")\n";
  md += "- Command: `" + EscapeMd(JoinArgv(r.value("command", json::array()))) + "`\n";
  md += "- Host: " + EscapeMd(Str(host, "cpu_model")) + ", " + Str(host, "usable_cores") + "/" +
        Str(host, "logical_cores") + " cores, " + Fmt(Num(host, "ram_bytes") / (1024.0 * 1024 * 1024), 1) +
        " GiB RAM, GPU: " + EscapeMd(Str(host, "gpu")) + ", " + EscapeMd(Str(host, "kernel")) + ", load average " +
        Fmt(Num(host, "load_average_1m", -1), 2) + " at start\n";
  md += "- Corral " + Str(prov, "corral_version") + " built at commit " + Str(prov, "corral_commit") +
        " (source tree at run time: " + Str(prov, "corral_source_commit") + ")" + "; llama.cpp pinned commit " +
        Str(prov, "llama_cpp_pinned_commit") + "; llama-server " + EscapeMd(Str(prov, "llama_server_version")) + "\n";
  md += "- Build: " + Str(build, "description") + "\n";
  md += "- Method: " + Str(opt, "runs") + " runs after " + Str(opt, "warmup") + " warm-up runs per cell, " +
        Str(opt, "alternation") + "; " + Str(opt, "sampling") + "; mode " + Str(opt, "mode") +
        (opt.value("smoke", false) ? "; SMOKE RUN (harness check, not a measurement)" : "") + "\n";
  md += "- Cells show median ±IQR/2. A metric is flagged noisy when its coefficient of variation exceeds " +
        Fmt(Num(opt, "noisy_cv") * 100, 0) + " %.\n\n";
  if (!build.value("optimized", true)) {
    md += "> **WARNING: this run used a build without optimisation or with assertions on (" +
          Str(build, "description") + "). Its numbers are not representative.**\n\n";
  }
  if (Num(host, "load_average_1m", 0) > Num(host, "usable_cores", 1)) {
    md += "> **Note: the machine was busy when the run started (load average " + Fmt(Num(host, "load_average_1m"), 2) +
          " on " + Str(host, "usable_cores") +
          " cores). Absolute numbers are noisy; compare the alternated pairs.**\n\n";
  }
  md += "| workload | prompt file | prompt chars | max tokens | concurrency |\n|---|---|---|---|---|\n";
  for (const auto& w : r.value("workloads", json::array())) {
    std::string conc = Str(w, "concurrency");
    if (w.contains("levels") && w["levels"].is_array() && !w["levels"].empty()) conc = w["levels"].dump();
    md += "| " + Str(w, "name") + " | " + EscapeMd(Str(w, "prompt_file")) + " | " + Str(w, "prompt_chars") + " | " +
          Str(w, "max_tokens") + " | " + conc + " |\n";
  }
  md += "\n";
  for (const auto& s : r.value("suites", json::array())) {
    md += "## Suite " + Str(s, "suite") + " (" + Str(s, "title") + "): " + Str(s, "status") + "\n\n";
    if (!Str(s, "reason").empty()) md += "Reason: " + EscapeMd(Str(s, "reason")) + "\n\n";
    const json& targets = s.value("targets", json::array());
    if (!targets.empty()) {
      md += "| target | kind | url | mode | version | model SHA-256 | argv |\n|---|---|---|---|---|---|---|\n";
      for (const auto& t : targets) {
        std::string argv = JoinArgv(t.value("argv", json::array()));
        if (t.contains("child_argv")) argv += " → child: " + JoinArgv(t["child_argv"]);
        const std::string sha = Str(t, "model_sha256");
        md += "| " + EscapeMd(Str(t, "name")) + " | " + Str(t, "kind") + " | " + Str(t, "url") + " | " +
              Str(t, "mode") + " | " + EscapeMd(Str(t, "version")) + " | " + (sha.empty() ? "-" : sha.substr(0, 16)) +
              " | `" + EscapeMd(argv.empty() ? "(unknown)" : argv) + "` |\n";
      }
      md += "\n";
    }
    const json& checks = s.value("checks", json::array());
    if (!checks.empty()) {
      md += "| check | result | detail |\n|---|---|---|\n";
      for (const auto& c : checks) {
        md += "| " + EscapeMd(Str(c, "name")) + " | " + (c.value("ok", false) ? "PASS" : "FAIL") + " | " +
              EscapeMd(Str(c, "detail")) + " |\n";
      }
      md += "\n";
    }
    const json& cells = s.value("cells", json::array());
    if (!cells.empty()) {
      md +=
          "| workload | target | ok/n | decode tok/s | TTFT ms | TTFT p99 | ITL p50 ms | ITL p99 ms | e2e ms | "
          "prompt tok/s | server decode tok/s | aggregate tok/s | noisy |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
      for (const auto& c : cells) {
        const json& m = c.value("metrics", json::object());
        const int n = c.value("requests", 0), e = c.value("errors", 0);
        std::string noisy;
        for (const auto& x : c.value("noisy", json::array()))
          noisy += (noisy.empty() ? "" : ", ") + x.get<std::string>();
        md += "| " + Str(c, "workload") + " | " + EscapeMd(Str(c, "target")) + " | " + std::to_string(n - e) + "/" +
              std::to_string(n) + " | " + MedianCell(m, "decode_tps", 1) + " | " + MedianCell(m, "ttft_ms", 2) + " | " +
              Plain(m, "ttft_ms", "p99", 2) + " | " + Plain(m, "itl_p50_ms", "median", 3) + " | " +
              Plain(m, "itl_p99_ms", "median", 3) + " | " + MedianCell(m, "e2e_ms", 1) + " | " +
              Plain(m, "prompt_tps", "median", 0) + " | " + Plain(m, "server_decode_tps", "median", 1) + " | " +
              (Str(c, "concurrency") != "1" ? Plain(m, "aggregate_tps", "median", 1) : "-") + " | " +
              (noisy.empty() ? "" : "**" + noisy + "**") + " |\n";
        for (const auto& err : c.value("error_samples", json::array())) {
          md += "|  | ↳ error |  | " + EscapeMd(err.get<std::string>()) + " |||||||||\n";
        }
      }
      md += "\n";
    }
    const json& comps = s.value("comparisons", json::array());
    if (!comps.empty()) {
      md += "Differences, target − baseline (medians; bootstrap 95 % interval, " + Str(opt, "bootstrap_resamples") +
            " resamples; paired = median of per-pair ratios of requests sent back to back):\n\n"
            "| workload | metric | baseline | target | difference [95 % CI] | ratio [95 % CI] | "
            "interval excludes 0 | paired ratio [95 % CI] (pairs) |\n|---|---|---|---|---|---|---|---|\n";
      for (const auto& c : comps) {
        const json& d = c.value("diff", json::object());
        const json& q = c.value("ratio", json::object());
        const int dec = Str(c, "metric").find("tps") != std::string::npos ? 1 : 3;
        md += "| " + Str(c, "workload") + " | " + Str(c, "metric") + " | " + EscapeMd(Str(c, "baseline")) + " | " +
              EscapeMd(Str(c, "target")) + " | " + Fmt(Num(d, "estimate"), dec) + " [" + Fmt(Num(d, "lo"), dec) + ", " +
              Fmt(Num(d, "hi"), dec) + "] | " +
              (q.value("valid", false)
                   ? Fmt(Num(q, "estimate"), 4) + " [" + Fmt(Num(q, "lo"), 4) + ", " + Fmt(Num(q, "hi"), 4) + "]"
                   : "-") +
              " | " + (c.value("significant", false) ? "yes" : "no") + " | " + PairedCell(c) + " |\n";
      }
      md += "\n";
    }
    if (Str(s, "suite") == "C" && Str(s, "status") == "ran") md += RenderSuiteCParts(s);
    if (Str(s, "suite") == "S" && s.contains("spec")) md += RenderSuiteSParts(s);
    if (Str(s, "suite") == "W" && s.contains("swap") && s["swap"].is_object()) md += RenderSuiteWParts(s);
  }
  md += "Charts: decode_tps.svg, ttft_ms.svg. Raw per-request records: results.json.\n";
  return md;
}

std::string RenderSvgChart(const json& r, const std::string& metric, const std::string& title) {
  struct Bar {
    std::string target;
    double median, lo, hi;
    size_t color;
  };
  struct Group {
    std::string label;
    std::vector<Bar> bars;
  };
  std::vector<Group> groups;
  double max_value = 0;
  for (const auto& s : r.value("suites", json::array())) {
    std::vector<std::string> names;
    for (const auto& t : s.value("targets", json::array())) names.push_back(Str(t, "name"));
    for (const auto& c : s.value("cells", json::array())) {
      const json& m = c.value("metrics", json::object());
      if (!m.contains(metric)) continue;
      const std::string label = Str(s, "suite") + ": " + Str(c, "workload");
      if (groups.empty() || groups.back().label != label) groups.push_back({label, {}});
      const std::string target = Str(c, "target");
      const size_t color = static_cast<size_t>(std::find(names.begin(), names.end(), target) - names.begin());
      Bar b{target, Num(m[metric], "median"), Num(m[metric], "p10"), Num(m[metric], "p90"), color};
      max_value = std::max({max_value, b.median, b.hi});
      groups.back().bars.push_back(b);
    }
  }
  static const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"};
  constexpr int kBarWidth = 28, kBarGap = 6, kGroupGap = 30, kLeft = 70, kTop = 40, kPlotHeight = 260, kBottom = 110;
  int width = kLeft + 20;
  for (const auto& g : groups) width += static_cast<int>(g.bars.size()) * (kBarWidth + kBarGap) + kGroupGap;
  width = std::max(width, 360);
  const int height = kTop + kPlotHeight + kBottom;
  if (max_value <= 0) max_value = 1;
  auto y_of = [&](double v) { return kTop + kPlotHeight - v / max_value * kPlotHeight; };
  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
         "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<title>" + EscapeXml(title) + "</title>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + std::to_string(kLeft) + "\" y=\"20\" font-size=\"14\">" + EscapeXml(title) +
         " (median, whisker p10–p90)</text>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = max_value * i / 4;
    const std::string y = Fmt(y_of(v), 1);
    svg += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(width - 10) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + std::to_string(kLeft - 6) + "\" y=\"" + y + "\" text-anchor=\"end\">" +
           Fmt(v, v >= 100 ? 0 : 2) + "</text>\n";
  }
  if (groups.empty()) {
    svg += "<text x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kTop + kPlotHeight / 2) +
           "\">no data</text>\n";
  }
  int x = kLeft + 10;
  for (const auto& g : groups) {
    const int gx = x;
    for (const auto& b : g.bars) {
      const std::string color = kColors[b.color % (sizeof(kColors) / sizeof(kColors[0]))];
      const double top = y_of(b.median);
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + Fmt(top, 1) + "\" width=\"" + std::to_string(kBarWidth) +
             "\" height=\"" + Fmt(kTop + kPlotHeight - top, 1) + "\" fill=\"" + color + "\"><title>" +
             EscapeXml(b.target + ": " + Fmt(b.median, 3)) + "</title></rect>\n";
      const std::string cx = std::to_string(x + kBarWidth / 2);
      svg += "<line x1=\"" + cx + "\" x2=\"" + cx + "\" y1=\"" + Fmt(y_of(b.lo), 1) + "\" y2=\"" + Fmt(y_of(b.hi), 1) +
             "\" stroke=\"black\"/>\n";
      svg += "<text transform=\"translate(" + cx + "," + std::to_string(kTop + kPlotHeight + 8) + ") rotate(45)\">" +
             EscapeXml(b.target) + "</text>\n";
      x += kBarWidth + kBarGap;
    }
    svg += "<text x=\"" + std::to_string(gx) + "\" y=\"" + std::to_string(height - 10) + "\">" + EscapeXml(g.label) +
           "</text>\n";
    x += kGroupGap;
  }
  svg += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(width - 10) + "\" y1=\"" +
         std::to_string(kTop + kPlotHeight) + "\" y2=\"" + std::to_string(kTop + kPlotHeight) +
         "\" stroke=\"black\"/>\n";
  svg += "</svg>\n";
  return svg;
}

Status WriteReportFiles(const std::string& dir, const json& report) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(dir));
  CORRAL_RETURN_IF_ERROR(WriteFileAtomic(dir + "/results.json", report.dump(1) + "\n"));
  CORRAL_RETURN_IF_ERROR(WriteFileAtomic(dir + "/report.md", RenderMarkdown(report)));
  CORRAL_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/decode_tps.svg", RenderSvgChart(report, "decode_tps", "Decode tokens/s (client)")));
  CORRAL_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/ttft_ms.svg", RenderSvgChart(report, "ttft_ms", "Time to first token, ms")));
  return Status::Ok();
}

}  // namespace corral::bench
