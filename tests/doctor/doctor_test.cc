// `corral doctor`: a healthy private setup is clean (exit 0); each problem yields its stable id,
// severity and a fix; an error finding makes the exit code 1. Read-only: nothing is changed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = PrivateDaemonEnv(dir_);
    env_["HF_HUB_CACHE"] = dir_.File("hub");
    env_["HF_TOKEN"] = "";
    env_["HF_TOKEN_PATH"] = dir_.File("token");
    fs::create_directories(dir_.File("config/corral"));
  }
  // Runs doctor --json; returns the finding of `id` (null when absent).
  nlohmann::json Find(const nlohmann::json& report, const std::string& id) {
    for (const auto& f : report["findings"]) {
      if (f["id"] == id) return f;
    }
    return nullptr;
  }
  nlohmann::json Doctor(int expected_exit, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"doctor", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunCorral(args, env_, std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, expected_exit) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(DoctorTest, HealthySetupIsClean) {
  auto j = Doctor(0);
  EXPECT_TRUE(j["healthy"].get<bool>());
  EXPECT_EQ(Find(j, "engine.ok")["severity"], "ok");
  EXPECT_EQ(Find(j, "daemon.not_running")["severity"], "info");
  EXPECT_EQ(Find(j, "models.none")["severity"], "info");
  for (const auto& f : j["findings"]) EXPECT_NE(f["severity"], "error") << f.dump();
  EXPECT_FALSE(fs::exists(dir_.File("run/corral/corral.sock")));  // read-only: no daemon started
}

TEST_F(DoctorTest, InvalidConfigNamesFileAndLine) {
  std::ofstream(dir_.File("config/corral/config.yaml")) << "listen: 127.0.0.1:0\nproxy_threads: [oops\n";
  auto j = Doctor(1);
  auto f = Find(j, "config.invalid");
  ASSERT_FALSE(f.is_null()) << j.dump();
  EXPECT_EQ(f["severity"], "error");
  EXPECT_NE(f["message"].get<std::string>().find("config.yaml:"), std::string::npos) << f.dump();
}

TEST_F(DoctorTest, EngineNotExecutable) {
  std::ofstream(dir_.File("fake-llama-server")) << "#!/bin/sh\n";
  env_["CORRAL_LLAMA_SERVER"] = dir_.File("fake-llama-server");
  auto j = Doctor(1);
  auto f = Find(j, "engine.not_executable");
  ASSERT_FALSE(f.is_null()) << j.dump();
  EXPECT_FALSE(f["fix"].get<std::string>().empty());
}

TEST_F(DoctorTest, PortTakenStaleSocketTokenPartialBudget) {
  // The proxy's port, held by someone else.
  const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(tcp, 1), 0);
  socklen_t len = sizeof(a);
  ::getsockname(tcp, reinterpret_cast<sockaddr*>(&a), &len);
  env_["CORRAL_LISTEN"] = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  // A socket file nobody listens on (a daemon that died).
  fs::create_directories(dir_.File("run/corral"));
  ::chmod(dir_.File("run/corral").c_str(), 0700);
  const int us = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  const std::string sock = dir_.File("run/corral/corral.sock");
  std::snprintf(u.sun_path, sizeof(u.sun_path), "%s", sock.c_str());
  ASSERT_EQ(::bind(us, reinterpret_cast<sockaddr*>(&u), sizeof(u)), 0);
  ::close(us);
  // A world-readable token file and an unfinished download.
  std::ofstream(dir_.File("token")) << "hf_x\n";
  ::chmod(dir_.File("token").c_str(), 0644);
  fs::create_directories(dir_.File("hub/models--acme--x-GGUF/blobs"));
  std::ofstream(dir_.File("hub/models--acme--x-GGUF/blobs/" + std::string(64, 'a') + ".incomplete")) << "part";
  env_["CORRAL_MEMORY_BUDGET"] = "100000GiB";
  auto j = Doctor(1);
  EXPECT_EQ(Find(j, "proxy.port_taken")["severity"], "error") << j.dump();
  EXPECT_EQ(Find(j, "daemon.stale_socket")["severity"], "warn") << j.dump();
  EXPECT_EQ(Find(j, "token.permissions")["severity"], "error") << j.dump();
  EXPECT_EQ(Find(j, "memory.budget_exceeds_ram")["severity"], "warn") << j.dump();
  auto partial = Find(j, "downloads.partial");
  ASSERT_FALSE(partial.is_null()) << j.dump();
  EXPECT_NE(partial["fix"].get<std::string>().find("corral pull acme/x-GGUF"), std::string::npos);
  EXPECT_EQ(j.dump().find("hf_x"), std::string::npos);  // the token is never printed
  EXPECT_TRUE(fs::exists(sock));                        // read-only: the stale socket is left alone
  ::close(tcp);
}

}  // namespace
}  // namespace corral::testing
