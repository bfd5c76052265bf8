#include "control/api.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "common/url.h"

namespace corral::control {
namespace {

constexpr size_t kMaxStartBody = 1 << 20;
constexpr size_t kMaxArgs = 512;
constexpr size_t kMaxArgBytes = size_t{64} * 1024;
constexpr size_t kMaxEnv = 4096;
constexpr size_t kMaxTarget = 8192;

struct CodeName {
  ErrorCode code;
  const char* name;
  int http;
  int exit_code;
};
constexpr CodeName kCodes[] = {
    {ErrorCode::kBadRequest, "bad_request", 400, 64},
    {ErrorCode::kNotRunning, "not_running", 404, 66},
    {ErrorCode::kModelReference, "model_reference", 404, 66},
    {ErrorCode::kLaunchFailed, "launch_failed", 502, 67},
    {ErrorCode::kAdmission, "admission_refused", 507, 67},
    {ErrorCode::kStopFailed, "stop_failed", 500, 68},
    {ErrorCode::kEngineMissing, "engine_missing", 503, 70},
    {ErrorCode::kShuttingDown, "shutting_down", 503, 65},
    {ErrorCode::kInternal, "internal", 500, 71},
};

const CodeName& Lookup(ErrorCode c) {
  for (const auto& e : kCodes) {
    if (e.code == c) return e;
  }
  return kCodes[sizeof(kCodes) / sizeof(kCodes[0]) - 1];
}

Status Bad(const std::string& m) {
  return InvalidArgument("start request: " + m);
}

Result<std::vector<std::string>> StringList(const nlohmann::json& j, const char* key, size_t max_items) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return Bad(std::string(key) + " must be an array of strings");
  if (it->size() > max_items) return Bad(std::string(key) + " has too many entries");
  for (const auto& v : *it) {
    if (!v.is_string()) return Bad(std::string(key) + " must be an array of strings");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > kMaxArgBytes) return Bad(std::string(key) + " entry too long");
    if (s.find('\0') != std::string::npos) return Bad(std::string(key) + " entry contains a NUL byte");
    out.push_back(s);
  }
  return out;
}

Result<std::string> Decode(std::string_view s) {
  auto out = PercentDecodeStrict(s, true);
  if (!out) return InvalidArgument("bad %-escape in target");
  return std::move(*out);
}

// Bytes 0x00-0x1f and 0x7f.
bool HasControl(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

Result<nlohmann::json> ParseJsonBounded(std::string_view text, JsonLimits limits) {
  if (text.size() > limits.max_bytes) {
    return Status(StatusCode::kResourceExhausted, "JSON of " + std::to_string(text.size()) + " bytes; at most " +
                                                      std::to_string(limits.max_bytes) + " are accepted");
  }
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) {
        return Status(StatusCode::kResourceExhausted,
                      "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt("not valid JSON");
  return j;
}

std::string_view to_string(ErrorCode c) {
  return Lookup(c).name;
}

std::optional<ErrorCode> ErrorCodeFromString(std::string_view s) {
  for (const auto& e : kCodes) {
    if (s == e.name) return e.code;
  }
  return std::nullopt;
}

int HttpStatusFor(ErrorCode c) {
  return Lookup(c).http;
}
int ExitCodeFor(ErrorCode c) {
  return Lookup(c).exit_code;
}

nlohmann::json ErrorBody(ErrorCode code, std::string_view message) {
  return {{"error", {{"code", std::string(to_string(code))}, {"message", std::string(message)}}}};
}

std::optional<ApiError> ParseError(std::string_view body) {
  auto parsed = ParseJsonBounded(body, kReplyJsonLimits);
  if (!parsed.ok() || !parsed->is_object()) return std::nullopt;
  const nlohmann::json& j = *parsed;
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return std::nullopt;
  ApiError out;
  auto c = e->find("code");
  auto m = e->find("message");
  if (c != e->end() && c->is_string())
    out.code = ErrorCodeFromString(c->get<std::string>()).value_or(ErrorCode::kInternal);
  if (m != e->end() && m->is_string()) out.message = m->get<std::string>();
  return out;
}

Result<StartRequest> ParseStartRequest(std::string_view body) {
  if (body.size() > kMaxStartBody) return Bad("body too large");
  auto parsed = ParseJsonBounded(body, kRequestJsonLimits);
  if (!parsed.ok()) return Bad("body: " + parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Bad("body must be a JSON object");
  StartRequest r;
  for (const auto& [key, value] : j.items()) {
    if (key == "model" || key == "name") {
      if (!value.is_string()) return Bad(key + " must be a string");
      const auto& s = value.get_ref<const std::string&>();
      if (s.size() > 4096 || s.find('\0') != std::string::npos) return Bad(key + " is not a usable string");
      if (HasControl(s)) return Bad(key + " contains a control character; names never do");
      (key == "model" ? r.model : r.name) = s;
    } else if (key == "ctx") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > uint64_t{16} * 1024 * 1024) {
        return Bad("ctx must be a whole number 0.." + std::to_string(16u * 1024 * 1024));
      }
      r.ctx = value.get<uint32_t>();
    } else if (key == "port") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 65535) return Bad("port must be 0..65535");
      r.port = value.get<int>();
    } else if (key == "force" || key == "dry_run" || key == "restart") {
      if (!value.is_boolean()) return Bad(key + " must be true or false");
      (key == "force" ? r.force : key == "dry_run" ? r.dry_run : r.restart) = value.get<bool>();
    } else if (key == "raw_args" || key == "env") {
      // handled below
    } else {
      return Bad("unknown field '" + key + "'");
    }
  }
  CORRAL_ASSIGN_OR_RETURN(r.raw_args, StringList(j, "raw_args", kMaxArgs));
  CORRAL_ASSIGN_OR_RETURN(r.env, StringList(j, "env", kMaxEnv));
  for (const auto& e : r.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') return Bad("env entries must be KEY=VALUE");
  }
  if (r.model.empty()) return Bad("model is required");
  return r;
}

nlohmann::json ToJson(const StartRequest& r) {
  nlohmann::json j = {{"model", r.model}, {"raw_args", r.raw_args}, {"force", r.force}, {"dry_run", r.dry_run}};
  if (!r.name.empty()) j["name"] = r.name;
  if (r.ctx != 0) j["ctx"] = r.ctx;
  if (r.port != 0) j["port"] = r.port;
  if (!r.env.empty()) j["env"] = r.env;
  if (r.restart) j["restart"] = true;
  return j;
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.size() > kMaxTarget) return InvalidArgument("request target too long");
  if (target.empty() || target[0] != '/') return InvalidArgument("request target must start with '/'");
  Target t;
  size_t q = target.find('?');
  CORRAL_ASSIGN_OR_RETURN(t.path, Decode(target.substr(0, q)));
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    CORRAL_ASSIGN_OR_RETURN(std::string key, Decode(pair.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      CORRAL_ASSIGN_OR_RETURN(value, Decode(pair.substr(eq + 1)));
    }
    if (t.query.size() >= 64) return InvalidArgument("too many query parameters");
    t.query[key] = value;
  }
  return t;
}

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {
// The state clients read: a restart-pending child is "failed" with `restart_in_ms` (the wire
// format predates the state; `corral ps`, the TUI, the web dashboard and scripts read it so).
std::string WireState(supervisor::ChildState s) {
  return s == supervisor::ChildState::kRestartPending ? "failed" : std::string(supervisor::to_string(s));
}

nlohmann::json FailureJson(const supervisor::Failure& f) {
  return {{"kind", std::string(supervisor::to_string(f.kind))},
          {"exit_code", f.exit_code},
          {"signal", f.signal},
          {"message", f.message}};
}
}  // namespace

nlohmann::json ToJson(const supervisor::ChildInfo& i) {
  using supervisor::FailureKind;
  nlohmann::json j = {
      {"name", i.name},
      {"model", i.model},
      {"model_path", i.model_path},
      {"state", WireState(i.state)},
      {"pid", i.pid},
      {"port", i.port},
      {"url", i.port != 0 ? "http://127.0.0.1:" + std::to_string(i.port) : std::string()},
      {"argv", i.argv},
      {"log_path", i.log_path},
      {"started_at", std::chrono::duration_cast<std::chrono::seconds>(i.started_at.time_since_epoch()).count()},
      {"reserved_bytes", i.reserved_bytes},
      {"rss_bytes", i.rss_bytes},
      {"generation", i.generation}};
  if (i.ready_ms >= 0) j["ready_ms"] = i.ready_ms;
  if (i.failure.kind != FailureKind::kNone) {
    j["failure"] = FailureJson(i.failure);
  }
  if (!i.last_log_lines.empty()) j["last_log_lines"] = i.last_log_lines;
  if (i.restarts > 0) j["restarts"] = i.restarts;
  if (i.last_failure.kind != FailureKind::kNone) {
    j["last_failure"] = FailureJson(i.last_failure);
  }
  if (i.state == supervisor::ChildState::kRestartPending) j["restart_in_ms"] = std::max(0.0, i.restart_in_ms);
  return j;
}

}  // namespace corral::control
