// ProxyHost (the keeper's side of crash isolation) against a scripted fake proxy process:
// a process that dies before it is ready, one that never answers, one that breaks the link
// protocol (killed and restarted), one that dies with requests in flight (their accounting
// is ended), the EnsureReady round trip and config limits reaching the process.
#include "edge/host.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "proxy/static_provider.h"

namespace corral::edge {
namespace {

using Clock = std::chrono::steady_clock;

// StaticProvider that also records the in-flight accounting it is told.
class RecordingProvider final : public proxy::ModelProvider {
 public:
  RecordingProvider() : inner_({{"alpha", proxy::Endpoint{"127.0.0.1", 4242}}}) {}
  std::vector<proxy::ModelInfo> ListModels() const override { return inner_.ListModels(); }
  void EnsureReady(const std::string& model, Clock::time_point deadline,
                   std::function<void(proxy::EnsureResult)> done) override {
    inner_.EnsureReady(model, deadline, std::move(done));
  }
  void OnRequestStart(const std::string&, const proxy::Endpoint&) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++starts_;
  }
  void OnRequestEnd(const std::string&, const proxy::Endpoint&) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++ends_;
  }
  bool SetKeepAlive(const std::string&, std::chrono::seconds) override { return true; }
  std::pair<int, int> Counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return {starts_, ends_};
  }

 private:
  proxy::StaticProvider inner_;
  std::mutex mu_;
  int starts_ = 0, ends_ = 0;
};

class ProxyHostTest : public ::testing::Test {
 protected:
  ProxyHostOptions Options(const char* mode) {
    ::setenv("CORRAL_FAKE_PROXY_MODE", mode, 1);
    ProxyHostOptions o;
    o.exe = CORRAL_FAKE_PROXY;
    o.proxy.listen = "127.0.0.1:0";
    o.ready_timeout = std::chrono::milliseconds(5000);
    o.restart_min = std::chrono::milliseconds(10);
    o.restart_max = std::chrono::milliseconds(50);
    o.stop_grace = std::chrono::milliseconds(500);
    return o;
  }
  template <typename Pred>
  static bool WaitFor(Pred pred) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  RecordingProvider provider_;
  proxy::RoutingTable routes_;
};

TEST_F(ProxyHostTest, AProcessThatDiesBeforeItIsReadyFailsTheStartWithItsExit) {
  ProxyHost host(Options("exit1"), provider_, routes_);
  Status s = host.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exit code 1"), std::string::npos) << s.message();
}

TEST_F(ProxyHostTest, AProcessThatNeverAnswersFailsTheStartAndIsStopped) {
  auto o = Options("silent");
  o.ready_timeout = std::chrono::milliseconds(200);
  ProxyHost host(o, provider_, routes_);
  Status s = host.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("did not answer"), std::string::npos) << s.message();
  EXPECT_EQ(host.info().pid, 0);  // stopped, not left behind
}

TEST_F(ProxyHostTest, AProtocolViolationKillsAndRestartsTheProcess) {
  ProxyHost host(Options("garbage"), provider_, routes_);
  ASSERT_TRUE(host.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return host.info().restarts >= 2; }));
  EXPECT_EQ(host.info().last_exit, "killed by SIGKILL");
  host.Stop();
  EXPECT_EQ(host.info().pid, 0);
}

TEST_F(ProxyHostTest, RequestsInFlightOnADeadProcessAreEnded) {
  ProxyHost host(Options("in-flight-then-die"), provider_, routes_);
  ASSERT_TRUE(host.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return host.info().last_exit == "killed by SIGABRT"; }));
  host.Stop();
  auto [starts, ends] = provider_.Counts();
  EXPECT_GE(starts, 2);
  EXPECT_EQ(starts, ends) << "every request the dead process started must be ended";
}

TEST_F(ProxyHostTest, EnsureReadyIsAnsweredOverTheLink) {
  ProxyHost host(Options("ensure"), provider_, routes_);
  ASSERT_TRUE(host.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return !host.info().last_exit.empty(); }));
  EXPECT_EQ(host.info().last_exit, "exit code 0");
}

TEST_F(ProxyHostTest, ConfigLimitsReachTheProcess) {
  ProxyHost host(Options("limits"), provider_, routes_);
  ASSERT_TRUE(host.Start().ok());
  host.SetLimits(777, std::chrono::milliseconds(1000), std::chrono::milliseconds(2000));
  EXPECT_TRUE(WaitFor([&] { return !host.info().last_exit.empty(); }));
  EXPECT_EQ(host.info().last_exit, "exit code 0");
}

TEST_F(ProxyHostTest, ABadListenAddressIsAClearError) {
  auto o = Options("silent");
  o.proxy.listen = "nowhere:80";
  ProxyHost host(o, provider_, routes_);
  Status s = host.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("IP address"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace corral::edge
