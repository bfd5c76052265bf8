#include "daemon/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/thread_annotations.h"
#include "common/version.h"
#include "control/api.h"
#include "control/routes.h"
#include "control/transport.h"
#include "daemon/activity.h"
#include "daemon/bench_runs.h"
#include "daemon/config_watch.h"
#include "daemon/control_services.h"
#include "daemon/lan.h"
#include "daemon/models.h"
#include "daemon/proxy_options.h"
#include "daemon/reloader.h"
#include "daemon/router.h"
#include "daemon/state_file.h"
#include "edge/host.h"
#include "engine/engine.h"
#include "proxy/proxy.h"
#include "supervisor/supervisor.h"

extern char** environ;

namespace corral::daemon {
namespace {

using control::Request;

constexpr std::chrono::milliseconds kSpawnTimeout{15000};
constexpr std::chrono::milliseconds kLockWait{10000};
constexpr std::chrono::milliseconds kStateLockWait{2000};

// True when `pid` exists and is not a zombie (a killed child waits for init to reap it).
bool ProcessLives(int pid) {
  auto stat = ReadFileBounded("/proc/" + std::to_string(pid) + "/stat", 1 << 16);
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

// Job: build the daemon's parts in order, own them, and tear them down in one order.
// The control routes (control/routes.h) reach the parts through ControlServices; config
// reloads go through ConfigReloader; the supervisor's on_change logs transitions and writes
// the state file.
class Daemon {
 public:
  explicit Daemon(const config::Config& config) : config_(config), started_(std::chrono::system_clock::now()) {
    SetLogLevel(config.log_level);
  }
  // Also on an early return from Init: the same order as Finish.
  ~Daemon() { Teardown(); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Status Init() {
    const config::Config& config = config_;
    CORRAL_RETURN_IF_ERROR(ValidateDaemonConfig(config));
    auto total = supervisor::TotalMemoryBytes();
    ControlServices::Fixed fixed;
    fixed.started = started_;
    fixed.total_memory_bytes = total.ok() ? *total : 0;
    CORRAL_ASSIGN_OR_RETURN(const uint64_t budget, MemoryBudgetBytes(config, fixed.total_memory_bytes));
    auto engine = engine::Locate(config, /*query_version=*/false);
    if (engine.ok()) {
      fixed.llama_server = engine->llama_server;
      Log("llama-server: %s (%s)", fixed.llama_server.c_str(), engine->source.c_str());
    } else {
      fixed.engine_error = engine.status().message();
      LogWarn("%s; starts will fail until one is installed", fixed.engine_error.c_str());
    }
    fixed.notices = LoadPreviousState();

    supervisor::SupervisorOptions opts;
    opts.llama_server = fixed.llama_server;
    opts.log_dir = ModelLogDir();
    opts.liveness_timeout = std::chrono::seconds(config.liveness_timeout_s);
    opts.on_change = [this] { OnChange(); };
    supervisor_ = std::make_unique<supervisor::Supervisor>(opts);
    supervisor_->SetLimits(SupervisorLimitsFor(config, budget));  // before anything can start

    // The data plane: the proxy reads routes_ lock-free and asks the router (over the
    // supervisor) for models that are not ready.
    RouterOptions ropts;
    ropts.idle_ttl = std::chrono::seconds(config.model_ttl_s);
    router_ = std::make_unique<ModelRouter>(config, *supervisor_, routes_, ropts);
    for (const auto& w : router_->SettingsWarnings()) LogWarn("config: %s", w.c_str());
    // The event feed (GET /v1/events): child changes, finished requests, gauges.
    Activity::Sources sources;
    sources.children = [this] { return supervisor_->List(); };
    sources.budget_bytes = [this] { return supervisor_->memory_budget_bytes(); };
    sources.reserved_bytes = [this] { return supervisor_->reserved_bytes(); };
    sources.router = router_.get();
    activity_ = std::make_unique<Activity>(std::move(sources));
    notify_.store(true, std::memory_order_release);  // on_change may reach the router and the feed now
    // The web dashboard's Bench page: reports on disk and quick runs (daemon/bench_runs.h).
    BenchRunsOptions bopts;
    bopts.report_dirs = {StateDir() + "/bench"};
    if (!config.bench_results_dir.empty()) bopts.report_dirs.push_back(config.bench_results_dir);
    bopts.command = {"/proc/self/exe"};
    if (!config.config_file.empty() && ::access(config.config_file.c_str(), R_OK) == 0) {
      bopts.command.insert(bopts.command.end(), {"--config", config.config_file});
    }
    bopts.publish = [a = activity_.get()](std::string line) { a->Publish(std::move(line)); };
    bench_ = std::make_unique<BenchRuns>(std::move(bopts));
    router_->SetRequestObserver(
        [a = activity_.get()](const std::string& model, const std::string& child, const proxy::RequestRecord& r) {
          a->OnRequest(model, child, r);
        });
    CORRAL_RETURN_IF_ERROR(StartProxy(config, fixed));

    reloader_ = std::make_unique<ConfigReloader>(
        config, fixed.total_memory_bytes, budget,
        ConfigReloader::Parts{
            *supervisor_, *router_,
            [this](uint64_t body, std::chrono::milliseconds client, std::chrono::milliseconds upstream) {
              if (proxy_) proxy_->SetLimits(body, client, upstream);
              if (proxy_host_) proxy_host_->SetLimits(body, client, upstream);
            },
            shutting_down_});
    services_ = std::make_unique<ControlServices>(
        ControlServices::Parts{*supervisor_, *router_, *reloader_, *bench_, *activity_, proxy_host_.get(),
                               shutting_down_, [this] { RequestShutdown(); }},
        std::move(fixed));
    control_routes_ = std::make_unique<control::Routes>(*services_);
    SaveState();
    return Status::Ok();
  }

  // What the control server calls for each request (valid from Init to Finish).
  control::Response Handle(const Request& req) { return control_routes_->Handle(req); }
  ConfigReloader& reloader() { return *reloader_; }

  void Drain() {
    shutting_down_.store(true);
    // Answer parked requests first (the proxy's Stop waits for them), then stop taking
    // requests, then stop the children.
    if (router_) router_->Shutdown();
    if (bench_) bench_->Stop();         // a quick bench in progress: killed, its watcher joined
    if (activity_) activity_->Close();  // ends every feed stream, so the control server can join them
    if (proxy_) proxy_->Stop();
    if (proxy_host_) proxy_host_->Stop();
    auto live = supervisor_->List();
    Log("draining: stopping %zu model(s)", live.size());
    supervisor_->StopAll();
  }

  // After the control server stopped: everything goes, then the (empty) state is written.
  void Finish() {
    Teardown();
    SaveState();
  }

 private:
  // Starts the proxy (in its own process or in this one) and sets fixed.proxy_url.
  Status StartProxy(const config::Config& config, ControlServices::Fixed& fixed) {
    proxy::ProxyOptions popts = ProxyOptionsFor(config);
    popts.version = kCorralVersion;
    // POST /api/pull (issue 14): `corral pull --json` as a child of the proxy (in either
    // process); a finished pull asks POST /v1/catalog/refresh before it says "success".
    popts.pull_command = {"/proc/self/exe"};
    if (!config.config_file.empty() && ::access(config.config_file.c_str(), R_OK) == 0) {
      popts.pull_command.insert(popts.pull_command.end(), {"--config", config.config_file});
    }
    popts.pull_command.insert(popts.pull_command.end(), {"pull", "--json"});
    popts.control_socket = SocketPath();  // the web dashboard's bridge (issue 16, proxy/ui.h)
    std::vector<std::string> lan_notes;   // issue 13: open door, TLS, keys
    // The stock llama.cpp web UI under /llama/ (docs/proxy.md).
    auto llama_ui = engine::LlamaUiDir(config.llama_ui);
    if (!llama_ui.ok()) return llama_ui.status();
    popts.llama_ui_dir = *llama_ui;
    if (Status s = PrepareLan(config, popts, &lan_notes); !s.ok()) return s;
    for (const auto& note : lan_notes) {
      if (note.starts_with("WARNING")) {
        fixed.lan_warnings.push_back(note);  // shown by status (and the dashboards) too
        LogWarn("%s", note.c_str());
      } else {
        Log("%s", note.c_str());
      }
    }
    uint16_t port = 0;
    if (config.proxy_process) {
      // Crash isolation: the proxy parses every network byte in its own process, restarted
      // if it dies; the children, the router and the control plane stay here.
      edge::ProxyHostOptions hopts;
      hopts.exe = "/proc/self/exe";
      hopts.proxy = popts;
      proxy_host_ = std::make_unique<edge::ProxyHost>(hopts, *router_, routes_);
      if (Status s = proxy_host_->Start(); !s.ok()) {
        return s.WithContext("starting the proxy on " + config.listen + " (set --listen or CORRAL_LISTEN)");
      }
      port = proxy_host_->port();
    } else {
      proxy_ = std::make_unique<proxy::Proxy>(popts, *router_, routes_);
      if (Status s = proxy_->Start(); !s.ok()) {
        return s.WithContext("starting the proxy on " + config.listen + " (set --listen or CORRAL_LISTEN)");
      }
      port = proxy_->port();
    }
    fixed.proxy_url = FirstProxyUrl(config.listen, port);
    Log("proxy listening on %s (OpenAI: %s/v1)%s", fixed.proxy_url.c_str(), fixed.proxy_url.c_str(),
        proxy_host_ ? ", in its own process" : "");
    return Status::Ok();
  }

  void RequestShutdown() {
    shutting_down_.store(true);
    ::kill(::getpid(), SIGTERM);
  }

  // The one teardown order (Finish, and the destructor after a failed Init): the control
  // side first (it refers to every part), then the proxy (calls the router), then the
  // supervisor (its destructor joins the monitor thread, the only caller of on_change),
  // then the router, the bench runs (publish on the feed) and the feed.
  void Teardown() {
    notify_.store(false);  // an on_change still running finishes; none starts
    control_routes_.reset();
    services_.reset();
    reloader_.reset();
    if (router_) router_->Shutdown();
    if (activity_) activity_->Close();
    proxy_.reset();
    proxy_host_.reset();
    DestroySupervisor();
    router_.reset();
    bench_.reset();
    activity_.reset();
  }

  // supervisor_ keeps naming the supervisor while its destructor joins the monitor thread:
  // an on_change that was already running may still read it (unique_ptr::reset would null
  // the pointer before the destructor runs).
  void DestroySupervisor() {
    if (!supervisor_) return;
    supervisor_.get_deleter()(supervisor_.get());
    (void)supervisor_.release();
  }

  void OnChange() {
    if (!notify_.load(std::memory_order_acquire)) return;
    router_->OnSupervisorChange();
    const auto children = supervisor_->List();
    activity_->OnChildren(children);
    // Log transitions once, then persist.
    for (const auto& i : children) {
      MutexLock lock(mu_);
      auto& last = last_state_[i.name];
      if (last == i.state && last_gen_[i.name] != 0) continue;
      last_gen_[i.name] = i.generation;
      last = i.state;
      if (i.state == supervisor::ChildState::kReady) {
        Log("%s ready on http://127.0.0.1:%d after %.0f ms", i.name.c_str(), i.port, i.ready_ms);
      } else if (i.state == supervisor::ChildState::kFailed) {
        LogError("%s failed: %s", i.name.c_str(), i.failure.message.c_str());
      }
    }
    SaveState();
  }

  void SaveState() CORRAL_EXCLUDES(state_mu_) {
    StateFile state;
    state.daemon_pid = ::getpid();
    if (supervisor_) {
      for (const auto& i : supervisor_->List()) {
        if (supervisor::IsTerminal(i.state)) continue;
        state.models.push_back(
            {i.name, i.model, i.model_path, i.pid, i.port, std::string(supervisor::to_string(i.state)), i.argv});
      }
    }
    MutexLock lock(state_mu_);
    Status s = MakeDirs(StateDir(), 0700);
    if (s.ok()) s = WriteStateFile(StateFilePath(), state);
    if (!s.ok()) LogError("cannot write the state file: %s", s.message().c_str());
  }

  // Never fatal: a bad file is moved aside with a notice (state_file.h). Returns the notices.
  static std::vector<std::string> LoadPreviousState() {
    std::vector<std::string> notices;
    StateRead read = ReadStateFile(StateFilePath(), std::time(nullptr));
    if (!read.notice.empty()) {
      LogWarn("%s", read.notice.c_str());
      notices.push_back(read.notice);
    }
    if (!read.state) return notices;
    std::string names;
    for (const auto& m : read.state->models) {
      const bool alive = m.pid > 0 && ProcessLives(m.pid);
      names += (names.empty() ? "" : ", ") + (m.name.empty() ? std::string("?") : m.name) +
               (alive ? " (pid " + std::to_string(m.pid) + " still alive!)" : "");
    }
    if (!names.empty()) {
      std::string n = "the previous daemon (pid " + std::to_string(read.state->daemon_pid) +
                      ") ended without draining; its models went with it: " + names;
      Log("%s", n.c_str());
      notices.push_back(n);
    }
    return notices;
  }

  // Built by Init in this order; torn down by Teardown (the reverse, with the supervisor's
  // join before the router).
  const config::Config config_;  // the config at start; the running one is reloader_'s
  const std::chrono::system_clock::time_point started_;
  std::unique_ptr<supervisor::Supervisor> supervisor_;
  proxy::RoutingTable routes_;
  std::unique_ptr<ModelRouter> router_;
  std::unique_ptr<Activity> activity_;           // the event feed; outlives the proxy and the supervisor
  std::unique_ptr<BenchRuns> bench_;             // the Bench page's runs (killed at drain)
  std::unique_ptr<proxy::Proxy> proxy_;          // proxy_process: false
  std::unique_ptr<edge::ProxyHost> proxy_host_;  // proxy_process: true (the default)
  std::unique_ptr<ConfigReloader> reloader_;
  std::unique_ptr<ControlServices> services_;
  std::unique_ptr<control::Routes> control_routes_;
  // on_change (the monitor thread) reaches the router and the feed only while true: set once
  // they exist, cleared when the teardown begins.
  std::atomic<bool> notify_{false};
  std::atomic<bool> shutting_down_{false};
  Mutex mu_;
  std::map<std::string, supervisor::ChildState> last_state_ CORRAL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> last_gen_ CORRAL_GUARDED_BY(mu_);
  Mutex state_mu_;  // serialises state-file writes
};

}  // namespace

std::string SocketPath() {
  return RuntimeDir() + "/corral.sock";
}
std::string LockPath() {
  return RuntimeDir() + "/corral.lock";
}
std::string StateLockPath() {
  return StateDir() + "/corral.lock";
}
std::string StateFilePath() {
  return StateDir() + "/state.json";
}
std::string DaemonLogPath() {
  return StateDir() + "/daemon.log";
}
std::string ModelLogDir() {
  return StateDir() + "/logs";
}

Status Run(const config::Config& config) {
  CORRAL_RETURN_IF_ERROR(control::PrepareSocketDir(RuntimeDir()));
  int lock_fd = ::open(LockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return ErrnoError("open " + LockPath(), errno);
  // A daemon that was just SIGKILLed can hold the lock a little longer than it takes to
  // look dead (its threads are torn down after the leader turns zombie): while nobody
  // answers on the socket, wait for the lock instead of giving up at once.
  auto deadline = std::chrono::steady_clock::now() + kLockWait;
  auto delay = std::chrono::milliseconds(5);
  while (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    control::ControlClient probe(SocketPath());
    if (std::chrono::steady_clock::now() >= deadline || probe.Ping()) {
      ::close(lock_fd);
      return Status(StatusCode::kAlreadyExists, "a Corral daemon is already running (lock " + LockPath() + ")");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }

  // One daemon per state directory too: two daemons with different runtime dirs (another
  // XDG_RUNTIME_DIR) but one state dir would overwrite each other's state and logs.
  int state_lock_fd = -1;
  if (Status s = MakeDirs(StateDir(), 0700); !s.ok()) {
    ::close(lock_fd);
    return s;
  }
  state_lock_fd = ::open(StateLockPath().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (state_lock_fd < 0) {
    const int e = errno;
    ::close(lock_fd);
    return ErrnoError("open " + StateLockPath(), e);
  }
  // A daemon SIGKILLed a moment ago releases this lock with its runtime lock, but not at the
  // same instant: wait a little (kStateLockWait) before calling it another daemon's.
  const auto state_deadline = std::chrono::steady_clock::now() + kStateLockWait;
  delay = std::chrono::milliseconds(5);
  while (::flock(state_lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() >= state_deadline) {
      ::close(state_lock_fd);
      ::close(lock_fd);
      return Status(StatusCode::kAlreadyExists,
                    "another Corral daemon uses the state directory " + StateDir() + " (lock " + StateLockPath() + ")");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  auto release_locks = [&] {
    ::close(state_lock_fd);
    ::close(lock_fd);
  };

  // Signals: blocked in every thread (threads inherit the mask), taken here with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Daemon d(config);
  Status init = d.Init();
  if (!init.ok()) {
    release_locks();
    return init;
  }
  control::ControlServer server([&d](const Request& r) { return d.Handle(r); });
  Status listen = server.Listen(SocketPath());
  if (!listen.ok()) {
    release_locks();
    return listen;
  }
  // config.yaml changes on disk reload the config (as SIGHUP and `corral daemon reload` do).
  ConfigWatcher watcher(config.config_file, [&d] { d.reloader().Reload("file"); });
  if (Status w = watcher.Start(); w.ok()) {
    d.reloader().SetWatching(true);
  } else {
    LogWarn("not watching %s for changes (%s); reload with SIGHUP or `corral daemon reload`",
            config.config_file.c_str(), w.message().c_str());
  }
  server.Start();
  Log("daemon pid %d listening on %s", ::getpid(), SocketPath().c_str());

  int sig = 0;
  for (;;) {
    if (::sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    d.reloader().Reload("SIGHUP");  // hang-up: reload, as daemons do; never a stop
  }
  Log("%s: draining", sig == SIGINT ? "interrupt" : "terminate");
  watcher.Stop();
  d.Drain();
  server.Stop();
  d.Finish();
  release_locks();
  Log("stopped cleanly");
  return Status::Ok();
}

Status SpawnBackground(const std::string& exe, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(StateDir(), 0700));
  std::vector<std::string> argv_s = {exe, "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = DaemonLogPath();
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return ErrnoError("open " + log, errno);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the grandchild is adopted by init: no zombie, no tty
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (::chdir("/") != 0) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::close(log_fd);
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) return ErrnoError("fork", errno);
  int st = 0;
  ::waitpid(pid, &st, 0);

  // Wait for the socket to answer: a short doubling backoff, bounded by `timeout`.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(2);
  control::ControlClient client(SocketPath());
  while (std::chrono::steady_clock::now() < deadline) {
    if (client.Ping()) return Status::Ok();
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  auto tail = ReadFileBounded(log, 1 << 20);
  std::string last;
  if (tail.ok()) last = tail->size() > 2000 ? tail->substr(tail->size() - 2000) : *tail;
  return Unavailable("the background daemon did not come up within " + std::to_string(timeout.count()) +
                     " ms; its log " + log + " ends with:\n" + last);
}

Result<std::unique_ptr<control::ControlClient>> Connect(bool spawn, const std::vector<std::string>& serve_args) {
  auto client = std::make_unique<control::ControlClient>(SocketPath());
  if (client->Ping()) return client;
  if (!spawn)
    return Unavailable("no Corral daemon is running (socket " + SocketPath() + "); start one with `corral serve`");
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return ErrnoError("readlink /proc/self/exe", errno);
  exe[n] = '\0';
  CORRAL_RETURN_IF_ERROR(SpawnBackground(exe, serve_args, kSpawnTimeout));
  client = std::make_unique<control::ControlClient>(SocketPath());
  return client;
}

}  // namespace corral::daemon
