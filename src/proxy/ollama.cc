#include "proxy/ollama.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>

#include "proxy/json_guard.h"
#include "proxy/router_mode.h"

namespace corral::proxy {

using json = nlohmann::json;

namespace {

const auto kReplace = json::error_handler_t::replace;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, kReplace);
}

// RFC 3339 with nanoseconds, UTC, as Ollama writes it.
std::string Rfc3339(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns % 1'000'000'000));
  return buf;
}

std::string Now() {
  return Rfc3339(std::chrono::system_clock::now());
}

// Ollama's spelling of a parameter count: "8.0B", "25M", "" when unknown.
std::string ParameterSize(uint64_t n) {
  if (n == 0) return "";
  char buf[32];
  if (n >= 1'000'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(n) / 1e9);
  } else if (n >= 1'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.0fM", static_cast<double>(n) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.0fK", static_cast<double>(n) / 1e3);
  }
  return buf;
}

json Details(const ModelInfo& m) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", m.family.empty() ? "llama" : m.family},
          {"families", json::array({m.family.empty() ? "llama" : m.family})},
          {"parameter_size", ParameterSize(m.n_params)},
          {"quantization_level", m.quantization}};
}

// A stable digest per model (Ollama clients group tags by it): FNV-1a of the canonical
// name, as 64 hex digits like Ollama's sha256 digests. Not a content hash.
std::string Digest(const ModelInfo& m) {
  uint64_t h = 1469598103934665603ULL;
  for (char c : m.name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf) + std::string(48, '0');
}

std::string Modified(const ModelInfo& m) {
  return Rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(m.modified_unix_s)));
}

int64_t Ns(double ms) {
  return static_cast<int64_t>(std::llround(ms * 1e6));
}

}  // namespace

std::string OpenAIModelList(const std::vector<ModelInfo>& models) {
  json data = json::array();
  for (const auto& m : models) {
    json meta = {{"state", to_string(m.state)}};
    if (m.context != 0) meta["n_ctx"] = m.context;
    data.push_back(OpenAIModelJson(m));
  }
  return Dump({{"object", "list"}, {"data", data}});
}

nlohmann::json OpenAIModelJson(const ModelInfo& m) {
  json meta = {{"state", to_string(m.state)}};
  if (m.context != 0) meta["n_ctx"] = m.context;
  if (m.context_length != 0) meta["n_ctx_train"] = m.context_length;
  if (m.n_params != 0) meta["n_params"] = m.n_params;
  if (!m.capabilities.empty()) meta["capabilities"] = m.capabilities;
  std::vector<std::string> names = NamesOf(m);
  names.erase(names.begin());  // the id itself
  return {{"id", m.name},
          {"object", "model"},
          {"created", m.modified_unix_s},
          {"owned_by", "corral"},
          // llama-server router mode's status object (router_mode.h): its web UI reads status.value.
          {"status", RouterStatusJson(m)},
          {"aliases", m.aliases},
          {"names", names},  // other names a request may use (issue 14); the id always works
          {"meta", meta}};
}

std::string OpenAIModel(const ModelInfo& m) {
  return Dump(OpenAIModelJson(m));
}

std::string OllamaVersion(const std::string& version) {
  return Dump({{"version", version}});
}

std::string OllamaTags(const std::vector<ModelInfo>& models) {
  // One entry per name a client may check for (Ollama lists a model once per tag, all with
  // the same digest): the canonical name, "NAME:latest" (what Ollama clients compare with
  // when the user typed no tag), aliases, the file stem, the Ollama tag and the
  // hf.co/owner/repo:QUANT spelling.
  json list = json::array();
  for (const auto& m : models) {
    std::vector<std::string> names = NamesOf(m);
    if (m.name.find(':') == std::string::npos) names.insert(names.begin() + 1, m.name + ":latest");
    const std::string digest = Digest(m);
    for (const auto& n : names) {
      list.push_back({{"name", n},
                      {"model", n},
                      {"modified_at", Modified(m)},
                      {"size", m.size_bytes},
                      {"digest", digest},
                      {"details", Details(m)}});
    }
  }
  return Dump({{"models", list}});
}

std::string OllamaPs(const std::vector<ModelInfo>& models) {
  json list = json::array();
  for (const auto& m : models) {
    if (m.state != ModelState::kReady) continue;
    // size_vram: what the daemon knows sits in GPU memory (0 for a CPU-only engine, as Ollama
    // reports it on a CPU machine).
    json row = {
        {"name", m.name},        {"model", m.name},           {"size", m.memory_bytes},     {"digest", Digest(m)},
        {"details", Details(m)}, {"size_vram", m.vram_bytes}, {"context_length", m.context}};
    row["expires_at"] =
        m.expires_at == std::chrono::system_clock::time_point{} ? "0001-01-01T00:00:00Z" : Rfc3339(m.expires_at);
    list.push_back(row);
  }
  return Dump({{"models", list}});
}

std::string OllamaShow(const ModelInfo& m) {
  const std::string arch = m.family.empty() ? "llama" : m.family;
  json info = {{"general.architecture", arch}};
  if (m.n_params != 0) info["general.parameter_count"] = m.n_params;
  const uint32_t ctx = m.context_length != 0 ? m.context_length : m.context;
  if (ctx != 0) info[arch + ".context_length"] = ctx;
  json caps = m.capabilities.empty() ? json::array({"completion"}) : json(m.capabilities);
  return Dump({{"license", ""},
               {"modelfile", ""},
               {"parameters", ""},
               {"template", ""},
               {"details", Details(m)},
               {"model_info", info},
               {"capabilities", caps},
               {"modified_at", Modified(m)}});
}

std::string OllamaRequestModel(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  for (const char* key : {"model", "name"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

Result<std::chrono::seconds> ParseOllamaDuration(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty keep_alive");
  bool negative = text.front() == '-';
  std::string_view rest = negative ? text.substr(1) : text;
  double total = 0;
  bool any_unit = false;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && ((rest[i] >= '0' && rest[i] <= '9') || rest[i] == '.')) ++i;
    if (i == 0) return InvalidArgument("bad keep_alive '" + std::string(text) + "'");
    double v = std::strtod(std::string(rest.substr(0, i)).c_str(), nullptr);
    rest.remove_prefix(i);
    double unit = 1;
    if (rest.substr(0, 2) == "ms") {
      unit = 0.001;
      rest.remove_prefix(2);
    } else if (!rest.empty() && (rest[0] == 'h' || rest[0] == 'm' || rest[0] == 's')) {
      unit = rest[0] == 'h' ? 3600 : rest[0] == 'm' ? 60 : 1;
      rest.remove_prefix(1);
    } else if (!rest.empty() || any_unit) {
      return InvalidArgument("bad keep_alive '" + std::string(text) + "'");
    }
    any_unit = true;
    total += v * unit;
  }
  if (total > 1e9) total = 1e9;
  auto s = std::chrono::seconds(static_cast<int64_t>(total));
  return negative ? std::chrono::seconds(-1) : s;
}

Result<OllamaPlan> PlanOllamaRequest(RouteKind kind, std::string_view body, const OllamaLimits& limits) {
  // Bounded before parsing: nlohmann's parser is iterative, but copying and dumping a
  // document recurse once per level, and its DOM costs ~50-100 bytes per value.
  JsonShape shape = ScanJsonShape(body, limits.max_depth);
  if (shape.depth > limits.max_depth) {
    return InvalidArgument("the request body nests arrays/objects deeper than " + std::to_string(limits.max_depth) +
                           " levels (option max_json_depth)");
  }
  if (shape.values > limits.max_values) {
    return InvalidArgument("the request body has more than " + std::to_string(limits.max_values) + " JSON values");
  }
  json in = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) return InvalidArgument("the request body is not a JSON object");
  OllamaPlan plan;
  auto model = in.find("model");
  if (model == in.end() || !model->is_string() || model->get<std::string>().empty()) {
    auto name = in.find("name");
    if (name == in.end() || !name->is_string()) return InvalidArgument("missing \"model\"");
    model = name;
  }
  plan.model = model->get<std::string>();
  if (auto ka = in.find("keep_alive"); ka != in.end() && !ka->is_null()) {
    if (ka->is_number()) {
      double v = ka->get<double>();
      plan.keep_alive = std::chrono::seconds(v < 0 ? -1 : static_cast<int64_t>(std::min(v, 1e9)));
    } else if (ka->is_string()) {
      auto d = ParseOllamaDuration(ka->get<std::string>());
      if (!d.ok()) return d.status();
      plan.keep_alive = *d;
    } else {
      return InvalidArgument("keep_alive must be a number or a duration string");
    }
  }
  if (auto st = in.find("stream"); st != in.end() && st->is_boolean()) plan.stream = st->get<bool>();

  json out = {{"model", plan.model}};
  // Ollama options -> OpenAI / llama-server sampling fields.
  if (auto opts = in.find("options"); opts != in.end() && opts->is_object()) {
    static const std::pair<const char*, const char*> kMap[] = {{"temperature", "temperature"},
                                                               {"top_p", "top_p"},
                                                               {"top_k", "top_k"},
                                                               {"min_p", "min_p"},
                                                               {"seed", "seed"},
                                                               {"num_predict", "max_tokens"},
                                                               {"stop", "stop"},
                                                               {"repeat_penalty", "repeat_penalty"},
                                                               {"presence_penalty", "presence_penalty"},
                                                               {"frequency_penalty", "frequency_penalty"},
                                                               {"typical_p", "typical_p"},
                                                               {"repeat_last_n", "repeat_last_n"}};
    for (const auto& [from, to] : kMap) {
      auto it = opts->find(from);
      if (it != opts->end() && !it->is_null()) out[to] = *it;
    }
  }
  if (auto fmt = in.find("format"); fmt != in.end() && !fmt->is_null()) {
    if (fmt->is_string() && fmt->get<std::string>() == "json") {
      out["response_format"] = {{"type", "json_object"}};
    } else if (fmt->is_object()) {
      out["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"schema", *fmt}}}};
    }
  }

  if (kind == RouteKind::kOllamaEmbed) {
    auto input = in.find("input");
    if (input == in.end()) input = in.find("prompt");  // legacy /api/embeddings
    if (input == in.end() || input->is_null() || (input->is_string() && input->get<std::string>().empty()) ||
        (input->is_array() && input->empty())) {
      plan.load_only = true;
      return plan;
    }
    if (!input->is_string() && !input->is_array()) return InvalidArgument("\"input\" must be a string or a list");
    out["input"] = *input;
    out.erase("max_tokens");
    plan.stream = false;
    plan.upstream_target = "/v1/embeddings";
    plan.upstream_body = Dump(out);
    if (plan.upstream_body.size() > limits.max_upstream_bytes) {
      return InvalidArgument("the translated request would be larger than " +
                             std::to_string(limits.max_upstream_bytes) + " bytes");
    }
    return plan;
  }

  if (kind == RouteKind::kOllamaChat) {
    auto msgs = in.find("messages");
    if (msgs == in.end() || msgs->is_null() || (msgs->is_array() && msgs->empty())) {
      plan.load_only = true;
      return plan;
    }
    if (!msgs->is_array()) return InvalidArgument("\"messages\" must be a list");
    uint64_t image_bytes = 0;  // what the data: URLs add, checked as they are built
    json messages = json::array();
    for (const auto& m : *msgs) {
      if (!m.is_object()) return InvalidArgument("each message must be an object");
      json om = {{"role", m.value("role", "user")}};
      json content = m.contains("content") ? m["content"] : json("");
      if (auto imgs = m.find("images"); imgs != m.end() && imgs->is_array() && !imgs->empty()) {
        json parts = json::array();
        if (content.is_string() && !content.get<std::string>().empty()) {
          parts.push_back({{"type", "text"}, {"text", content}});
        }
        for (const auto& img : *imgs) {
          if (!img.is_string()) continue;
          image_bytes += img.get_ref<const std::string&>().size() + 64;
          if (image_bytes > limits.max_upstream_bytes) {
            return InvalidArgument("the translated request would be larger than " +
                                   std::to_string(limits.max_upstream_bytes) + " bytes");
          }
          parts.push_back(
              {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + img.get<std::string>()}}}});
        }
        content = parts;
      }
      om["content"] = content;
      if (m.contains("tool_calls")) om["tool_calls"] = m["tool_calls"];
      messages.push_back(om);
    }
    out["messages"] = messages;
    if (auto tools = in.find("tools"); tools != in.end() && tools->is_array()) out["tools"] = *tools;
    plan.upstream_target = "/v1/chat/completions";
  } else {  // generate
    auto prompt = in.find("prompt");
    if (prompt == in.end() || prompt->is_null() || (prompt->is_string() && prompt->get<std::string>().empty())) {
      plan.load_only = true;
      return plan;
    }
    if (!prompt->is_string()) return InvalidArgument("\"prompt\" must be a string");
    bool raw = in.value("raw", false);
    if (raw) {
      out["prompt"] = *prompt;
      plan.upstream_target = "/v1/completions";
    } else {
      json messages = json::array();
      if (auto sys = in.find("system"); sys != in.end() && sys->is_string() && !sys->get<std::string>().empty()) {
        messages.push_back({{"role", "system"}, {"content", *sys}});
      }
      messages.push_back({{"role", "user"}, {"content", *prompt}});
      out["messages"] = messages;
      plan.upstream_target = "/v1/chat/completions";
    }
  }
  out["stream"] = plan.stream;
  plan.upstream_body = Dump(out);
  if (plan.upstream_body.size() > limits.max_upstream_bytes) {
    return InvalidArgument("the translated request would be larger than " + std::to_string(limits.max_upstream_bytes) +
                           " bytes");
  }
  return plan;
}

std::string OllamaLoadAnswer(RouteKind kind, const std::string& model, bool unloaded) {
  const char* reason = unloaded ? "unload" : "load";
  if (kind == RouteKind::kOllamaEmbed) return Dump({{"model", model}, {"embeddings", json::array()}});
  if (kind == RouteKind::kOllamaChat) {
    return Dump({{"model", model},
                 {"created_at", Now()},
                 {"message", {{"role", "assistant"}, {"content", ""}}},
                 {"done_reason", reason},
                 {"done", true}});
  }
  return Dump({{"model", model}, {"created_at", Now()}, {"response", ""}, {"done", true}, {"done_reason", reason}});
}

OllamaResponseTranslator::OllamaResponseTranslator(RouteKind kind, std::string model, bool stream)
    : kind_(kind), model_(std::move(model)), stream_(stream) {}

std::string OllamaResponseTranslator::Feed(std::string_view bytes) {
  if (overflow_) return {};
  if (buffer_.size() + bytes.size() > kMaxBuffered) {
    overflow_ = true;
    buffer_.clear();
    return {};
  }
  buffer_.append(bytes);
  if (!stream_ || upstream_status_ >= 400) return {};
  // SSE: one event per "data: ..." line; events end at a blank line.
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t nl = buffer_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buffer_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = nl + 1;
    if (line.substr(0, 5) != "data:") continue;
    line.remove_prefix(5);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line == "[DONE]") continue;
    out += TranslateEvent(line);
  }
  buffer_.erase(0, start);
  if (buffer_.size() > kMaxSseLineBytes) {  // one event that never ends
    overflow_ = true;
    buffer_.clear();
  }
  return out;
}

// One OpenAI chunk (streaming) -> zero or one NDJSON line; remembers timings and finish.
std::string OllamaResponseTranslator::TranslateEvent(std::string_view text) {
  if (!JsonDepthWithin(text, kMaxEventDepth)) return {};
  json ev = json::parse(text, nullptr, false);
  if (!ev.is_object()) return {};
  if (auto t = ev.find("timings"); t != ev.end() && t->is_object()) {
    prompt_n_ = t->value("prompt_n", 0.0);
    prompt_ms_ = t->value("prompt_ms", 0.0);
    predicted_n_ = t->value("predicted_n", 0.0);
    predicted_ms_ = t->value("predicted_ms", 0.0);
  }
  std::string piece;
  json tool_calls;
  if (auto ch = ev.find("choices"); ch != ev.end() && ch->is_array() && !ch->empty()) {
    const json& c = (*ch)[0];
    if (auto fr = c.find("finish_reason"); fr != c.end() && fr->is_string()) {
      done_reason_ = fr->get<std::string>() == "length" ? "length" : "stop";
    }
    if (auto d = c.find("delta"); d != c.end() && d->is_object()) {
      if (auto ct = d->find("content"); ct != d->end() && ct->is_string()) piece = ct->get<std::string>();
      if (auto tc = d->find("tool_calls"); tc != d->end() && tc->is_array()) tool_calls = *tc;
    } else if (auto m = c.find("message"); m != c.end() && m->is_object()) {
      if (auto ct = m->find("content"); ct != m->end() && ct->is_string()) piece = ct->get<std::string>();
      if (auto tc = m->find("tool_calls"); tc != m->end() && tc->is_array()) tool_calls = *tc;
    } else if (auto tx = c.find("text"); tx != c.end() && tx->is_string()) {
      piece = tx->get<std::string>();
    }
  }
  if (!stream_) {
    // Non-streaming: the one event is the whole answer; keep its content for Finish().
    json line = {{"model", model_}, {"created_at", Now()}};
    if (kind_ == RouteKind::kOllamaChat) {
      line["message"] = {{"role", "assistant"}, {"content", piece}};
      if (!tool_calls.is_null()) line["message"]["tool_calls"] = tool_calls;
    } else {
      line["response"] = piece;
    }
    return Dump(line);
  }
  if (piece.empty() && tool_calls.is_null()) return {};
  json line = {{"model", model_}, {"created_at", Now()}};
  if (kind_ == RouteKind::kOllamaChat) {
    line["message"] = {{"role", "assistant"}, {"content", piece}};
    if (!tool_calls.is_null()) line["message"]["tool_calls"] = tool_calls;
  } else {
    line["response"] = piece;
  }
  line["done"] = false;
  return Dump(line) + "\n";
}

std::string OllamaResponseTranslator::FinalLine() {
  json line = {{"model", model_}, {"created_at", Now()}};
  if (kind_ == RouteKind::kOllamaChat) {
    line["message"] = {{"role", "assistant"}, {"content", ""}};
  } else {
    line["response"] = "";
  }
  auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_);
  line["done"] = true;
  line["done_reason"] = done_reason_;
  line["total_duration"] = total.count();
  line["load_duration"] = 0;
  line["prompt_eval_count"] = static_cast<int64_t>(prompt_n_);
  line["prompt_eval_duration"] = Ns(prompt_ms_);
  line["eval_count"] = static_cast<int64_t>(predicted_n_);
  line["eval_duration"] = Ns(predicted_ms_);
  return Dump(line) + "\n";
}

std::string OllamaResponseTranslator::Finish() {
  if (done_sent_) return {};
  done_sent_ = true;
  if (overflow_) return Dump({{"error", "upstream response too large to translate"}});
  if (!JsonDepthWithin(buffer_, kMaxEventDepth)) buffer_.clear();  // parsed below: never too deep
  if (upstream_status_ >= 400) {
    json err = json::parse(buffer_, nullptr, false);
    std::string msg = "upstream error " + std::to_string(upstream_status_);
    if (err.is_object()) {
      auto e = err.find("error");
      if (e != err.end() && e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        msg = (*e)["message"].get<std::string>();
      } else if (e != err.end() && e->is_string()) {
        msg = e->get<std::string>();
      }
    }
    return Dump({{"error", msg}});
  }
  if (stream_) return FinalLine();
  if (kind_ == RouteKind::kOllamaEmbed) {
    json res = json::parse(buffer_, nullptr, false);
    json embeddings = json::array();
    if (res.is_object() && res.contains("data") && res["data"].is_array()) {
      for (const auto& d : res["data"]) {
        if (d.is_object() && d.contains("embedding")) embeddings.push_back(d["embedding"]);
      }
    }
    int64_t prompt_tokens = 0;
    if (res.is_object() && res.contains("usage") && res["usage"].is_object()) {
      prompt_tokens = res["usage"].value("prompt_tokens", int64_t{0});
    }
    auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_);
    json out = {{"model", model_},
                {"embeddings", embeddings},
                {"total_duration", total.count()},
                {"load_duration", 0},
                {"prompt_eval_count", prompt_tokens}};
    // Legacy /api/embeddings answers one vector as "embedding".
    if (!embeddings.empty()) out["embedding"] = embeddings[0];
    return Dump(out);
  }
  std::string line = TranslateEvent(buffer_);
  json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return Dump({{"error", "upstream answered something that is not JSON"}});
  json fin = json::parse(FinalLine(), nullptr, false);
  for (auto& [k, v] : fin.items()) {
    if (k != "message" && k != "response") j[k] = v;
  }
  return Dump(j);
}

}  // namespace corral::proxy
