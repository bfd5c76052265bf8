#include "proxy/router_mode.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "proxy/ollama.h"

namespace corral::proxy {

using json = nlohmann::json;

std::string_view RouterStatusValue(ModelState state) {
  switch (state) {
    case ModelState::kReady: return "loaded";
    case ModelState::kStarting:
    case ModelState::kLoading: return "loading";
    case ModelState::kStopped:
    case ModelState::kStopping:
    case ModelState::kFailed: return "unloaded";
  }
  return "unloaded";
}

json RouterStatusJson(const ModelInfo& m) {
  json status = {{"value", RouterStatusValue(m.state)}, {"args", json::array()}, {"corral_state", to_string(m.state)}};
  if (m.state == ModelState::kFailed) status["failed"] = true;
  return status;
}

std::string RouterStatusEvents(std::map<std::string, std::string>& before, const std::vector<ModelInfo>& now,
                               std::string_view event) {
  std::string out;
  for (const auto& m : now) {
    const bool failed = m.state == ModelState::kFailed;
    std::string value = failed ? "failed" : std::string(RouterStatusValue(m.state));
    auto it = before.find(m.name);
    if (it != before.end() && it->second == value) continue;
    json data = {{"status", failed ? "unloaded" : value}};
    if (failed) data["exit_code"] = 1;
    json record = {{"model", m.name}, {"event", std::string(event)}, {"data", std::move(data)}};
    out += "data: " + record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    before[m.name] = value;
  }
  return out;
}

std::string RouterModelList(const std::vector<ModelInfo>& models) {
  json data = json::array();
  for (const auto& m : models) {
    json entry = OpenAIModelJson(m);
    json input = json::array({"text"});
    const auto& caps = m.capabilities;
    if (std::find(caps.begin(), caps.end(), "vision") != caps.end()) input.push_back("image");
    entry["tags"] = json::array();
    entry["architecture"] = {{"input_modalities", input}, {"output_modalities", json::array({"text"})}};
    entry["source"] = "corral";
    entry["can_remove"] = false;
    data.push_back(std::move(entry));
  }
  return json{{"object", "list"}, {"data", data}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RouterProps(std::string_view corral_version) {
  // The fields llama-server's router answers (server-models.cpp, get_router_props); the
  // model-shaped ones are its placeholders "so the UI doesn't break".
  json j = {{"role", "router"},
            {"max_instances", 0},  // llama-server's --models-max; 0 = no fixed count (Corral admits by memory)
            {"models_autoload", true},
            {"model_alias", "corral"},
            {"model_path", "none"},
            {"default_generation_settings", {{"params", json::object()}, {"n_ctx", 0}}},
            {"ui_settings", json::object()},
            {"webui_settings", json::object()},
            {"build_info", "corral " + std::string(corral_version)},
            {"cors_proxy_enabled", false}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> RouterRequestModel(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("the request body must be a JSON object");
  auto it = j.find("model");
  if (it == j.end()) return InvalidArgument("missing \"model\"");
  if (!it->is_string()) return InvalidArgument("\"model\" must be a string");
  std::string model = it->get<std::string>();
  if (model.empty()) return InvalidArgument("missing \"model\"");
  return model;
}

}  // namespace corral::proxy
