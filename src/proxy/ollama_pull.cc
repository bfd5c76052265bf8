#include "proxy/ollama_pull.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <system_error>
#include <utility>

#include "pull/ollama_progress.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, for posix_spawn

namespace corral::proxy {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxRefBytes = 1024;
constexpr auto kStopGrace = std::chrono::seconds(5);

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

Result<OllamaPullRequest> ParseOllamaPullRequest(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("the request body must be a JSON object");
  OllamaPullRequest out;
  auto model = j.find("model");
  if (model == j.end() || (model->is_string() && model->get_ref<const std::string&>().empty())) model = j.find("name");
  if (model == j.end()) return InvalidArgument("missing \"model\" (e.g. \"hf.co/owner/repo:Q4_K_M\")");
  if (!model->is_string()) return InvalidArgument("\"model\" must be a string");
  out.model = model->get<std::string>();
  if (out.model.empty()) return InvalidArgument("missing \"model\" (e.g. \"hf.co/owner/repo:Q4_K_M\")");
  if (out.model.size() > kMaxRefBytes) {
    return InvalidArgument("\"model\" is longer than " + std::to_string(kMaxRefBytes) + " bytes");
  }
  if (HasControl(out.model)) return InvalidArgument("\"model\" contains control characters");
  if (out.model.front() == '-') return InvalidArgument("\"model\" must not start with '-'");
  if (auto stream = j.find("stream"); stream != j.end()) {
    if (!stream->is_boolean()) return InvalidArgument("\"stream\" must be true or false");
    out.stream = stream->get<bool>();
  }
  return out;
}

int PullErrorStatus(const PullOutcome& outcome) {
  const std::string& c = outcome.code;
  if (c == "not found") return 404;
  if (c == "invalid argument") return 400;
  if (c == "failed precondition" && (outcome.message.find("access denied") != std::string::npos ||
                                     outcome.message.find("token") != std::string::npos)) {
    return 403;
  }
  if (c == "resource exhausted" && outcome.message.find("disk") != std::string::npos) return 507;
  return 500;
}

// One pull: its child and the thread reading it.
class PullJobs::Job {
 public:
  pid_t pid = -1;
  std::thread thread;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> finished{false};
  // Held around reaping and signalling, so a signal never reaches a reused pid.
  Mutex mu;
  bool reaped CORRAL_GUARDED_BY(mu) = false;

  void Signal(int sig) {
    MutexLock lock(mu);
    if (!reaped && pid > 0) ::kill(-pid, sig);
  }
};

namespace {

// The child's stdout, line by line, into Ollama's NDJSON. Runs on the job's thread.
void RunJob(PullJobs::Job& job, int fd, const PullJobs::Callbacks& cb, const std::function<void()>& on_models_changed) {
  PullOutcome out;
  std::string line, held;
  bool skipping = false, saw_success = false;
  auto handle = [&](const std::string& l) {
    json j = json::parse(l, nullptr, /*allow_exceptions=*/false);
    const std::string event = j.is_object() ? j.value("event", std::string()) : std::string();
    if (event == "error") {  // answered by on_done (a line when streaming, a status otherwise)
      out.code = j.value("code", std::string());
      out.message = j.value("message", std::string());
      return;
    }
    std::string lines = pull::OllamaPullLines(l);
    if (event == "success") {  // held until the catalog has seen the model
      saw_success = true;
      held += lines;
      return;
    }
    if (!lines.empty() && cb.on_lines) cb.on_lines(std::move(lines));
  };
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        if (!skipping) line += buf[i];
        if (line.size() > pull::kMaxPullLineBytes) {  // a line this long is not ours: dropped
          skipping = true;
          line.clear();
        }
        continue;
      }
      if (!skipping && !line.empty()) handle(line);
      line.clear();
      skipping = false;
    }
  }
  ::close(fd);
  // Wait for the exit without reaping (the pid stays ours), then reap under the job's lock.
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(job.pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  int status = 0;
  {
    MutexLock lock(job.mu);
    while (::waitpid(job.pid, &status, 0) < 0 && errno == EINTR) {
    }
    job.reaped = true;
  }
  const bool exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (job.cancelled.load()) {
    out = PullOutcome{};
    out.cancelled = true;
    out.message = "the pull was cancelled; the partial download is kept: pull again to resume";
  } else if (exited_ok && saw_success) {
    if (on_models_changed) on_models_changed();
    if (!held.empty() && cb.on_lines) cb.on_lines(std::move(held));
    out = PullOutcome{};
    out.ok = true;
  } else if (out.message.empty()) {
    out.message = WIFEXITED(status) ? "corral pull failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")"
                                    : "corral pull was killed by signal " + std::to_string(WTERMSIG(status));
  }
  if (cb.on_done) cb.on_done(out);
  job.finished.store(true);
}

}  // namespace

PullJobs::PullJobs(std::vector<std::string> command, size_t max_jobs, std::function<void()> on_models_changed)
    : command_(std::move(command)), max_jobs_(max_jobs), on_models_changed_(std::move(on_models_changed)) {}

PullJobs::~PullJobs() {
  StopAll();
}

void PullJobs::ReapLocked() {
  std::erase_if(jobs_, [](const std::shared_ptr<Job>& j) {
    if (!j->finished.load()) return false;
    if (j->thread.joinable()) j->thread.join();  // it has called on_done: returning now
    return true;
  });
}

size_t PullJobs::running() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& j : jobs_) n += j->finished.load() ? 0 : 1;
  return n;
}

std::shared_ptr<PullJobs::Job> PullJobs::Start(const std::string& ref, Callbacks callbacks, Status* why) {
  MutexLock lock(mu_);
  ReapLocked();
  if (jobs_.size() >= max_jobs_) {
    *why =
        Status(StatusCode::kResourceExhausted, std::to_string(jobs_.size()) + " pulls are running already (at most " +
                                                   std::to_string(max_jobs_) + " at once); try again when one is done");
    return nullptr;
  }
  if (command_.empty() || stopped_) {
    *why = Unavailable("pulling is not available on this proxy");
    return nullptr;
  }
  std::vector<std::string> args = command_;
  args.emplace_back("--");
  args.push_back(ref);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    *why = Unavailable(std::string("pull: pipe: ") + std::strerror(errno));
    return nullptr;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no listening socket or client connection leaks
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own group (Cancel signals it whole), default signal handling and an empty mask (the
  // daemon blocks SIGINT in its threads; the pull must see it to stop).
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    *why = Unavailable("pull: starting " + args[0] + ": " + std::strerror(rc));
    return nullptr;
  }
  auto job = std::make_shared<Job>();
  job->pid = pid;
  job->thread = std::thread(
      [j = job.get(), fd = fds[0], cb = std::move(callbacks), this] { RunJob(*j, fd, cb, on_models_changed_); });
  jobs_.push_back(job);
  return job;
}

void PullJobs::Cancel(Job& job) {
  job.cancelled.store(true);
  job.Signal(SIGINT);
}

void PullJobs::StopAll() {
  std::vector<std::shared_ptr<Job>> jobs;
  {
    MutexLock lock(mu_);
    stopped_ = true;
    jobs.swap(jobs_);
  }
  for (auto& j : jobs) Cancel(*j);
  auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  for (auto& j : jobs) {
    while (!j->finished.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!j->finished.load()) j->Signal(SIGKILL);
  }
  for (auto& j : jobs) {
    // join() throws only for a thread that is not joinable or is this one; neither can be
    // here, but StopAll runs from destructors (~Proxy), which must not throw.
    try {
      if (j->thread.joinable()) j->thread.join();
    } catch (const std::system_error&) {  // NOLINT(bugprone-empty-catch): nothing left to do
    }
  }
}

}  // namespace corral::proxy
