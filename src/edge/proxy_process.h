// The proxy process: the network-facing half of the daemon (see host.h). It runs
// proxy::Proxy on the listening socket it inherits (fd 3) and reaches the keeper over the
// link (fd 4) through RemoteProvider, a ModelProvider whose slow path is a message.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "edge/link.h"
#include "proxy/model_provider.h"
#include "proxy/routing_table.h"

namespace corral::edge {

// proxy::ModelProvider over the link. The routes and the model list are mirrors the keeper
// pushes (routes into `routes`, read lock-free by the workers as before); EnsureReady is
// answered by the keeper's router; the in-flight accounting and keep-alives are one-way
// messages (one send(2) each, no lock: SEQPACKET sends are atomic).
//
// Thread-safety: the ModelProvider methods from any worker; Start/Close from the process's
// main thread; one reader thread applies the keeper's messages.
class RemoteProvider final : public proxy::ModelProvider {
 public:
  using LimitsHook = std::function<void(const DownMessage&)>;
  RemoteProvider(int link_fd, proxy::RoutingTable& routes, LimitsHook on_limits);
  ~RemoteProvider() override;  // Close()

  // Before Start: reads and applies the keeper's first routes and model list (it sends both
  // right after the options), so that a restarted proxy never answers "not found" for a model
  // the keeper knows because its mirror is still empty. Waits at most `wait`.
  Status Prime(std::chrono::milliseconds wait);
  // Starts the reader thread. When the keeper goes away it calls `on_lost` (once).
  void Start(std::function<void()> on_lost);
  void SendReady();
  // New EnsureReady calls are answered kUnavailable at once, pending ones too.
  void BeginClose();
  // BeginClose, then stops the reader thread.
  void Close();

  std::vector<proxy::ModelInfo> ListModels() const override;
  void EnsureReady(const std::string& model, std::chrono::steady_clock::time_point deadline,
                   std::function<void(proxy::EnsureResult)> done) override;
  void OnRequestStart(const std::string& model, const proxy::Endpoint& upstream) override;
  void OnRequestEnd(const std::string& model, const proxy::Endpoint& upstream) override;
  // One 'F' message: the end and the event-feed record in one send(2), as 'D' was before.
  void OnRequestFinished(const std::string& model, const proxy::Endpoint& upstream,
                         const proxy::RequestRecord& record) override;
  bool SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) override;

 private:
  bool Send(const UpMessage& m);
  void ReadLoop();
  void Apply(DownMessage& d);
  void FailPending(const std::string& why);

  const int fd_;
  proxy::RoutingTable& routes_;
  LimitsHook on_limits_;
  std::function<void()> on_lost_;
  std::thread reader_;
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> next_id_{1};

  mutable Mutex mu_;
  std::map<uint64_t, std::function<void(proxy::EnsureResult)>> pending_ CORRAL_GUARDED_BY(mu_);
  std::vector<proxy::ModelInfo> models_ CORRAL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> known_ CORRAL_GUARDED_BY(mu_);  // model and route names
};

// `corral __proxy-process`: serves until SIGTERM/SIGINT or until the keeper goes away.
// Returns the process exit code.
int RunProxyProcess(int listen_fd, int link_fd);

}  // namespace corral::edge
