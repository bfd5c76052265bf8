#include "edge/host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/thread_annotations.h"
#include "common/url.h"
#include "edge/link.h"
#include "proxy/listen.h"

namespace corral::edge {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxQueuedDownBytes = 64U << 20;  // a proxy process that reads nothing is wedged
constexpr size_t kMaxInFlightKeys = 65536;         // distinct (model, upstream) pairs in flight
constexpr int kMaxMessagesPerRound = 512;          // fairness between reading and the rest
constexpr milliseconds kStableRun{10'000};         // a process that ran this long restarts at once
constexpr int kSocketBufferBytes = 1 << 20;

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return std::string("killed by SIG") + (name != nullptr ? name : std::to_string(WTERMSIG(status)).c_str());
  }
  return "status " + std::to_string(status);
}

// Answers from the router arrive on any thread, possibly after the host stopped: they go
// into this mailbox, shared (shared_ptr) by the host and every callback still in flight.
struct Mailbox {
  std::mutex mu;
  std::vector<std::tuple<uint64_t, uint64_t, proxy::EnsureResult>> answers;  // generation, id, result
  bool routes_changed = false;
  int wake_fd = -1;  // eventfd; closed by the last owner

  ~Mailbox() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void Wake() const {
    uint64_t one = 1;
    ssize_t w = ::write(wake_fd, &one, sizeof one);
    (void)w;
  }
};

}  // namespace

Result<int> BindListener(const std::string& listen, uint16_t* port) {
  auto hp = ParseHostPort(listen);
  if (!hp.ok()) return hp.status();
  sockaddr_storage ss{};
  const socklen_t len = ToSockaddr(*hp, &ss);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    int e = errno;
    ::close(fd);
    return Unavailable("cannot listen on " + listen + ": " + std::strerror(e));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  *port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return fd;
}

class ProxyHost::Impl {
 public:
  Impl(ProxyHostOptions options, proxy::ModelProvider& provider, proxy::RoutingTable& routes)
      : options_(std::move(options)), provider_(provider), routes_(routes), mailbox_(std::make_shared<Mailbox>()) {
    limits_ = {options_.proxy.max_body_bytes, options_.proxy.client_timeout, options_.proxy.upstream_timeout};
  }

  Status Start() {
    // Every listen address is bound here, in order (issue 13: several, each plain or TLS).
    CORRAL_ASSIGN_OR_RETURN(auto specs, proxy::ParseListenList(options_.proxy.listen));
    for (const auto& spec : specs) {
      uint16_t port = 0;
      auto fd = BindListener(spec.host_port, &port);
      if (!fd.ok()) {
        CloseListeners();
        return fd.status();
      }
      listen_fds_.push_back(*fd);
      ports_.push_back(port);
    }
    port_ = ports_.front();
    mailbox_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (mailbox_->wake_fd < 0) return ErrnoError("eventfd", errno);
    std::weak_ptr<Mailbox> weak = mailbox_;
    routes_.SetPublishHook([weak] {
      if (auto mb = weak.lock()) {
        {
          std::lock_guard<std::mutex> lock(mb->mu);
          mb->routes_changed = true;
        }
        mb->Wake();
      }
    });
    thread_ = std::thread([this] { Run(); });
    MutexLock lock(mu_);
    bool up = cv_.wait_for(lock.native(), options_.ready_timeout,
                           [this]() CORRAL_REQUIRES(mu_) { return ready_ || !start_error_.empty(); });
    if (up && ready_) return Status::Ok();
    std::string why = start_error_.empty()
                          ? "it did not answer within " + std::to_string(options_.ready_timeout.count()) + " ms"
                          : start_error_;
    lock.Unlock();
    Stop();
    return Unavailable("the proxy process did not start: " + why);
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      if (quit_ && !thread_.joinable()) return;
      quit_ = true;
    }
    if (mailbox_->wake_fd >= 0) mailbox_->Wake();
    if (thread_.joinable()) thread_.join();
    routes_.SetPublishHook(nullptr);
    CloseListeners();
  }

  void CloseListeners() {
    for (int fd : listen_fds_) ::close(fd);
    listen_fds_.clear();
  }

  void SetLimits(uint64_t max_body, milliseconds client, milliseconds upstream) {
    {
      MutexLock lock(mu_);
      limits_ = {max_body, client, upstream};
      limits_dirty_ = true;
    }
    mailbox_->Wake();
  }

  ProxyProcessInfo info() const {
    MutexLock lock(mu_);
    return info_;
  }

  uint16_t port() const { return port_; }
  std::vector<uint16_t> ports() const { return ports_; }

 private:
  struct Limits {
    uint64_t max_body;
    milliseconds client;
    milliseconds upstream;
  };

  bool Quitting() {
    MutexLock lock(mu_);
    return quit_;
  }

  // The host's thread: spawns, feeds, reaps and restarts the proxy process.
  void Run() {
    Spawn();
    auto next_models = Clock::now();
    while (!Quitting()) {
      pollfd fds[3] = {{mailbox_->wake_fd, POLLIN, 0}, {link_fd_, POLLIN, 0}, {pidfd_, POLLIN, 0}};
      if (link_fd_ >= 0 && !out_.empty()) fds[1].events |= POLLOUT;
      auto now = Clock::now();
      auto until = next_models;
      if (pid_ == 0) until = std::min(until, restart_at_);
      int timeout_ms = static_cast<int>(
          std::clamp<int64_t>(std::chrono::duration_cast<milliseconds>(until - now).count() + 1, 0, 1000));
      int n = ::poll(fds, 3, timeout_ms);
      if (n < 0 && errno != EINTR) {
        LogError("proxy host: poll: %s", std::strerror(errno));
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      if ((fds[0].revents & POLLIN) != 0) {
        uint64_t v = 0;
        ssize_t r = ::read(mailbox_->wake_fd, &v, sizeof v);
        (void)r;
      }
      if (link_fd_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadLink();
      if (pidfd_ >= 0 && (fds[2].revents & POLLIN) != 0) Reap();
      DeliverMail();
      if (Clock::now() >= next_models) {
        PushModels(/*force=*/false);
        next_models = Clock::now() + options_.models_refresh;
      }
      Flush();
      if (pid_ == 0 && Clock::now() >= restart_at_ && !Quitting()) Spawn();
    }
    Terminate();
  }

  void Spawn() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      return SpawnFailed(std::string("socketpair: ") + std::strerror(errno));
    }
    for (int fd : sv) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof kSocketBufferBytes);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof kSocketBufferBytes);
    }
    // Everything the child needs is computed before fork: after it, only async-signal-safe
    // calls until exec (the daemon is multi-threaded).
    std::string arg0 = "corral", arg1 = "__proxy-process";
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    const char* exe = options_.exe.c_str();
    const pid_t parent = ::getpid();
    // fd 3: the first listener, fd 4: the link, fds 5…: the other listeners (in order).
    const std::vector<int> listen_fds = listen_fds_;
    const int child_end = sv[1];
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      return SpawnFailed(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::setpgid(0, 0);  // terminal signals go to the keeper, which decides
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      // Out of the way first (above every target), then into place.
      int high[proxy::kMaxListenAddresses] = {};
      const size_t n = listen_fds.size();
      if (n == 0 || n > proxy::kMaxListenAddresses) ::_exit(126);  // Start() checked; never here
      for (size_t i = 0; i < n; ++i) {
        high[i] = ::fcntl(listen_fds[i], F_DUPFD, 32);
        if (high[i] < 0) ::_exit(126);
      }
      int b = ::fcntl(child_end, F_DUPFD, 32);
      if (b < 0 || ::dup2(high[0], 3) != 3 || ::dup2(b, 4) != 4) ::_exit(126);
      for (size_t i = 1; i < n; ++i) {
        int target = static_cast<int>(4 + i);
        if (::dup2(high[i], target) != target) ::_exit(126);
      }
      ::syscall(SYS_close_range, static_cast<unsigned>(4 + n), ~0U, 0U);
      ::execv(exe, argv);
      ::_exit(127);
    }
    ::close(sv[1]);
    int fl = ::fcntl(sv[0], F_GETFL);
    ::fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    link_fd_ = sv[0];
    pid_ = pid;
    pidfd_ = PidfdOpen(pid);
    ++generation_;
    spawned_at_ = Clock::now();
    assembler_ = FrameAssembler(kMaxUpMessageBytes);
    {
      MutexLock lock(mu_);
      if (info_.pid != 0 || generation_ > 1) ++info_.restarts;
      info_.pid = pid;
      limits_dirty_ = false;
    }
    proxy::ProxyOptions opts = options_.proxy;
    {
      MutexLock lock(mu_);
      opts.max_body_bytes = limits_.max_body;
      opts.client_timeout = limits_.client;
      opts.upstream_timeout = limits_.upstream;
    }
    Queue(EncodeOptions(opts));
    Queue(EncodeRoutes(*routes_.Load()));
    PushModels(/*force=*/true);
    Flush();
  }

  void SpawnFailed(const std::string& why) {
    LogError("proxy process: cannot start: %s", why.c_str());
    ScheduleRestart(/*stable=*/false);
    MutexLock lock(mu_);
    if (!ready_) start_error_ = why;
    cv_.notify_all();
  }

  void ScheduleRestart(bool stable) {
    delay_ = stable ? milliseconds(0) : std::clamp(delay_ * 2, options_.restart_min, options_.restart_max);
    restart_at_ = Clock::now() + delay_;
  }

  void ReadLink() {
    char buf[kMaxUpMessageBytes + 1];
    for (int i = 0; i < kMaxMessagesPerRound && link_fd_ >= 0; ++i) {
      ssize_t n = ::recv(link_fd_, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      if (n <= 0) return CloseLink("the proxy process closed its link");
      if (static_cast<size_t>(n) > sizeof buf) return Violation("an oversized frame");
      auto msg = assembler_.Add(std::string_view(buf, static_cast<size_t>(n)));
      if (!msg.ok()) return Violation(msg.status().message());
      if (!msg->has_value()) continue;
      auto up = ParseUp(**msg);
      if (!up.ok()) return Violation(up.status().message());
      Handle(*up);
    }
  }

  void Handle(const UpMessage& m) {
    switch (m.kind) {
      case UpKind::kReady: {
        MutexLock lock(mu_);
        ready_ = true;
        cv_.notify_all();
        return;
      }
      case UpKind::kEnsure: {
        std::weak_ptr<Mailbox> weak = mailbox_;
        const uint64_t gen = generation_, id = m.id;
        provider_.EnsureReady(m.model, Clock::now() + milliseconds(m.value),
                              [weak, gen, id](proxy::EnsureResult result) {
                                if (auto mb = weak.lock()) {
                                  {
                                    std::lock_guard<std::mutex> lock(mb->mu);
                                    mb->answers.emplace_back(gen, id, std::move(result));
                                  }
                                  mb->Wake();
                                }
                              });
        return;
      }
      case UpKind::kStart: {
        std::string key = InFlightKey(m);
        auto it = in_flight_.find(key);
        if (it == in_flight_.end()) {
          if (in_flight_.size() >= kMaxInFlightKeys) return Violation("too many requests in flight");
          it = in_flight_.emplace(key, InFlight{m.model, m.endpoint, 0}).first;
        }
        ++it->second.count;
        provider_.OnRequestStart(m.model, m.endpoint);
        return;
      }
      case UpKind::kEnd:
      case UpKind::kFinish: {
        auto it = in_flight_.find(InFlightKey(m));
        if (it == in_flight_.end()) return;  // an end without a start: ignored
        if (--it->second.count == 0) in_flight_.erase(it);
        if (m.kind == UpKind::kEnd) return provider_.OnRequestEnd(m.model, m.endpoint);
        const FinishFields& f = m.finish;
        proxy::RequestRecord r{f.route,       f.status,         f.ttft_us,      f.tokens,         f.tok_per_s_milli,
                               f.duration_us, f.proxy_added_us, f.draft_tokens, f.draft_accepted, f.client};
        provider_.OnRequestFinished(m.model, m.endpoint, r);
        return;
      }
      case UpKind::kKeepAlive: provider_.SetKeepAlive(m.model, std::chrono::seconds(m.value)); return;
    }
  }

  static std::string InFlightKey(const UpMessage& m) {
    return m.endpoint.host + " " + std::to_string(m.endpoint.port) + " " + m.model;
  }

  // The process broke the protocol: it is compromised or buggy; it is killed and restarted.
  void Violation(const std::string& what) {
    LogError("proxy process (pid %d) broke the link protocol (%s); killing it", pid_, what.c_str());
    CloseLink("");
  }

  void CloseLink(const std::string& why) {
    if (!why.empty() && !Quitting()) LogWarn("proxy process (pid %d): %s", pid_, why.c_str());
    if (link_fd_ >= 0) ::close(link_fd_);
    link_fd_ = -1;
    out_.clear();
    out_bytes_ = 0;
    if (pid_ > 0) ::kill(pid_, SIGKILL);  // reaped through its pidfd
  }

  void Reap() {
    int status = 0;
    pid_t w = ::waitpid(pid_, &status, WNOHANG);
    if (w != pid_) return;
    std::string how = DescribeExit(status);
    const bool stable = Clock::now() - spawned_at_ >= kStableRun;
    const int pid = pid_;
    ::close(pidfd_);
    pidfd_ = -1;
    pid_ = 0;
    if (link_fd_ >= 0) ::close(link_fd_);
    link_fd_ = -1;
    out_.clear();
    out_bytes_ = 0;
    // Its requests in flight are over: a dead process never leaves a model looking busy.
    for (auto& [key, f] : in_flight_) {
      for (int i = 0; i < f.count; ++i) provider_.OnRequestEnd(f.model, f.endpoint);
    }
    in_flight_.clear();
    bool quitting = Quitting();
    {
      MutexLock lock(mu_);
      info_.pid = 0;
      info_.last_exit = how;
      if (!ready_ && start_error_.empty()) start_error_ = how;
      cv_.notify_all();
    }
    if (quitting) return;
    ScheduleRestart(stable);
    LogError("proxy process (pid %d) died: %s; restarting it in %lld ms (models stay loaded)", pid, how.c_str(),
             static_cast<long long>(delay_.count()));
  }

  void DeliverMail() {
    std::vector<std::tuple<uint64_t, uint64_t, proxy::EnsureResult>> answers;
    bool routes_changed = false;
    {
      std::lock_guard<std::mutex> lock(mailbox_->mu);
      answers.swap(mailbox_->answers);
      routes_changed = std::exchange(mailbox_->routes_changed, false);
    }
    for (auto& [gen, id, result] : answers) {
      if (gen == generation_ && link_fd_ >= 0) Queue(EncodeAnswer(id, result));
    }
    if (routes_changed && link_fd_ >= 0) {
      Queue(EncodeRoutes(*routes_.Load()));
      PushModels(/*force=*/false);  // a state changed
    }
    std::optional<Limits> limits;
    {
      MutexLock lock(mu_);
      if (limits_dirty_) limits = limits_;
      limits_dirty_ = false;
    }
    if (limits && link_fd_ >= 0) Queue(EncodeLimits(limits->max_body, limits->client, limits->upstream));
  }

  void PushModels(bool force) {
    if (link_fd_ < 0) return;
    std::string models = EncodeModels(provider_.ListModels());
    if (!force && models == last_models_) return;
    last_models_ = models;
    Queue(models);
  }

  void Queue(const std::string& message) {
    for (auto& f : Frame(message)) {
      out_bytes_ += f.size();
      out_.push_back(std::move(f));
    }
    if (out_bytes_ > kMaxQueuedDownBytes) Violation("it stopped reading its link");
  }

  void Flush() {
    while (link_fd_ >= 0 && !out_.empty()) {
      ssize_t n = ::send(link_fd_, out_.front().data(), out_.front().size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      if (n < 0) return CloseLink(std::string("send: ") + std::strerror(errno));
      out_bytes_ -= out_.front().size();
      out_.pop_front();
    }
  }

  // Stop: SIGTERM (the process drains: refuses new work, closes connections), then SIGKILL.
  void Terminate() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + options_.stop_grace;
    while (pid_ > 0) {
      // Keep answering while it drains: its pending EnsureReady calls are answered by the
      // router's shutdown and must reach it for its workers to finish.
      DeliverMail();
      Flush();
      if (link_fd_ >= 0) ReadLinkDiscard();
      pollfd p{pidfd_, POLLIN, 0};
      ::poll(&p, 1, 20);
      Reap();
      if (pid_ > 0 && Clock::now() >= deadline) {
        LogWarn("proxy process (pid %d) did not stop within %lld ms; killing it", pid_,
                static_cast<long long>(options_.stop_grace.count()));
        ::kill(pid_, SIGKILL);
        ::poll(&p, 1, 1000);
        Reap();
        break;
      }
    }
  }

  // While stopping: in-flight accounting still applies (ends), new ensures do not matter.
  void ReadLinkDiscard() { ReadLink(); }

  struct InFlight {
    std::string model;
    proxy::Endpoint endpoint;
    int count = 0;
  };

  const ProxyHostOptions options_;
  proxy::ModelProvider& provider_;
  proxy::RoutingTable& routes_;
  // Shared with router callbacks that may outlive the host (see Mailbox).
  std::shared_ptr<Mailbox> mailbox_;
  std::vector<int> listen_fds_;  // one per listen entry, in order
  std::vector<uint16_t> ports_;
  uint16_t port_ = 0;
  std::thread thread_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool quit_ CORRAL_GUARDED_BY(mu_) = false;
  bool ready_ CORRAL_GUARDED_BY(mu_) = false;  // the first process said 'R'
  std::string start_error_ CORRAL_GUARDED_BY(mu_);
  Limits limits_ CORRAL_GUARDED_BY(mu_) = Limits{};
  bool limits_dirty_ CORRAL_GUARDED_BY(mu_) = false;
  ProxyProcessInfo info_ CORRAL_GUARDED_BY(mu_);

  // The host's thread only.
  pid_t pid_ = 0;
  int pidfd_ = -1;
  int link_fd_ = -1;
  uint64_t generation_ = 0;
  Clock::time_point spawned_at_{};
  Clock::time_point restart_at_{};
  milliseconds delay_{0};
  FrameAssembler assembler_{kMaxUpMessageBytes};
  std::deque<std::string> out_;
  size_t out_bytes_ = 0;
  std::map<std::string, InFlight> in_flight_;
  std::string last_models_;
};

ProxyHost::ProxyHost(ProxyHostOptions options, proxy::ModelProvider& provider, proxy::RoutingTable& routes)
    : impl_(std::make_unique<Impl>(std::move(options), provider, routes)) {}
ProxyHost::~ProxyHost() {
  Stop();
}
Status ProxyHost::Start() {
  return impl_->Start();
}
uint16_t ProxyHost::port() const {
  return impl_->port();
}
std::vector<uint16_t> ProxyHost::ports() const {
  return impl_->ports();
}
void ProxyHost::Stop() {
  impl_->Stop();
}
void ProxyHost::SetLimits(uint64_t max_body_bytes, milliseconds client_timeout, milliseconds upstream_timeout) {
  impl_->SetLimits(max_body_bytes, client_timeout, upstream_timeout);
}
ProxyProcessInfo ProxyHost::info() const {
  return impl_->info();
}

}  // namespace corral::edge
