// Suite C's parts after the alternated requests: the daemon's footprint (idle keep-alive
// connections and RSS) and cold starts timed against llama-server's own readiness.
//
// Threading: each Measure* call runs on the caller's thread plus one helper thread it
// joins before returning (the RSS sampler, or the log watcher of one cold start). They
// share only the values named in the lambdas, published through atomics or the join.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "bench/client.h"
#include "bench/suites.h"
#include "bench/system.h"
#include "common/fs.h"
#include "common/interrupt.h"

namespace corral::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kConnectionTimeout = std::chrono::seconds(10);
constexpr auto kRssSampleInterval = std::chrono::milliseconds(2);
constexpr auto kLogPollInterval = std::chrono::milliseconds(2);
constexpr auto kHealthProbeInterval = std::chrono::milliseconds(1);
constexpr auto kHealthProbeTimeout = std::chrono::seconds(1);
constexpr auto kHealthWindow = std::chrono::seconds(30);       // after the listening line
constexpr auto kListeningGrace = std::chrono::seconds(2);      // after the stream ended
constexpr auto kColdStartTimeout = std::chrono::seconds(180);  // one cold request, load included
constexpr uint64_t kFdHeadroom = 64;                           // fds besides the connections
constexpr size_t kMaxLogScanBytes = 8 << 20;

uint64_t RssOrZero(pid_t pid) {
  auto r = ReadDaemonRssBytes(pid);
  return r.ok() ? *r : 0;
}

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// "Max open files  SOFT  HARD  files" from /proc/<pid>/limits; 0 when unreadable.
uint64_t ProcessNofileSoft(pid_t pid) {
  auto text = ReadProcFile(pid, "limits");
  if (!text.ok()) return 0;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") return UINT64_MAX;
    return soft.empty() ? 0 : std::strtoull(soft.c_str(), nullptr, 10);
  }
  return 0;
}

// Raises this process's soft RLIMIT_NOFILE towards `needed` (at most the hard limit).
void RaiseNofile(uint64_t needed, Footprint& f) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  f.nofile_soft_before = rl.rlim_cur;
  f.nofile_hard = rl.rlim_max;
  if (rl.rlim_cur < needed) {
    rlimit want = rl;
    want.rlim_cur = std::min<rlim_t>(rl.rlim_max, needed);
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  f.nofile_soft = rl.rlim_cur;
  if (rl.rlim_cur < needed) {
    f.nofile_note += "this bench process's RLIMIT_NOFILE (soft " + std::to_string(rl.rlim_cur) + ", hard " +
                     std::to_string(rl.rlim_max) + ") cannot hold " + std::to_string(needed) +
                     " descriptors; raise the hard limit (ulimit -Hn) to measure the full count. ";
  }
}

// What the watcher of one cold start saw, published by joining its thread.
struct ChildReadiness {
  bool saw_listening = false;
  Clock::time_point listening_at;
  bool healthy = false;
  Clock::time_point health_at;
  std::string error;
};

// Waits for a new "listening on http://HOST:PORT" line in `log_path` (a new file - the
// daemon rotates the log when it spawns - or bytes past `old_size` of the old one), stamps
// it, then probes /health on that address directly until it answers 200 and stamps that.
void WatchChildReadiness(const std::string& log_path, ino_t old_inode, off_t old_size,
                         const std::atomic<bool>& stream_done, ChildReadiness& out) {
  static const std::regex kListening(R"(listening on http://([0-9A-Za-z.\-\[\]:]+):(\d+))");
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in >= 0) {
    const std::string dir = std::filesystem::path(log_path).parent_path().string();
    (void)::inotify_add_watch(in, dir.c_str(), IN_CREATE | IN_MODIFY | IN_MOVED_TO | IN_CLOSE_WRITE);
  }
  const auto give_up = Clock::now() + kColdStartTimeout;
  std::optional<Clock::time_point> done_at;
  ino_t inode = 0;
  off_t offset = 0;
  std::string text;
  std::string host, port;
  char buf[16384];
  while (Clock::now() < give_up) {
    const int fd = ::open(log_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st {};
      if (::fstat(fd, &st) == 0 && st.st_ino != inode) {
        inode = st.st_ino;
        offset = inode == old_inode ? old_size : 0;
        text.clear();
      }
      ssize_t n;
      while (text.size() < kMaxLogScanBytes && (n = ::pread(fd, buf, sizeof(buf), offset)) > 0) {
        text.append(buf, static_cast<size_t>(n));
        offset += n;
      }
      ::close(fd);
      std::smatch m;
      if (std::regex_search(text, m, kListening)) {
        out.saw_listening = true;
        out.listening_at = Clock::now();
        host = m[1];
        port = m[2];
        break;
      }
    }
    if (stream_done.load(std::memory_order_acquire)) {
      if (!done_at) done_at = Clock::now();
      if (Clock::now() - *done_at > kListeningGrace) break;
    }
    if (in >= 0) {
      pollfd p{in, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kLogPollInterval.count())) > 0) {
        while (::read(in, buf, sizeof(buf)) > 0) {
        }
      }
    } else {
      std::this_thread::sleep_for(kLogPollInterval);
    }
  }
  if (in >= 0) ::close(in);
  if (!out.saw_listening) {
    out.error = "no 'listening on' line appeared in " + log_path;
    return;
  }
  if (host == "0.0.0.0") host = "127.0.0.1";
  const Endpoint child{host, port, ""};
  const auto deadline = out.listening_at + kHealthWindow;
  while (Clock::now() < deadline) {
    auto r = HttpRequest(child, "/health", "", kHealthProbeTimeout);
    if (r.ok() && r->status == 200) {
      out.healthy = true;
      out.health_at = Clock::now();
      return;
    }
    std::this_thread::sleep_for(kHealthProbeInterval);
  }
  out.error = "the child at " + host + ":" + port + " answered no /health 200";
}

Summary SummaryOf(const std::vector<ColdStartRun>& runs, double ColdStartRun::*field) {
  std::vector<double> v;
  for (const auto& r : runs) {
    if (r.ok && std::isfinite(r.*field)) v.push_back(r.*field);
  }
  return Summarize(std::move(v));
}

// "0.00.757.181 I srv ..." -> 757.181 ms; NaN when the line has no stamp.
double LogStampMs(const std::string& line) {
  unsigned minutes = 0, seconds = 0, millis = 0, micros = 0;
  if (std::sscanf(line.c_str(), "%u.%2u.%3u.%3u ", &minutes, &seconds, &millis, &micros) != 4) {
    return ColdStartRun::kNotSeen;
  }
  return minutes * 60000.0 + seconds * 1000.0 + millis + micros / 1000.0;
}

}  // namespace

double ChildListeningToFirstTaskMs(const std::string& log_text) {
  std::istringstream in(log_text);
  std::string line;
  double listening = ColdStartRun::kNotSeen;
  while (std::getline(in, line)) {
    if (std::isnan(listening)) {
      if (line.find("listening on http://") != std::string::npos) listening = LogStampMs(line);
    } else if (line.find("launch_slot_") != std::string::npos) {
      return LogStampMs(line) - listening;
    }
  }
  return ColdStartRun::kNotSeen;
}

Footprint MeasureFootprint(const HopEndpoints& hop, const SuiteCOptions& c, const Workload& workload,
                           const RunOptions& options, const Progress& progress) {
  Footprint f;
  f.requested = c.idle_connections;
  f.daemon_pid = hop.daemon_pid;
  f.streams = c.footprint_streams;
  f.idle_hold_s = c.idle_hold_s;
  if (c.idle_connections <= 0) {
    f.status = "skipped";
    f.reason = "--idle-connections 0";
    return f;
  }
  if (hop.daemon_pid <= 0) {
    f.status = "skipped";
    f.reason = "needs the daemon the bench started the model through (not run with --direct-url/--proxy-url)";
    return f;
  }
  auto ep = ParseHttpUrl(hop.proxied.url);
  if (!ep.ok()) {
    f.status = "failed";
    f.reason = ep.status().message();
    return f;
  }
  const uint64_t needed =
      static_cast<uint64_t>(c.idle_connections) + static_cast<uint64_t>(c.footprint_streams) + kFdHeadroom;
  RaiseNofile(needed, f);
  // The proxy's descriptors live in its own process when it has one.
  const pid_t proxy_pid = ProxyProcessPid(hop.daemon_pid);
  f.daemon_nofile_soft = ProcessNofileSoft(proxy_pid > 0 ? proxy_pid : hop.daemon_pid);
  if (f.daemon_nofile_soft != 0 && f.daemon_nofile_soft < needed) {
    f.nofile_note += "the daemon's RLIMIT_NOFILE soft limit (" + std::to_string(f.daemon_nofile_soft) +
                     ") cannot hold " + std::to_string(needed) + " descriptors. ";
  }
  auto rss = ReadDaemonRssBytes(hop.daemon_pid);
  if (!rss.ok()) {
    f.status = "failed";
    f.reason = "reading the daemon's VmRSS: " + rss.status().message();
    return f;
  }
  f.rss_idle_before = *rss;

  if (progress) progress("footprint: opening " + std::to_string(c.idle_connections) + " idle keep-alive connections");
  IdleConnections idle;
  f.opened = idle.Open(*ep, "/health", c.idle_connections, kConnectionTimeout);
  f.connection_error = idle.error();
  const auto hold_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(std::max(0.0, c.idle_hold_s)));
  while (Clock::now() < hold_until && !Interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f.rss_with_idle = RssOrZero(hop.daemon_pid);

  if (c.footprint_streams > 0) {
    if (progress) progress("footprint: " + std::to_string(c.footprint_streams) + " concurrent streams, sampling RSS");
    std::atomic<bool> stop{false};
    uint64_t peak = f.rss_with_idle;
    int samples = 0;
    std::thread sampler([&stop, &peak, &samples, pid = hop.daemon_pid] {
      while (!stop.load(std::memory_order_acquire)) {
        if (auto r = ReadDaemonRssBytes(pid); r.ok()) peak = std::max(peak, *r);
        ++samples;
        std::this_thread::sleep_for(kRssSampleInterval);
      }
    });
    std::vector<StreamRequest> requests(
        static_cast<size_t>(c.footprint_streams),
        StreamRequest{"/v1/chat/completions", ChatBody(workload, hop.proxied, options.seed)});
    const std::vector<StreamTrace> traces = RunStreams(*ep, requests, options.request_timeout);
    stop.store(true, std::memory_order_release);
    sampler.join();
    f.rss_peak_streams = peak;
    f.rss_samples = samples;
    for (const auto& t : traces) {
      RequestRecord r;
      FinishRecord(t, workload.max_tokens, r);
      if (!r.ok) {
        ++f.stream_errors;
        if (f.stream_error_sample.empty()) f.stream_error_sample = r.error;
      }
    }
    f.rss_after_streams = RssOrZero(hop.daemon_pid);
    f.per_stream_bytes = (static_cast<double>(f.rss_peak_streams) - static_cast<double>(f.rss_with_idle)) /
                         static_cast<double>(c.footprint_streams);
  }
  f.open_at_end = idle.CountOpen();
  f.answered_again = idle.RequestAgain("/health", kConnectionTimeout);
  if (f.connection_error.empty()) f.connection_error = idle.error();
  idle.CloseAll();
  if (f.opened > 0) {
    f.per_idle_connection_bytes =
        (static_cast<double>(f.rss_with_idle) - static_cast<double>(f.rss_idle_before)) / static_cast<double>(f.opened);
  }
  f.status = "ran";
  return f;
}

ColdStart MeasureColdStart(const HopEndpoints& hop, const SuiteCOptions& c, const Workload& workload,
                           const RunOptions& options, const Progress& progress) {
  ColdStart cs;
  cs.repetitions = c.cold_starts;
  cs.model_ref = hop.cold_start_model;
  cs.log_path = hop.child_log_path;
  if (c.cold_starts <= 0) {
    cs.status = "skipped";
    cs.reason = "--cold-starts 0";
    return cs;
  }
  if (!hop.cold_start_skip.empty()) {
    cs.status = "skipped";
    cs.reason = hop.cold_start_skip;
    return cs;
  }
  if (!hop.stop_model || hop.child_log_path.empty() || hop.cold_start_model.empty()) {
    cs.status = "skipped";
    cs.reason = "needs the daemon the bench started the model through (not run with --direct-url/--proxy-url)";
    return cs;
  }
  auto ep = ParseHttpUrl(hop.proxied.url);
  if (!ep.ok()) {
    cs.status = "failed";
    cs.reason = ep.status().message();
    return cs;
  }
  if (hop.model_was_running) {
    cs.note =
        "the model was already running before the bench; the cold starts stopped it, and the last one left it "
        "running as the proxy started it on demand (the daemon's configured settings)";
  }
  Target target = hop.proxied;
  target.model = hop.cold_start_model;
  const std::vector<StreamRequest> request = {{"/v1/chat/completions", ChatBody(workload, target, options.seed)}};
  for (int i = 0; i < c.cold_starts && !Interrupted(); ++i) {
    ColdStartRun run;
    Status stopped = hop.stop_model();
    if (!stopped.ok()) {
      run.error = "stopping the model: " + stopped.message();
      cs.runs.push_back(std::move(run));
      break;
    }
    struct stat st {};
    const bool had_log = ::stat(hop.child_log_path.c_str(), &st) == 0;
    const ino_t old_inode = had_log ? st.st_ino : 0;
    const off_t old_size = had_log ? st.st_size : 0;
    std::atomic<bool> stream_done{false};
    ChildReadiness ready;
    std::thread watcher([&] { WatchChildReadiness(hop.child_log_path, old_inode, old_size, stream_done, ready); });
    const std::vector<StreamTrace> traces = RunStreams(*ep, request, kColdStartTimeout);
    stream_done.store(true, std::memory_order_release);
    watcher.join();
    const StreamTrace& t = traces.front();
    RequestRecord rec;
    FinishRecord(t, workload.max_tokens, rec);
    if (!rec.ok) {
      run.error = rec.error;
    } else if (!ready.saw_listening || !ready.healthy) {
      run.error = ready.error;
    }
    if (!t.content_ms.empty()) {
      const auto first_token = t.sent_at + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double, std::milli>(t.content_ms.front()));
      run.send_to_first_token_ms = t.content_ms.front();
      if (ready.saw_listening) {
        run.send_to_listening_ms = MsBetween(t.sent_at, ready.listening_at);
        run.listening_to_first_token_ms = MsBetween(ready.listening_at, first_token);
      }
      if (ready.healthy) {
        run.listening_to_health_ms = MsBetween(ready.listening_at, ready.health_at);
        run.health_to_first_token_ms = MsBetween(ready.health_at, first_token);
      }
      if (t.has_timings) {
        run.server_prompt_ms = t.prompt_ms;
        run.listening_to_first_token_less_prompt_ms = run.listening_to_first_token_ms - t.prompt_ms;
      }
    }
    // The child's own log, from where this start began (a new file, or the old one's end).
    if (auto text = ReadFileBounded(hop.child_log_path, kMaxLogScanBytes); text.ok()) {
      struct stat now {};
      const bool same_file = ::stat(hop.child_log_path.c_str(), &now) == 0 && had_log && now.st_ino == old_inode;
      const size_t from = same_file ? std::min(text->size(), static_cast<size_t>(old_size)) : 0;
      run.child_log_listening_to_task_ms = ChildListeningToFirstTaskMs(text->substr(from));
    }
    run.ok = run.error.empty();
    if (progress) {
      progress("cold start " + std::to_string(i + 1) + "/" + std::to_string(c.cold_starts) + ": " +
               (run.ok
                    ? "first token " + std::to_string(run.listening_to_first_token_ms) + " ms after the listening line"
                    : run.error));
    }
    cs.runs.push_back(std::move(run));
  }
  cs.send_to_first_token_ms = SummaryOf(cs.runs, &ColdStartRun::send_to_first_token_ms);
  cs.listening_to_first_token_ms = SummaryOf(cs.runs, &ColdStartRun::listening_to_first_token_ms);
  cs.health_to_first_token_ms = SummaryOf(cs.runs, &ColdStartRun::health_to_first_token_ms);
  cs.listening_to_health_ms = SummaryOf(cs.runs, &ColdStartRun::listening_to_health_ms);
  cs.listening_to_first_token_less_prompt_ms =
      SummaryOf(cs.runs, &ColdStartRun::listening_to_first_token_less_prompt_ms);
  cs.child_log_listening_to_task_ms = SummaryOf(cs.runs, &ColdStartRun::child_log_listening_to_task_ms);
  const bool any_ok = std::any_of(cs.runs.begin(), cs.runs.end(), [](const ColdStartRun& r) { return r.ok; });
  cs.status = any_ok ? "ran" : "failed";
  if (!any_ok) cs.reason = cs.runs.empty() ? "interrupted" : cs.runs.back().error;
  return cs;
}

}  // namespace corral::bench
