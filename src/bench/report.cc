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
  if (r.has_server_timings) {
    j["server_timings"] = {{"prompt_n", r.server_prompt_n},
                           {"prompt_ms", r.server_prompt_ms},
                           {"predicted_n", r.server_predicted_n},
                           {"predicted_ms", r.server_predicted_ms}};
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

std::string EscapeMd(std::string s) {
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
