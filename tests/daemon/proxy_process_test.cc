// Crash isolation (issue 11): the proxy runs in its own process. Killing it mid-stream cuts
// that stream, but the models stay loaded (same llama-server pid, still ready), the proxy
// process comes back on its own, and requests are served again at once; a SIGKILL of the
// whole daemon still leaves no proxy process and no llama-server behind.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

class ProxyProcessTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    std::vector<std::string> dims = {"--n-embd", "64",  "--n-layer", "2",    "--n-head", "4",
                                     "--n-ff",   "128", "--ctx",     "4096", "--name",   "alpha"};
    ASSERT_FALSE(testing::MakeModel(dir_.File("data/corral/models"), "alpha.gguf", dims).empty());
  }
  json ProxyProcess() { return Json({"status", "--json"})["proxy"]["process"]; }
  static bool Alive(int pid) { return pid > 0 && ::kill(pid, 0) == 0 && !IsZombie(pid); }
  static bool IsZombie(int pid) {
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr) return true;
    char buf[512] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    size_t paren = s.rfind(')');
    return paren == std::string::npos || paren + 2 >= s.size() || s[paren + 2] == 'Z';
  }
  static bool WaitGone(int pid) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (!Alive(pid)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // A new proxy process (pid != old_pid) that is up; 0 when none within 10 s.
  int WaitNewProxy(int old_pid) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      int pid = ProxyProcess().value("pid", 0);
      if (pid != 0 && pid != old_pid) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }
  // Opens a streamed chat completion on a raw socket; returns the fd once the first bytes
  // of the stream arrived (-1 on failure).
  static int OpenStream(int port, const std::string& model) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    std::string body = json{{"model", model},
                            {"stream", true},
                            {"max_tokens", 3000},
                            {"ignore_eos", true},
                            {"messages", {{{"role", "user"}, {"content", "hello"}}}}}
                           .dump();
    std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return -1;
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[4096];
    while (got.find("data: ") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return -1;
      got.append(buf, static_cast<size_t>(n));
    }
    return fd;
  }
  // Reads until the peer closes; true when it closed (or reset) within 30 s.
  static bool ReadsToEnd(int fd) {
    char buf[4096];
    for (int i = 0; i < 100000; ++i) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;  // timeout
    }
    return false;
  }
};

TEST_F(ProxyProcessTest, KillingTheProxyMidStreamKeepsTheModelLoadedAndServing) {
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());
  ASSERT_EQ(Corral({"start", alpha}).exit_code, 0);
  json before = Ps();
  ASSERT_EQ(before.size(), 1U);
  const int model_pid = before[0]["pid"];
  const int proxy_pid = ProxyProcess().value("pid", 0);
  ASSERT_GT(proxy_pid, 0);
  ASSERT_NE(proxy_pid, pid_);  // a separate process

  for (int sig : {SIGKILL, SIGSEGV}) {
    SCOPED_TRACE(sig == SIGKILL ? "SIGKILL" : "SIGSEGV");
    const int old_proxy = ProxyProcess().value("pid", 0);
    int stream = OpenStream(port, alpha);
    ASSERT_GE(stream, 0);
    const auto killed_at = Clock::now();
    ASSERT_EQ(::kill(old_proxy, sig), 0);
    EXPECT_TRUE(ReadsToEnd(stream)) << "the cut stream must end, not hang";
    ::close(stream);

    // The proxy is back: the first listing it answers (from its mirror of the keeper's model
    // list). Then inference: the first chat that succeeds (llama-server may first have to
    // notice that the cut stream's client is gone and free its slot).
    int listing = 0;
    for (int i = 0; i < 400 && listing != 200; ++i) {
      auto r = testing::Http("GET", port, "/v1/models");
      listing = r.ok() ? r->status : 0;
      if (listing != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(listing, 200);
    const double back_ms = std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count();
    int status = 0;
    std::string body;
    for (int i = 0; i < 200 && status != 200; ++i) {
      auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(alpha));
      if (r.ok()) {
        status = r->status;
        body = r->body;
      }
      if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count();
    EXPECT_EQ(status, 200) << body;
    std::printf("[ proxy process ] killed by signal %d: answering again %.0f ms after the kill, inference %.0f ms\n",
                sig, back_ms, ms);

    // The model never went away: same llama-server, still ready.
    json after = Ps();
    ASSERT_EQ(after.size(), 1U);
    EXPECT_EQ(after[0]["pid"], model_pid);
    EXPECT_EQ(after[0]["state"], "ready");
    EXPECT_TRUE(Alive(model_pid));
    int new_proxy = WaitNewProxy(old_proxy);
    EXPECT_GT(new_proxy, 0);
    EXPECT_FALSE(Alive(old_proxy));
    json info = ProxyProcess();
    // Under ASan/TSan the sanitizer's own SIGSEGV handler reports and exits with code 1.
    EXPECT_EQ(info.value("last_exit", ""),
              sig == SIGKILL ? "killed by SIGKILL" : (kSanitized ? "exit code 1" : "killed by SIGSEGV"));
  }
  EXPECT_EQ(ProxyProcess().value("restarts", 0), 2);
}

TEST_F(ProxyProcessTest, ModelsStartedOnDemandAreNotLeftBusyByADeadProxy) {
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha");
  int stream = OpenStream(port, alpha);  // an on-demand start; a request in flight
  ASSERT_GE(stream, 0);
  const int old_proxy = ProxyProcess().value("pid", 0);
  ASSERT_EQ(::kill(old_proxy, SIGKILL), 0);
  EXPECT_TRUE(ReadsToEnd(stream));
  ::close(stream);
  ASSERT_GT(WaitNewProxy(old_proxy), 0);
  // The dead process's request in flight was ended in the router's accounting: Ollama's
  // keep_alive 0 unloads the model (a model with a request in flight would stay loaded).
  auto unload = testing::Http("POST", port, "/api/generate", json{{"model", alpha}, {"keep_alive", 0}}.dump());
  ASSERT_TRUE(unload.ok());
  EXPECT_EQ(unload->status, 200) << unload->body;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && !Running().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(Running().empty()) << "the model stayed busy after its proxy process died";
}

TEST_F(ProxyProcessTest, SigkillOfTheDaemonLeavesNoProxyProcessAndNoModel) {
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha");
  ASSERT_EQ(Corral({"start", alpha}).exit_code, 0);
  const int model_pid = Ps()[0]["pid"];
  const int proxy_pid = ProxyProcess().value("pid", 0);
  ASSERT_GT(proxy_pid, 0);
  ASSERT_EQ(::kill(pid_, SIGKILL), 0);
  EXPECT_TRUE(WaitGone(proxy_pid)) << "the proxy process outlived a SIGKILLed daemon";
  EXPECT_TRUE(WaitGone(model_pid)) << "llama-server outlived a SIGKILLed daemon";
}

TEST_F(ProxyProcessTest, TheInternalCommandRefusesToRunByHand) {
  auto r = Corral({"__proxy-process"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("internal"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace corral
