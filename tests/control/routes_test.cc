// The control route table (control/routes.h) against a scripted Services: which handler a
// method and path reach, "no route", and the JSON of a few answers. No daemon, no process.
#include "control/routes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace corral::control {
namespace {

using nlohmann::json;

// Records what the routes asked; answers with one ready child "tiny".
class FakeServices final : public Services {
 public:
  std::vector<std::string> calls;
  ReloadOutcome reload;

  static supervisor::ChildInfo Tiny() {
    supervisor::ChildInfo i;
    i.name = "tiny";
    i.model = "corral-tiny";
    i.state = supervisor::ChildState::kReady;
    i.port = 4242;
    return i;
  }
  std::vector<supervisor::ChildInfo> Children() override { return {Tiny()}; }
  Result<supervisor::ChildInfo> Child(const std::string& name) override {
    calls.push_back("child " + name);
    if (name != "tiny") return NotFound("no child '" + name + "'");
    return Tiny();
  }
  Result<supervisor::ChildInfo> WaitForChange(const std::string& name, uint64_t generation,
                                              std::chrono::milliseconds timeout) override {
    calls.push_back("wait " + name + " " + std::to_string(generation) + " " + std::to_string(timeout.count()));
    return Tiny();
  }
  Result<supervisor::ChildInfo> Stop(const std::string& name) override {
    calls.push_back("stop " + name);
    return Tiny();
  }
  Result<std::string> ChildForReference(const std::string& ref, bool /*for_logs*/) override {
    calls.push_back("ref " + ref);
    if (ref == "tiny" || ref == "corral-tiny") return std::string("tiny");
    return NotFound("no model '" + ref + "'");
  }
  SpecView Spec(const supervisor::ChildInfo& /*child*/) override {
    SpecView v;
    v.totals = SpecView::Totals{8, 6};
    return v;
  }
  StartAnswer Start(const StartRequest& request) override {
    calls.push_back("start " + request.model);
    return ApiError{ErrorCode::kAdmission, "over budget"};
  }
  void SetPinned(const std::string& child, bool pinned) override {
    calls.push_back(std::string(pinned ? "pin " : "unpin ") + child);
  }
  void UnloadWhenIdle(const std::string& child) override { calls.push_back("unload " + child); }
  std::vector<CatalogRow> Catalog() override { return {}; }
  DaemonFacts Facts() override { return {}; }
  ReloadOutcome Reload(const std::string& trigger) override {
    calls.push_back("reload " + trigger);
    return reload;
  }
  void RefreshCatalog() override { calls.push_back("refresh"); }
  void RequestShutdown() override { calls.push_back("shutdown"); }
  bool ShuttingDown() override { return false; }
  std::string LogDir() override { return "/nonexistent"; }
  Response FollowLog(const std::string& /*name*/, const std::string& /*path*/, bool /*running*/,
                     size_t /*lines*/) override {
    return {};
  }
  json BenchList() override { return {{"reports", json::array()}}; }
  Result<json> BenchReport(const std::string& id) override {
    calls.push_back("report " + id);
    return NotFound("no report " + id);
  }
  Status StartBench(const std::string& /*child*/, const std::string& /*direct_url*/, const std::string& /*proxy_url*/,
                    int /*runs*/) override {
    return Status::Ok();
  }
  json BenchRun() override { return nullptr; }
  Response Events(json /*hello*/) override { return {}; }
};

Response Call(Routes& routes, const std::string& method, const std::string& target, const std::string& body = "") {
  auto t = ParseTarget(target);
  EXPECT_TRUE(t.ok()) << target;
  return routes.Handle(Request{method, *t, body});
}

std::string ErrorCodeOf(const Response& r) {
  return r.body.contains("error") ? r.body["error"].value("code", std::string()) : std::string();
}

TEST(ControlRoutesTest, EachRouteReachesItsHandler) {
  FakeServices s;
  Routes routes(s);
  EXPECT_EQ(Call(routes, "GET", "/v1/models/tiny/wait?generation=3&timeout_ms=99999").status, 200);
  EXPECT_EQ(s.calls.back(), "wait tiny 3 5000");  // the long poll is capped
  EXPECT_EQ(Call(routes, "POST", "/v1/models/corral-tiny/stop").status, 200);
  EXPECT_EQ(s.calls.back(), "stop tiny");
  EXPECT_EQ(Call(routes, "POST", "/v1/models/tiny/unload").body.value("pinned", true), false);
  EXPECT_EQ(s.calls.back(), "unload tiny");
  EXPECT_EQ(Call(routes, "POST", "/v1/models/stop-all").body["stopped"], json::array({"tiny"}));
  EXPECT_EQ(Call(routes, "POST", "/v1/catalog/refresh").body, json({{"ok", true}}));
  EXPECT_EQ(s.calls.back(), "refresh");
  EXPECT_EQ(Call(routes, "GET", "/v1/bench/reports/a/b").status, 404);
  EXPECT_EQ(s.calls.back(), "report a/b");  // {rest} keeps the slashes; the owner checks the id
  Response ps = Call(routes, "GET", "/v1/ps");
  ASSERT_EQ(ps.body["models"].size(), 1U);
  EXPECT_EQ(ps.body["models"][0]["spec"]["acceptance"], 0.75);
}

TEST(ControlRoutesTest, AnythingElseIsNoRoute) {
  FakeServices s;
  Routes routes(s);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{{"GET", "/v1/nope"},
                                                                                     {"POST", "/v1/status"},
                                                                                     {"GET", "/v1/models/tiny/stop"},
                                                                                     {"POST", "/v1/models/tiny/a/b"},
                                                                                     {"GET", "/v1/bench/reports"},
                                                                                     {"DELETE", "/v1/ps"}}) {
    Response r = Call(routes, method, path);
    EXPECT_EQ(r.status, 400) << method << " " << path;
    EXPECT_EQ(ErrorCodeOf(r), "bad_request") << method << " " << path;
    EXPECT_EQ(r.body["error"]["message"], "no route " + method + " " + path);
  }
  EXPECT_TRUE(s.calls.empty());
}

TEST(ControlRoutesTest, ErrorsKeepTheirCodes) {
  FakeServices s;
  Routes routes(s);
  EXPECT_EQ(ErrorCodeOf(Call(routes, "GET", "/v1/models/ghost")), "not_running");
  EXPECT_EQ(ErrorCodeOf(Call(routes, "POST", "/v1/models/start", R"({"model":"tiny"})")), "admission_refused");
  EXPECT_EQ(ErrorCodeOf(Call(routes, "POST", "/v1/models/start", "{")), "bad_request");
  EXPECT_EQ(ErrorCodeOf(Call(routes, "GET", "/v1/logs")), "bad_request");
}

TEST(ControlRoutesTest, ARejectedReloadAnswers400WithTheOutcome) {
  FakeServices s;
  s.reload.trigger = "control";
  s.reload.file = "/x/config.yaml";
  s.reload.error = "bad yaml";
  Routes routes(s);
  Response r = Call(routes, "POST", "/v1/reload");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"], "bad yaml");
  EXPECT_EQ(r.body["reload"]["ok"], false);
  EXPECT_EQ(r.body["reload"]["applied"], json::array());

  s.reload.ok = true;
  s.reload.error.clear();
  s.reload.changes = {{"model_ttl", "300", "60", false}, {"listen", "a:1", "b:2", true}};
  r = Call(routes, "POST", "/v1/reload");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["applied"], json::array({"model_ttl"}));
  EXPECT_EQ(r.body["needs_restart"][0]["configured"], "b:2");
  EXPECT_FALSE(r.body.contains("error"));
}

}  // namespace
}  // namespace corral::control
