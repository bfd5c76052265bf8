#include "proxy/request_routing.h"

#include <simdjson.h>

#include <array>
#include <cstring>

#include "common/url.h"

namespace corral::proxy {

std::string_view to_string(RouteKind kind) {
  switch (kind) {
    case RouteKind::kForward: return "forward";
    case RouteKind::kHealth: return "health";
    case RouteKind::kMetrics: return "metrics";
    case RouteKind::kModels: return "models";
    case RouteKind::kModel: return "model";
    case RouteKind::kOllamaRoot: return "ollama_root";
    case RouteKind::kOllamaVersion: return "ollama_version";
    case RouteKind::kOllamaTags: return "ollama_tags";
    case RouteKind::kOllamaPs: return "ollama_ps";
    case RouteKind::kOllamaShow: return "ollama_show";
    case RouteKind::kOllamaChat: return "ollama_chat";
    case RouteKind::kOllamaGenerate: return "ollama_generate";
    case RouteKind::kOllamaEmbed: return "ollama_embed";
    case RouteKind::kOllamaPull: return "ollama_pull";
    case RouteKind::kRouterModels: return "router_models";
    case RouteKind::kRouterLoad: return "router_load";
    case RouteKind::kRouterUnload: return "router_unload";
    case RouteKind::kRouterSse: return "router_models_sse";
    case RouteKind::kRouterTools: return "router_tools";
    case RouteKind::kStreamsLookup: return "streams_lookup";
    case RouteKind::kUi: return "ui";
    case RouteKind::kLlamaUi: return "llama_ui";
    case RouteKind::kNotFound: return "not_found";
    case RouteKind::kBadMethod: return "bad_method";
  }
  return "unknown";
}

namespace {

struct RouteDef {
  std::string_view path;
  std::string_view method;  // "GET", "POST", "GET|POST", "GET|HEAD"
  RouteKind kind;
  Api api;
  ModelSource source;
  bool replay_safe;
  bool inference;
};

// Every route the proxy knows, exact paths. Native llama.cpp routes also accept the
// /v1-less OpenAI aliases llama-server has (/chat/completions etc. are not routed).
constexpr RouteDef kRoutes[] = {
    {"/v1/chat/completions", "POST", RouteKind::kForward, Api::kOpenAI, ModelSource::kBody, true, true},
    {"/v1/completions", "POST", RouteKind::kForward, Api::kOpenAI, ModelSource::kBody, true, true},
    {"/v1/embeddings", "POST", RouteKind::kForward, Api::kOpenAI, ModelSource::kBody, true, true},
    {"/v1/rerank", "POST", RouteKind::kForward, Api::kOpenAI, ModelSource::kBody, true, true},
    {"/v1/responses", "POST", RouteKind::kForward, Api::kOpenAI, ModelSource::kBody, true, true},
    {"/v1/messages", "POST", RouteKind::kForward, Api::kAnthropic, ModelSource::kBody, true, true},
    {"/v1/messages/count_tokens", "POST", RouteKind::kForward, Api::kAnthropic, ModelSource::kBody, true, false},
    {"/completion", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, true},
    {"/completions", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, true},
    {"/tokenize", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, false},
    {"/detokenize", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, false},
    {"/apply-template", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, false},
    {"/infill", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, true},
    {"/embedding", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, true, false},
    {"/props", "GET", RouteKind::kForward, Api::kNative, ModelSource::kQuery, true, false},
    // POST /props changes server state, POST /slots saves/restores/erases: not replayed.
    {"/props", "POST", RouteKind::kForward, Api::kNative, ModelSource::kBodyOrQuery, false, false},
    {"/slots", "GET", RouteKind::kForward, Api::kNative, ModelSource::kQuery, true, false},
    {"/slots", "POST", RouteKind::kForward, Api::kNative, ModelSource::kQuery, false, false},
    {"/health", "GET|HEAD", RouteKind::kHealth, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/metrics", "GET", RouteKind::kMetrics, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/v1/models", "GET", RouteKind::kModels, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/", "GET|HEAD", RouteKind::kOllamaRoot, Api::kOllama, ModelSource::kBody, false, false},
    {"/api/version", "GET|HEAD", RouteKind::kOllamaVersion, Api::kOllama, ModelSource::kBody, false, false},
    {"/api/tags", "GET|HEAD", RouteKind::kOllamaTags, Api::kOllama, ModelSource::kBody, false, false},
    {"/api/ps", "GET|HEAD", RouteKind::kOllamaPs, Api::kOllama, ModelSource::kBody, false, false},
    {"/api/show", "POST", RouteKind::kOllamaShow, Api::kOllama, ModelSource::kBody, false, false},
    {"/api/chat", "POST", RouteKind::kOllamaChat, Api::kOllama, ModelSource::kBody, true, true},
    {"/api/generate", "POST", RouteKind::kOllamaGenerate, Api::kOllama, ModelSource::kBody, true, true},
    {"/api/embed", "POST", RouteKind::kOllamaEmbed, Api::kOllama, ModelSource::kBody, true, false},
    {"/api/embeddings", "POST", RouteKind::kOllamaEmbed, Api::kOllama, ModelSource::kBody, true, false},
    {"/api/pull", "POST", RouteKind::kOllamaPull, Api::kOllama, ModelSource::kBody, false, false},
    // llama-server router mode (router_mode.h); GET /props without ?model= answers as the router.
    {"/models", "GET", RouteKind::kRouterModels, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/models/load", "POST", RouteKind::kRouterLoad, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/models/unload", "POST", RouteKind::kRouterUnload, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/models/sse", "GET", RouteKind::kRouterSse, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/tools", "GET|POST", RouteKind::kRouterTools, Api::kOpenAI, ModelSource::kBody, false, false},
    {"/v1/streams/lookup", "POST", RouteKind::kStreamsLookup, Api::kOpenAI, ModelSource::kBody, false, false},
};

bool MethodMatches(std::string_view allowed, std::string_view method) {
  while (!allowed.empty()) {
    size_t bar = allowed.find('|');
    std::string_view one = allowed.substr(0, bar);
    if (one == method) return true;
    if (bar == std::string_view::npos) break;
    allowed.remove_prefix(bar + 1);
  }
  return false;
}

}  // namespace

Route ClassifyRoute(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  Route out;
  out.api = path.substr(0, 5) == "/api/" || path == "/" ? Api::kOllama
            : path.substr(0, 12) == "/v1/messages"      ? Api::kAnthropic
                                                        : Api::kOpenAI;
  bool path_known = false;
  for (const auto& r : kRoutes) {
    if (r.path != path) continue;
    path_known = true;
    if (!MethodMatches(r.method, method)) continue;
    out.kind = r.kind;
    out.api = r.api;
    out.model_source = r.source;
    out.replay_safe = r.replay_safe;
    out.inference = r.inference;
    return out;
  }
  // The web dashboard (issue 16): its own sub-tree, classified further by proxy/ui.h.
  if (path == "/ui" || path.substr(0, 4) == "/ui/") {
    out.kind = RouteKind::kUi;
    return out;
  }
  constexpr std::string_view kModelPrefix = "/v1/models/";
  if (!path_known && path.size() > kModelPrefix.size() && path.substr(0, kModelPrefix.size()) == kModelPrefix) {
    out.kind = method == "GET" || method == "HEAD" ? RouteKind::kModel : RouteKind::kBadMethod;
    return out;
  }
  out.kind = path_known ? RouteKind::kBadMethod : RouteKind::kNotFound;
  return out;
}

std::string ModelIdFromTarget(std::string_view target) {
  constexpr std::string_view kModelPrefix = "/v1/models/";
  std::string_view raw = target.substr(0, target.find('?'));
  if (raw.size() <= kModelPrefix.size()) return {};
  raw.remove_prefix(kModelPrefix.size());
  return PercentDecode(raw, false);
}

std::string QueryParam(std::string_view target, std::string_view key) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key && eq != std::string_view::npos) {
      return PercentDecode(pair.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

namespace {

// Bytes that matter while skipping a container: quotes and brackets.
constexpr auto kStructural = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : {'"', '{', '}', '[', ']'}) t[c] = true;
  return t;
}();

// The scanner behind ExtractModelField. `p` walks [begin, end); every method checks bounds.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool Consume(char c) {
    SkipWs();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool AtEnd() const { return p_ >= end_; }
  char Peek() const { return *p_; }

  // At the opening quote. Moves past the closing quote; `raw` gets the bytes between them
  // (escapes not decoded); `escaped` tells whether a backslash occurred.
  bool SkipString(std::string_view* raw, bool* escaped) {
    if (p_ >= end_ || *p_ != '"') return false;
    const char* start = ++p_;
    bool esc = false;
    for (;;) {
      const void* q = std::memchr(p_, '"', static_cast<size_t>(end_ - p_));
      if (q == nullptr) return false;
      const char* quote = static_cast<const char*>(q);
      // An escaped quote has an odd run of backslashes before it.
      size_t backslashes = 0;
      for (const char* b = quote; b > start && b[-1] == '\\'; --b) ++backslashes;
      if (escaped != nullptr && !esc && std::memchr(p_, '\\', static_cast<size_t>(quote - p_)) != nullptr) {
        esc = true;
      }
      p_ = quote + 1;
      if (backslashes % 2 == 0) {
        if (raw != nullptr) *raw = std::string_view(start, static_cast<size_t>(quote - start));
        if (escaped != nullptr) *escaped = esc;
        return true;
      }
    }
  }

  // Skips one value of any type. Containers are skipped by depth counting with strings
  // skipped whole; no recursion, so nesting depth cannot exhaust the stack.
  bool SkipValue() {
    SkipWs();
    if (p_ >= end_) return false;
    char c = *p_;
    if (c == '"') return SkipString(nullptr, nullptr);
    if (c == '{' || c == '[') {
      size_t depth = 0;
      while (p_ < end_) {
        // Tight loop over bytes that cannot change the depth (most of a message body).
        while (p_ < end_ && !kStructural[static_cast<unsigned char>(*p_)]) ++p_;
        if (p_ >= end_) return false;
        char d = *p_;
        if (d == '"') {
          if (!SkipString(nullptr, nullptr)) return false;
          continue;
        }
        if (d == '{' || d == '[') {
          ++depth;
        } else if (--depth == 0) {
          ++p_;
          return true;
        }
        ++p_;
      }
      return false;
    }
    // number, true, false, null
    const char* start = p_;
    while (p_ < end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\n' && *p_ != '\r' &&
           *p_ != '\t') {
      ++p_;
    }
    return p_ > start;
  }

 private:
  const char* p_;
  const char* end_;
};

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool Hex4(std::string_view s, size_t i, uint32_t* out) {
  if (i + 4 > s.size()) return false;
  uint32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    int h = HexDigitValue(s[i + k]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  *out = v;
  return true;
}

// Decodes JSON string escapes in `raw` (the bytes between the quotes).
bool Unescape(std::string_view raw, std::string* out) {
  out->clear();
  out->reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (static_cast<unsigned char>(c) < 0x20) return false;
    if (c != '\\') {
      *out += c;
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"': *out += '"'; break;
      case '\\': *out += '\\'; break;
      case '/': *out += '/'; break;
      case 'b': *out += '\b'; break;
      case 'f': *out += '\f'; break;
      case 'n': *out += '\n'; break;
      case 'r': *out += '\r'; break;
      case 't': *out += '\t'; break;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(raw, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo = 0;
          if (i + 2 < raw.size() && raw[i + 1] == '\\' && raw[i + 2] == 'u' && Hex4(raw, i + 3, &lo) && lo >= 0xDC00 &&
              lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          } else {
            return false;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        AppendUtf8(*out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

}  // namespace

ModelField ScanModelField(std::string_view json) {
  ModelField out;
  Scanner s(json);
  if (!s.Consume('{')) {
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
  if (s.Consume('}')) return out;  // {} : missing
  for (;;) {
    s.SkipWs();
    std::string_view key;
    bool escaped = false;
    if (s.AtEnd() || s.Peek() != '"' || !s.SkipString(&key, &escaped) || !s.Consume(':')) {
      out.status = ModelFieldStatus::kBadJson;
      return out;
    }
    bool is_model = key == "model";
    if (!is_model && escaped) {
      std::string k;
      is_model = Unescape(key, &k) && k == "model";
    }
    if (is_model) {
      s.SkipWs();
      if (!s.AtEnd() && s.Peek() == '"') {
        std::string_view raw;
        if (!s.SkipString(&raw, &escaped) || !Unescape(raw, &out.value)) {
          out.status = ModelFieldStatus::kBadJson;
          return out;
        }
        out.status = ModelFieldStatus::kFound;
        return out;
      }
      out.status = s.SkipValue() ? ModelFieldStatus::kNotString : ModelFieldStatus::kBadJson;
      return out;
    }
    if (!s.SkipValue()) {
      out.status = ModelFieldStatus::kBadJson;
      return out;
    }
    if (s.Consume(',')) continue;
    if (s.Consume('}')) return out;  // a complete object without "model"
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
}

namespace {

ModelField SimdjsonModelField(std::string_view json) {
  // One parser and one padded buffer per thread, sized once: no allocation per request.
  thread_local simdjson::ondemand::parser parser(kSimdjsonMaxBytes);
  thread_local std::unique_ptr<char[]> padded(new char[kSimdjsonMaxBytes + simdjson::SIMDJSON_PADDING]);
  std::memcpy(padded.get(), json.data(), json.size());
  std::memset(padded.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  ModelField out;
  simdjson::ondemand::document doc;
  if (parser.iterate(padded.get(), json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc) !=
      simdjson::SUCCESS) {
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
  simdjson::ondemand::value v;
  auto err = obj.find_field_unordered("model").get(v);
  if (err == simdjson::NO_SUCH_FIELD) {
    out.status = ModelFieldStatus::kMissing;
    return out;
  }
  if (err != simdjson::SUCCESS) {
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
  std::string_view str;
  err = v.get_string().get(str);
  if (err == simdjson::INCORRECT_TYPE) {
    out.status = ModelFieldStatus::kNotString;
    return out;
  }
  if (err != simdjson::SUCCESS) {
    out.status = ModelFieldStatus::kBadJson;
    return out;
  }
  out.status = ModelFieldStatus::kFound;
  out.value.assign(str.data(), str.size());
  return out;
}

}  // namespace

ModelField ExtractModelField(std::string_view json) {
  if (json.size() <= kSimdjsonMaxBytes) return SimdjsonModelField(json);
  return ScanModelField(json);
}

}  // namespace corral::proxy
