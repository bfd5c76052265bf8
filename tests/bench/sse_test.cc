// SSE parsing edge cases: events split across reads at every byte, CRLF/CR/LF line ends,
// comments, multi-line data, BOM, limits; and chat chunk interpretation.
#include <gtest/gtest.h>

#include "bench/sse.h"

namespace corral::bench {
namespace {

std::vector<SseEvent> ParseAll(const std::vector<std::string>& pieces, SseParser* parser = nullptr) {
  SseParser local;
  SseParser& p = parser != nullptr ? *parser : local;
  std::vector<SseEvent> out;
  for (const auto& piece : pieces) {
    Status st = p.Feed(piece, [&](const SseEvent& e) { out.push_back(e); });
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return out;
}

TEST(SseParser, OneEvent) {
  auto ev = ParseAll({"data: hello\n\n"});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "hello");
  EXPECT_EQ(ev[0].event, "");
}

TEST(SseParser, LineEndingsLfCrlfCr) {
  for (const std::string nl : {"\n", "\r\n", "\r"}) {
    auto ev = ParseAll({"data: a" + nl + nl + "data: b" + nl + nl});
    ASSERT_EQ(ev.size(), 2u) << "line ending of " << nl.size() << " bytes";
    EXPECT_EQ(ev[0].data, "a");
    EXPECT_EQ(ev[1].data, "b");
  }
}

TEST(SseParser, CrlfSplitBetweenReadsIsOneLineEnd) {
  // If the LF after a CR in the next read were taken as a second (empty) line, "a" would be
  // dispatched alone and "b" would become a second event.
  auto ev = ParseAll({"data: a\r", "\ndata: b\r\n\r\n"});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "a\nb");
}

TEST(SseParser, EverySplitPointGivesTheSameEvents) {
  const std::string stream =
      ": keep-alive\r\n"
      "event: update\r\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\n\r\n"
      "data: first\ndata: second\n\n"
      "id: 7\rdata:no-space\r\r"
      "data: [DONE]\n\n";
  auto whole = ParseAll({stream});
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0].event, "update");
  EXPECT_EQ(whole[1].data, "first\nsecond");
  EXPECT_EQ(whole[2].data, "no-space");
  EXPECT_EQ(whole[2].id, "7");
  EXPECT_EQ(whole[3].data, "[DONE]");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    auto split = ParseAll({stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(split.size(), whole.size()) << "cut at " << cut;
    for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(split[i].data, whole[i].data) << "cut at " << cut;
  }
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  auto one_by_one = ParseAll(bytes);
  ASSERT_EQ(one_by_one.size(), whole.size());
  EXPECT_EQ(one_by_one[0].data, whole[0].data);
}

TEST(SseParser, CommentsAreCountedNotDispatched) {
  SseParser p;
  auto ev = ParseAll({": ping\n\n:\n\n"}, &p);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(p.comments(), 2u);
  EXPECT_EQ(p.events(), 0u);
}

TEST(SseParser, OnlyOneLeadingSpaceIsDropped) {
  auto ev = ParseAll({"data:  two\n\ndata\n\n"});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].data, " two");
  EXPECT_EQ(ev[1].data, "");  // a `data` line without a colon is an empty data field
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  auto ev = ParseAll({"event: x\nid: 1\nretry: 5\n\n"});
  EXPECT_TRUE(ev.empty());
}

TEST(SseParser, LeadingBomIsSkippedEvenWhenSplit) {
  auto ev = ParseAll({"\xEF",
                      "\xBB\xBF"
                      "data: x\n\n"});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].data, "x");
}

TEST(SseParser, UnfinishedEventIsNotDispatched) {
  auto ev = ParseAll({"data: partial\n"});
  EXPECT_TRUE(ev.empty());
}

TEST(SseParser, LimitsAreEnforced) {
  SseParser p(16, 32);
  int n = 0;
  Status st = p.Feed(std::string(17, 'a'), [&](const SseEvent&) { ++n; });
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(p.Feed("\n\n", [&](const SseEvent&) { ++n; }).ok());  // stays failed
  SseParser q(64, 30);
  st = q.Feed("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", [&](const SseEvent&) { ++n; });
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(n, 0);
}

TEST(ChatChunk, Done) {
  EXPECT_EQ(InterpretChatChunk("[DONE]").kind, ChatChunk::Kind::kDone);
  EXPECT_EQ(InterpretChatChunk("[DONE]\n").kind, ChatChunk::Kind::kDone);
}

TEST(ChatChunk, ContentUsageTimings) {
  ChatChunk c = InterpretChatChunk(R"({"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]})");
  EXPECT_EQ(c.kind, ChatChunk::Kind::kJson);
  EXPECT_EQ(c.content, "Hi");
  EXPECT_FALSE(c.has_finish_reason);
  ChatChunk last =
      InterpretChatChunk(R"({"choices":[],"usage":{"prompt_tokens":51,"completion_tokens":64,"total_tokens":115},)"
                         R"("timings":{"prompt_n":51,"prompt_ms":12.5,"predicted_n":64,"predicted_ms":70.25}})");
  EXPECT_EQ(last.content, "");
  EXPECT_EQ(last.prompt_tokens, 51);
  EXPECT_EQ(last.completion_tokens, 64);
  EXPECT_TRUE(last.has_timings);
  EXPECT_DOUBLE_EQ(last.timings_predicted_ms, 70.25);
  ChatChunk fin = InterpretChatChunk(R"({"choices":[{"delta":{},"finish_reason":"length"}]})");
  EXPECT_TRUE(fin.has_finish_reason);
  ChatChunk reasoning = InterpretChatChunk(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})");
  EXPECT_EQ(reasoning.content, "hm");
}

// Speculative decoding (issue 17): timings.draft_n / draft_n_accepted, both or neither.
TEST(ChatChunk, DraftCountsFromTimings) {
  ChatChunk c = InterpretChatChunk(R"({"choices":[],"timings":{"predicted_n":64,"draft_n":80,"draft_n_accepted":60}})");
  EXPECT_EQ(c.timings_draft_n, 80);
  EXPECT_EQ(c.timings_draft_accepted, 60);
  for (const char* bad :
       {R"({"timings":{"predicted_n":64}})", R"({"timings":{"draft_n":80}})",
        R"({"timings":{"draft_n":8,"draft_n_accepted":9}})", R"({"timings":{"draft_n":"8","draft_n_accepted":1}})",
        R"({"timings":{"draft_n":1e300,"draft_n_accepted":1}})",
        R"({"timings":{"draft_n":-3,"draft_n_accepted":-4}})"}) {
    ChatChunk b = InterpretChatChunk(bad);
    EXPECT_EQ(b.timings_draft_n, -1) << bad;
    EXPECT_EQ(b.timings_draft_accepted, -1) << bad;
  }
}

TEST(ChatChunk, ErrorsAndMalformedInput) {
  EXPECT_EQ(InterpretChatChunk(R"({"error":{"message":"boom","code":500}})").error, "boom");
  EXPECT_EQ(InterpretChatChunk(R"({"error":"plain"})").error, "plain");
  EXPECT_EQ(InterpretChatChunk("{not json").kind, ChatChunk::Kind::kMalformed);
  EXPECT_EQ(InterpretChatChunk("[1,2]").kind, ChatChunk::Kind::kMalformed);
  EXPECT_EQ(InterpretChatChunk("").kind, ChatChunk::Kind::kMalformed);
  ChatChunk odd = InterpretChatChunk(R"({"choices":"x","usage":{"completion_tokens":"many","prompt_tokens":1e300}})");
  EXPECT_EQ(odd.kind, ChatChunk::Kind::kJson);
  EXPECT_FALSE(odd.completion_tokens.has_value());
  EXPECT_FALSE(odd.prompt_tokens.has_value());
}

}  // namespace
}  // namespace corral::bench
