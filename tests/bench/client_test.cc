// The client's record math (TTFT, decode rate, ITL, failure rules), URL and target parsing,
// and the request body every workload sends.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/client.h"
#include "bench/runner.h"
#include "bench/suites.h"

namespace corral::bench {
namespace {

StreamTrace GoodTrace() {
  StreamTrace t;
  t.http_status = 200;
  t.saw_done = true;
  t.connect_ms = 0.1;
  t.end_ms = 45;
  t.content_ms = {10, 20, 30, 40};
  t.prompt_tokens = 50;
  t.completion_tokens = 4;
  return t;
}

TEST(FinishRecord, Metrics) {
  RequestRecord r;
  FinishRecord(GoodTrace(), 4, r);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_DOUBLE_EQ(r.ttft_ms, 10);
  EXPECT_DOUBLE_EQ(r.decode_ms, 30);
  EXPECT_DOUBLE_EQ(r.decode_tps, 100);  // 3 tokens after the first in 30 ms
  EXPECT_DOUBLE_EQ(r.itl_p50_ms, 10);
  EXPECT_DOUBLE_EQ(r.itl_p99_ms, 10);
  EXPECT_DOUBLE_EQ(r.prompt_tps, 5000);  // 50 tokens in 10 ms
  EXPECT_DOUBLE_EQ(r.e2e_ms, 45);
  EXPECT_EQ(r.content_events, 4);
}

TEST(FinishRecord, FailureRules) {
  RequestRecord wrong_count;
  FinishRecord(GoodTrace(), 64, wrong_count);
  EXPECT_FALSE(wrong_count.ok);
  EXPECT_NE(wrong_count.error.find("expected 64"), std::string::npos);

  StreamTrace no_done = GoodTrace();
  no_done.saw_done = false;
  RequestRecord a;
  FinishRecord(no_done, 4, a);
  EXPECT_FALSE(a.ok);

  StreamTrace http = GoodTrace();
  http.http_status = 503;
  RequestRecord b;
  FinishRecord(http, 4, b);
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.error, "HTTP 503");

  StreamTrace no_usage = GoodTrace();
  no_usage.completion_tokens = -1;
  RequestRecord c;
  FinishRecord(no_usage, 4, c);
  EXPECT_FALSE(c.ok);

  StreamTrace empty;
  empty.http_status = 200;
  empty.saw_done = true;
  RequestRecord d;
  FinishRecord(empty, 0, d);
  EXPECT_FALSE(d.ok);
  EXPECT_DOUBLE_EQ(d.ttft_ms, -1);
}

TEST(ApplyEventData, BuildsATraceFromChunks) {
  StreamTrace t;
  ApplyEventData(R"({"choices":[{"delta":{"content":"a"}}]})", 5, t);
  ApplyEventData(R"({"choices":[{"delta":{"content":""}}]})", 6, t);  // empty content: no event
  ApplyEventData(R"({"choices":[{"delta":{"content":"b"}}]})", 7, t);
  ApplyEventData("garbage", 8, t);
  ApplyEventData(R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2},"timings":{"predicted_n":2}})", 9,
                 t);
  ApplyEventData("[DONE]", 9, t);
  EXPECT_EQ(t.content_ms, (std::vector<double>{5, 7}));
  EXPECT_EQ(t.malformed_events, 1);
  EXPECT_EQ(t.completion_tokens, 2);
  EXPECT_TRUE(t.has_timings);
  EXPECT_TRUE(t.saw_done);
}

TEST(ParseHttpUrl, AcceptsAndRejects) {
  auto a = ParseHttpUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "8080");
  EXPECT_EQ(a->prefix, "");
  auto b = ParseHttpUrl("http://example.lan/api/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, "80");
  EXPECT_EQ(b->prefix, "/api");
  auto c = ParseHttpUrl("http://[::1]:11450");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, "11450");
  auto d = ParseHttpUrl("https://192.0.2.2/v1");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tls);
  EXPECT_EQ(d->port, "443");
  EXPECT_EQ(d->prefix, "/v1");
  EXPECT_FALSE(b->tls);
  for (const char* bad : {"ftp://x:1", "https://", "x:1", "http://", "http://h:0", "http://h:99999", "http://h:8a",
                          "http://:80", "http://[::1"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
  }
}

TEST(ParseTargetSpec, NameUrlAndSettings) {
  auto t = ParseTargetSpec("ollama=http://127.0.0.1:11434,model=tiny:latest,pid=123");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->name, "ollama");
  EXPECT_EQ(t->url, "http://127.0.0.1:11434");
  EXPECT_EQ(t->model, "tiny:latest");
  EXPECT_EQ(t->pid, 123);
  EXPECT_FALSE(ParseTargetSpec("http://x:1").ok());
  EXPECT_FALSE(ParseTargetSpec("=http://x:1").ok());
  EXPECT_FALSE(ParseTargetSpec("a=ftp://x").ok());
  EXPECT_FALSE(ParseTargetSpec("a=http://x:1,colour=red").ok());
  EXPECT_FALSE(ParseTargetSpec("a=http://x:1,pid=12x").ok());
}

TEST(ChatBody, FixesSamplingAndTokenCount) {
  Workload w;
  w.name = "chat_turn";
  w.prompt = "hello";
  w.max_tokens = 64;
  Target t;
  t.model = "m";
  auto j = nlohmann::json::parse(ChatBody(w, t, 42));
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["temperature"], 0);
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["max_tokens"], 64);
  EXPECT_EQ(j["n_predict"], 64);
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["messages"][0]["content"], "hello");
  EXPECT_EQ(j["cache_prompt"], true);
  w.name = "rag_prefill";
  t.model.clear();
  auto r = nlohmann::json::parse(ChatBody(w, t, 1));
  EXPECT_EQ(r["cache_prompt"], false);
  EXPECT_FALSE(r.contains("model"));
}

TEST(Workloads, ShippedFilesLoad) {
  const std::string dir = WorkloadDir("");
  for (const auto& name : WorkloadNames()) {
    auto w = LoadWorkload(dir, name, false);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_FALSE(w->prompt.empty());
  }
  auto rag = LoadWorkload(dir, "rag_prefill", false);
  EXPECT_GT(rag->prompt.size(), 30000u);  // ~8k tokens of prose
  EXPECT_EQ(LoadWorkload(dir, "agent_decode", false)->max_tokens, 256);
  EXPECT_EQ(LoadWorkload(dir, "parallel_4", false)->concurrency, 4);
  EXPECT_EQ(LoadWorkload(dir, "burst", false)->levels.back(), 64);
  EXPECT_FALSE(LoadWorkload(dir, "nope", false).ok());
  EXPECT_FALSE(LoadWorkload("/nonexistent", "chat_turn", false).ok());
}

}  // namespace
}  // namespace corral::bench
