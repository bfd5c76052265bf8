// The web dashboard's pieces that need no browser (proxy/ui.h): the route classification
// (CSRF header, names, scopes), the embedded assets, the NDJSON -> SSE encoder's line bound,
// and the event bridge's backpressure against a fake control socket: a browser that does
// not drain gets one chunk, never more, however much the daemon sends.
#include "proxy/ui.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "support/test_support.h"

namespace corral::proxy {
namespace {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using Kind = UiRequest::Kind;

TEST(UiRoutes, PageAndAssetsNeedNoKeyApiNeedsReadActionsAdmin) {
  EXPECT_EQ(ClassifyUi("GET", "/ui", "").kind, Kind::kRedirect);
  UiRequest index = ClassifyUi("GET", "/ui/", "");
  ASSERT_EQ(index.kind, Kind::kAsset);
  EXPECT_EQ(index.asset->path, "/ui/index.html");
  EXPECT_NE(index.asset->bytes.find("app.js"), std::string_view::npos);
  EXPECT_EQ(ClassifyUi("GET", "/ui/app.js?v=1", "").kind, Kind::kAsset);
  EXPECT_EQ(ClassifyUi("GET", "/ui/app.css", "").kind, Kind::kAsset);
  EXPECT_EQ(ClassifyUi("GET", "/ui/../etc/passwd", "").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("POST", "/ui/app.js", "").kind, Kind::kBadMethod);
  EXPECT_FALSE(UiScope("GET", "/ui/app.js").has_value());
  EXPECT_EQ(UiScope("GET", "/ui/api/events"), auth::Scope::kRead);
  EXPECT_EQ(UiScope("POST", "/ui/api/models/a/load"), auth::Scope::kAdmin);
}

TEST(UiRoutes, ActionsNeedTheCustomHeaderAndMapToControlRoutes) {
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/alpha/unload", "").kind, Kind::kNoActionHeader);
  EXPECT_EQ(ClassifyUi("GET", "/ui/api/models/alpha/unload", "1").kind, Kind::kBadMethod);
  UiRequest unload = ClassifyUi("POST", "/ui/api/models/alpha/unload", "1");
  ASSERT_EQ(unload.kind, Kind::kControl);
  EXPECT_EQ(unload.method, "POST");
  EXPECT_EQ(unload.target, "/v1/models/alpha/unload");
  // Load takes a catalog name (any characters): it travels in the JSON body, escaped.
  UiRequest load = ClassifyUi("POST", "/ui/api/models/hf.co%2Fa%2Fb%3AQ4%22x/load", "1");
  ASSERT_EQ(load.kind, Kind::kControl);
  EXPECT_EQ(load.target, "/v1/models/start");
  EXPECT_EQ(load.body, R"({"model":"hf.co/a/b:Q4\"x"})");
  // A running child's name only for the path routes; control bytes and bad escapes refused.
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/a%2F..%2Fshutdown/pin", "1").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/a%0a/load", "1").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/a%4/load", "1").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/alpha/shutdown", "1").kind, Kind::kNotFound);
  UiRequest logs = ClassifyUi("GET", "/ui/api/logs?name=alpha&lines=99999999", "");
  ASSERT_EQ(logs.kind, Kind::kControl);
  EXPECT_EQ(logs.target, "/v1/logs?name=alpha&lines=500");
  EXPECT_EQ(ClassifyUi("GET", "/ui/api/logs?name=a%26lines%3D1", "").kind, Kind::kNotFound);
}

TEST(UiRoutes, LogStreamFollowsAChildsLogOnly) {
  UiRequest r = ClassifyUi("GET", "/ui/api/logs/stream?name=alpha&lines=300", "");
  ASSERT_EQ(r.kind, Kind::kEvents);
  EXPECT_EQ(r.target, "/v1/logs/follow?name=alpha&lines=300");
  EXPECT_EQ(ClassifyUi("GET", "/ui/api/logs/stream?name=alpha&lines=9999999", "").target,
            "/v1/logs/follow?name=alpha&lines=2000");
  EXPECT_EQ(ClassifyUi("GET", "/ui/api/logs/stream?name=alpha&lines=-1", "").target,
            "/v1/logs/follow?name=alpha&lines=2000");
  EXPECT_EQ(ClassifyUi("GET", "/ui/api/events", "").target, "/v1/events");
  for (const char* bad : {"/ui/api/logs/stream", "/ui/api/logs/stream?name=", "/ui/api/logs/stream?name=..%2Fetc",
                          "/ui/api/logs/stream?name=%2Fetc%2Fpasswd", "/ui/api/logs/stream?name=.hidden",
                          "/ui/api/logs/stream?name=a%26lines%3D1", "/ui/api/logs/stream?name=a%0aGET"}) {
    EXPECT_EQ(ClassifyUi("GET", bad, "").kind, Kind::kNotFound) << bad;
  }
  EXPECT_EQ(ClassifyUi("GET", ("/ui/api/logs/stream?name=" + std::string(65, 'a')).c_str(), "").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/logs/stream?name=alpha", "1").kind, Kind::kBadMethod);
  EXPECT_EQ(UiScope("GET", "/ui/api/logs/stream?name=alpha"), auth::Scope::kRead);
}

TEST(UiRoutes, BenchReportsByListedIdNeverAPath) {
  UiRequest list = ClassifyUi("GET", "/ui/api/bench", "");
  ASSERT_EQ(list.kind, Kind::kControl);
  EXPECT_EQ(list.target, "/v1/bench");
  UiRequest one = ClassifyUi("GET", "/ui/api/bench/reports/20261202T050000Z-lan", "");
  ASSERT_EQ(one.kind, Kind::kControl);
  EXPECT_EQ(one.method, "GET");
  EXPECT_EQ(one.target, "/v1/bench/reports/20261202T050000Z-lan");
  for (const char* bad :
       {"/ui/api/bench/reports/", "/ui/api/bench/reports/..", "/ui/api/bench/reports/../../etc/passwd",
        "/ui/api/bench/reports/%2e%2e", "/ui/api/bench/reports/a%2Fb", "/ui/api/bench/reports/a/b",
        "/ui/api/bench/reports/.hidden", "/ui/api/bench/reports/-rf", "/ui/api/bench/reports/a..b",
        "/ui/api/bench/reports/a b", "/ui/api/bench/reports/%00"}) {
    EXPECT_EQ(ClassifyUi("GET", bad, "").kind, Kind::kNotFound) << bad;
  }
  EXPECT_EQ(ClassifyUi("GET", ("/ui/api/bench/reports/" + std::string(129, 'a')).c_str(), "").kind, Kind::kNotFound);
  EXPECT_EQ(ClassifyUi("GET", ("/ui/api/bench/reports/" + std::string(128, 'a')).c_str(), "").kind, Kind::kControl);
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/bench", "1").kind, Kind::kBadMethod);
  EXPECT_EQ(ClassifyUi("DELETE", "/ui/api/bench/reports/x", "1").kind, Kind::kBadMethod);
}

TEST(UiRoutes, ABenchRunIsAnAdminActionWithTheHeader) {
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/alpha/bench", "").kind, Kind::kNoActionHeader);
  EXPECT_EQ(UiScope("POST", "/ui/api/models/alpha/bench"), auth::Scope::kAdmin);
  UiRequest run = ClassifyUi("POST", "/ui/api/models/alpha/bench?runs=5", "1");
  ASSERT_EQ(run.kind, Kind::kControl);
  EXPECT_EQ(run.method, "POST");
  EXPECT_EQ(run.target, "/v1/bench/run");
  EXPECT_EQ(run.body, R"({"model":"alpha","runs":5})");
  EXPECT_EQ(ClassifyUi("POST", "/ui/api/models/alpha/bench", "1").body, R"({"model":"alpha"})");
  for (const char* bad : {"/ui/api/models/alpha/bench?runs=0", "/ui/api/models/alpha/bench?runs=101",
                          "/ui/api/models/alpha/bench?runs=99999999999", "/ui/api/models/alpha/bench?runs=x",
                          "/ui/api/models/a%2F..%2Fx/bench", "/ui/api/models/hf.co%2Fa/bench"}) {
    EXPECT_EQ(ClassifyUi("POST", bad, "1").kind, Kind::kNotFound) << bad;
  }
}

TEST(UiRoutes, TheApiAnswersItsOwnPageOnly) {
  EXPECT_EQ(UiCrossOriginRefusal("", "", "127.0.0.1:11450", false), "");
  EXPECT_EQ(UiCrossOriginRefusal("http://127.0.0.1:11450", "same-origin", "127.0.0.1:11450", false), "");
  EXPECT_EQ(UiCrossOriginRefusal("http://LOCALHOST:11450", "", "localhost:11450", false), "");
  EXPECT_NE(UiCrossOriginRefusal("https://127.0.0.1:11450", "", "127.0.0.1:11450", false), "");
  EXPECT_NE(UiCrossOriginRefusal("http://evil.example", "", "127.0.0.1:11450", false), "");
  EXPECT_NE(UiCrossOriginRefusal("http://127.0.0.1:11450", "cross-site", "127.0.0.1:11450", false), "");
  EXPECT_NE(UiCrossOriginRefusal("http://127.0.0.1:114500", "", "127.0.0.1:11450", false), "");
  EXPECT_NE(UiCrossOriginRefusal("null", "", "127.0.0.1:11450", false), "");
}

TEST(UiSse, LinesBecomeEventsAndAnOversizedLineIsRefused) {
  SseEncoder e;
  std::string out;
  ASSERT_TRUE(e.Add("{\"t\":\"hello\"}\n{\"t\":", out).ok());
  EXPECT_EQ(out, "data: {\"t\":\"hello\"}\n\n");
  out.clear();
  ASSERT_TRUE(e.Add("\"gauges\"}\r\n\n", out).ok());
  EXPECT_EQ(out, "data: {\"t\":\"gauges\"}\n\n");
  EXPECT_EQ(e.pending(), 0U);
  std::string big(kUiMaxLineBytes, 'x');
  out.clear();
  EXPECT_TRUE(e.Add(big, out).ok());  // exactly the bound, still partial
  EXPECT_FALSE(e.Add("y", out).ok());
  EXPECT_EQ(e.pending(), 0U) << "the partial line is freed";
}

TEST(UiSse, TheBridgeReadsNothingMoreUntilResumed) {
  testing::TempDir dir;
  const std::string path = dir.File("control.sock");
  asio::io_context ioc;
  local::acceptor acceptor(ioc, local::endpoint(path));
  local::socket server(ioc);
  // The daemon's side: a 200 head, then 32 MiB of lines as fast as the socket takes them.
  std::string feed = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n";
  const std::string line =
      "{\"t\":\"request\",\"route\":\"/v1/chat/completions\",\"pad\":\"" + std::string(200, 'p') + "\"}\n";
  while (feed.size() < (32U << 20)) feed += line;
  acceptor.async_accept(server, [&](const boost::system::error_code& ec) {
    ASSERT_FALSE(ec);
    asio::async_write(server, asio::buffer(feed), [](const boost::system::error_code&, size_t) {});
  });

  auto bridge = UiEventBridge::Create(ioc, path);
  int head = 0;
  size_t chunks = 0, bytes = 0;
  UiEventBridge::Callbacks cb;
  cb.on_head = [&](int status, std::string) { head = status; };
  cb.on_data = [&](std::string b) {
    ++chunks;
    bytes += b.size();
  };
  cb.on_end = [] {};
  bridge->Start(std::move(cb));
  // Bounded by work, not by a clock assertion: run until nothing is left to do but the
  // server's blocked write (the socket buffers are full), at most a few seconds.
  for (int i = 0; i < 200 && chunks == 0; ++i) ioc.run_for(std::chrono::milliseconds(10));
  ioc.run_for(std::chrono::milliseconds(300));
  EXPECT_EQ(head, 200);
  EXPECT_EQ(chunks, 1U) << "no Resume(): one chunk, then the bridge waits";
  EXPECT_LE(bytes, (64U << 10) + (64U << 10) / line.size() * 8 + 1024) << "one read's worth of events";
  // Resuming delivers the next chunk; Close() stops every callback.
  bridge->Resume();
  for (int i = 0; i < 200 && chunks == 1; ++i) ioc.run_for(std::chrono::milliseconds(10));
  EXPECT_EQ(chunks, 2U);
  bridge->Close();
  bridge->Resume();
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(chunks, 2U);
}

TEST(UiSse, NoDaemonAnswersWithAClearError) {
  testing::TempDir dir;
  asio::io_context ioc;
  auto bridge = UiEventBridge::Create(ioc, dir.File("nobody.sock"));
  int head = 0;
  std::string body;
  UiEventBridge::Callbacks cb;
  cb.on_head = [&](int status, std::string b) {
    head = status;
    body = std::move(b);
  };
  cb.on_data = [](std::string) {};
  cb.on_end = [] {};
  bridge->Start(std::move(cb));
  ioc.run();
  EXPECT_EQ(head, 502);
  EXPECT_NE(body.find("control socket"), std::string::npos) << body;

  int status = 0;
  std::string reply;
  UiRequest r = ClassifyUi("POST", "/ui/api/models/alpha/pin", "1");
  CallControl(ioc, dir.File("nobody.sock"), r, [&](int s, std::string b) {
    status = s;
    reply = std::move(b);
  });
  ioc.restart();
  ioc.run();
  EXPECT_EQ(status, 502);
  EXPECT_NE(reply.find("did not answer"), std::string::npos) << reply;
}

}  // namespace
}  // namespace corral::proxy
