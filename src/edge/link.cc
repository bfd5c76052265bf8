#include "edge/link.h"

#include <arpa/inet.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace corral::edge {
namespace {

using json = nlohmann::json;
using proxy::Endpoint;
using proxy::EnsureError;
using proxy::EnsureErrorCode;
using proxy::ModelInfo;
using proxy::ModelState;

constexpr char kMore = '+';
constexpr char kLast = '.';
// The down direction is trusted, but a JSON nested this deep is a bug: refuse it.
constexpr int kMaxDownDepth = 16;

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Splits off the next space-separated field of `rest`.
std::string_view NextField(std::string_view& rest) {
  size_t sp = rest.find(' ');
  std::string_view field = rest.substr(0, sp);
  rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  return field;
}

template <typename T>
bool ParseNumber(std::string_view text, T min, T max, T* out) {
  if (text.empty() || text.size() > 20) return false;
  // One spelling per number: no leading zeros, no "-0".
  std::string_view digits = text[0] == '-' ? text.substr(1) : text;
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0') || text == "-0") return false;
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) return false;
  // from_chars accepts a leading '-' for signed types only; "+1" and " 1" are refused.
  *out = v;
  return true;
}

Status BadUp(std::string_view why) {
  return InvalidArgument("bad message from the proxy process: " + std::string(why));
}

int Depth(const json& j, int depth) {
  if (depth > kMaxDownDepth) return depth;
  int deepest = depth;
  if (j.is_structured()) {
    for (const auto& v : j) deepest = std::max(deepest, Depth(v, depth + 1));
  }
  return deepest;
}

ModelState StateFrom(std::string_view s) {
  for (ModelState st : {ModelState::kStopped, ModelState::kStarting, ModelState::kLoading, ModelState::kReady,
                        ModelState::kStopping, ModelState::kFailed}) {
    if (proxy::to_string(st) == s) return st;
  }
  return ModelState::kStopped;
}

int64_t Ms(std::chrono::milliseconds d) {
  return static_cast<int64_t>(d.count());
}

}  // namespace

bool IsCleanModelName(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameBytes) return false;
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string CleanRoute(std::string_view route) {
  if (route.empty() || route.size() > kMaxRouteBytes) return "-";
  for (unsigned char c : route) {
    if (c <= 0x20 || c >= 0x7f) return "-";
  }
  return std::string(route);
}

std::vector<std::string> Frame(std::string_view message) {
  std::vector<std::string> frames;
  do {
    size_t n = std::min(message.size(), kMaxFramePayload);
    std::string f;
    f.reserve(n + 1);
    f += n == message.size() ? kLast : kMore;
    f.append(message.substr(0, n));
    frames.push_back(std::move(f));
    message.remove_prefix(n);
  } while (!message.empty());
  return frames;
}

Result<std::optional<std::string>> FrameAssembler::Add(std::string_view frame) {
  if (frame.empty() || (frame[0] != kMore && frame[0] != kLast)) {
    partial_.clear();
    return InvalidArgument("bad frame on the proxy link");
  }
  if (partial_.size() + frame.size() - 1 > max_bytes_) {
    partial_.clear();
    return InvalidArgument("message on the proxy link longer than " + std::to_string(max_bytes_) + " bytes");
  }
  partial_.append(frame.substr(1));
  if (frame[0] == kMore) return std::optional<std::string>();
  std::string out = std::move(partial_);
  partial_.clear();
  return std::optional<std::string>(std::move(out));
}

std::string EncodeUp(const UpMessage& m) {
  switch (m.kind) {
    case UpKind::kReady: return "R";
    case UpKind::kEnsure: return "E " + std::to_string(m.id) + " " + std::to_string(m.value) + " " + m.model;
    case UpKind::kStart:
    case UpKind::kEnd:
      return std::string(m.kind == UpKind::kStart ? "S " : "D ") + m.endpoint.host + " " +
             std::to_string(m.endpoint.port) + " " + m.model;
    case UpKind::kKeepAlive: return "K " + std::to_string(m.value) + " " + m.model;
    case UpKind::kFinish: {
      const FinishFields& f = m.finish;
      std::string out = "F " + m.endpoint.host + " " + std::to_string(m.endpoint.port);
      for (int64_t v : {int64_t{f.status}, f.ttft_us, f.tokens, f.tok_per_s_milli, f.duration_us, f.proxy_added_us,
                        f.draft_tokens, f.draft_accepted}) {
        out += ' ';
        out += std::to_string(v);
      }
      out += ' ';
      out += CleanRoute(f.route);
      out += " @";
      out += !f.client.empty() && f.client.size() <= 45 && IsIpLiteral(f.client) ? f.client : "-";
      out += ' ';
      out += m.model;
      return out;
    }
  }
  return "";
}

Result<UpMessage> ParseUp(std::string_view text) {
  if (text.empty()) return BadUp("empty");
  if (text.size() > kMaxUpMessageBytes) return BadUp("too long");
  UpMessage m;
  std::string_view rest = text;
  std::string_view verb = NextField(rest);
  if (verb == "R") {
    if (text.size() != 1) return BadUp("R takes no fields");
    m.kind = UpKind::kReady;
    return m;
  }
  if (verb == "E") {
    m.kind = UpKind::kEnsure;
    if (!ParseNumber<uint64_t>(NextField(rest), 0, UINT64_MAX, &m.id)) return BadUp("E: bad id");
    // A day at most: the proxy's own ready timeout is minutes.
    if (!ParseNumber<int64_t>(NextField(rest), 0, 86'400'000, &m.value)) return BadUp("E: bad deadline");
  } else if (verb == "S" || verb == "D") {
    m.kind = verb == "S" ? UpKind::kStart : UpKind::kEnd;
    m.endpoint.host = std::string(NextField(rest));
    if (m.endpoint.host.size() > 45 || !IsIpLiteral(m.endpoint.host)) return BadUp("bad upstream host");
    if (!ParseNumber<uint16_t>(NextField(rest), 1, 65535, &m.endpoint.port)) return BadUp("bad upstream port");
  } else if (verb == "F") {
    m.kind = UpKind::kFinish;
    m.endpoint.host = std::string(NextField(rest));
    if (m.endpoint.host.size() > 45 || !IsIpLiteral(m.endpoint.host)) return BadUp("bad upstream host");
    if (!ParseNumber<uint16_t>(NextField(rest), 1, 65535, &m.endpoint.port)) return BadUp("bad upstream port");
    FinishFields& f = m.finish;
    if (!ParseNumber<int>(NextField(rest), 0, 999, &f.status)) return BadUp("F: bad status");
    constexpr int64_t kMax = int64_t{1} << 50;  // microseconds: decades; tokens: plenty
    for (int64_t* v : {&f.ttft_us, &f.tokens, &f.tok_per_s_milli}) {
      if (!ParseNumber<int64_t>(NextField(rest), -1, kMax, v)) return BadUp("F: bad number");
    }
    if (!ParseNumber<int64_t>(NextField(rest), 0, kMax, &f.duration_us)) return BadUp("F: bad duration");
    if (!ParseNumber<int64_t>(NextField(rest), -1, kMax, &f.proxy_added_us)) return BadUp("F: bad added time");
    for (int64_t* v : {&f.draft_tokens, &f.draft_accepted}) {
      if (!ParseNumber<int64_t>(NextField(rest), -1, kMax, v)) return BadUp("F: bad draft count");
    }
    if ((f.draft_tokens < 0) != (f.draft_accepted < 0) || f.draft_accepted > f.draft_tokens) {
      return BadUp("F: inconsistent draft counts");
    }
    std::string_view route = NextField(rest);
    if (route.empty() || CleanRoute(route) != route) return BadUp("F: bad route");
    f.route = std::string(route);
    // The client's address, "@IP" or "@-" for unknown. Always present: the proxy process is
    // this same executable, and one spelling per message keeps a model named "@x" unambiguous.
    std::string_view client = NextField(rest);
    if (!client.starts_with('@')) return BadUp("F: no client address");
    client.remove_prefix(1);
    if (client != "-" && (client.empty() || client.size() > 45 || !IsIpLiteral(std::string(client))))
      return BadUp("F: bad client address");
    if (client != "-") f.client = std::string(client);
  } else if (verb == "K") {
    m.kind = UpKind::kKeepAlive;
    if (!ParseNumber<int64_t>(NextField(rest), -1'000'000'000, 1'000'000'000, &m.value)) {
      return BadUp("K: bad seconds");
    }
  } else {
    return BadUp("unknown verb");
  }
  if (!IsCleanModelName(rest)) return BadUp("bad model name");
  m.model = std::string(rest);
  return m;
}

// Every ProxyOptions field must cross the link (listen_fds excepted: the process's own fds 3,
// 5, 6, …). A new field changes the size: add it to EncodeOptions and ParseDown, then update this.
static_assert(sizeof(proxy::ProxyOptions) == 448, "a ProxyOptions field is missing from the proxy-process link");

std::string EncodeOptions(const proxy::ProxyOptions& o) {
  json j = {{"t", "options"},
            {"listen", o.listen},
            {"threads", o.threads},
            {"max_body_bytes", o.max_body_bytes},
            {"max_header_bytes", o.max_header_bytes},
            {"client_timeout_ms", Ms(o.client_timeout)},
            {"upstream_timeout_ms", Ms(o.upstream_timeout)},
            {"connect_timeout_ms", Ms(o.connect_timeout)},
            {"ready_timeout_ms", Ms(o.ready_timeout)},
            {"pool_idle_timeout_ms", Ms(o.pool_idle_timeout)},
            {"pool_max_idle_per_upstream", o.pool_max_idle_per_upstream},
            {"preconnect", o.preconnect},
            {"relay_buffer_bytes", o.relay_buffer_bytes},
            {"max_pipelined_bytes", o.max_pipelined_bytes},
            {"add_model_header", o.add_model_header},
            {"version", o.version},
            {"max_json_depth", o.max_json_depth},
            {"cors_origins", o.cors_origins},
            {"max_connections", o.max_connections},
            {"max_connections_per_client", o.max_connections_per_client},
            {"max_buffered_body_bytes", o.max_buffered_body_bytes},
            {"tls_cert", o.tls_cert},
            {"tls_key", o.tls_key},
            {"keys_file", o.keys_file},
            {"allow_unauthenticated_lan", o.allow_unauthenticated_lan},
            {"require_key_on_loopback", o.require_key_on_loopback},
            // POST /api/pull (issue 14)
            {"pull_command", o.pull_command},
            {"max_pulls", o.max_pulls},
            {"control_socket", o.control_socket},
            {"llama_ui_dir", o.llama_ui_dir}};

  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeRoutes(const proxy::RouteMap& routes) {
  json r = json::array();
  for (const auto& [name, ep] : routes.routes) r.push_back({name, ep.host, ep.port});
  return json{{"t", "routes"}, {"r", r}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Issue 14's fields of a model row (names, header facts), optional on the wire so either
// side may be older.
static void EncodeModelExtras(const ModelInfo& m, json& row) {
  row["aliases"] = m.aliases;
  row["stem"] = m.stem;
  row["origin"] = m.origin;
  row["n_params"] = m.n_params;
  row["ctx_train"] = m.context_length;
  row["caps"] = m.capabilities;
  row["vram"] = m.vram_bytes;
}

static void DecodeModelExtras(const json& row, ModelInfo& m) {
  m.aliases = row.value("aliases", std::vector<std::string>{});
  m.stem = row.value("stem", std::string());
  m.origin = row.value("origin", std::string());
  m.n_params = row.value("n_params", uint64_t{0});
  m.context_length = row.value("ctx_train", uint32_t{0});
  m.capabilities = row.value("caps", std::vector<std::string>{});
  m.vram_bytes = row.value("vram", uint64_t{0});
}

std::string EncodeModels(const std::vector<ModelInfo>& models) {
  json list = json::array();
  for (const auto& m : models) {
    list.push_back({{"name", m.name},
                    {"state", proxy::to_string(m.state)},
                    {"context", m.context},
                    {"size", m.size_bytes},
                    {"memory", m.memory_bytes},
                    {"family", m.family},
                    {"quant", m.quantization},
                    {"modified", m.modified_unix_s},
                    {"expires_ms",
                     std::chrono::duration_cast<std::chrono::milliseconds>(m.expires_at.time_since_epoch()).count()}});
    EncodeModelExtras(m, list.back());
  }
  return json{{"t", "models"}, {"m", list}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeAnswer(uint64_t id, const proxy::EnsureResult& result) {
  json j = {{"t", "answer"}, {"id", id}};
  if (const auto* ep = std::get_if<Endpoint>(&result)) {
    j["host"] = ep->host;
    j["port"] = ep->port;
  } else {
    const auto& e = std::get<EnsureError>(result);
    j["code"] = static_cast<int>(e.code);
    j["message"] = e.message;
    j["close"] = e.close_matches;
    j["retry"] = e.retry_after_s;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EncodeLimits(uint64_t max_body_bytes, std::chrono::milliseconds client_timeout,
                         std::chrono::milliseconds upstream_timeout) {
  return json{{"t", "limits"},
              {"max_body_bytes", max_body_bytes},
              {"client_timeout_ms", Ms(client_timeout)},
              {"upstream_timeout_ms", Ms(upstream_timeout)}}
      .dump();
}

Result<DownMessage> ParseDown(std::string_view text) {
  if (text.size() > kMaxDownMessageBytes) return InvalidArgument("down message too long");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("t") || !j["t"].is_string()) return InvalidArgument("bad down message");
  if (Depth(j, 0) > kMaxDownDepth) return InvalidArgument("down message nested too deep");
  DownMessage d;
  const std::string t = j["t"];
  try {
    if (t == "options") {
      d.type = DownMessage::Type::kOptions;
      auto& o = d.options;
      o.listen = j.at("listen").get<std::string>();
      o.threads = j.at("threads").get<int>();
      o.max_body_bytes = j.at("max_body_bytes").get<uint64_t>();
      o.max_header_bytes = j.at("max_header_bytes").get<uint32_t>();
      o.client_timeout = std::chrono::milliseconds(j.at("client_timeout_ms").get<int64_t>());
      o.upstream_timeout = std::chrono::milliseconds(j.at("upstream_timeout_ms").get<int64_t>());
      o.connect_timeout = std::chrono::milliseconds(j.at("connect_timeout_ms").get<int64_t>());
      o.ready_timeout = std::chrono::milliseconds(j.at("ready_timeout_ms").get<int64_t>());
      o.pool_idle_timeout = std::chrono::milliseconds(j.at("pool_idle_timeout_ms").get<int64_t>());
      o.pool_max_idle_per_upstream = j.at("pool_max_idle_per_upstream").get<size_t>();
      o.preconnect = j.at("preconnect").get<bool>();
      o.relay_buffer_bytes = j.at("relay_buffer_bytes").get<size_t>();
      o.max_pipelined_bytes = j.at("max_pipelined_bytes").get<size_t>();
      o.add_model_header = j.at("add_model_header").get<bool>();
      o.version = j.at("version").get<std::string>();
      o.max_json_depth = j.at("max_json_depth").get<size_t>();
      o.cors_origins = j.at("cors_origins").get<std::vector<std::string>>();
      o.max_connections = j.at("max_connections").get<size_t>();
      o.max_connections_per_client = j.at("max_connections_per_client").get<size_t>();
      o.max_buffered_body_bytes = j.at("max_buffered_body_bytes").get<uint64_t>();
      o.tls_cert = j.at("tls_cert").get<std::string>();
      o.tls_key = j.at("tls_key").get<std::string>();
      o.keys_file = j.at("keys_file").get<std::string>();
      o.allow_unauthenticated_lan = j.at("allow_unauthenticated_lan").get<bool>();
      o.require_key_on_loopback = j.at("require_key_on_loopback").get<bool>();
      o.pull_command = j.value("pull_command", std::vector<std::string>{});
      o.max_pulls = j.value("max_pulls", size_t{2});
      o.control_socket = j.value("control_socket", std::string());  // web dashboard (optional: older peers)
      o.llama_ui_dir = j.value("llama_ui_dir", std::string());      // the stock llama.cpp web UI (optional)
    } else if (t == "routes") {
      d.type = DownMessage::Type::kRoutes;
      for (const auto& r : j.at("r")) {
        d.routes.routes[r.at(0).get<std::string>()] = Endpoint{r.at(1).get<std::string>(), r.at(2).get<uint16_t>()};
      }
    } else if (t == "models") {
      d.type = DownMessage::Type::kModels;
      for (const auto& m : j.at("m")) {
        ModelInfo i;
        i.name = m.at("name").get<std::string>();
        i.state = StateFrom(m.at("state").get<std::string>());
        i.context = m.at("context").get<uint32_t>();
        i.size_bytes = m.at("size").get<uint64_t>();
        i.memory_bytes = m.at("memory").get<uint64_t>();
        i.family = m.at("family").get<std::string>();
        i.quantization = m.at("quant").get<std::string>();
        i.modified_unix_s = m.at("modified").get<int64_t>();
        i.expires_at =
            std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::milliseconds(m.at("expires_ms").get<int64_t>())));
        DecodeModelExtras(m, i);
        d.models.push_back(std::move(i));
      }
    } else if (t == "answer") {
      d.type = DownMessage::Type::kAnswer;
      d.id = j.at("id").get<uint64_t>();
      if (j.contains("host")) {
        d.answer = Endpoint{j.at("host").get<std::string>(), j.at("port").get<uint16_t>()};
      } else {
        EnsureError e;
        int code = j.at("code").get<int>();
        if (code < 0 || code > static_cast<int>(EnsureErrorCode::kUnavailable)) {
          return InvalidArgument("bad error code");
        }
        e.code = static_cast<EnsureErrorCode>(code);
        e.message = j.at("message").get<std::string>();
        e.close_matches = j.at("close").get<std::vector<std::string>>();
        e.retry_after_s = j.at("retry").get<int>();
        d.answer = std::move(e);
      }
    } else if (t == "limits") {
      d.type = DownMessage::Type::kLimits;
      d.max_body_bytes = j.at("max_body_bytes").get<uint64_t>();
      d.client_timeout = std::chrono::milliseconds(j.at("client_timeout_ms").get<int64_t>());
      d.upstream_timeout = std::chrono::milliseconds(j.at("upstream_timeout_ms").get<int64_t>());
    } else {
      return InvalidArgument("unknown down message '" + t + "'");
    }
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("bad down message: ") + e.what());
  }
  return d;
}

}  // namespace corral::edge
