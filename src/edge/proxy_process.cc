#include "edge/proxy_process.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/log.h"
#include "proxy/listen.h"
#include "proxy/proxy.h"

namespace corral::edge {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kSendWait{1000};  // a keeper this slow to read is wedged
constexpr std::chrono::milliseconds kOptionsWait{10'000};

proxy::EnsureError Refused(const std::string& why) {
  proxy::EnsureError e;
  e.code = proxy::EnsureErrorCode::kUnavailable;
  e.message = why;
  e.retry_after_s = 1;
  return e;
}

// Reads one whole down message, waiting at most `wait` (the first message: options).
Result<std::string> ReadMessage(int fd, FrameAssembler& assembler, std::chrono::milliseconds wait) {
  std::vector<char> buf(kMaxFramePayload + 1);
  auto deadline = Clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) return Unavailable("no message from the keeper");
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status(StatusCode::kUnavailable, "the keeper closed the link");
    if (static_cast<size_t>(n) > buf.size()) return InvalidArgument("oversized frame from the keeper");
    auto msg = assembler.Add(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!msg.ok()) return msg.status();
    if (msg->has_value()) return std::move(**msg);
  }
}

}  // namespace

RemoteProvider::RemoteProvider(int link_fd, proxy::RoutingTable& routes, LimitsHook on_limits)
    : fd_(link_fd), routes_(routes), on_limits_(std::move(on_limits)) {}

RemoteProvider::~RemoteProvider() {
  Close();
}

Status RemoteProvider::Prime(std::chrono::milliseconds wait) {
  FrameAssembler assembler(kMaxDownMessageBytes);
  bool routes = false, models = false;
  const auto deadline = Clock::now() + wait;
  while (!routes || !models) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Unavailable("no routes and model list from the keeper");
    auto msg = ReadMessage(fd_, assembler, left);
    if (!msg.ok()) return msg.status();
    auto d = ParseDown(*msg);
    if (!d.ok()) return d.status();
    routes = routes || d->type == DownMessage::Type::kRoutes;
    models = models || d->type == DownMessage::Type::kModels;
    Apply(*d);
  }
  return Status::Ok();
}

void RemoteProvider::Start(std::function<void()> on_lost) {
  on_lost_ = std::move(on_lost);
  reader_ = std::thread([this] { ReadLoop(); });
}

void RemoteProvider::SendReady() {
  Send(UpMessage{UpKind::kReady, 0, 0, {}, {}});
}

void RemoteProvider::BeginClose() {
  closing_.store(true);
  FailPending("the proxy is shutting down");
}

void RemoteProvider::Close() {
  BeginClose();
  ::shutdown(fd_, SHUT_RDWR);  // wakes the reader
  if (reader_.joinable()) reader_.join();
}

bool RemoteProvider::Send(const UpMessage& m) {
  std::string frame = Frame(EncodeUp(m)).front();  // up messages are one frame (kMaxUpMessageBytes)
  auto deadline = Clock::now() + kSendWait;
  for (;;) {
    ssize_t n = ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    // The keeper reads promptly; a full buffer means it is busy for a moment. Bounded wait.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd_, POLLOUT, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
  }
}

std::vector<proxy::ModelInfo> RemoteProvider::ListModels() const {
  MutexLock lock(mu_);
  return models_;
}

void RemoteProvider::EnsureReady(const std::string& model, Clock::time_point deadline,
                                 std::function<void(proxy::EnsureResult)> done) {
  if (closing_.load()) return done(Refused("the proxy is shutting down"));
  if (!IsCleanModelName(model)) {
    proxy::EnsureError e;
    e.message = "invalid model name";
    return done(e);
  }
  const uint64_t id = next_id_.fetch_add(1);
  {
    MutexLock lock(mu_);
    pending_.emplace(id, std::move(done));
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  UpMessage m{UpKind::kEnsure, id, std::clamp<int64_t>(ms, 0, 86'400'000), {}, model};
  if (Send(m) && !closing_.load()) return;
  std::function<void(proxy::EnsureResult)> back;
  {
    MutexLock lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // answered meanwhile
    back = std::move(it->second);
    pending_.erase(it);
  }
  back(Refused("the daemon is not reachable from the proxy"));
}

void RemoteProvider::OnRequestStart(const std::string& model, const proxy::Endpoint& upstream) {
  if (IsCleanModelName(model)) Send(UpMessage{UpKind::kStart, 0, 0, upstream, model});
}

void RemoteProvider::OnRequestEnd(const std::string& model, const proxy::Endpoint& upstream) {
  if (IsCleanModelName(model)) Send(UpMessage{UpKind::kEnd, 0, 0, upstream, model});
}

void RemoteProvider::OnRequestFinished(const std::string& model, const proxy::Endpoint& upstream,
                                       const proxy::RequestRecord& r) {
  if (!IsCleanModelName(model)) return;
  UpMessage m{UpKind::kFinish, 0, 0, upstream, model};
  m.finish = FinishFields{CleanRoute(r.route), std::clamp(r.status, 0, 999),        r.ttft_us,       r.tokens,
                          r.tok_per_s_milli,   std::max<int64_t>(r.duration_us, 0), r.proxy_added_us};
  // ParseTimingsTail gives both or neither, accepted <= drafted; the keeper refuses anything else.
  if (r.draft_tokens >= 0 && r.draft_accepted >= 0 && r.draft_accepted <= r.draft_tokens) {
    m.finish.draft_tokens = r.draft_tokens;
    m.finish.draft_accepted = r.draft_accepted;
  }
  m.finish.client = std::string(r.client);
  Send(m);
}

bool RemoteProvider::SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) {
  if (!IsCleanModelName(model)) return false;
  bool known = false;
  {
    MutexLock lock(mu_);
    known = known_.contains(model);
  }
  Send(UpMessage{UpKind::kKeepAlive, 0, keep_alive.count(), {}, model});
  return known;
}

void RemoteProvider::FailPending(const std::string& why) {
  std::map<uint64_t, std::function<void(proxy::EnsureResult)>> pending;
  {
    MutexLock lock(mu_);
    pending.swap(pending_);
  }
  for (auto& [id, done] : pending) done(Refused(why));
}

void RemoteProvider::ReadLoop() {
  FrameAssembler assembler(kMaxDownMessageBytes);
  for (;;) {
    auto msg = ReadMessage(fd_, assembler, std::chrono::hours(24 * 365));
    if (!msg.ok()) {
      if (!closing_.load()) LogWarn("the link to the daemon is gone (%s); stopping", msg.status().message().c_str());
      break;
    }
    auto d = ParseDown(*msg);
    if (!d.ok()) {
      LogError("bad message from the daemon: %s", d.status().message().c_str());
      break;
    }
    Apply(*d);
  }
  closing_.store(true);
  FailPending("the daemon went away");
  if (on_lost_) on_lost_();
}

void RemoteProvider::Apply(DownMessage& d) {
  switch (d.type) {
    case DownMessage::Type::kOptions: return;  // only the first message; handled before Start
    case DownMessage::Type::kRoutes: {
      {
        MutexLock lock(mu_);
        known_.clear();
        for (const auto& m : models_) known_.insert(m.name);
        for (const auto& [name, ep] : d.routes.routes) known_.insert(name);
      }
      routes_.Publish(std::move(d.routes));
      return;
    }
    case DownMessage::Type::kModels: {
      MutexLock lock(mu_);
      models_ = std::move(d.models);
      for (const auto& m : models_) known_.insert(m.name);
      return;
    }
    case DownMessage::Type::kAnswer: {
      std::function<void(proxy::EnsureResult)> done;
      {
        MutexLock lock(mu_);
        auto it = pending_.find(d.id);
        if (it == pending_.end()) return;
        done = std::move(it->second);
        pending_.erase(it);
      }
      done(std::move(d.answer));
      return;
    }
    case DownMessage::Type::kLimits:
      if (on_limits_) on_limits_(d);
      return;
  }
}

int RunProxyProcess(int listen_fd, int link_fd) {
  SetLogTag("proxy");
  // SIGTERM/SIGINT stop, taken by sigwait; blocked before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  FrameAssembler first(kMaxDownMessageBytes);
  auto text = ReadMessage(link_fd, first, kOptionsWait);
  if (!text.ok()) {
    LogError("no options from the daemon: %s", text.status().message().c_str());
    return 1;
  }
  auto options = ParseDown(*text);
  if (!options.ok() || options->type != DownMessage::Type::kOptions) {
    LogError("the daemon's first message is not the options");
    return 1;
  }
  proxy::ProxyOptions popts = options->options;
  // fd 3 (listen_fd) is the first listener; the others follow the link: 5, 6, … (host.cc).
  auto specs = proxy::ParseListenList(popts.listen);
  if (!specs.ok()) {
    LogError("%s", specs.status().message().c_str());
    return 1;
  }
  popts.listen_fds = {listen_fd};
  for (size_t i = 1; i < specs->size(); ++i) popts.listen_fds.push_back(link_fd + static_cast<int>(i));

  proxy::RoutingTable routes;
  proxy::Proxy* live = nullptr;
  std::mutex live_mu;
  RemoteProvider provider(link_fd, routes, [&](const DownMessage& d) {
    std::lock_guard<std::mutex> lock(live_mu);
    if (live != nullptr) live->SetLimits(d.max_body_bytes, d.client_timeout, d.upstream_timeout);
  });
  if (Status s = provider.Prime(kOptionsWait); !s.ok()) {
    LogError("%s", s.message().c_str());
    return 1;
  }
  provider.Start([] { ::kill(::getpid(), SIGTERM); });
  {
    proxy::Proxy proxy(popts, provider, routes);
    if (Status s = proxy.Start(); !s.ok()) {
      LogError("%s", s.message().c_str());
      provider.Close();
      return 1;
    }
    {
      std::lock_guard<std::mutex> lock(live_mu);
      live = &proxy;
    }
    provider.SendReady();
    int sig = 0;
    for (;;) {
      if (::sigwait(&set, &sig) != 0) continue;
      if (sig != SIGHUP) break;
    }
    provider.BeginClose();
    {
      std::lock_guard<std::mutex> lock(live_mu);
      live = nullptr;
    }
    proxy.Stop();
  }
  provider.Close();
  return 0;
}

}  // namespace corral::edge
