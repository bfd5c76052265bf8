// llama-server router mode on Corral's proxy (issue 16, src/proxy/router_mode.h): the requests
// llama.cpp's own web UI makes, in its order, against a private daemon with real llama-server
// children on synthetic models.
//
// The pinned tree's own UI (tools/ui) is built by scripts/llama-ui.sh and driven in Chromium
// against Corral by tests/web/llama_ui_test.cc, which records the requests it makes; the ones
// here are quoted from the upstream web UI (ggml-org/llama.cpp,
// tools/server/webui/src/lib/...) at the stored versions nearest the pin:
//   constants/api-endpoints.ts (684ed10a) L1-5   API_MODELS = { LIST: '/v1/models',
//                                                  LOAD: '/models/load', UNLOAD: '/models/unload' }
//   services/props.ts (a580205c) L30-33          fetch(): GET ./props?autoload=false
//   services/props.ts (a580205c) L61-65          fetchForModel(id): GET ./props?model=ID&autoload=false
//   services/models.service.ts (912ce00a) L31-43 list()/listRouter(): GET API_MODELS_LIST
//   services/models.service.ts (912ce00a) L57-64 load(id): POST /models/load {"model": id}
//   services/models.service.ts (912ce00a) L74-76 unload(id): POST /models/unload {"model": id}
//   stores/models.svelte.ts (0d690bb1)           m.status.value === ServerModelStatus.LOADED,
//                                                  then polls the list every 500 ms (60 tries)
//   stores/server.svelte.ts                      detectRole: props.role === ServerRole.ROUTER
// and the server side from the pinned tree (tools/server/server-models.cpp: get_router_props,
// get_router_models, post_router_models_load/unload, router_validate_model).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "support/daemon_fixture.h"
#include "support/test_support.h"
#include "support/two_model_daemon.h"

namespace corral {
namespace {

using nlohmann::json;

class RouterModeTest : public testing::TwoModelDaemonTest {
 protected:
  RouterModeTest() : TwoModelDaemonTest(512) {}
  json Get(int port, const std::string& target, int want = 200) {
    auto r = testing::Http("GET", port, target);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return json();
    EXPECT_EQ(r->status, want) << target << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }
  testing::HttpResponse Post(int port, const std::string& target, const std::string& body) {
    auto r = testing::Http("POST", port, target, body);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : testing::HttpResponse{};
  }
  // The status.value of `id` in GET /v1/models, as the web UI reads it.
  std::string StatusOf(int port, const std::string& id) {
    json list = Get(port, "/v1/models");
    for (const auto& m : list["data"]) {
      if (m["id"] == id) return m["status"].value("value", std::string());
    }
    return "";
  }
  // The web UI's poll after load/unload (models.svelte.ts pollForModelStatus), bounded.
  bool PollFor(int port, const std::string& id, const std::string& value) {
    for (int i = 0; i < 200; ++i) {
      if (StatusOf(port, id) == value) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

TEST_F(RouterModeTest, TheWebUiRequestsInItsOrder) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  const std::string alpha = NameOf("alpha");
  ASSERT_FALSE(alpha.empty());

  // 1. props.ts fetch(): the router answers itself; the UI switches to its model picker.
  json props = Get(port, "/props?autoload=false");
  EXPECT_EQ(props.value("role", ""), "router") << props.dump();
  EXPECT_EQ(props["default_generation_settings"].value("n_ctx", -1), 0);
  EXPECT_TRUE(props.contains("build_info"));
  EXPECT_TRUE(Running().empty());  // nothing was started for it

  // 2. list()/listRouter(): every catalog model, with llama-server's status object.
  json list = Get(port, "/v1/models");
  ASSERT_EQ(list["data"].size(), 2U) << list.dump();
  for (const auto& m : list["data"]) {
    EXPECT_EQ(m["status"]["value"], "unloaded") << m.dump();
    EXPECT_TRUE(m["status"]["args"].is_array());
    EXPECT_TRUE(m["aliases"].is_array());
  }
  json router_list = Get(port, "/models");
  ASSERT_EQ(router_list["data"].size(), 2U);
  EXPECT_EQ(router_list["data"][0]["architecture"]["input_modalities"], json::array({"text"}));
  EXPECT_EQ(router_list["data"][0]["object"], "model");

  // 3. fetchForModel() for a model that is not loaded: refused, and nothing starts.
  auto not_loaded = testing::Http("GET", port, "/props?model=" + alpha + "&autoload=false");
  ASSERT_TRUE(not_loaded.ok());
  EXPECT_EQ(not_loaded->status, 400) << not_loaded->body;
  EXPECT_NE(not_loaded->body.find("not loaded"), std::string::npos) << not_loaded->body;
  EXPECT_TRUE(Running().empty());

  // 4. load(id), then the poll until "loaded".
  auto load = Post(port, "/models/load", json{{"model", alpha}}.dump());
  EXPECT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(json::parse(load.body, nullptr, false), json({{"success", true}}));
  EXPECT_TRUE(PollFor(port, alpha, "loaded"));
  EXPECT_EQ(Running(), std::vector<std::string>{alpha});
  // Loading again is fine (idempotent).
  EXPECT_EQ(Post(port, "/models/load", json{{"model", alpha}}.dump()).status, 200);

  // 5. fetchForModel() for the loaded model: the child's own /props.
  json child = Get(port, "/props?model=" + alpha + "&autoload=false");
  EXPECT_NE(child.value("role", ""), "router") << child.dump();
  EXPECT_GT(child["default_generation_settings"].value("n_ctx", 0), 0) << child.dump();

  // 6. The chat request the UI sends with the picked model.
  auto chat = Post(port, "/v1/chat/completions", Chat(alpha));
  EXPECT_EQ(chat.status, 200) << chat.body;

  // 7. unload(id), then the poll until "unloaded".
  auto unload = Post(port, "/models/unload", json{{"model", alpha}}.dump());
  EXPECT_EQ(unload.status, 200) << unload.body;
  EXPECT_TRUE(PollFor(port, alpha, "unloaded"));
}

TEST_F(RouterModeTest, ClearErrors) {
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  auto unknown = Post(port, "/models/load", R"({"model":"alpah"})");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find(NameOf("alpha")), std::string::npos) << unknown.body;  // the close match
  EXPECT_NE(unknown.body.find("\"error\""), std::string::npos) << unknown.body;      // OpenAI shape, as llama-server
  EXPECT_EQ(Post(port, "/models/unload", R"({"model":"zzz-nothing"})").status, 404);
  auto missing = Post(port, "/models/load", "{}");
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_NE(missing.body.find("missing \\\"model\\\""), std::string::npos) << missing.body;
  EXPECT_EQ(Post(port, "/models/load", R"({"model":7})").status, 400);
  EXPECT_EQ(Post(port, "/models/load", "not json").status, 400);
  auto bad_method = testing::Http("GET", port, "/models/load");
  ASSERT_TRUE(bad_method.ok());
  EXPECT_EQ(bad_method->status, 405);
  // Unknown with autoload=false: 404 naming close matches, not "not loaded".
  auto props = testing::Http("GET", port, "/props?model=alpah&autoload=false");
  ASSERT_TRUE(props.ok());
  EXPECT_EQ(props->status, 404) << props->body;
  EXPECT_TRUE(Running().empty());
}

// A load the memory budget cannot admit answers with the reason (llama-server answers
// {"success":true} first and fails later; Corral waits, so the refusal reaches the client).
TEST_F(RouterModeTest, RefusedLoadSaysWhy) {
  json plan = Json({"start", NameOf("alpha"), "--dry-run", "--json"});
  const uint64_t one = plan["plan"].value("reserved_bytes", 0ULL);
  Corral({"daemon", "stop"});
  ASSERT_GT(one, 0U) << plan.dump();
  env_["CORRAL_MEMORY_BUDGET"] = std::to_string(one / 2);
  const int port = StartDaemon();
  ASSERT_GT(port, 0);
  auto r = Post(port, "/models/load", json{{"model", NameOf("alpha")}}.dump());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("budget"), std::string::npos) << r.body;
  EXPECT_TRUE(Running().empty());
}

}  // namespace
}  // namespace corral
