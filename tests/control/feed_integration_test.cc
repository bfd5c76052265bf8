// GET /v1/events against a real daemon with synthetic models: the hello snapshot, a child's
// state changes up to ready, one record for a request relayed by the proxy process (numbers,
// never the prompt), gauges, the watcher cap, and the end of the stream when the daemon stops.
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>

#include "control/transport.h"
#include "support/daemon_fixture.h"
#include "support/test_support.h"

namespace corral {
namespace {

using namespace std::chrono_literals;
using control::FeedEvent;

class FeedIntegrationTest : public testing::PrivateDaemonTest {
 protected:
  void SetUp() override {
    PrivateDaemonTest::SetUp();
    std::vector<std::string> a = {"--n-embd", "64",    "--n-layer", "2",      "--n-head", "4",      "--n-ff",
                                  "128",      "--ctx", "512",       "--name", "alpha",    "--seed", "1"};
    ASSERT_FALSE(testing::MakeModel(dir_.File("data/corral/models"), "alpha.gguf", a).empty());
  }
  std::string Socket() { return env_["XDG_RUNTIME_DIR"] + "/corral/corral.sock"; }
  // Reads events until `pred` matches one (returned) or `limit` passes.
  std::optional<FeedEvent> Until(control::FeedConnection& c, const std::function<bool(const FeedEvent&)>& pred,
                                 std::chrono::seconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{c.fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      std::vector<FeedEvent> evs;
      Status s = c.Read(evs);
      for (auto& e : evs) {
        seen_.push_back(e.type);
        if (pred(e)) return e;
      }
      if (!s.ok()) {
        closed_ = s;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }
  std::vector<FeedEvent::Type> seen_;
  Status closed_ = Status::Ok();
};

TEST_F(FeedIntegrationTest, HelloChangesRecordsGaugesCapAndEnd) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  auto feed = control::FeedConnection::Open(Socket(), 5s);
  ASSERT_TRUE(feed.ok()) << feed.status().message();
  control::FeedConnection& c = **feed;

  auto hello = Until(c, [](const FeedEvent& e) { return e.type == FeedEvent::Type::kHello; });
  ASSERT_TRUE(hello.has_value());
  ASSERT_TRUE(hello->body["catalog"].is_array());
  ASSERT_EQ(hello->body["catalog"].size(), 1U);
  const std::string alpha = hello->body["catalog"][0]["name"];
  EXPECT_TRUE(hello->body["models"].empty());

  // A start: model lines up to ready.
  ASSERT_EQ(Corral({"start", alpha}).exit_code, 0);
  auto ready = Until(
      c, [](const FeedEvent& e) { return e.type == FeedEvent::Type::kModel && e.body.value("state", "") == "ready"; });
  ASSERT_TRUE(ready.has_value());
  EXPECT_TRUE(ready->body["argv"].is_array());

  // A request through the proxy (in its own process): one record, numbers only.
  const std::string prompt = "a-prompt-that-must-never-reach-the-feed";
  const std::string body = nlohmann::json{
      {"model", alpha},
      {"messages", {{{"role", "user"}, {"content", prompt}}}},
      {"max_tokens", 8},
      {"stream", true}}.dump();
  auto r = testing::Http("POST", port, "/v1/chat/completions", body);
  ASSERT_TRUE(r.ok() && r->status == 200);
  auto rec = Until(c, [](const FeedEvent& e) { return e.type == FeedEvent::Type::kRequest; });
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->request.route, "/v1/chat/completions");
  EXPECT_EQ(rec->request.model, alpha);
  EXPECT_FALSE(rec->request.child.empty());
  EXPECT_EQ(rec->request.status, 200);
  EXPECT_GT(rec->request.tokens, 0);
  EXPECT_GE(rec->request.ttft_ms, 0);
  EXPECT_GT(rec->request.tok_s, 0);
  EXPECT_GT(rec->request.duration_ms, 0);
  EXPECT_GE(rec->request.proxy_added_us, 0);
  EXPECT_EQ(rec->request.client, "127.0.0.1");  // the proxy's peer, carried over the edge link

  // Gauges: the request is counted for its child.
  auto g = Until(c, [&](const FeedEvent& e) {
    if (e.type != FeedEvent::Type::kGauges) return false;
    for (const auto& m : e.gauges.models) {
      if (m.requests >= 1) return true;
    }
    return false;
  });
  ASSERT_TRUE(g.has_value());
  EXPECT_TRUE(g->gauges.models[0].pinned);  // started by hand
  EXPECT_GT(g->gauges.used_bytes, 0U);

  // The replay for a late watcher has the record too, and no watcher ever sees the prompt.
  {
    auto late = control::FeedConnection::Open(Socket(), 5s);
    ASSERT_TRUE(late.ok());
    auto again = Until(
        **late, [](const FeedEvent& e) { return e.type == FeedEvent::Type::kRequest; }, 10s);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->request.tokens, rec->request.tokens);
  }
  // The cap: 16 watchers (a watcher that hung up is released at its next write, within a
  // gauge tick, so the late one above may still count); the next is refused with a message.
  std::vector<std::unique_ptr<control::FeedConnection>> many;
  Status refused = Status::Ok();
  for (int i = 0; i < 20 && refused.ok(); ++i) {
    auto f = control::FeedConnection::Open(Socket(), 5s);
    if (f.ok()) {
      many.push_back(std::move(*f));
    } else {
      refused = f.status();
    }
  }
  EXPECT_FALSE(refused.ok());
  EXPECT_GE(many.size(), 14U);
  EXPECT_LE(many.size(), 15U);  // + `c` = 16
  EXPECT_NE(refused.message().find("too many"), std::string::npos) << refused.message();
  many.clear();

  // The daemon stops: the stream ends (kUnavailable), nothing hangs.
  Corral({"daemon", "stop"});
  EXPECT_FALSE(Until(
                   c, [](const FeedEvent&) { return false; }, 20s)
                   .has_value());
  EXPECT_EQ(closed_.code(), StatusCode::kUnavailable) << closed_.message();
}

}  // namespace
}  // namespace corral
