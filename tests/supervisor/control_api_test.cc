// Control-plane JSON: request parsing, targets, error codes and their exit codes.
#include "control/api.h"

#include <gtest/gtest.h>

#include "daemon/models.h"

namespace corral::control {
namespace {

TEST(ControlApiTest, StartRequestRoundTrip) {
  StartRequest r;
  r.model = "/m/x.gguf";
  r.name = "x2";
  r.ctx = 4096;
  r.port = 8080;
  r.raw_args = {"--threads", "2"};
  r.env = {"A=1", "B=two=2"};
  r.force = true;
  auto parsed = ParseStartRequest(ToJson(r).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->model, r.model);
  EXPECT_EQ(parsed->name, r.name);
  EXPECT_EQ(parsed->ctx, 4096u);
  EXPECT_EQ(parsed->port, 8080);
  EXPECT_EQ(parsed->raw_args, r.raw_args);
  EXPECT_EQ(parsed->env, r.env);
  EXPECT_TRUE(parsed->force);
  EXPECT_FALSE(parsed->dry_run);
}

TEST(ControlApiTest, StartRequestRejectsBadInput) {
  const char* bad[] = {
      "",
      "nonsense",
      "[]",
      "{}",  // no model
      R"({"model": 5})",
      R"({"model": "m", "ctx": -1})",
      R"({"model": "m", "ctx": 1.5})",
      R"({"model": "m", "ctx": 99999999999})",
      R"({"model": "m", "port": 70000})",
      R"({"model": "m", "raw_args": "--x"})",
      R"({"model": "m", "raw_args": [1]})",
      R"({"model": "m", "env": ["NOEQUALS"]})",
      R"({"model": "m", "env": ["=x"]})",
      R"({"model": "m", "force": "yes"})",
      R"({"model": "m", "surprise": 1})",
      "{\"model\": \"m\\u0000x\"}",
  };
  for (const char* b : bad) {
    auto r = ParseStartRequest(b);
    EXPECT_FALSE(r.ok()) << b;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << b;
    }
  }
  EXPECT_FALSE(ParseStartRequest(std::string(2 << 20, ' ')).ok());
}

// Issue 11: every JSON the control plane parses has a depth and a size limit, checked
// before the parser runs; names with control characters are refused.
TEST(ControlApiTest, JsonIsBoundedInDepthAndSize) {
  EXPECT_TRUE(
      ParseJsonBounded(R"({"a":[1,{"b":"[[[[[[[[[[[[[[[[["}]})", {1024, 3}).ok());  // brackets in strings do not count
  EXPECT_TRUE(ParseJsonBounded(R"({"a":"\"[[[[[["})", {1024, 1}).ok());             // nor after an escaped quote
  auto deep = ParseJsonBounded(std::string(5, '[') + std::string(5, ']'), {1024, 4});
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(deep.status().message().find("deeper than 4"), std::string::npos);
  auto big = ParseJsonBounded(std::string(2000, ' ') + "1", {1024, 4});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseJsonBounded("{", {1024, 4}).status().code(), StatusCode::kCorrupt);

  // A start request nested 100,000 deep (200 KB) is refused by the scan, quickly.
  const std::string nested = R"({"model":"m","raw_args":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto start = ParseStartRequest(nested);
  ASSERT_FALSE(start.ok());
  EXPECT_EQ(start.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(start.status().message().find("nested deeper"), std::string::npos) << start.status().message();
  EXPECT_FALSE(ParseError(std::string(100000, '[') + std::string(100000, ']')).has_value());

  // Control characters in names: refused with a clear error.
  for (const char* body : {R"({"model":"a\r\nb"})", R"({"model":"m","name":"x\u001b[2J"})", R"({"model":"m\u007f"})"}) {
    auto r = ParseStartRequest(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_NE(r.status().message().find("control character"), std::string::npos) << r.status().message();
  }
}

TEST(ControlApiTest, Targets) {
  auto t = ParseTarget("/v1/logs?name=a%20b&lines=5&flag&x=1+2");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/v1/logs");
  EXPECT_EQ(t->query["name"], "a b");
  EXPECT_EQ(t->query["lines"], "5");
  EXPECT_EQ(t->query["flag"], "");
  EXPECT_EQ(t->query["x"], "1 2");
  EXPECT_EQ(ParseTarget("/v1/models/" + UrlEncode("we/ird name") + "/stop")->path, "/v1/models/we/ird name/stop");
  for (const char* bad : {"", "v1", "/x?a=%", "/x?a=%4", "/x%zz"}) EXPECT_FALSE(ParseTarget(bad).ok()) << bad;
  EXPECT_FALSE(ParseTarget("/" + std::string(10000, 'a')).ok());
}

TEST(ControlApiTest, ErrorsMapToTheDocumentedExitCodes) {
  EXPECT_EQ(ExitCodeFor(ErrorCode::kBadRequest), 64);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kModelReference), 66);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kNotRunning), 66);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kLaunchFailed), 67);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kAdmission), 67);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kStopFailed), 68);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kEngineMissing), 70);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kInternal), 71);
  for (auto c : {ErrorCode::kBadRequest, ErrorCode::kNotRunning, ErrorCode::kModelReference, ErrorCode::kLaunchFailed,
                 ErrorCode::kAdmission, ErrorCode::kStopFailed, ErrorCode::kEngineMissing, ErrorCode::kShuttingDown,
                 ErrorCode::kInternal}) {
    auto e = ParseError(ErrorBody(c, "why").dump());
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code, c);
    EXPECT_EQ(e->message, "why");
    EXPECT_GE(HttpStatusFor(c), 400);
  }
  EXPECT_FALSE(ParseError("{}").has_value());
  EXPECT_FALSE(ParseError("not json").has_value());
  EXPECT_EQ(ParseError(R"({"error":{"code":"from the future","message":"m"}})")->code, ErrorCode::kInternal);
}

TEST(ControlApiTest, ChildInfoJson) {
  supervisor::ChildInfo i;
  i.name = "tiny";
  i.state = supervisor::ChildState::kFailed;
  i.port = 1234;
  i.failure = {supervisor::FailureKind::kExited, 3, 0, "exited with code 3 while loading"};
  i.last_log_lines = "boom\n";
  auto j = ToJson(i);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["url"], "http://127.0.0.1:1234");
  EXPECT_EQ(j["failure"]["kind"], "exited");
  EXPECT_EQ(j["failure"]["exit_code"], 3);
  EXPECT_EQ(j["last_log_lines"], "boom\n");
}

// Restart pending is a state of its own inside the supervisor; on the wire it stays what
// clients read before it existed: "failed", with restart_in_ms saying when it comes back.
TEST(ControlApiTest, RestartPendingChildIsFailedWithRestartInMsOnTheWire) {
  supervisor::ChildInfo i;
  i.name = "crashy";
  i.state = supervisor::ChildState::kRestartPending;
  i.failure = {supervisor::FailureKind::kSignaled, 0, 11, "killed by SIGSEGV while serving"};
  i.restarts = 2;
  i.restart_in_ms = 1500;
  auto j = ToJson(i);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["restart_in_ms"], 1500.0);
  EXPECT_EQ(j["failure"]["kind"], "signaled");
  EXPECT_EQ(j["restarts"], 2);
  // Any other state carries no restart_in_ms, whatever the field holds.
  i.state = supervisor::ChildState::kFailed;
  EXPECT_FALSE(ToJson(i).contains("restart_in_ms"));
}

TEST(DaemonModelsTest, ChildNames) {
  EXPECT_EQ(daemon::ChildNameFor("Qwen2.5 7B/Q4"), "Qwen2.5-7B-Q4");
  EXPECT_EQ(daemon::ChildNameFor("..x"), "x");
  EXPECT_EQ(daemon::ChildNameFor(""), "model");
  EXPECT_EQ(daemon::ChildNameFor(std::string(100, 'a')).size(), 64u);
  EXPECT_TRUE(supervisor::CheckChildName(daemon::ChildNameFor("-- weird \n name")).ok());
  EXPECT_FALSE(supervisor::CheckChildName("a/b").ok());
  EXPECT_FALSE(supervisor::CheckChildName(".hidden").ok());
  EXPECT_FALSE(supervisor::CheckChildName("").ok());
}

TEST(DaemonModelsTest, EstimateGrowsWithContextAndSize) {
  config::Config c;
  daemon::ResolvedModel small{"s", "/s", 10 << 20};
  daemon::ResolvedModel big{"b", "/b", 4ULL << 30};
  EXPECT_GT(daemon::EstimateModelMemory(c, small, 8192), daemon::EstimateModelMemory(c, small, 512));
  EXPECT_GT(daemon::EstimateModelMemory(c, big, 512), daemon::EstimateModelMemory(c, small, 512));
  EXPECT_GE(daemon::EstimateModelMemory(c, big, 512), big.size_bytes);
}

TEST(DaemonModelsTest, ResolveRefusesUnknownReferences) {
  config::Config c;
  auto r = daemon::ResolveModel(c, "/definitely/not/here.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(daemon::ResolveModel(c, "").ok());
}

}  // namespace
}  // namespace corral::control
