// Config hot reload and per-model settings, end to end: a stream in flight through the proxy
// survives a rewrite of config.yaml and SIGHUP (and the new alias routes afterwards, the
// removed one does not, the child keeps running); a broken config is rejected whole and
// `corral daemon reload` says why; a change on disk (atomic rename) is picked up without
// a signal; a per-model ttl unloads that model only, also once changed on a running one;
// per-model ctx/args reach the on-demand child's argv and are `corral start`'s defaults.
// Real llama-server, tiny synthetic models, a private daemon per test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <thread>

#include "common/fs.h"
#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using nlohmann::json;
using testing::RunResult;
using Clock = std::chrono::steady_clock;

// CORRAL_TEST_DEBUG=1: where a slow test spends its time.
void Trace(const char* what) {
  static const auto t0 = Clock::now();
  if (std::getenv("CORRAL_TEST_DEBUG") != nullptr) {
    std::cerr << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms: " << what
              << "\n";
  }
}

std::vector<std::string> Dims(const std::string& name, const std::string& seed, const std::string& ctx) {
  return {"--n-embd", "64",    "--n-layer", "2",      "--n-head", "4",      "--n-ff",
          "128",      "--ctx", ctx,         "--name", name,       "--seed", seed};
}

// Polls `done` every 50 ms until it is true or `limit` passes.
bool WaitFor(const std::function<bool()>& done, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// A raw HTTP/1.1 client for one streamed response, read at the test's pace: a small receive
// buffer, so a stream the test does not read stays in flight (the proxy's backpressure).
class SlowStream {
 public:
  ~SlowStream() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Open(int port, const std::string& target, const std::string& body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    int small = 16384;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    std::string req = "POST " + target +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      "Content-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    return ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  // Reads until `needle` has arrived (true) or EOF / the deadline (false).
  bool ReadUntil(const std::string& needle, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (raw_.find(needle) == std::string::npos) {
      if (!ReadSome(deadline)) return false;
    }
    return true;
  }
  // Reads to EOF (the request said Connection: close).
  bool ReadToEnd(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!eof_) {
      if (!ReadSome(deadline)) return eof_;
    }
    return true;
  }
  // The response body, de-chunked when the response is chunked; "" when malformed.
  std::string Body() const {
    size_t head_end = raw_.find("\r\n\r\n");
    if (head_end == std::string::npos) return "";
    std::string head = raw_.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string body = raw_.substr(head_end + 4);
    if (head.find("transfer-encoding: chunked") == std::string::npos) return body;
    std::string out;
    size_t pos = 0;
    for (;;) {
      size_t eol = body.find("\r\n", pos);
      if (eol == std::string::npos) return "";
      size_t n = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
      if (n == 0) return out;
      if (eol + 2 + n + 2 > body.size()) return "";
      out += body.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
  }
  const std::string& raw() const { return raw_; }

 private:
  bool ReadSome(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char buf[16384];
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    raw_.append(buf, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool eof_ = false;
  std::string raw_;
};

class DaemonReloadTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    const std::string models = dir_.File("data/corral/models");
    ASSERT_FALSE(testing::MakeModel(models, "alpha.gguf", Dims("alpha", "1", "2048")).empty());
    ASSERT_FALSE(testing::MakeModel(models, "bravo.gguf", Dims("bravo", "2", "512")).empty());
    ASSERT_TRUE(MakeDirs(dir_.File("config/corral"), 0700).ok());
  }
  void TearDown() override {
    PrivateDaemonTest::TearDown();
    Trace("stopped");
  }

  std::string ConfigFile() const { return dir_.File("config/corral/config.yaml"); }
  // Saves config.yaml the way editors do: a temporary file renamed over the old one.
  void WriteConfig(const std::string& yaml) {
    const std::string tmp = ConfigFile() + ".tmp";
    ASSERT_TRUE(WriteText(tmp, yaml));
    ASSERT_EQ(::rename(tmp.c_str(), ConfigFile().c_str()), 0);
  }
  static bool WriteText(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    return std::fclose(f) == 0 && ok;
  }

  json ReloadStatus() { return Json({"status", "--json"})["config"]; }
  uint64_t Reloads(const std::string& trigger) {
    json c = ReloadStatus();
    if (std::getenv("CORRAL_TEST_DEBUG")) std::cerr << c.dump() << "\n";
    return c["by_trigger"].value(trigger, uint64_t{0});
  }
  int ChatStatus(int port, const std::string& model) {
    auto r = testing::Http("POST", port, "/v1/chat/completions", Chat(model));
    if (r.ok() && r->status != 200 && std::getenv("CORRAL_TEST_DEBUG"))
      std::cerr << Chat(model) << " -> " << r->body << "\n";
    return r.ok() ? r->status : -1;
  }
};

// (a) A stream in flight survives a config rewrite + SIGHUP; afterwards the new alias routes,
// the removed one does not, and the child that served the stream is the same process.
TEST_F(DaemonReloadTest, StreamInFlightSurvivesRewriteAndSighup) {
  WriteConfig("aliases:\n  old-name: alpha\n");
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  ASSERT_GT(pid_, 0);
  Trace("started");
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());

  constexpr int kTokens = 1000;
  json req = {{"model", "old-name"},
              {"messages", {{{"role", "user"}, {"content", "hello"}}}},
              {"max_tokens", kTokens},
              {"ignore_eos", true},
              {"temperature", 0},
              {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
  SlowStream stream;
  ASSERT_TRUE(stream.Open(port, "/v1/chat/completions", req.dump()));
  ASSERT_TRUE(stream.ReadUntil("data: {", std::chrono::seconds(60))) << stream.raw();
  Trace("first event");
  json ps = Ps();
  ASSERT_EQ(ps.size(), 1U) << ps.dump();
  const int child_pid = ps[0].value("pid", 0);

  // Rewrite the file (the watcher sees it too) and send SIGHUP: the daemon must not stop.
  WriteConfig("aliases:\n  new-name: alpha\n");
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  Trace("sighup sent");
  ASSERT_TRUE(WaitFor([&] { return Reloads("SIGHUP") >= 1; })) << ReloadStatus().dump();
  EXPECT_TRUE(ReloadStatus()["last"].value("ok", false)) << ReloadStatus().dump();
  Trace("reloaded");
  EXPECT_FALSE(stream.raw().find("[DONE]") != std::string::npos) << "the stream was over before the reload";

  // The rest of the stream: every event whole, to the end.
  EXPECT_TRUE(stream.ReadUntil("data: [DONE]", std::chrono::seconds(120)));
  Trace("done event");
  ASSERT_TRUE(stream.ReadToEnd(std::chrono::seconds(120)));
  Trace("stream read");
  const std::string body = stream.Body();
  ASSERT_FALSE(body.empty()) << stream.raw().substr(0, 2000);
  size_t events = 0, pos = 0;
  std::string last_json;
  bool done = false;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    size_t end = body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << "a cut event at " << pos;
    std::string data = body.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    ASSERT_FALSE(done) << "events after [DONE]";
    json ev = json::parse(data, nullptr, false);
    ASSERT_FALSE(ev.is_discarded()) << data;
    last_json = data;
    ++events;
  }
  EXPECT_TRUE(done);
  EXPECT_GE(events, static_cast<size_t>(kTokens));
  EXPECT_NE(last_json.find("\"completion_tokens\":" + std::to_string(kTokens)), std::string::npos) << last_json;

  // The new alias routes to the same child; the old one is gone; the child never restarted.
  EXPECT_EQ(ChatStatus(port, "new-name"), 200);
  EXPECT_EQ(ChatStatus(port, "old-name"), 404);
  ps = Ps();
  ASSERT_EQ(ps.size(), 1U) << ps.dump();
  EXPECT_EQ(ps[0].value("pid", 0), child_pid);
  EXPECT_EQ(ps[0].value("name", std::string()), alpha);
  EXPECT_EQ(Corral({"daemon", "status"}).exit_code, 0);  // SIGHUP did not stop it
  Trace("end");
}

// (b) A broken config is rejected whole: the old one stays active and `corral daemon reload`
// exits non-zero with the parse error; the same for a config that parses but is invalid.
TEST_F(DaemonReloadTest, BrokenConfigIsRejectedAndTheOldOneStays) {
  WriteConfig("aliases:\n  fast: alpha\nmodels:\n  alpha:\n    ctx: 256\n");
  const int port = StartDaemon();
  ASSERT_EQ(ChatStatus(port, "fast"), 200);

  WriteConfig("aliases:\n  faster: [alpha\nmodel_ttl_s: 1\n");
  RunResult r = Corral({"daemon", "reload"});
  EXPECT_EQ(r.exit_code, 64) << r.out << r.err;
  EXPECT_NE(r.err.find("config.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rejected"), std::string::npos) << r.err;
  json j = ReloadStatus()["last"];
  EXPECT_FALSE(j.value("ok", true)) << j.dump();
  EXPECT_EQ(ChatStatus(port, "fast"), 200);    // old alias still routes
  EXPECT_EQ(ChatStatus(port, "faster"), 404);  // the new one never came
  json status = Json({"status", "--json"});

  // Parses, but names a flag Corral owns: rejected as a whole too (the alias is not taken).
  WriteConfig("aliases:\n  faster: alpha\nmodels:\n  alpha:\n    args: [\"--port\", \"9\"]\n");
  r = Corral({"daemon", "reload", "--json"});
  EXPECT_EQ(r.exit_code, 64) << r.out << r.err;
  EXPECT_NE(r.err.find("models.alpha.args"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
  json out = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(out.value("ok", true)) << r.out;
  EXPECT_EQ(ChatStatus(port, "faster"), 404);

  // The running config's per-model ctx still applies: the child has -c 256.
  json ps = Ps();
  ASSERT_EQ(ps.size(), 1U);
  std::string argv = ps[0]["argv"].dump();
  EXPECT_NE(argv.find("\"-c\",\"256\""), std::string::npos) << argv;

  // A good file again: applied; a restart-only option is reported, not applied.
  // The proxy's body limit applies live.
  auto file_reloads = [&] {
    json t = ReloadStatus()["by_trigger"];
    return t.is_object() ? t.value("file", 0) : 0;
  };
  const int file_reloads_before = file_reloads();
  WriteConfig("aliases:\n  faster: alpha\nlisten: 127.0.0.1:1\nproxy_threads: 3\nmax_body_bytes: 4096\n");
  r = Corral({"daemon", "reload", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_TRUE(out.value("ok", false));
  bool threads_restart = false, body_applied = false;
  for (const auto& n : out["needs_restart"]) threads_restart = threads_restart || n.value("key", "") == "proxy_threads";
  for (const auto& k : out["applied"]) body_applied = body_applied || k == "max_body_bytes";
  EXPECT_TRUE(threads_restart) << r.out;
  // The file watcher may have applied the new body limit first (it sees the write too), and
  // then this reload finds nothing new to apply: either way, it was applied by a reload.
  const bool file_reload_came_first = file_reloads() > file_reloads_before;
  EXPECT_TRUE(body_applied || file_reload_came_first) << r.out;
  EXPECT_EQ(ChatStatus(port, "faster"), 200);
  json big = json::parse(Chat("faster"));
  big["messages"][0]["content"] = std::string(8000, 'a');
  auto too_big = testing::Http("POST", port, "/v1/chat/completions", big.dump());
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(too_big->status, 413) << too_big->body;
}

// log_level filters the daemon's log, and a reload changes it.
TEST_F(DaemonReloadTest, LogLevelFiltersTheDaemonLog) {
  // A models: entry that names no model is a warning; "proxy listening" is info.
  WriteConfig("log_level: warn\nmodels:\n  no-such-model:\n    ttl: 5\n");
  ASSERT_GT(StartDaemon(), 0);
  const std::string log_path = dir_.File("state/corral/daemon.log");
  std::string log;
  ASSERT_TRUE(WaitFor([&] {
    auto text = ReadFileBounded(log_path, 1 << 20);
    log = text.ok() ? *text : "";
    return log.find("no-such-model") != std::string::npos;
  })) << log;
  EXPECT_NE(log.find("warning: config: models.no-such-model"), std::string::npos) << log;
  EXPECT_EQ(log.find("proxy listening"), std::string::npos) << log;
  // Back to info: the reload's own summary line is logged again.
  WriteConfig("log_level: info\n");
  RunResult r = Corral({"daemon", "reload"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitFor([&] {
    auto text = ReadFileBounded(log_path, 1 << 20);
    log = text.ok() ? *text : "";
    return log.find("config reloaded (control)") != std::string::npos;
  })) << log;
}

// (c) A change on disk is picked up without a signal (an editor's rename-into-place save).
TEST_F(DaemonReloadTest, FileChangeIsPickedUpWithoutASignal) {
  const int port = StartDaemon();
  ASSERT_TRUE(ReloadStatus().value("watching", false)) << ReloadStatus().dump();
  EXPECT_EQ(ChatStatus(port, "by-file"), 404);
  WriteConfig("aliases:\n  by-file: bravo\n");
  ASSERT_TRUE(WaitFor([&] { return Reloads("file") >= 1 && ReloadStatus()["last"].value("ok", false); }))
      << ReloadStatus().dump();
  EXPECT_EQ(Reloads("SIGHUP"), 0U);
  EXPECT_EQ(Reloads("control"), 0U);
  EXPECT_EQ(ChatStatus(port, "by-file"), 200);
  EXPECT_EQ(Running(), std::vector<std::string>{NameOf("bravo")});
}

// (d) A per-model ttl unloads that model while another without one stays; a ttl changed by a
// reload applies to a model already running.
TEST_F(DaemonReloadTest, PerModelTtlUnloadsOnlyThatModel) {
  WriteConfig("models:\n  alpha:\n    ttl: 1\n");
  const int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  ASSERT_EQ(ChatStatus(port, alpha), 200);
  ASSERT_EQ(ChatStatus(port, bravo), 200);
  ASSERT_TRUE(WaitFor([&] { return Running() == std::vector<std::string>{bravo}; })) << Ps().dump();

  // bravo stays (no ttl, model_ttl_s 0) until its ttl comes by reload.
  WriteConfig("models:\n  alpha:\n    ttl: 1\n  bravo:\n    ttl: 1\n");
  ASSERT_EQ(Corral({"daemon", "reload"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return Running().empty(); })) << Ps().dump();
}

// (e) Per-model ctx/args reach the on-demand child's argv, and are `corral start`'s defaults.
// models: {restart: true} makes `corral start` use the restart policy: the child killed from
// outside comes back on a new pid.
TEST_F(DaemonReloadTest, PerModelRestartAppliesToCorralStart) {
  WriteConfig("models:\n  bravo:\n    restart: true\n");
  ASSERT_GT(StartDaemon(), 0);
  json m = Json({"start", NameOf("bravo"), "--json"})["model"];
  ASSERT_EQ(m["state"], "ready") << m;
  ASSERT_EQ(::kill(m["pid"].get<int>(), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& c : Ps()) {
      if (c["name"] == m["name"] && c["state"] == "ready" && c.value("restarts", 0) == 1) return true;
    }
    return false;
  })) << Ps().dump();
}

TEST_F(DaemonReloadTest, PerModelCtxAndArgsReachTheChild) {
  WriteConfig("models:\n  alpha:\n    ctx: 256\n    args: [\"--threads\", \"1\"]\n");
  const int port = StartDaemon();
  const std::string alpha = NameOf("alpha"), bravo = NameOf("bravo");
  ASSERT_EQ(ChatStatus(port, alpha), 200);
  json ps = Ps();
  ASSERT_EQ(ps.size(), 1U) << ps.dump();
  const auto argv = ps[0]["argv"].get<std::vector<std::string>>();
  auto has = [&](const std::vector<std::string>& v, const std::string& a, const std::string& b) {
    for (size_t i = 0; i + 1 < v.size(); ++i) {
      if (v[i] == a && v[i + 1] == b) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(argv, "-c", "256")) << ps.dump();
  EXPECT_TRUE(has(argv, "--threads", "1")) << ps.dump();
  // The real process got them too.
  const int pid = ps[0].value("pid", 0);
  auto cmdline = ReadFileBounded("/proc/" + std::to_string(pid) + "/cmdline", 1 << 16);
  ASSERT_TRUE(cmdline.ok());
  EXPECT_NE(cmdline->find(std::string("--threads\0001", 11)), std::string::npos);

  // corral start: the config's ctx/args when the command line gives none.
  json plan = Json({"start", alpha, "--dry-run", "--json"})["plan"];
  auto p = plan["argv"].get<std::vector<std::string>>();
  EXPECT_TRUE(has(p, "-c", "256") && has(p, "--threads", "1")) << plan.dump();
  plan = Json({"start", alpha, "--dry-run", "--json", "-c", "128"})["plan"];
  p = plan["argv"].get<std::vector<std::string>>();
  EXPECT_TRUE(has(p, "-c", "128") && has(p, "--threads", "1")) << plan.dump();
  plan = Json({"start", alpha, "--dry-run", "--json", "--", "--threads", "2"})["plan"];
  p = plan["argv"].get<std::vector<std::string>>();
  EXPECT_TRUE(has(p, "--threads", "2") && !has(p, "--threads", "1")) << plan.dump();
  plan = Json({"start", bravo, "--dry-run", "--json"})["plan"];
  p = plan["argv"].get<std::vector<std::string>>();
  EXPECT_EQ(std::find(p.begin(), p.end(), "-c"), p.end()) << plan.dump();

  // Changed by reload: the next on-demand start of the model uses the new settings.
  WriteConfig("models:\n  bravo:\n    ctx: 128\n");
  ASSERT_EQ(Corral({"daemon", "reload"}).exit_code, 0);
  ASSERT_EQ(ChatStatus(port, bravo), 200);
  for (const auto& m : Ps()) {
    if (m.value("name", std::string()) == bravo) {
      EXPECT_TRUE(has(m["argv"].get<std::vector<std::string>>(), "-c", "128")) << m.dump();
    }
  }
}

}  // namespace
}  // namespace corral
