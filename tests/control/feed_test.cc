// The event feed (control/feed.h): order, replay, bounds (slow watchers lag, never grow),
// the subscriber cap, closing, the gauge ticker, and the client-side line parser.
#include "control/feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace corral::control {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  LineSplitter s;
  EXPECT_TRUE(s.Add(text, out).ok());
  return out;
}

RequestEvent Req(int i) {
  RequestEvent e;
  e.ts_ms = 1000 + i;
  e.route = "/v1/chat/completions";
  e.model = "tiny";
  e.child = "tiny";
  e.status = 200;
  e.ttft_ms = 1.5;
  e.tokens = i;
  e.tok_s = 900.25;
  e.duration_ms = 20;
  e.proxy_added_us = 40;
  e.client = "192.0.2.7";
  return e;
}

TEST(FeedTest, HelloFirstThenHistoryThenLiveLinesInOrder) {
  EventFeed feed(FeedOptions{4, 100, 3, 1000ms});
  for (int i = 0; i < 5; ++i) feed.PublishRequest(Req(i));  // nobody watches: history only
  feed.Publish(R"({"t":"gone","name":"nobody-sees-this"})");
  auto sub = feed.Subscribe(R"({"t":"hello","v":1})");
  ASSERT_NE(sub, nullptr);
  feed.Publish(R"({"t":"gone","name":"a"})");
  auto text = sub->Next(0ms);
  ASSERT_TRUE(text.has_value());
  auto lines = Lines(*text);
  ASSERT_EQ(lines.size(), 5U);  // hello, the last 3 requests, the live line
  EXPECT_EQ(lines[0], R"({"t":"hello","v":1})");
  for (int i = 0; i < 3; ++i) {
    auto ev = ParseFeedLine(lines[static_cast<size_t>(i + 1)]);
    ASSERT_TRUE(ev.ok()) << ev.status().message();
    EXPECT_EQ(ev->type, FeedEvent::Type::kRequest);
    EXPECT_EQ(ev->request.tokens, i + 2);
  }
  EXPECT_EQ(lines[4], R"({"t":"gone","name":"a"})");
  EXPECT_EQ(sub->Next(0ms).value(), "");  // nothing more
}

TEST(FeedTest, ASlowWatcherLagsWithACountAndNeverGrows) {
  EventFeed feed(FeedOptions{4, 10, 0, 1000ms});
  auto slow = feed.Subscribe("{}");
  auto fast = feed.Subscribe("{}");
  for (int i = 0; i < 100; ++i) {
    feed.Publish("x" + std::to_string(i));
    if (i % 5 == 4) {
      ASSERT_TRUE(fast->Next(0ms).has_value());  // keeps up
    }
  }
  EXPECT_EQ(feed.dropped_total(), 91U);  // the slow one kept 10 lines (hello + 9)
  auto lines = Lines(*slow->Next(0ms));
  ASSERT_EQ(lines.size(), 11U);
  auto lag = ParseFeedLine(lines[0]);
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ(lag->type, FeedEvent::Type::kLagged);
  EXPECT_EQ(lag->dropped, 91U);
  EXPECT_EQ(lines[1], "{}");
  EXPECT_EQ(lines[10], "x8");
  feed.Publish("after");
  EXPECT_EQ(Lines(*slow->Next(0ms)), std::vector<std::string>{"after"});  // caught up, no lag line
}

TEST(FeedTest, SubscriberCapAndUnsubscribe) {
  EventFeed feed(FeedOptions{2, 10, 0, 1000ms});
  auto a = feed.Subscribe("{}");
  auto b = feed.Subscribe("{}");
  EXPECT_EQ(feed.Subscribe("{}"), nullptr);
  EXPECT_EQ(feed.subscribers(), 2U);
  b.reset();
  EXPECT_EQ(feed.subscribers(), 1U);
  EXPECT_NE(feed.Subscribe("{}"), nullptr);
}

TEST(FeedTest, CloseWakesAWaitingWatcher) {
  EventFeed feed;
  auto sub = feed.Subscribe("{}");
  ASSERT_TRUE(sub->Next(0ms).has_value());  // the hello
  std::atomic<bool> woke{false};
  std::thread t([&] {
    EXPECT_FALSE(sub->Next(60s).has_value());
    woke.store(true);
  });
  feed.Close();
  t.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(feed.Subscribe("{}"), nullptr);
}

TEST(FeedTest, TheTickerPublishesGaugesOnlyWhileSomeoneWatches) {
  std::atomic<int> calls{0};
  EventFeed feed(FeedOptions{4, 100, 0, 5ms}, [&] {
    calls.fetch_add(1);
    Gauges g;
    g.streams = 2;
    g.models.push_back({"m", 1, 1024, true, -1, 7});
    return g;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(calls.load(), 0);  // nobody watches: no work (a sleep that could only find a bug)
  auto sub = feed.Subscribe("{}");
  std::vector<std::string> lines;
  while (lines.size() < 3) {
    auto t = sub->Next(5s);
    ASSERT_TRUE(t.has_value());
    for (auto& l : Lines(*t)) lines.push_back(l);
  }
  auto g = ParseFeedLine(lines[1]);
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->type, FeedEvent::Type::kGauges);
  EXPECT_EQ(g->gauges.streams, 2);
  ASSERT_EQ(g->gauges.models.size(), 1U);
  EXPECT_EQ(g->gauges.models[0].requests, 7U);
  EXPECT_TRUE(g->gauges.models[0].pinned);
  EXPECT_GE(calls.load(), 2);
}

TEST(FeedTest, ConcurrentPublishersAndWatchers) {
  EventFeed feed(FeedOptions{8, 100000, 16, 1000ms});
  std::vector<std::unique_ptr<EventFeed::Subscription>> subs;
  for (int i = 0; i < 4; ++i) subs.push_back(feed.Subscribe("{}"));
  std::vector<std::thread> pubs;
  for (int p = 0; p < 3; ++p) {
    pubs.emplace_back([&] {
      for (int i = 0; i < 500; ++i) feed.PublishRequest(Req(i));
    });
  }
  std::vector<std::thread> readers;
  std::atomic<size_t> total{0};
  for (auto& s : subs) {
    readers.emplace_back([&total, sub = s.get()] {
      size_t n = 0;
      while (n < 1501) {
        auto t = sub->Next(5s);
        if (!t || t->empty()) break;
        n += Lines(*t).size();
      }
      total.fetch_add(n);
    });
  }
  for (auto& t : pubs) t.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(total.load(), 4U * 1501U);
  EXPECT_EQ(feed.dropped_total(), 0U);
}

// Speculative decoding (issue 17): the draft counts ride on a request line only when the model
// drafted; other lines keep their shape.
TEST(FeedTest, DraftCountsOnlyFromADraftingModel) {
  const std::string plain = EncodeRequest(Req(1));
  EXPECT_EQ(plain.find("draft"), std::string::npos) << plain;
  auto p = ParseFeedLine(plain);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->request.draft_tokens, -1);
  RequestEvent e = Req(2);
  e.draft_tokens = 40;
  e.draft_accepted = 31;
  auto d = ParseFeedLine(EncodeRequest(e));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->request.draft_tokens, 40);
  EXPECT_EQ(d->request.draft_accepted, 31);
  EXPECT_FALSE(ParseFeedLine(R"({"t":"request","model":"m","draft_tokens":"many"})").ok());
}

TEST(FeedTest, RecordsRoundTripWithoutText) {
  auto ev = ParseFeedLine(EncodeRequest(Req(3)));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->request.route, "/v1/chat/completions");
  EXPECT_EQ(ev->request.child, "tiny");
  EXPECT_DOUBLE_EQ(ev->request.tok_s, 900.25);
  EXPECT_EQ(ev->request.proxy_added_us, 40);
  EXPECT_EQ(ev->request.client, "192.0.2.7");
  Gauges g;
  g.req_per_s = 3.5;
  g.budget_bytes = 1 << 30;
  g.used_bytes = 5;
  auto gv = ParseFeedLine(EncodeGauges(g));
  ASSERT_TRUE(gv.ok());
  EXPECT_DOUBLE_EQ(gv->gauges.req_per_s, 3.5);
  EXPECT_EQ(gv->gauges.budget_bytes, 1U << 30);
  EXPECT_EQ(gv->gauges.used_bytes, 5U);
}

TEST(FeedTest, TheParserRefusesBadLinesAndSkipsUnknownTypes) {
  auto unknown = ParseFeedLine(R"({"t":"from-the-future","x":[1,2]})");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->type, FeedEvent::Type::kUnknown);
  for (const std::string bad : {"", "[]", "{}", "nul", R"({"t":1})", R"({"t":"hello"})", R"({"t":"model"})",
                                R"({"t":"model","model":{"name":"a"}})", R"({"t":"request","model":5})",
                                R"({"t":"request","model":"m","status":"200"})", R"({"t":"gauges","models":{}})",
                                R"({"t":"gauges","models":[1]})", R"({"t":"gauges","memory":[]})",
                                R"({"t":"lagged","dropped":-1})", R"({"t":"gone"})"}) {
    EXPECT_FALSE(ParseFeedLine(bad).ok()) << bad;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(ParseFeedLine(R"({"t":"x","a":)" + deep).ok());
}

TEST(FeedTest, TheSplitterRefusesAnEndlessLine) {
  LineSplitter s;
  std::vector<std::string> out;
  std::string chunk(64 << 10, 'a');
  Status st = Status::Ok();
  for (int i = 0; i < 20 && st.ok(); ++i) st = s.Add(chunk, out);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(out.empty());
  LineSplitter t;
  ASSERT_TRUE(t.Add("a\nb", out).ok());
  ASSERT_TRUE(t.Add("c\n\n", out).ok());
  EXPECT_EQ(out, (std::vector<std::string>{"a", "bc", ""}));
}

}  // namespace
}  // namespace corral::control
