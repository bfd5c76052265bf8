// API keys, the failed-auth throttle, listen parsing, the open-door rule and the TLS
// material (issue 13): pure parts and files in a temp dir; no network.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <openssl/ssl.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "auth/keys.h"
#include "auth/throttle.h"
#include "common/fs.h"
#include "proxy/listen.h"
#include "support/test_support.h"
#include "tls/tls.h"

namespace corral::auth {
namespace {

using corral::testing::TempDir;

std::string B64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += a[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

TEST(Keys, CreateStoresOnlyTheHashAndAuthenticates) {
  KeySet set;
  auto nk = CreateKey(set, "laptop", Scope::kInference, {"qwen*"}, 1700000000);
  ASSERT_TRUE(nk.ok()) << nk.status().ToString();
  EXPECT_EQ(nk->token.size(), 4u + 16 + 1 + 43);
  std::string_view id;
  ASSERT_TRUE(SplitToken(nk->token, &id));
  EXPECT_EQ(id, nk->record.id);
  std::string file = SerializeKeyFile(set);
  EXPECT_EQ(file.find(nk->token.substr(21)), std::string::npos) << "the secret must never be stored";
  auto back = ParseKeyFile(file);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const KeyRecord* k = Authenticate(*back, nk->token);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->name, "laptop");
  EXPECT_EQ(k->scope, Scope::kInference);
  // One character changed: refused (same id, different hash).
  std::string wrong = nk->token;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(Authenticate(*back, wrong), nullptr);
  EXPECT_EQ(Authenticate(*back, ""), nullptr);
  EXPECT_EQ(Authenticate(*back, "crl_0000000000000000_" + std::string(43, 'A')), nullptr);
}

TEST(Keys, NamesAreUniqueAndLabelSafe) {
  KeySet set;
  ASSERT_TRUE(CreateKey(set, "a", Scope::kRead, {}, 0).ok());
  EXPECT_EQ(CreateKey(set, "a", Scope::kRead, {}, 0).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(CreateKey(set, "bad\"name", Scope::kRead, {}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateKey(set, "x", Scope::kRead, {std::string("a\nb")}, 0).status().code(), StatusCode::kInvalidArgument);
  auto unnamed = CreateKey(set, "", Scope::kAdmin, {}, 0);
  ASSERT_TRUE(unnamed.ok());
  EXPECT_TRUE(unnamed->record.name.starts_with("key-"));
  EXPECT_TRUE(RevokeKey(set, "a").ok());
  EXPECT_TRUE(RevokeKey(set, unnamed->record.id).ok());
  EXPECT_EQ(RevokeKey(set, "a").code(), StatusCode::kNotFound);
  EXPECT_TRUE(set.keys.empty());
}

TEST(Keys, MalformedFilesAreErrorsNotCrashes) {
  const std::string hash(64, '0');
  const std::vector<std::string> bad = {
      "",
      "[]",
      R"({"version":2,"keys":[]})",
      R"({"version":1})",
      R"({"version":1,"keys":[1]})",
      R"({"version":1,"keys":[{"id":"x","name":"n","sha256":"00","scope":"read"}]})",
      R"({"version":1,"keys":[{"id":"0123456789abcdef","name":"n","sha256":")" + hash + R"(","scope":"root"}]})",
      R"({"version":1,"keys":[{"id":"0123456789abcdef","name":"n","sha256":")" + hash +
          R"(","scope":"read","models":[1]}]})",
  };
  for (const auto& text : bad) EXPECT_FALSE(ParseKeyFile(text).ok()) << text;
  EXPECT_TRUE(ParseKeyFile(R"({"version":1,"keys":[]})").ok());
  EXPECT_TRUE(ParseKeyFile(R"({"version":1,"keys":[{"id":"0123456789abcdef","name":"n","sha256":")" + hash +
                           R"(","scope":"read","models":["a*"]}]})")
                  .ok());
}

TEST(Keys, GlobMatch) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("qwen*", "qwen2.5-7b"));
  EXPECT_FALSE(GlobMatch("qwen*", "llama"));
  EXPECT_TRUE(GlobMatch("*-q4_?", "m-q4_0"));
  EXPECT_FALSE(GlobMatch("*-q4_?", "m-q4_00"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  // Quadratic at worst, never exponential: a long hostile name returns promptly.
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*b", std::string(4000, 'a')));
  KeyRecord r;
  EXPECT_TRUE(r.AllowsModel("anything"));
  r.models = {"tiny*", "exact"};
  EXPECT_TRUE(r.AllowsModel("tiny-llama"));
  EXPECT_TRUE(r.AllowsModel("exact"));
  EXPECT_FALSE(r.AllowsModel("exactly"));
}

TEST(Credentials, BearerApiKeyAndBasic) {
  auto c = ParseCredential("Bearer  crl_x ", "");
  EXPECT_EQ(c.source, CredentialSource::kBearer);
  EXPECT_EQ(c.token, "crl_x");
  EXPECT_FALSE(c.malformed);
  EXPECT_EQ(ParseCredential("bearer tok", "").token, "tok");
  c = ParseCredential("", "tok2");
  EXPECT_EQ(c.source, CredentialSource::kApiKey);
  EXPECT_EQ(c.token, "tok2");
  // Authorization wins over x-api-key.
  EXPECT_EQ(ParseCredential("Bearer a", "b").token, "a");
  c = ParseCredential("Basic " + B64("user:secret"), "");
  EXPECT_EQ(c.source, CredentialSource::kBasic);
  EXPECT_EQ(c.token, "secret");
  EXPECT_EQ(ParseCredential("Basic " + B64("secret:"), "").token, "secret");  // the key typed as user name
  EXPECT_TRUE(ParseCredential("Basic !!!", "").malformed);
  EXPECT_TRUE(ParseCredential("Basic " + B64("nocolon"), "").malformed);
  EXPECT_TRUE(ParseCredential("Digest abc", "").malformed);
  EXPECT_TRUE(ParseCredential("Bearer ", "").malformed);
  EXPECT_TRUE(ParseCredential(std::string(5000, 'B'), "").malformed);
  EXPECT_TRUE(ParseCredential("", std::string(5000, 'k')).malformed);
  EXPECT_EQ(ParseCredential("", "").source, CredentialSource::kNone);
}

TEST(KeyStore, SeesRevocationOnTheNextCall) {
  TempDir dir;
  const std::string path = dir.path() + "/keys.json";
  KeyStore store(path);
  EXPECT_TRUE(store.Current()->keys.empty());  // no file: no keys
  KeySet set;
  auto a = CreateKey(set, "a", Scope::kInference, {}, 0);
  auto b = CreateKey(set, "b", Scope::kInference, {}, 0);
  ASSERT_TRUE(SaveKeyFile(path, set).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto cur = store.Current();
  EXPECT_NE(Authenticate(*cur, a->token), nullptr);
  ASSERT_TRUE(RevokeKey(set, "a").ok());
  ASSERT_TRUE(SaveKeyFile(path, set).ok());  // atomic rename: a new inode
  cur = store.Current();
  EXPECT_EQ(Authenticate(*cur, a->token), nullptr);
  EXPECT_NE(Authenticate(*cur, b->token), nullptr);
  // A broken edit keeps the previous keys (never opens the door) and says why.
  ASSERT_TRUE(WriteFileAtomic(path, "{broken", 0600).ok());
  cur = store.Current();
  EXPECT_NE(Authenticate(*cur, b->token), nullptr);
  EXPECT_FALSE(store.last_error().empty());
}

TEST(OpenDoor, RoutableWithoutKeyIsRefused) {
  EXPECT_TRUE(CheckOpenDoor({}, 0, false).ok());
  Status s = CheckOpenDoor({"0.0.0.0:11450"}, 0, false);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("--allow-unauthenticated-lan"), std::string::npos);
  EXPECT_TRUE(CheckOpenDoor({"0.0.0.0:11450"}, 1, false).ok());
  EXPECT_TRUE(CheckOpenDoor({"0.0.0.0:11450"}, 0, true).ok());
}

TEST(Throttle, DelaysGrowAfterTheFreeFailures) {
  FailureThrottle t;
  auto now = FailureThrottle::Clock::time_point{} + std::chrono::hours(1);
  for (size_t i = 0; i < FailureThrottle::kFreeFailures; ++i) EXPECT_EQ(t.OnFailure("10.0.0.1", now).count(), 0);
  EXPECT_EQ(t.OnFailure("10.0.0.1", now).count(), 100);
  EXPECT_EQ(t.OnFailure("10.0.0.1", now).count(), 200);
  EXPECT_EQ(t.OnFailure("10.0.0.1", now).count(), 400);
  for (int i = 0; i < 20; ++i) t.OnFailure("10.0.0.1", now);
  EXPECT_EQ(t.OnFailure("10.0.0.1", now).count(), 5000);  // capped
  EXPECT_EQ(t.OnFailure("10.0.0.2", now).count(), 0);     // per address
  // A quiet window forgets; a success forgets at once.
  EXPECT_EQ(t.OnFailure("10.0.0.1", now + std::chrono::seconds(61)).count(), 0);
  for (int i = 0; i < 10; ++i) t.OnFailure("10.0.0.3", now);
  t.OnSuccess("10.0.0.3");
  EXPECT_EQ(t.OnFailure("10.0.0.3", now).count(), 0);
}

TEST(Throttle, TracksBoundedAddresses) {
  FailureThrottle t;
  auto now = FailureThrottle::Clock::time_point{} + std::chrono::hours(1);
  for (size_t i = 0; i < FailureThrottle::kMaxTracked + 100; ++i) t.OnFailure("a" + std::to_string(i), now);
  EXPECT_LE(t.tracked(), FailureThrottle::kMaxTracked);
}

TEST(Listen, ParsesSeveralPlainAndTls) {
  auto l = proxy::ParseListenList("127.0.0.1:11450, https://0.0.0.0:11451,http://[::1]:0,https://localhost:1");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->size(), 4u);
  EXPECT_FALSE((*l)[0].tls);
  EXPECT_TRUE((*l)[0].loopback);
  EXPECT_TRUE((*l)[1].tls);
  EXPECT_FALSE((*l)[1].loopback);
  EXPECT_EQ((*l)[1].port, 11451);
  EXPECT_EQ((*l)[2].host, "::1");
  EXPECT_EQ((*l)[2].host_port, "[::1]:0");
  EXPECT_TRUE((*l)[2].loopback);
  EXPECT_EQ((*l)[3].host, "127.0.0.1");
  EXPECT_EQ(proxy::RoutableListens(*l), std::vector<std::string>{"https://0.0.0.0:11451"});
  EXPECT_FALSE(proxy::ParseListenList("[::]:11450").value().front().loopback);
  for (const char* bad :
       {"", "nohost", "example.com:80", "1.2.3.4:99999", "1.2.3.4:", "ftp://1.2.3.4:1", ":80",
        "1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5,1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,1.1.1.1:9"}) {
    EXPECT_FALSE(proxy::ParseListenList(bad).ok()) << bad;
  }
}

TEST(Tls, LocalCaMakesAPinnableServerCertificate) {
  TempDir dir;
  const std::string tdir = dir.path() + "/tls";
  auto f = tls::EnsureLocalCert(tdir, {"IP:192.0.2.7"});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  for (const char* key : {"/server.key", "/ca.key"}) {
    struct stat st {};
    ASSERT_EQ(::stat((tdir + key).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  auto leaf = tls::ReadCertInfo(f->cert);
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  EXPECT_EQ(leaf->sha256_fingerprint.size(), 32u * 3 - 1);
  auto has = [&](const std::string& n) { return std::find(leaf->san.begin(), leaf->san.end(), n) != leaf->san.end(); };
  EXPECT_TRUE(has("DNS:localhost"));
  EXPECT_TRUE(has("IP:127.0.0.1"));
  EXPECT_TRUE(has("IP:192.0.2.7"));
  // Idempotent; rotate keeps the CA and changes the leaf.
  auto again = tls::EnsureLocalCert(tdir, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(tls::ReadCertInfo(again->cert)->sha256_fingerprint, leaf->sha256_fingerprint);
  std::string ca_fp = tls::ReadCertInfo(f->ca)->sha256_fingerprint;
  auto rotated = tls::Rotate(tdir, {}, false);
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(tls::ReadCertInfo(rotated->cert)->sha256_fingerprint, leaf->sha256_fingerprint);
  EXPECT_EQ(tls::ReadCertInfo(rotated->ca)->sha256_fingerprint, ca_fp);
  // The server context takes it; no 0-RTT; a mismatched key is refused.
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  EXPECT_TRUE(tls::ConfigureServerContext(ctx, rotated->cert, rotated->key).ok());
  EXPECT_EQ(SSL_CTX_get_max_early_data(ctx), 0u);
  EXPECT_EQ(SSL_CTX_get_num_tickets(ctx), 2u);
  SSL_CTX_free(ctx);
  ctx = SSL_CTX_new(TLS_server_method());
  EXPECT_FALSE(tls::ConfigureServerContext(ctx, rotated->cert, tdir + "/ca.key").ok());
  SSL_CTX_free(ctx);
  EXPECT_FALSE(tls::ReadCertInfo(dir.path() + "/missing.pem").ok());
}

}  // namespace
}  // namespace corral::auth
