// Pure parts of the proxy: routing, the model-field scanner, close matches, error shapes,
// timings, Ollama request planning and the routing snapshot.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proxy/api_errors.h"
#include "proxy/metrics.h"
#include "proxy/ollama.h"
#include "proxy/ollama_pull.h"
#include "proxy/request_routing.h"
#include "proxy/router_mode.h"
#include "proxy/routing_table.h"
#include "proxy/static_provider.h"
#include "proxy/upstream_errors.h"
#include "support/test_support.h"

namespace corral::proxy {
namespace {

using json = nlohmann::json;

TEST(RouteTest, ClassifiesEverySurface) {
  EXPECT_EQ(ClassifyRoute("POST", "/v1/chat/completions").kind, RouteKind::kForward);
  EXPECT_EQ(ClassifyRoute("POST", "/v1/messages").api, Api::kAnthropic);
  EXPECT_EQ(ClassifyRoute("POST", "/v1/messages/count_tokens").api, Api::kAnthropic);
  EXPECT_EQ(ClassifyRoute("GET", "/props?model=a").model_source, ModelSource::kQuery);
  EXPECT_EQ(ClassifyRoute("POST", "/tokenize").model_source, ModelSource::kBodyOrQuery);
  EXPECT_FALSE(ClassifyRoute("POST", "/slots?model=a&action=save").replay_safe);
  EXPECT_EQ(ClassifyRoute("GET", "/api/tags").kind, RouteKind::kOllamaTags);
  EXPECT_EQ(ClassifyRoute("HEAD", "/").kind, RouteKind::kOllamaRoot);
  EXPECT_EQ(ClassifyRoute("POST", "/api/chat").api, Api::kOllama);
  EXPECT_EQ(ClassifyRoute("GET", "/v1/chat/completions").kind, RouteKind::kBadMethod);
  EXPECT_EQ(ClassifyRoute("GET", "/nope").kind, RouteKind::kNotFound);
  EXPECT_EQ(ClassifyRoute("GET", "/api/nope").api, Api::kOllama);
}

TEST(RouteTest, QueryParamDecodes) {
  EXPECT_EQ(QueryParam("/props?model=a%20b+c&x=1", "model"), "a b c");
  EXPECT_EQ(QueryParam("/props?x=1&model=q", "model"), "q");
  EXPECT_EQ(QueryParam("/props?models=q", "model"), "");
  EXPECT_EQ(QueryParam("/props?model=%zz%4", "model"), "%zz%4");
  EXPECT_EQ(QueryParam("/props", "model"), "");
}

// Issue 14: GET /v1/models/{id}, names over the daemon's list, reshaped upstream errors and
// the listings' extra facts.
TEST(RouteTest, ModelByIdRoute) {
  EXPECT_EQ(ClassifyRoute("GET", "/v1/models/chat").kind, RouteKind::kModel);
  EXPECT_EQ(ClassifyRoute("GET", "/v1/models").kind, RouteKind::kModels);
  EXPECT_EQ(ClassifyRoute("POST", "/v1/models/chat").kind, RouteKind::kBadMethod);
  EXPECT_EQ(ModelIdFromTarget("/v1/models/hf.co%2Fa%2Fb:Q4_K_M?x=1"), "hf.co/a/b:Q4_K_M");
  EXPECT_EQ(ModelIdFromTarget("/v1/models/hf.co/a/b:Q4_K_M"), "hf.co/a/b:Q4_K_M");
  EXPECT_EQ(ModelIdFromTarget("/v1/models/%zz%4"), "%zz%4");
  EXPECT_EQ(ModelIdFromTarget("/v1/models/"), "");
}

TEST(NamesTest, FindModelUsesTheCatalogRules) {
  std::vector<ModelInfo> models(3);
  models[0].name = "qwen3-8b-q4_k_m";
  models[0].stem = "Qwen3-8B-Q4_K_M";
  models[0].origin = "Qwen/Qwen3-8B-GGUF";
  models[0].quantization = "Q4_K_M";
  models[1].name = "corral-tiny-spm-25m-q8_0";
  models[1].aliases = {"tiny"};
  models[2].name = "corral-tiny-bpe-25m-q8_0";
  for (std::string_view ref : {"qwen3-8b-q4_k_m", "Qwen3-8B-Q4_K_M", "hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M",
                               "Qwen/Qwen3-8B-GGUF", "qwen3-8b-q4_k_m:latest"}) {
    const ModelInfo* m = FindModel(ref, models);
    ASSERT_NE(m, nullptr) << ref;
    EXPECT_EQ(m->name, "qwen3-8b-q4_k_m");
  }
  EXPECT_EQ(FindModel("corral-tiny-spm", models)->name, "corral-tiny-spm-25m-q8_0");
  EXPECT_EQ(FindModel("TINY", models)->name, "corral-tiny-spm-25m-q8_0");
  std::string why;
  EXPECT_EQ(FindModel("corral-tiny", models, &why), nullptr);
  EXPECT_NE(why.find("matches 2 models"), std::string::npos) << why;
  EXPECT_EQ(FindModel("/etc/passwd", models, &why), nullptr);
  EXPECT_EQ(FindModel("x", {}, &why), nullptr);
  EXPECT_EQ(NamesOf(models[0]),
            (std::vector<std::string>{"qwen3-8b-q4_k_m", "Qwen/Qwen3-8B-GGUF", "Qwen/Qwen3-8B-GGUF:Q4_K_M",
                                      "hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M"}));
}

TEST(UpstreamErrorsTest, AnthropicShapeAndTheEmbeddingsHint) {
  EXPECT_TRUE(ReshapesUpstreamError(Api::kAnthropic, "/v1/messages", 400));
  EXPECT_FALSE(ReshapesUpstreamError(Api::kAnthropic, "/v1/messages", 200));
  EXPECT_FALSE(ReshapesUpstreamError(Api::kOpenAI, "/v1/chat/completions", 500));
  EXPECT_TRUE(ReshapesUpstreamError(Api::kOpenAI, "/v1/embeddings", 501));
  EXPECT_FALSE(ReshapesUpstreamError(Api::kOpenAI, "/v1/embeddings", 400));
  auto a =
      ReshapeUpstreamError(Api::kAnthropic, "/v1/messages", 400,
                           R"({"error":{"code":400,"message":"bad 'content'","type":"invalid_request_error"}})", "m");
  EXPECT_EQ(a.status, 400);
  json j = json::parse(a.body);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["message"], "bad 'content'");
  // Not JSON, too deep, empty: still a well-formed answer, control bytes gone.
  for (std::string body : {std::string("oops\r\nX: y"), std::string(100000, '['), std::string()}) {
    auto r = ReshapeUpstreamError(Api::kAnthropic, "/v1/messages", 500, body, "m");
    json k = json::parse(r.body);
    EXPECT_EQ(k["type"], "error");
    EXPECT_EQ(k["error"]["message"].get<std::string>().find('\n'), std::string::npos);
  }
  auto e =
      ReshapeUpstreamError(Api::kOpenAI, "/v1/embeddings", 501,
                           R"({"error":{"code":501,"message":"This server does not support embeddings."}})", "chat");
  EXPECT_EQ(e.status, 400);
  const std::string msg = json::parse(e.body)["error"]["message"];
  EXPECT_NE(msg.find("corral start chat -- --embeddings"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not support embeddings"), std::string::npos) << msg;
}

TEST(OllamaListingTest, TagsShowAndPsCarryNamesAndFacts) {
  ModelInfo m;
  m.name = "qwen3-8b-q4_k_m";
  m.origin = "Qwen/Qwen3-8B-GGUF";
  m.quantization = "Q4_K_M";
  m.n_params = 8'190'735'360ULL;
  m.context_length = 40960;
  m.capabilities = {"completion", "tools", "thinking"};
  m.state = ModelState::kReady;
  m.memory_bytes = 5ULL << 30;
  m.expires_at = std::chrono::system_clock::time_point(std::chrono::seconds(1'900'000'000));
  json tags = json::parse(OllamaTags({m}))["models"];
  std::vector<std::string> names;
  for (const auto& t : tags) names.push_back(t["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"qwen3-8b-q4_k_m", "qwen3-8b-q4_k_m:latest", "Qwen/Qwen3-8B-GGUF",
                                             "Qwen/Qwen3-8B-GGUF:Q4_K_M", "hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M"}));
  EXPECT_EQ(tags[0]["digest"], tags[4]["digest"]);
  EXPECT_EQ(tags[0]["digest"].get<std::string>().size(), 64U);
  json show = json::parse(OllamaShow(m));
  EXPECT_EQ(show["capabilities"], json({"completion", "tools", "thinking"}));
  EXPECT_EQ(show["details"]["parameter_size"], "8.2B");
  EXPECT_EQ(show["model_info"]["general.parameter_count"], 8'190'735'360ULL);
  EXPECT_EQ(show["model_info"]["llama.context_length"], 40960);
  json ps = json::parse(OllamaPs({m}))["models"][0];
  EXPECT_EQ(ps["expires_at"].get<std::string>().substr(0, 10), "2030-03-17");
  EXPECT_EQ(ps["size"], 5ULL << 30);
  json list = json::parse(OpenAIModelList({m}))["data"][0];
  EXPECT_EQ(list["id"], "qwen3-8b-q4_k_m");
  EXPECT_EQ(list["names"][0], "Qwen/Qwen3-8B-GGUF");
  EXPECT_EQ(list["meta"]["capabilities"].size(), 3U);
}

class ModelFieldTest : public ::testing::TestWithParam<bool> {
 protected:
  // Both implementations behind ExtractModelField: simdjson (small bodies) and the scanner.
  ModelField Extract(std::string_view body) { return GetParam() ? ScanModelField(body) : ExtractModelField(body); }
};
INSTANTIATE_TEST_SUITE_P(Impl, ModelFieldTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Scanner" : "Simdjson"; });

TEST_P(ModelFieldTest, FindsTopLevelModelOnly) {
  auto f = Extract(R"({"messages":[{"model":"inner","content":"x \" \\"}],"model":"outer"})");
  EXPECT_EQ(f.status, ModelFieldStatus::kFound);
  EXPECT_EQ(f.value, "outer");
  f = Extract(R"(  {"model" : "a\u00e9\n"} )");
  EXPECT_EQ(f.value, "a\xc3\xa9\n");
  if (GetParam()) {  // the scanner decodes escaped keys; simdjson compares keys raw
    f = Extract(R"({"m\u006fdel":"esc"})");
    EXPECT_EQ(f.value, "esc");
  }
  f = Extract(R"({"model":"\ud83d\ude00"})");
  EXPECT_EQ(f.value, "\xf0\x9f\x98\x80");
  EXPECT_EQ(Extract(R"({"x":{"model":"no"}})").status, ModelFieldStatus::kMissing);
  EXPECT_EQ(Extract("{}").status, ModelFieldStatus::kMissing);
  EXPECT_EQ(Extract(R"({"model":3})").status, ModelFieldStatus::kNotString);
  EXPECT_EQ(Extract(R"({"model":null})").status, ModelFieldStatus::kNotString);
  EXPECT_EQ(Extract("not json").status, ModelFieldStatus::kBadJson);
  EXPECT_EQ(Extract(R"({"a":"unterminated)").status, ModelFieldStatus::kBadJson);
  EXPECT_EQ(Extract(R"({"a":[1,2)").status, ModelFieldStatus::kBadJson);
  EXPECT_EQ(Extract(R"({"model":"\ud83d"})").status, ModelFieldStatus::kBadJson);
  EXPECT_EQ(Extract(R"({"a" 1})").status, ModelFieldStatus::kBadJson);
  // Deep nesting costs no stack (the scanner; simdjson bounds depth itself).
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + ",\"model\":\"d\"}";
  EXPECT_EQ(ScanModelField(deep).value, "d");
  // Above kSimdjsonMaxBytes the scanner answers.
  std::string big = R"({"messages":")" + std::string(kSimdjsonMaxBytes, 'x') + R"(","model":"big"})";
  EXPECT_EQ(ExtractModelField(big).value, "big");
}

TEST_P(ModelFieldTest, AgreesWithAFullParserOnGeneratedBodies) {
  // Bodies with escapes and nesting before the model: the scanner must agree with nlohmann.
  const char* kPieces[] = {R"("s":"a\"b\\")", R"("n":-1.5e3)", R"("o":{"model":"x","k":[1,{"q":"]"}]})", R"("t":true)",
                           R"("l":[[],{},""])"};
  for (int mask = 0; mask < 32; ++mask) {
    std::string body = "{";
    for (int i = 0; i < 5; ++i) {
      if (mask & (1 << i)) body += std::string(kPieces[i]) + ",";
    }
    body += R"("model":"m)" + std::to_string(mask) + "\"}";
    auto f = Extract(body);
    ASSERT_EQ(f.status, ModelFieldStatus::kFound) << body;
    EXPECT_EQ(f.value, json::parse(body)["model"].get<std::string>()) << body;
  }
}

TEST(CloseMatchTest, SuggestsNearNames) {
  std::vector<std::string> names = {"llama-3-8b", "qwen2.5-7b", "tiny", "mistral"};
  auto m = CloseMatches("tinny", names);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0], "tiny");
  m = CloseMatches("qwen", names);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0], "qwen2.5-7b");
  EXPECT_TRUE(CloseMatches("zzzzzzzzzzzz", names).empty());
}

TEST(StaticProviderTest, ParsesSpecs) {
  auto specs = StaticProvider::ParseSpecs({"a=http://127.0.0.1:8080", "b=http://localhost:9/", "c=http://[::1]:7"});
  ASSERT_TRUE(specs.ok()) << specs.status().ToString();
  EXPECT_EQ(specs->at("a").port, 8080);
  EXPECT_EQ(specs->at("b").host, "127.0.0.1");
  EXPECT_EQ(specs->at("c").ToString(), "[::1]:7");
  EXPECT_FALSE(StaticProvider::ParseSpecs({"a"}).ok());
  EXPECT_FALSE(StaticProvider::ParseSpecs({"a=127.0.0.1:80"}).ok());
  EXPECT_FALSE(StaticProvider::ParseSpecs({"a=http://example.com:80"}).ok());
  EXPECT_FALSE(StaticProvider::ParseSpecs({"a=http://127.0.0.1:0"}).ok());
  EXPECT_FALSE(StaticProvider::ParseSpecs({"a=http://127.0.0.1:1", "a=http://127.0.0.1:2"}).ok());
}

TEST(ErrorShapeTest, EachApiHasItsOwn) {
  json o = json::parse(ErrorBody(Api::kOpenAI, 404, "no such model"));
  EXPECT_EQ(o["error"]["message"], "no such model");
  EXPECT_EQ(o["error"]["code"], 404);
  EXPECT_EQ(o["error"]["type"], "not_found_error");
  json a = json::parse(ErrorBody(Api::kAnthropic, 413, "big"));
  EXPECT_EQ(a["type"], "error");
  EXPECT_EQ(a["error"]["type"], "request_too_large");
  json l = json::parse(ErrorBody(Api::kOllama, 400, "bad"));
  EXPECT_EQ(l["error"], "bad");
  // Invalid UTF-8 in a client-supplied name still yields valid JSON.
  EXPECT_NO_THROW(json::parse(ErrorBody(Api::kOpenAI, 404, "model '\xff\xfe' not found")));
}

TEST(MetricsTest, TimingsFromTheFinalEvent) {
  std::string tail = R"(data: {"choices":[],"timings":{"prompt_n":3,"prompt_ms":12.5,"predicted_per_second":640.25}})"
                     "\n\ndata: [DONE]\n\n";
  auto t = ParseTimingsTail(tail);
  EXPECT_DOUBLE_EQ(t.prompt_ms, 12.5);
  EXPECT_DOUBLE_EQ(t.predicted_per_second, 640.25);
  EXPECT_LT(ParseTimingsTail("no timings here").prompt_ms, 0);
  Metrics m;
  m.For("a").ttft_ms.Observe(7);
  m.For("a").requests++;
  std::string text = m.Render();
  EXPECT_NE(text.find("corral_model_requests_total{model=\"a\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("corral_model_ttft_ms_bucket{model=\"a\",le=\"10\"} 1"), std::string::npos) << text;
}

// Speculative decoding (issue 17): llama-server's timings carry draft_n and
// draft_n_accepted when a draft proposed tokens. Both or neither; whole, bounded, consistent.
TEST(MetricsTest, DraftCountsFromTimings) {
  auto tail = [](const std::string& fields) {
    return "data: {\"choices\":[],\"timings\":{\"prompt_n\":3,\"prompt_ms\":1.5,\"predicted_n\":16," + fields +
           "}}\n\ndata: [DONE]\n\n";
  };
  auto t = ParseTimingsTail(tail("\"predicted_per_second\":9.5,\"draft_n\":40,\"draft_n_accepted\":31"));
  EXPECT_EQ(t.draft_n, 40);
  EXPECT_EQ(t.draft_accepted, 31);
  EXPECT_DOUBLE_EQ(t.predicted_n, 16);
  // The accepted key first, and a non-streaming body (no "data:").
  t = ParseTimingsTail(R"({"timings":{"draft_n_accepted":0,"draft_n":7},"id":"x"})");
  EXPECT_EQ(t.draft_n, 7);
  EXPECT_EQ(t.draft_accepted, 0);
  // No draft (llama-server omits the keys): -1, as for every malformed pair.
  for (const std::string& bad :
       {std::string("\"predicted_per_second\":9.5"),
        std::string("\"draft_n\":40"),                            // accepted missing
        std::string("\"draft_n_accepted\":4"),                    // drafted missing
        std::string("\"draft_n\":4,\"draft_n_accepted\":5"),      // more accepted than drafted
        std::string("\"draft_n\":-4,\"draft_n_accepted\":-5"),    // negative
        std::string("\"draft_n\":4.5,\"draft_n_accepted\":1"),    // not whole
        std::string("\"draft_n\":1e300,\"draft_n_accepted\":1"),  // huge
        std::string("\"draft_n\":99999999999999999999999,\"draft_n_accepted\":1"),
        std::string("\"draft_n\":2199023255553,\"draft_n_accepted\":1"),  // 2^41 + 1
        std::string("\"draft_n\":\"40\",\"draft_n_accepted\":\"31\""),    // strings
        std::string("\"draft_n\":nan,\"draft_n_accepted\":1"), std::string("\"draft_n\":inf,\"draft_n_accepted\":1"),
        std::string("\"draft_n\":,\"draft_n_accepted\":")}) {
    auto b = ParseTimingsTail(tail(bad));
    EXPECT_EQ(b.draft_n, -1) << bad;
    EXPECT_EQ(b.draft_accepted, -1) << bad;
  }
  // The bound itself is accepted.
  t = ParseTimingsTail(tail("\"draft_n\":1099511627776,\"draft_n_accepted\":1099511627776"));
  EXPECT_EQ(t.draft_n, kMaxDraftTokens);
  // Draft keys after the timings object closed belong to something else.
  t = ParseTimingsTail(R"({"timings":{"predicted_n":3},"draft_n":4,"draft_n_accepted":4})");
  EXPECT_EQ(t.draft_n, -1);
  // A truncated tail (the object cut in the middle) reads what it has.
  t = ParseTimingsTail(R"("timings":{"draft_n":9,"draft_n_acc)");
  EXPECT_EQ(t.draft_n, -1);
}

TEST(MetricsTest, DraftCountersRenderPerModel) {
  Metrics m;
  m.For("spec").draft_tokens += 40;
  m.For("spec").draft_accepted += 31;
  m.For("plain").requests++;
  const std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE corral_model_draft_tokens_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("corral_model_draft_tokens_total{model=\"spec\"} 40"), std::string::npos) << text;
  EXPECT_NE(text.find("corral_model_draft_accepted_total{model=\"spec\"} 31"), std::string::npos) << text;
  EXPECT_NE(text.find("corral_model_draft_tokens_total{model=\"plain\"} 0"), std::string::npos) << text;
}

TEST(OllamaTest, Durations) {
  EXPECT_EQ(ParseOllamaDuration("5m")->count(), 300);
  EXPECT_EQ(ParseOllamaDuration("1h30m")->count(), 5400);
  EXPECT_EQ(ParseOllamaDuration("0")->count(), 0);
  EXPECT_EQ(ParseOllamaDuration("-1")->count(), -1);
  EXPECT_EQ(ParseOllamaDuration("45")->count(), 45);
  EXPECT_FALSE(ParseOllamaDuration("5 parsecs").ok());
  EXPECT_FALSE(ParseOllamaDuration("").ok());
}

TEST(OllamaTest, PlansChatGenerateEmbed) {
  auto p = PlanOllamaRequest(RouteKind::kOllamaChat,
                             R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false,
                                 "options":{"num_predict":5,"temperature":0},"keep_alive":"10m","format":"json"})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->upstream_target, "/v1/chat/completions");
  EXPECT_FALSE(p->stream);
  EXPECT_EQ(p->keep_alive->count(), 600);
  json up = json::parse(p->upstream_body);
  EXPECT_EQ(up["max_tokens"], 5);
  EXPECT_EQ(up["response_format"]["type"], "json_object");
  EXPECT_EQ(up["messages"][0]["content"], "hi");

  auto g = PlanOllamaRequest(RouteKind::kOllamaGenerate, R"({"model":"m","prompt":"p","raw":true})");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->upstream_target, "/v1/completions");
  EXPECT_TRUE(g->stream);

  auto load = PlanOllamaRequest(RouteKind::kOllamaGenerate, R"({"model":"m","keep_alive":0})");
  ASSERT_TRUE(load.ok());
  EXPECT_TRUE(load->load_only);
  EXPECT_EQ(load->keep_alive->count(), 0);

  auto e = PlanOllamaRequest(RouteKind::kOllamaEmbed, R"({"model":"m","input":["a","b"]})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->upstream_target, "/v1/embeddings");

  EXPECT_FALSE(PlanOllamaRequest(RouteKind::kOllamaChat, "[1]").ok());
  EXPECT_FALSE(PlanOllamaRequest(RouteKind::kOllamaChat, R"({"messages":[]})").ok());
  EXPECT_FALSE(PlanOllamaRequest(RouteKind::kOllamaChat, R"({"model":"m","keep_alive":"soon"})").ok());
}

TEST(OllamaTest, TranslatesAStreamSplitAnywhere) {
  std::string sse =
      "data: {\"choices\":[{\"delta\":{\"content\":\"He\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\n"
      "data: {\"choices\":[{\"finish_reason\":\"length\",\"delta\":{}}],"
      "\"timings\":{\"prompt_n\":4,\"prompt_ms\":2.5,\"predicted_n\":2,\"predicted_ms\":1.25}}\n\n"
      "data: [DONE]\n\n";
  for (size_t split = 1; split < sse.size(); split += 7) {
    OllamaResponseTranslator t(RouteKind::kOllamaChat, "m", true);
    std::string out = t.Feed(sse.substr(0, split));
    out += t.Feed(sse.substr(split));
    out += t.Finish();
    std::vector<json> lines;
    size_t start = 0, nl;
    while ((nl = out.find('\n', start)) != std::string::npos) {
      lines.push_back(json::parse(out.substr(start, nl - start)));
      start = nl + 1;
    }
    ASSERT_EQ(lines.size(), 3U) << out;
    EXPECT_EQ(lines[0]["message"]["content"], "He");
    EXPECT_EQ(lines[1]["message"]["content"], "llo");
    EXPECT_EQ(lines[2]["done"], true);
    EXPECT_EQ(lines[2]["done_reason"], "length");
    EXPECT_EQ(lines[2]["eval_count"], 2);
    EXPECT_EQ(lines[2]["eval_duration"], 1250000);
    EXPECT_EQ(lines[2]["prompt_eval_duration"], 2500000);
  }
}

TEST(RoutingTableTest, ConcurrentReadersSeeWholeSnapshots) {
  RoutingTable table;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    RouteReader view(table);
    uint64_t last = 0;
    while (!stop.load()) {
      const RouteMap& snap = view.Get();
      // Every published map has exactly `version` entries: a torn read would break this;
      // versions never go backwards.
      ASSERT_EQ(snap.routes.size(), snap.version);
      ASSERT_GE(snap.version, last);
      last = snap.version;
      reads++;
    }
  });
  for (uint64_t v = 1; v <= 200; ++v) {
    RouteMap m;
    for (uint64_t i = 0; i < v; ++i) m.routes.emplace("m" + std::to_string(i), Endpoint{"127.0.0.1", 1});
    table.Publish(std::move(m));
  }
  while (reads.load() < 100) std::this_thread::yield();
  stop.store(true);
  reader.join();
  EXPECT_EQ(table.Load()->version, 200U);
}

}  // namespace
}  // namespace corral::proxy

namespace corral::proxy {
namespace {

TEST(ProxyCommandTest, BadUpstreamSpecsAreUsageErrors) {
  auto r = testing::RunCorral({"proxy", "--upstream", "tiny"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("NAME=http://HOST:PORT"), std::string::npos) << r.err;
  r = testing::RunCorral({"proxy", "--upstream", "tiny=http://example.com:80"});
  EXPECT_EQ(r.exit_code, 64) << r.err;
  r = testing::RunCorral({"proxy", "--upstream", "a=http://127.0.0.1:1", "--listen", "300.1.1.1:5"});
  EXPECT_EQ(r.exit_code, 71) << r.err;
  EXPECT_NE(r.err.find("IP address"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace corral::proxy

namespace corral::proxy {
namespace {

// Model names come from clients: 10,000 spellings must not make 10,000 series (issue 11).
TEST(MetricsTest, ModelSeriesAreBounded) {
  Metrics m;
  for (int i = 0; i < 10000; ++i) m.For("spelling-" + std::to_string(i)).requests.fetch_add(1);
  std::string text = m.Render();
  size_t series = 0;
  for (size_t at = text.find("corral_model_requests_total{"); at != std::string::npos;
       at = text.find("corral_model_requests_total{", at + 1)) {
    ++series;
  }
  EXPECT_LE(series, Metrics::kMaxModelSeries + 1);
  EXPECT_NE(text.find(Metrics::kOtherModels), std::string::npos);
  EXPECT_EQ(&m.For("spelling-1"), &m.For("spelling-1"));  // the first ones keep their own
}

// llama-server router mode (router_mode.h) and POST /api/pull (ollama_pull.h): the pure parts.
TEST(RouterMode, RoutesStatusesAndProps) {
  EXPECT_EQ(ClassifyRoute("GET", "/models").kind, RouteKind::kRouterModels);
  EXPECT_EQ(ClassifyRoute("POST", "/models/load").kind, RouteKind::kRouterLoad);
  EXPECT_EQ(ClassifyRoute("POST", "/models/unload").kind, RouteKind::kRouterUnload);
  EXPECT_EQ(ClassifyRoute("GET", "/models/load").kind, RouteKind::kBadMethod);
  EXPECT_EQ(ClassifyRoute("POST", "/api/pull").kind, RouteKind::kOllamaPull);
  EXPECT_EQ(ClassifyRoute("POST", "/api/pull").api, Api::kOllama);
  EXPECT_EQ(ClassifyRoute("GET", "/props?autoload=false").kind, RouteKind::kForward);
  EXPECT_EQ(RouterStatusValue(ModelState::kReady), "loaded");
  EXPECT_EQ(RouterStatusValue(ModelState::kStarting), "loading");
  EXPECT_EQ(RouterStatusValue(ModelState::kLoading), "loading");
  EXPECT_EQ(RouterStatusValue(ModelState::kStopped), "unloaded");
  EXPECT_EQ(RouterStatusValue(ModelState::kStopping), "unloaded");
  ModelInfo failed;
  failed.name = "m";
  failed.state = ModelState::kFailed;
  failed.capabilities = {"completion", "vision"};
  auto list = nlohmann::json::parse(RouterModelList({failed}));
  const auto& entry = list["data"][0];
  EXPECT_EQ(entry["id"], "m");
  EXPECT_EQ(entry["status"]["value"], "unloaded");
  EXPECT_EQ(entry["status"]["failed"], true);
  EXPECT_EQ(entry["architecture"]["input_modalities"], nlohmann::json({"text", "image"}));
  auto props = nlohmann::json::parse(RouterProps("1.2.3"));
  EXPECT_EQ(props["role"], "router");
  EXPECT_EQ(props["build_info"], "corral 1.2.3");
  EXPECT_EQ(*RouterRequestModel(R"({"model":"a"})"), "a");
  EXPECT_FALSE(RouterRequestModel(R"({"model":""})").ok());
  EXPECT_FALSE(RouterRequestModel(R"([1])").ok());
}

TEST(OllamaPull, RequestBodies) {
  auto a = ParseOllamaPullRequest(R"({"model":"hf.co/a/b:Q4_K_M"})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->model, "hf.co/a/b:Q4_K_M");
  EXPECT_TRUE(a->stream);
  auto b = ParseOllamaPullRequest(R"({"name":"a/b","stream":false,"insecure":true})");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->model, "a/b");
  EXPECT_FALSE(b->stream);
  for (const char* bad : {"", "[]", "{}", R"({"model":1})", R"({"model":"-x"})", R"({"model":"a\nb"})",
                          R"({"model":"a","stream":"yes"})"}) {
    EXPECT_FALSE(ParseOllamaPullRequest(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseOllamaPullRequest(R"({"model":")" + std::string(2000, 'a') + R"("})").ok());
  PullOutcome o;
  o.code = "not found";
  EXPECT_EQ(PullErrorStatus(o), 404);
  o.code = "invalid argument";
  EXPECT_EQ(PullErrorStatus(o), 400);
  o.code = "unavailable";
  EXPECT_EQ(PullErrorStatus(o), 500);
}

// PullJobs over a stand-in command (sh printing `corral pull --json` lines): the lines become
// Ollama's, "success" comes after on_models_changed, the cap holds, and StopAll cancels.
TEST(OllamaPull, JobsRelayLinesAndCap) {
  const std::string script =
      R"(echo '{"event":"resolved","total":3}'; echo '{"event":"done","sha256":"abcdefabcdef00","total":3}'; )"
      R"(echo '{"event":"success","files":[]}')";
  std::atomic<int> refreshed{0};
  PullJobs jobs({"/bin/sh", "-c", script, "sh"}, 1, [&] { refreshed.fetch_add(1); });
  std::mutex mu;
  std::condition_variable cv;
  std::string got;
  bool done = false;
  PullOutcome outcome;
  PullJobs::Callbacks cb;
  cb.on_lines = [&](std::string l) {
    std::lock_guard<std::mutex> lock(mu);
    if (l.find("\"success\"") != std::string::npos) {
      EXPECT_EQ(refreshed.load(), 1);
    }
    got += l;
  };
  cb.on_done = [&](const PullOutcome& o) {
    std::lock_guard<std::mutex> lock(mu);
    outcome = o;
    done = true;
    cv.notify_all();
  };
  Status why;
  auto job = jobs.Start("a/b", cb, &why);
  ASSERT_NE(job, nullptr) << why.message();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return done; }));
  }
  EXPECT_TRUE(outcome.ok) << outcome.message;
  EXPECT_NE(got.find(R"({"status":"pulling manifest"})"), std::string::npos) << got;
  EXPECT_NE(got.find(R"("digest":"sha256:abcdefabcdef00")"), std::string::npos) << got;
  EXPECT_NE(got.find(R"({"status":"success"})"), std::string::npos) << got;

  // A pull that never ends holds the only slot; a second is refused; StopAll cancels it.
  PullJobs slow({"/bin/sh", "-c", "sleep 30", "sh"}, 1, nullptr);
  std::atomic<bool> cancelled{false};
  PullJobs::Callbacks cb2;
  cb2.on_done = [&](const PullOutcome& o) { cancelled = o.cancelled; };
  ASSERT_NE(slow.Start("a/b", cb2, &why), nullptr) << why.message();
  EXPECT_EQ(slow.Start("a/b", {}, &why), nullptr);
  EXPECT_EQ(why.code(), StatusCode::kResourceExhausted);
  slow.StopAll();
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(slow.Start("a/b", {}, &why), nullptr);  // stopped: no new pulls
}

}  // namespace
}  // namespace corral::proxy
