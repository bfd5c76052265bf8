// llama-server's router mode, answered by Corral's proxy (issue 16), so llama.cpp's own web UI
// and tools written for `llama-server --models-dir` work against Corral with every model.
//
// The pinned llama.cpp tree (tools/server/server.cpp, server-models.cpp) registers, when
// llama-server runs without a model:
//   GET  /models, /v1/models   {"object":"list","data":[{id, aliases, tags, object, owned_by,
//                               created, status:{value, args[, failed, exit_code]},
//                               architecture:{input_modalities, output_modalities}, source,
//                               can_remove}]}
//   POST /models/load          {"model":ID} -> {"success":true}
//   POST /models/unload        {"model":ID} -> {"success":true}
//   GET  /props                without ?model=: {"role":"router", ...}; with it: the child's
//   ?autoload=false            on any routed request: never start a model for it
// Status values: "unloaded", "loading", "loaded" (also "sleeping", "downloading",
// "downloaded", which Corral never reports).
//
// Pure functions over ModelInfo and bytes. Thread-safety: stateless.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "proxy/model_provider.h"

namespace corral::proxy {

// The router status value of a model in `state`: kReady "loaded"; kStarting and kLoading
// "loading"; kStopped, kFailed and kStopping "unloaded" (a stopping child takes no new
// request: the next one starts the model again, as after an unload in llama-server).
std::string_view RouterStatusValue(ModelState state);
// {"value":V,"args":[]} plus "failed":true for a model whose last start failed, and
// "corral_state": Corral's own state word (to_string(ModelState)).
nlohmann::json RouterStatusJson(const ModelInfo& model);

// GET /models/sse (llama-server's status feed, which the web UI waits on after a load or an
// unload): the records for the models whose router status changed between `before` and
// `now` (each model's status value, by id), "data: {"model":ID,"event":EVENT,"data":
// {"status":V}}\n\n" each; a failed start is "unloaded" with "exit_code":1 (the UI's
// failure signal). `event`: "model_status" for the snapshot sent on connect, else
// "status_change". Updates `before` to `now`.
std::string RouterStatusEvents(std::map<std::string, std::string>& before, const std::vector<ModelInfo>& now,
                               std::string_view event);

// GET /models: every model in llama-server's router list shape, plus Corral's "names" and
// "meta" (as /v1/models).
std::string RouterModelList(const std::vector<ModelInfo>& models);

// GET /props without ?model=: the router's own properties. The web UI switches to its model
// picker when "role" is "router" (and reads default_generation_settings.n_ctx, model_path,
// build_info without a model).
std::string RouterProps(std::string_view corral_version);

// The "model" of a POST /models/load or /models/unload body. kInvalidArgument (missing, not
// a string, not a JSON object) with a message for the client.
Result<std::string> RouterRequestModel(std::string_view body);

}  // namespace corral::proxy
