// The control-plane server and client over a real Unix socket.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "control/transport.h"
#include "support/test_support.h"

namespace corral::control {
namespace {

using testing::TempDir;

TEST(ControlTransportTest, RoundTripPermissionsAndErrors) {
  TempDir dir;
  std::string sock_dir = dir.File("run/corral");
  ASSERT_TRUE(PrepareSocketDir(sock_dir).ok());
  std::atomic<int> calls{0};
  ControlServer server([&](const Request& r) -> Response {
    calls.fetch_add(1);
    if (r.target.path == "/v1/echo") {
      return {200,
              {{"method", r.method}, {"body", r.body}, {"q", r.target.query.count("x") ? r.target.query.at("x") : ""}}};
    }
    return {404, ErrorBody(ErrorCode::kNotRunning, "nothing at " + r.target.path)};
  });
  std::string path = sock_dir + "/corral.sock";
  ASSERT_TRUE(server.Listen(path).ok());
  server.Start();

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(sock_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  ControlClient client(path);
  nlohmann::json body = {{"a", 1}};
  for (int i = 0; i < 3; ++i) {  // the same keep-alive connection
    auto r = client.Call("POST", "/v1/echo?x=a%20b", &body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_FALSE(r->error.has_value());
    EXPECT_EQ(r->body["method"], "POST");
    EXPECT_EQ(r->body["q"], "a b");
    EXPECT_EQ(nlohmann::json::parse(r->body["body"].get<std::string>()), body);
  }
  auto missing = client.Call("GET", "/v1/nope");
  ASSERT_TRUE(missing.ok());
  ASSERT_TRUE(missing->error.has_value());
  EXPECT_EQ(missing->error->code, ErrorCode::kNotRunning);
  EXPECT_EQ(missing->http_status, 404);
  auto bad_target = client.Call("GET", "/v1/x?y=%zz");
  ASSERT_TRUE(bad_target.ok());
  ASSERT_TRUE(bad_target->error.has_value());
  EXPECT_EQ(bad_target->error->code, ErrorCode::kBadRequest);

  // Several clients at once, each on its own connection thread.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      ControlClient c(path);
      for (int i = 0; i < 10; ++i) {
        auto r = c.Call("GET", "/v1/echo");
        if (r.ok() && !r->error) good.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 40);

  server.Stop();
  auto after = ControlClient(path).Call("GET", "/v1/echo");
  EXPECT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
}

TEST(ControlTransportTest, MalformedHttpGetsA400) {
  TempDir dir;
  ASSERT_TRUE(PrepareSocketDir(dir.File("s")).ok());
  ControlServer server([](const Request&) -> Response { return {200, {{"ok", true}}}; });
  std::string path = dir.File("s/c.sock");
  ASSERT_TRUE(server.Listen(path).ok());
  server.Start();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const char junk[] = "GARBAGE \x01\x02 HTTP/9\r\n\r\n";
  ASSERT_GT(::write(fd, junk, sizeof(junk) - 1), 0);
  char buf[512] = {};
  ssize_t r = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  ASSERT_GT(r, 0);
  std::string res(buf);
  EXPECT_EQ(res.rfind("HTTP/1.1 400", 0), 0u) << res;
  EXPECT_NE(res.find("bad_request"), std::string::npos) << res;
}

TEST(ControlTransportTest, RefusesADirectoryOpenToOthers) {
  TempDir dir;
  std::string d = dir.File("open");
  ASSERT_EQ(::mkdir(d.c_str(), 0777), 0);
  ::chmod(d.c_str(), 0777);
  ASSERT_TRUE(PrepareSocketDir(d).ok());  // ours: tightened to 0700
  struct stat st {};
  ASSERT_EQ(::stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(ControlTransportTest, RefusesADirectoryOwnedBySomeoneElse) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to hand a directory to another uid";
  TempDir dir;
  std::string d = dir.File("theirs");
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  ASSERT_EQ(::chown(d.c_str(), 65534, 65534), 0);
  Status s = PrepareSocketDir(d);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("not by you"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace corral::control
