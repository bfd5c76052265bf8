// Issue 13 end to end: `corral serve` refuses a routable bind without a key (exit 75);
// `corral keys` and `corral tls` manage the files; and with a key and TLS an OpenAI-style
// client (curl, pinned to the local CA) in another network namespace streams a chat
// completion through the daemon's proxy from a real llama-server. The namespace part
// needs root (ip netns); it is skipped otherwise.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <string>

#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using nlohmann::json;

// Runs a shell command; returns its exit status and stdout.
int Sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::array<char, 4096> buf;
  std::string text;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
  int rc = ::pclose(p);
  if (out != nullptr) *out = text;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class DaemonLanTest : public testing::PrivateDaemonTest {};

TEST_F(DaemonLanTest, RoutableBindWithoutAKeyIsRefused) {
  for (const char* listen : {"0.0.0.0:0", "[::]:0", "127.0.0.1:0,https://0.0.0.0:0"}) {
    auto r = Corral({"serve", "--listen", listen});
    EXPECT_EQ(r.exit_code, 75) << listen << ": " << r.err;
    EXPECT_NE(r.err.find("--allow-unauthenticated-lan"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("corral keys create"), std::string::npos) << r.err;
  }
  // Loopback stays keyless, as before (the daemon starts).
  EXPECT_GT(StartDaemon(), 0);
}

TEST_F(DaemonLanTest, KeysAndTlsCommands) {
  json created = Json({"keys", "create", "--name", "laptop", "--scope", "read", "--models", "qwen*", "--json"});
  std::string token = created.value("key", std::string());
  ASSERT_TRUE(token.starts_with("crl_")) << created.dump();
  const std::string file = dir_.File("config/corral/keys.json");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string stored;
  ASSERT_EQ(Sh("cat " + file, &stored), 0);
  EXPECT_EQ(stored.find(token.substr(21)), std::string::npos) << "the secret must not be stored";
  json list = Json({"keys", "list", "--json"});
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "laptop");
  EXPECT_EQ(list[0]["scope"], "read");
  EXPECT_EQ(list.dump().find(token.substr(21)), std::string::npos);
  EXPECT_EQ(Corral({"keys", "create", "--scope", "root"}).exit_code, 64);
  EXPECT_EQ(Corral({"keys", "revoke", "laptop"}).exit_code, 0);
  EXPECT_EQ(Corral({"keys", "revoke", "laptop"}).exit_code, 64);
  auto show = Corral({"tls", "show"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("SHA-256"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("IP:127.0.0.1"), std::string::npos) << show.out;
  auto rotate = Corral({"tls", "rotate"});
  EXPECT_EQ(rotate.exit_code, 0) << rotate.err;
}

// The "Done when": with a key and TLS, an OpenAI client on another network
// namespace streams through the proxy.
TEST_F(DaemonLanTest, OpenAiClientStreamsOverTlsFromAnotherNamespace) {
  if (::geteuid() != 0 || Sh("command -v ip >/dev/null && command -v curl >/dev/null") != 0) {
    GTEST_SKIP() << "needs root, ip and curl (network namespaces)";
  }
  const std::string models = dir_.File("data/corral/models");
  ASSERT_FALSE(testing::MakeModel(models, "alpha.gguf",
                                  {"--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128", "--ctx", "512",
                                   "--name", "alpha", "--seed", "1"})
                   .empty());
  // A client namespace joined to this one by a veth pair: 10.213.<n>.1 here, .2 there.
  const std::string n = std::to_string(::getpid() % 200 + 20);
  const std::string ns = "corral-lan-" + std::to_string(::getpid());
  const std::string here = "cl" + std::to_string(::getpid() % 100000) + "a";
  const std::string there = "cl" + std::to_string(::getpid() % 100000) + "b";
  const std::string host_ip = "10.213." + n + ".1", client_ip = "10.213." + n + ".2";
  struct Cleanup {
    std::string ns, here;
    ~Cleanup() {
      Sh("ip link del " + here + " 2>/dev/null");
      Sh("ip netns del " + ns + " 2>/dev/null");
    }
  } cleanup{ns, here};
  ASSERT_EQ(Sh("ip netns add " + ns + " && ip link add " + here + " type veth peer name " + there + " && ip link set " +
               there + " netns " + ns + " && ip addr add " + host_ip + "/24 dev " + here + " && ip link set " + here +
               " up && ip netns exec " + ns + " ip addr add " + client_ip + "/24 dev " + there + " && ip netns exec " +
               ns + " ip link set " + there + " up && ip netns exec " + ns + " ip link set lo up"),
            0);
  json created = Json({"keys", "create", "--name", "teammate", "--json"});
  const std::string key = created.value("key", std::string());
  ASSERT_FALSE(key.empty());
  // TLS on the routable address first (so status's base_url names it), plain on loopback.
  Corral({"daemon", "stop"});
  env_["CORRAL_LISTEN"] = "https://" + host_ip + ":0,127.0.0.1:0";
  int port = StartDaemon();
  ASSERT_GT(port, 0);
  json status = Json({"status", "--json"});
  EXPECT_EQ(status["proxy"].value("base_url", std::string()), "https://" + host_ip + ":" + std::to_string(port));
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());
  const std::string ca = dir_.File("config/corral/tls/ca.pem");
  const std::string url = "https://" + host_ip + ":" + std::to_string(port);
  const std::string body = json{
      {"model", alpha},
      {"messages", {{{"role", "user"}, {"content", "hello"}}}},
      {"max_tokens", 8},
      {"temperature", 0},
      {"stream", true}}.dump();
  const std::string curl = "ip netns exec " + ns + " curl -sS -N --max-time 60 --cacert " + ca;
  // No key: 401 in the OpenAI shape, nothing started.
  std::string out;
  ASSERT_EQ(Sh(curl + " -o /dev/null -w '%{http_code}' " + url + "/v1/models", &out), 0);
  EXPECT_EQ(out, "401");
  EXPECT_TRUE(Running().empty());
  // With the key: a streamed chat completion, TLS 1.3, the certificate verified by name.
  ASSERT_EQ(Sh(curl + " --tlsv1.3 -H 'Authorization: Bearer " + key + "' -H 'Content-Type: application/json' -d '" +
                   body + "' " + url + "/v1/chat/completions",
               &out),
            0);
  EXPECT_NE(out.find("data: {"), std::string::npos) << out;
  EXPECT_NE(out.find("data: [DONE]"), std::string::npos) << out;
  // An Anthropic-style client (x-api-key) on the same address.
  const std::string anthropic =
      json{{"model", alpha}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump();
  ASSERT_EQ(Sh(curl + " -H 'x-api-key: " + key + "' -H 'Content-Type: application/json' -d '" + anthropic + "' " + url +
                   "/v1/messages",
               &out),
            0);
  EXPECT_NE(out.find("\"type\":\"message\""), std::string::npos) << out;
  // Revoked: the next request is refused.
  ASSERT_EQ(Corral({"keys", "revoke", "teammate"}).exit_code, 0);
  ASSERT_EQ(
      Sh(curl + " -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer " + key + "' " + url + "/v1/models", &out),
      0);
  EXPECT_EQ(out, "401");
}

}  // namespace
}  // namespace corral
