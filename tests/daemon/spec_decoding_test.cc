// Speculative decoding's measurement half (issue 17), end to end through a private daemon
// with the real llama-server on tiny synthetic models: a child started with a draft model
// (`corral start M -- --spec-type draft-simple --spec-draft-model D`), requests on every
// surface that carries llama-server's timings (OpenAI chat and completions, streaming and
// not; Ollama chat and generate, streaming and not), then the draft counters in /metrics
// (through the proxy process and its link) and the acceptance in `corral ps`. Token counts
// only, never wall-clock.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"
#include "support/two_model_daemon.h"

namespace corral {
namespace {

using nlohmann::json;

// The value of `series` (e.g. `corral_model_draft_tokens_total{model="alpha"}`) in a /metrics
// body; -1 when absent.
int64_t MetricValue(const std::string& body, const std::string& series) {
  const size_t at = body.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::strtoll(body.c_str() + at + series.size() + 1, nullptr, 10);
}

class SpecDecodingTest : public testing::TwoModelDaemonTest {
 protected:
  // `corral start alpha` with `draft` as its draft model; the child's JSON.
  json StartWithDraft(const std::string& draft) {
    return Json({"start", "alpha", "--json", "--", "--spec-type", "draft-simple", "--spec-draft-model", draft, "-np",
                 "1"})["model"];
  }

  json PsModel(const std::string& name) {
    for (const auto& m : Ps()) {
      if (m["name"] == name) return m;
    }
    return json();
  }

  // Sends `tokens` of greedy decode that ignores end-of-sequence, on `route` with `body`.
  void Send(int port, const std::string& route, json body) {
    body["temperature"] = 0;
    body["ignore_eos"] = true;
    auto r = testing::Http("POST", port, route, body.dump());
    ASSERT_TRUE(r.ok()) << route;
    EXPECT_EQ(r->status, 200) << route << ": " << r->body;
  }

  // Waits (bounded) until /metrics counts at least `min_drafted` draft tokens for `model`.
  std::string WaitForDrafts(int port, const std::string& model, int64_t min_drafted) {
    const std::string series = "corral_model_draft_tokens_total{model=\"" + model + "\"}";
    std::string body;
    for (int i = 0; i < 400; ++i) {  // bounded: 20 s
      auto m = testing::Http("GET", port, "/metrics");
      if (m.ok()) body = m->body;
      if (MetricValue(body, series) >= min_drafted) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return body;
  }
};

TEST_F(SpecDecodingTest, DraftCountersInMetricsAndAcceptanceInPs) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  json m = StartWithDraft(alpha_path_);  // the model as its own draft: it agrees with itself
  ASSERT_EQ(m.value("state", ""), "ready") << m;
  const std::string name = m["name"];
  // The argv carries the draft flags as given (the launch is the user's, unmodified).
  EXPECT_NE(m["argv"].dump().find("--spec-draft-model"), std::string::npos) << m["argv"];
  const json messages = {{{"role", "user"}, {"content", "hello there"}}};
  for (bool stream : {false, true}) {
    Send(port, "/v1/chat/completions",
         {{"model", "alpha"}, {"messages", messages}, {"max_tokens", 24}, {"stream", stream}});
    Send(port, "/v1/completions",
         {{"model", "alpha"}, {"prompt", "once upon"}, {"max_tokens", 24}, {"stream", stream}});
    Send(port, "/api/chat",
         {{"model", "alpha"}, {"messages", messages}, {"stream", stream}, {"options", {{"num_predict", 24}}}});
    Send(port, "/api/generate",
         {{"model", "alpha"}, {"prompt", "once upon"}, {"stream", stream}, {"options", {{"num_predict", 24}}}});
  }
  const std::string body = WaitForDrafts(port, "alpha", 1);
  const int64_t drafted = MetricValue(body, "corral_model_draft_tokens_total{model=\"alpha\"}");
  const int64_t accepted = MetricValue(body, "corral_model_draft_accepted_total{model=\"alpha\"}");
  EXPECT_GT(drafted, 0) << body;
  EXPECT_GE(accepted, 0) << body;
  EXPECT_LE(accepted, drafted);
  EXPECT_NE(body.find("# TYPE corral_model_draft_accepted_total counter"), std::string::npos);

  // `corral ps --json`: the same totals (the proxy's counters and the daemon's see the same
  // responses), an acceptance in [0, 1] and no fallback (a model agrees with itself).
  json spec;
  for (int i = 0; i < 200; ++i) {  // the last request's record may trail its response: 10 s
    spec = PsModel(name).value("spec", json());
    if (spec.is_object() && spec.value("draft_tokens", int64_t{0}) == drafted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(spec.is_object()) << PsModel(name);
  EXPECT_EQ(spec.value("draft_tokens", int64_t{-1}), drafted) << spec;
  EXPECT_EQ(spec.value("draft_accepted", int64_t{-1}), accepted) << spec;
  const double acceptance = spec.value("acceptance", -1.0);
  EXPECT_GE(acceptance, 0.0);
  EXPECT_LE(acceptance, 1.0);
  if (std::getenv("CORRAL_TEST_DEBUG") != nullptr) std::cerr << "self-draft: " << spec.dump() << "\n";
  // A random tiny model's distributions are nearly flat, so even as its own draft (which
  // samples its proposals) acceptance is often low (measured 25 % over 301 tokens): the
  // fallback rule may fire here. Either way the rule's answer matches the numbers, and a
  // mark never restarts the running child.
  const bool window_full = drafted >= 256;
  if (spec.contains("fallback")) {
    EXPECT_TRUE(window_full) << spec;
    EXPECT_NE(spec["fallback"].get<std::string>().find("below 30%"), std::string::npos) << spec;
  } else if (drafted >= 256 && drafted < 512) {  // exactly one window was decided
    EXPECT_GE(acceptance, 0.30) << spec;
  }
  EXPECT_EQ(PsModel(name).value("pid", 0), m.value("pid", -1));  // not restarted
  // The table's SPEC column shows the percentage (and the mark).
  testing::RunResult plain = Corral({"ps"});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_NE(plain.out.find("\tSPEC\t"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("%"), std::string::npos) << plain.out;
  if (spec.contains("fallback")) {
    EXPECT_NE(plain.out.find("(off next start)"), std::string::npos) << plain.out;
  }
}

// A model without a draft: no spec in ps, the counters stay 0.
TEST_F(SpecDecodingTest, NoDraftNoSpec) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  json m = Json({"start", "alpha", "--json"})["model"];
  ASSERT_EQ(m.value("state", ""), "ready") << m;
  Send(port, "/v1/chat/completions",
       {{"model", "alpha"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 8}});
  std::string body;
  for (int i = 0; i < 200 && body.find("corral_model_requests_total{model=\"alpha\"} 1") == std::string::npos; ++i) {
    auto r = testing::Http("GET", port, "/metrics");
    if (r.ok()) body = r->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(MetricValue(body, "corral_model_draft_tokens_total{model=\"alpha\"}"), 0) << body;
  EXPECT_FALSE(PsModel(m["name"]).contains("spec"));
}

}  // namespace
}  // namespace corral
