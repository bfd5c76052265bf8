// The link between the keeper and the proxy process: what the keeper accepts from the
// (untrusted) proxy process, framing of large messages, and every down message round trip.
#include "edge/link.h"

#include <gtest/gtest.h>

namespace corral::edge {
namespace {

TEST(EdgeLinkTest, UpMessagesRoundTrip) {
  std::vector<UpMessage> all = {
      {UpKind::kReady, 0, 0, {}, ""},
      {UpKind::kEnsure, 42, 120000, {}, "corral-tiny bpe:Q4_0"},
      {UpKind::kStart, 0, 0, {"127.0.0.1", 8080}, "alpha"},
      {UpKind::kEnd, 0, 0, {"::1", 65535}, "alpha"},
      {UpKind::kKeepAlive, 0, -1, {}, "a b c"},
      {UpKind::kKeepAlive, 0, 300, {}, "x"},
  };
  for (const auto& m : all) {
    auto p = ParseUp(EncodeUp(m));
    ASSERT_TRUE(p.ok()) << EncodeUp(m) << ": " << p.status().message();
    EXPECT_EQ(p->kind, m.kind);
    EXPECT_EQ(p->id, m.id);
    EXPECT_EQ(p->value, m.value);
    EXPECT_EQ(p->endpoint, m.endpoint);
    EXPECT_EQ(p->model, m.model);
  }
}

TEST(EdgeLinkTest, FinishCarriesTheClientAddress) {
  UpMessage m{UpKind::kFinish, 0, 0, {"127.0.0.1", 8080}, "@odd model"};
  m.finish = FinishFields{"/v1/chat/completions", 200, 1, 2, 3, 4, 5, -1, -1, "192.168.1.7"};
  auto p = ParseUp(EncodeUp(m));
  ASSERT_TRUE(p.ok()) << EncodeUp(m) << ": " << p.status().message();
  EXPECT_EQ(p->finish.client, "192.168.1.7");
  EXPECT_EQ(p->model, "@odd model");
  m.finish.client = "::1";
  p = ParseUp(EncodeUp(m));
  ASSERT_TRUE(p.ok()) << EncodeUp(m);
  EXPECT_EQ(p->finish.client, "::1");
  m.finish.client = "not an address";  // never sent as is
  EXPECT_NE(EncodeUp(m).find(" @- "), std::string::npos) << EncodeUp(m);
  // The field is required (one spelling per message); "@-" is unknown; a bad address is refused.
  EXPECT_FALSE(ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r m").ok());
  EXPECT_FALSE(ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r @odd model").ok());
  EXPECT_FALSE(ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r @ m").ok());
  auto unknown = ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r @- m");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->finish.client, "");
  EXPECT_EQ(unknown->model, "m");
  EXPECT_FALSE(ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r @host m").ok());
  EXPECT_FALSE(ParseUp("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r @" + std::string(60, '1') + " m").ok());
}

TEST(EdgeLinkTest, FinishCarriesTheRequestRecord) {
  UpMessage m{UpKind::kFinish, 0, 0, {"127.0.0.1", 8080}, "corral-tiny bpe:Q4_0"};
  m.finish = FinishFields{"/v1/chat/completions", 200, 12345, 64, 987654, 250000, 42};
  const std::string wire = EncodeUp(m);
  EXPECT_EQ(wire, "F 127.0.0.1 8080 200 12345 64 987654 250000 42 -1 -1 /v1/chat/completions @- corral-tiny bpe:Q4_0");
  auto p = ParseUp(wire);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->kind, UpKind::kFinish);
  EXPECT_EQ(p->endpoint, m.endpoint);
  EXPECT_EQ(p->model, m.model);
  EXPECT_EQ(p->finish.route, "/v1/chat/completions");
  EXPECT_EQ(p->finish.status, 200);
  EXPECT_EQ(p->finish.ttft_us, 12345);
  EXPECT_EQ(p->finish.tokens, 64);
  EXPECT_EQ(p->finish.tok_per_s_milli, 987654);
  EXPECT_EQ(p->finish.duration_us, 250000);
  EXPECT_EQ(p->finish.proxy_added_us, 42);
  EXPECT_EQ(p->finish.client, "");
  // Unknowns are -1; a route the link cannot carry becomes "-".
  m.finish = FinishFields{"/a b", 499, -1, -1, -1, 0, -1};
  auto q = ParseUp(EncodeUp(m));
  ASSERT_TRUE(q.ok()) << EncodeUp(m);
  EXPECT_EQ(q->finish.route, "-");
  EXPECT_EQ(q->finish.ttft_us, -1);
  EXPECT_EQ(q->finish.draft_tokens, -1);
  // Speculative decoding's counts (issue 17) cross the link too.
  m.finish.draft_tokens = 300;
  m.finish.draft_accepted = 250;
  auto d = ParseUp(EncodeUp(m));
  ASSERT_TRUE(d.ok()) << EncodeUp(m);
  EXPECT_EQ(d->finish.draft_tokens, 300);
  EXPECT_EQ(d->finish.draft_accepted, 250);
  for (const std::string& bad : std::vector<std::string>{
           "F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r",        // no model
           "F 127.0.0.1 80 1000 1 1 1 1 1 -1 -1 /r m",     // status out of range
           "F 127.0.0.1 80 200 -2 1 1 1 1 -1 -1 /r m",     // below -1
           "F 127.0.0.1 80 200 1 1 1 -1 1 -1 -1 /r m",     // duration unknown is not allowed
           "F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r\x01 m",  // a control byte in the route
           "F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 " + std::string(kMaxRouteBytes + 1, 'r') + " m",
           "F 127.0.0.1 80 200 1 1 1 1 99999999999999999 -1 -1 /r m",  // too large
           "F host 80 200 1 1 1 1 1 -1 -1 /r m", std::string("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /r\x7f m"),
           std::string("F 127.0.0.1 80 200 1 1 1 1 1 -1 -1 /\xc3\xa9 m"),
           "F 127.0.0.1 80 200 1 1 1 1 1 /r m",                         // the draft pair missing
           "F 127.0.0.1 80 200 1 1 1 1 1 5 -1 /r m",                    // one of the pair unknown
           "F 127.0.0.1 80 200 1 1 1 1 1 -1 5 /r m",                    // the other one
           "F 127.0.0.1 80 200 1 1 1 1 1 5 6 /r m",                     // more accepted than drafted
           "F 127.0.0.1 80 200 1 1 1 1 1 -2 -2 /r m",                   // below -1
           "F 127.0.0.1 80 200 1 1 1 1 1 1e3 1 /r m",                   // not a decimal integer
           "F 127.0.0.1 80 200 1 1 1 1 1 99999999999999999 1 /r m"}) {  // too large
    EXPECT_FALSE(ParseUp(bad).ok()) << bad;
  }
}

TEST(EdgeLinkTest, TheKeeperRefusesAnythingOffProtocol) {
  for (const std::string& bad : std::vector<std::string>{"",
                                                         "X",
                                                         "R ",
                                                         "R x",
                                                         "E",
                                                         "E 1",
                                                         "E 1 2",
                                                         "E x 2 m",
                                                         "E 1 -5 m",
                                                         "E 1 99999999999 m",
                                                         "E +1 2 m",
                                                         "E 01 2 m",
                                                         "K -0 m",
                                                         "K -01 m",
                                                         "E 1 2 ",
                                                         "S 127.0.0.1 80",
                                                         "S evil.example 80 m",
                                                         "S 127.0.0.1 0 m",
                                                         "S 127.0.0.1 65536 m",
                                                         "S 127.0.0.1 80 m\nx",
                                                         "D 1.2.3.4 8 a\rb",
                                                         "K 1e3 m",
                                                         "K 99999999999 m",
                                                         "K  m",
                                                         std::string("E 1 2 a\0b", 9),
                                                         "S 127.0.0.1 80 " + std::string(kMaxModelNameBytes + 1, 'm'),
                                                         std::string(kMaxUpMessageBytes + 1, 'R')}) {
    EXPECT_FALSE(ParseUp(bad).ok()) << bad;
  }
}

TEST(EdgeLinkTest, LongMessagesAreFramedAndJoined) {
  std::string big(kMaxFramePayload * 3 + 7, 'x');
  auto frames = Frame(big);
  ASSERT_EQ(frames.size(), 4U);
  FrameAssembler a(kMaxDownMessageBytes);
  std::string out;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto r = a.Add(frames[i]);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->has_value(), i + 1 == frames.size());
    if (r->has_value()) out = **r;
  }
  EXPECT_EQ(out, big);
  EXPECT_EQ(Frame("").size(), 1U);  // an empty message is one frame
}

TEST(EdgeLinkTest, TheAssemblerBoundsMessagesAndRefusesBadFrames) {
  FrameAssembler a(10);
  EXPECT_FALSE(a.Add("").ok());
  EXPECT_FALSE(a.Add("xabc").ok());
  ASSERT_TRUE(a.Add("+12345").ok());
  EXPECT_FALSE(a.Add("+123456").ok());  // 11 bytes > 10
  auto r = a.Add(".ok");                // the assembler starts over after an error
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, "ok");
}

TEST(EdgeLinkTest, DownMessagesRoundTrip) {
  proxy::ProxyOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 3;
  o.max_body_bytes = 1234;
  o.client_timeout = std::chrono::milliseconds(777);
  o.preconnect = false;
  o.version = "9.9";
  o.max_json_depth = 9;
  o.cors_origins = {"http://a.example", "*"};
  o.max_connections = 11;
  o.max_connections_per_client = 12;
  o.max_buffered_body_bytes = 13;
  o.llama_ui_dir = "/x/llama-ui";
  auto d = ParseDown(EncodeOptions(o));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->options.listen, o.listen);
  EXPECT_EQ(d->options.threads, 3);
  EXPECT_EQ(d->options.max_body_bytes, 1234U);
  EXPECT_EQ(d->options.client_timeout, o.client_timeout);
  EXPECT_FALSE(d->options.preconnect);
  EXPECT_EQ(d->options.version, "9.9");
  EXPECT_EQ(d->options.max_json_depth, 9U);
  EXPECT_EQ(d->options.cors_origins, o.cors_origins);
  EXPECT_EQ(d->options.max_connections, 11U);
  EXPECT_EQ(d->options.max_connections_per_client, 12U);
  EXPECT_EQ(d->options.max_buffered_body_bytes, 13U);
  EXPECT_EQ(d->options.llama_ui_dir, "/x/llama-ui");

  proxy::RouteMap routes;
  routes.routes["alpha"] = {"127.0.0.1", 4000};
  routes.routes["al\"pha"] = {"::1", 4001};
  d = ParseDown(EncodeRoutes(routes));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->routes.routes, routes.routes);

  proxy::ModelInfo m;
  m.name = "alpha";
  m.state = proxy::ModelState::kReady;
  m.context = 512;
  m.quantization = "Q8_0";
  m.expires_at = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  d = ParseDown(EncodeModels({m}));
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->models.size(), 1U);
  EXPECT_EQ(d->models[0].name, "alpha");
  EXPECT_EQ(d->models[0].state, proxy::ModelState::kReady);
  EXPECT_EQ(d->models[0].context, 512U);
  EXPECT_EQ(d->models[0].expires_at, m.expires_at);
  // Issue 14's names and header facts cross the link; a row without them (an older daemon)
  // still parses.
  m.aliases = {"chat"};
  m.stem = "Alpha-Q8_0";
  m.origin = "acme/Alpha-GGUF";
  m.n_params = 25'000'000;
  m.context_length = 4096;
  m.capabilities = {"completion", "tools"};
  m.vram_bytes = 1234;
  d = ParseDown(EncodeModels({m}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->models[0].aliases, m.aliases);
  EXPECT_EQ(d->models[0].stem, m.stem);
  EXPECT_EQ(d->models[0].origin, m.origin);
  EXPECT_EQ(d->models[0].n_params, m.n_params);
  EXPECT_EQ(d->models[0].context_length, m.context_length);
  EXPECT_EQ(d->models[0].capabilities, m.capabilities);
  EXPECT_EQ(d->models[0].vram_bytes, m.vram_bytes);
  d = ParseDown(R"({"t":"models","m":[{"name":"a","state":"ready","context":0,"size":0,"memory":0,"family":"",)"
                R"("quant":"","modified":0,"expires_ms":0}]})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->models[0].aliases.empty());
  // Wrong types in the new fields: refused, never a crash.
  EXPECT_FALSE(ParseDown(R"({"t":"models","m":[{"name":"a","state":"ready","context":0,"size":0,"memory":0,)"
                         R"("family":"","quant":"","modified":0,"expires_ms":0,"aliases":7}]})")
                   .ok());

  d = ParseDown(EncodeAnswer(7, proxy::Endpoint{"127.0.0.1", 99}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, 7U);
  EXPECT_EQ(std::get<proxy::Endpoint>(d->answer), (proxy::Endpoint{"127.0.0.1", 99}));
  proxy::EnsureError e;
  e.code = proxy::EnsureErrorCode::kQueueFull;
  e.message = "busy";
  e.close_matches = {"alpha", "bravo"};
  e.retry_after_s = 3;
  d = ParseDown(EncodeAnswer(8, e));
  ASSERT_TRUE(d.ok());
  const auto& back = std::get<proxy::EnsureError>(d->answer);
  EXPECT_EQ(back.code, e.code);
  EXPECT_EQ(back.message, e.message);
  EXPECT_EQ(back.close_matches, e.close_matches);
  EXPECT_EQ(back.retry_after_s, 3);

  d = ParseDown(EncodeLimits(5, std::chrono::milliseconds(6), std::chrono::milliseconds(7)));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_body_bytes, 5U);
  EXPECT_EQ(d->upstream_timeout, std::chrono::milliseconds(7));
}

TEST(EdgeLinkTest, BadDownMessagesAreErrorsNotCrashes) {
  for (const std::string& bad :
       std::vector<std::string>{"", "[]", "{}", "{\"t\":1}", "{\"t\":\"nope\"}", "{\"t\":\"routes\",\"r\":[[1,2,3]]}",
                                "{\"t\":\"answer\",\"id\":1,\"code\":99,\"message\":\"\",\"close\":[],\"retry\":0}",
                                "{\"t\":\"routes\",\"r\":" + std::string(100, '[') + std::string(100, ']') + "}"}) {
    EXPECT_FALSE(ParseDown(bad).ok()) << bad;
  }
}

TEST(EdgeLinkTest, CleanModelNames) {
  EXPECT_TRUE(IsCleanModelName("qwen2.5:7b Q4_K_M/ü"));
  EXPECT_FALSE(IsCleanModelName(""));
  EXPECT_FALSE(IsCleanModelName("a\nb"));
  EXPECT_FALSE(IsCleanModelName("a\x7f"));
  EXPECT_FALSE(IsCleanModelName(std::string(kMaxModelNameBytes + 1, 'a')));
}

}  // namespace
}  // namespace corral::edge
