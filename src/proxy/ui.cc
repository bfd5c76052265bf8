#include "proxy/ui.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <cctype>
#include <utility>

#include "proxy/request_routing.h"

namespace corral::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using error_code = boost::system::error_code;

constexpr std::string_view kApiPrefix = "/ui/api/";
constexpr std::string_view kModelsPrefix = "/ui/api/models/";
constexpr std::string_view kBenchReportsPrefix = "/ui/api/bench/reports/";
constexpr std::string_view kDefaultLogLines = "2000";
constexpr size_t kUiReadChunkBytes = 64U << 10;
constexpr size_t kMaxHeadBytes = 16U << 10;
constexpr size_t kMaxErrorBodyBytes = 64U << 10;
// Loading a model answers once the child is started (not yet ready); the rest is quick.
constexpr std::chrono::seconds kLoadTimeout{120};

std::string JsonError(std::string_view message) {
  return nlohmann::json{{"error", {{"message", std::string(message)}}}}.dump(-1, ' ', false,
                                                                             nlohmann::json::error_handler_t::replace);
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path segment; nullopt for a bad escape or a control byte.
std::optional<std::string> DecodeSegment(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = Hex(s[i + 1]), lo = Hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>((hi << 4) | lo);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
    out += c;
  }
  return out;
}

// The characters of a running child's name (supervisor::CheckChildName), so the name can go
// into the daemon's path as it is.
bool IsChildName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

UiRequest ControlRequest(std::string method, std::string target, std::string body = {}) {
  UiRequest r;
  r.kind = UiRequest::Kind::kControl;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  return r;
}

UiRequest Error(std::string message) {
  UiRequest r;
  r.kind = UiRequest::Kind::kNotFound;
  r.body = std::move(message);
  return r;
}

// The characters of a bench report id (daemon/bench_runs.h: IsBenchReportId): a folder name
// the daemon's listing gave, never a path.
bool IsReportId(std::string_view id) {
  if (id.empty() || id.size() > 128 || id[0] == '.' || id[0] == '-' || id[0] == '_') return false;
  if (id.find("..") != std::string_view::npos) return false;
  for (char c : id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// 1..6 decimal digits, else `fallback`.
std::string SmallNumber(const std::string& s, std::string_view fallback) {
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return std::string(fallback);
  return s;
}

// GET /ui/api/logs/stream?name=CHILD&lines=N → the daemon's GET /v1/logs/follow.
UiRequest ClassifyLogStream(bool get, std::string_view target) {
  if (!get) return UiRequest{.kind = UiRequest::Kind::kBadMethod};
  std::string name = QueryParam(target, "name");
  if (name.empty()) return Error("logs: name is required");
  if (!IsChildName(name)) return Error("logs: not a model name: '" + name.substr(0, 200) + "'");
  UiRequest r;
  r.kind = UiRequest::Kind::kEvents;
  r.target = "/v1/logs/follow?name=" + name + "&lines=" + SmallNumber(QueryParam(target, "lines"), kDefaultLogLines);
  return r;
}

// GET /ui/api/bench, GET /ui/api/bench/reports/{id}.
UiRequest ClassifyBench(bool get, std::string_view path) {
  if (!get) return UiRequest{.kind = UiRequest::Kind::kBadMethod};
  if (path == "/ui/api/bench") return ControlRequest("GET", "/v1/bench");
  std::string_view id = path.substr(kBenchReportsPrefix.size());
  if (!IsReportId(id)) {
    return Error("not a bench report id: '" + std::string(id.substr(0, 64)) + "' (use an id from /ui/api/bench)");
  }
  return ControlRequest("GET", "/v1/bench/reports/" + std::string(id));
}

// POST /ui/api/models/{name}/bench?runs=N → POST /v1/bench/run.
UiRequest BenchRun(const std::string& name, const std::string& runs) {
  if (!IsChildName(name)) return Error("bench: not a running model's name: '" + name.substr(0, 200) + "'");
  nlohmann::json body = {{"model", name}};
  if (!runs.empty()) {
    std::string n = SmallNumber(runs, "");
    if (n.empty() || n.size() > 3 || std::stoi(n) < 1 || std::stoi(n) > 100) {
      return Error("bench: runs must be 1..100");
    }
    body["runs"] = std::stoi(n);
  }
  return ControlRequest("POST", "/v1/bench/run", body.dump());
}

}  // namespace

std::string_view UiSecurityFields() {
  return "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
         "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
         "X-Content-Type-Options: nosniff\r\n"
         "X-Frame-Options: DENY\r\n"
         "Referrer-Policy: no-referrer\r\n"
         "Cross-Origin-Resource-Policy: same-origin\r\n";
}

std::string UiCrossOriginRefusal(std::string_view origin, std::string_view sec_fetch_site, std::string_view host,
                                 bool tls) {
  if (!sec_fetch_site.empty() && sec_fetch_site != "same-origin" && sec_fetch_site != "none") {
    return "the dashboard's API answers its own page only (Sec-Fetch-Site: " +
           std::string(sec_fetch_site.substr(0, 40)) + ")";
  }
  if (origin.empty()) return "";
  std::string_view scheme = tls ? "https://" : "http://";
  bool same = origin.size() == scheme.size() + host.size() && origin.starts_with(scheme) && !host.empty();
  for (size_t i = 0; same && i < host.size(); ++i) {
    same = std::tolower(static_cast<unsigned char>(origin[scheme.size() + i])) ==
           std::tolower(static_cast<unsigned char>(host[i]));
  }
  if (same) return "";
  return "the dashboard's API answers its own page only, not the web origin '" + std::string(origin.substr(0, 200)) +
         "'";
}

std::optional<auth::Scope> UiScope(std::string_view method, std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (!path.starts_with(kApiPrefix)) return std::nullopt;
  return method == "GET" || method == "HEAD" ? auth::Scope::kRead : auth::Scope::kAdmin;
}

UiRequest ClassifyUi(std::string_view method, std::string_view target, std::string_view action_header) {
  std::string_view path = target.substr(0, target.find('?'));
  const bool get = method == "GET" || method == "HEAD";
  UiRequest r;
  if (!path.starts_with(kApiPrefix)) {
    if (path == "/ui") {
      r.kind = get ? UiRequest::Kind::kRedirect : UiRequest::Kind::kBadMethod;
      return r;
    }
    std::string_view file = path == "/ui/" ? std::string_view("/ui/index.html") : path;
    for (const UiAsset& a : UiAssets()) {
      if (a.path == file) {
        r.kind = get ? UiRequest::Kind::kAsset : UiRequest::Kind::kBadMethod;
        r.asset = &a;
        return r;
      }
    }
    return Error("no such file in the dashboard: " + std::string(path.substr(0, 200)));
  }
  if (path == "/ui/api/events") {
    r.kind = get ? UiRequest::Kind::kEvents : UiRequest::Kind::kBadMethod;
    r.target = "/v1/events";
    return r;
  }
  if (path == "/ui/api/logs/stream") return ClassifyLogStream(get, target);
  if (path == "/ui/api/bench" || path.starts_with(kBenchReportsPrefix)) return ClassifyBench(get, path);
  if (path == "/ui/api/logs") {
    if (!get) return UiRequest{.kind = UiRequest::Kind::kBadMethod};
    std::string name = QueryParam(target, "name");
    std::string lines = QueryParam(target, "lines");
    if (name.empty()) return Error("logs: name is required");
    if (!IsChildName(name)) return Error("logs: not a model name: '" + name.substr(0, 200) + "'");
    if (lines.empty() || lines.size() > 6 || lines.find_first_not_of("0123456789") != std::string::npos) {
      lines = "500";
    }
    return ControlRequest("GET", "/v1/logs?name=" + name + "&lines=" + lines);
  }
  if (path.starts_with(kModelsPrefix)) {
    if (method != "POST") return UiRequest{.kind = UiRequest::Kind::kBadMethod};
    if (action_header != "1") return UiRequest{.kind = UiRequest::Kind::kNoActionHeader};
    std::string_view rest = path.substr(kModelsPrefix.size());
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return Error("expected /ui/api/models/{name}/{action}");
    std::string_view verb = rest.substr(slash + 1);
    auto name = DecodeSegment(rest.substr(0, slash));
    if (!name || name->empty() || name->size() > 4096) return Error("not a usable model name");
    if (verb == "load") {
      std::string body = nlohmann::json{{"model", *name}}.dump();
      UiRequest c = ControlRequest("POST", "/v1/models/start", std::move(body));
      c.timeout = kLoadTimeout;
      return c;
    }
    if (verb == "bench") return BenchRun(*name, QueryParam(target, "runs"));
    if (verb == "unload" || verb == "pin" || verb == "unpin" || verb == "stop") {
      if (!IsChildName(*name)) return Error("not a running model's name: '" + name->substr(0, 200) + "'");
      return ControlRequest("POST", "/v1/models/" + *name + "/" + std::string(verb));
    }
    return Error("unknown action '" + std::string(verb.substr(0, 50)) + "' (load, unload, pin, unpin, stop, bench)");
  }
  return Error("no such dashboard API route: " + std::string(path.substr(0, 200)));
}

Status SseEncoder::Add(std::string_view bytes, std::string& out) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    if (partial_.size() + piece.size() > kUiMaxLineBytes) {
      partial_.clear();
      return {StatusCode::kResourceExhausted, "an event line over " + std::to_string(kUiMaxLineBytes) + " bytes"};
    }
    if (nl == std::string_view::npos) {
      partial_.append(piece);
      return Status::Ok();
    }
    std::string_view line = piece;
    if (!partial_.empty()) {
      partial_.append(piece);
      line = partial_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) out.append("data: ").append(line).append("\n\n");
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

namespace {

// One request/answer on the control socket (Connection: close).
struct ControlCall : std::enable_shared_from_this<ControlCall> {
  ControlCall(asio::io_context& ioc, std::function<void(int, std::string)> d)
      : sock(ioc), timer(ioc), done(std::move(d)) {}
  local::socket sock;
  asio::steady_timer timer;
  std::function<void(int, std::string)> done;
  http::request<http::string_body> req;
  beast::flat_buffer buf;
  std::optional<http::response_parser<http::string_body>> parser;
  bool finished = false;

  void Finish(int status, std::string body) {
    if (finished) return;
    finished = true;
    timer.cancel();
    error_code ec;
    sock.close(ec);
    auto d = std::move(done);
    d(status, std::move(body));
  }
  void Fail(const error_code& ec) {
    Finish(502, JsonError("the Corral daemon did not answer on its control socket: " + ec.message()));
  }
  void Run(const std::string& path, const UiRequest& r) {
    req.method_string(r.method);
    req.target(r.target);
    req.version(11);
    req.set(http::field::host, "corral");
    req.set(http::field::connection, "close");
    if (!r.body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = r.body;
    req.prepare_payload();
    parser.emplace();
    parser->header_limit(kMaxHeadBytes);
    parser->body_limit(kUiMaxControlReplyBytes);
    timer.expires_after(r.timeout);
    timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec) return;
      self->Finish(504, JsonError("the Corral daemon did not answer in time"));
    });
    sock.async_connect(local::endpoint(path), [self = shared_from_this()](const error_code& ec) {
      if (self->finished) return;
      if (ec) return self->Fail(ec);
      http::async_write(self->sock, self->req, [self](const error_code& wec, size_t) {
        if (self->finished) return;
        if (wec) return self->Fail(wec);
        http::async_read(self->sock, self->buf, *self->parser, [self](const error_code& rec, size_t) {
          if (self->finished) return;
          if (rec == http::error::body_limit) {
            return self->Finish(502, JsonError("the daemon's answer was over the dashboard's limit"));
          }
          if (rec) return self->Fail(rec);
          auto& res = self->parser->get();
          self->Finish(static_cast<int>(res.result_int()), std::move(res.body()));
        });
      });
    });
  }
};

class EventBridge final : public UiEventBridge {
 public:
  EventBridge(asio::io_context& ioc, std::string path, std::string target)
      : sock_(ioc), path_(std::move(path)), target_(std::move(target)) {}

  void Start(Callbacks callbacks) override {
    cb_ = std::move(callbacks);
    req_ = "GET " + target_ + " HTTP/1.1\r\nHost: corral\r\nAccept: application/x-ndjson\r\n\r\n";
    head_.emplace();
    head_->header_limit(kMaxHeadBytes);
    head_->body_limit(kMaxErrorBodyBytes);
    auto self = std::static_pointer_cast<EventBridge>(shared_from_this());
    sock_.async_connect(local::endpoint(path_), [self](const error_code& ec) {
      if (self->closed_) return;
      if (ec) return self->Head(502, JsonError("no Corral daemon answers on its control socket: " + ec.message()));
      asio::async_write(self->sock_, asio::buffer(self->req_), [self](const error_code& wec, size_t) {
        if (self->closed_) return;
        if (wec) return self->Head(502, JsonError("the daemon's control socket: " + wec.message()));
        http::async_read_header(self->sock_, self->buf_, *self->head_,
                                [self](const error_code& rec, size_t) { self->OnHead(rec); });
      });
    });
  }

  void Resume() override {
    if (closed_) return;
    ReadMore();
  }

  void Close() noexcept override {
    if (closed_) return;
    closed_ = true;
    error_code ec;
    sock_.close(ec);
    cb_ = {};
  }

 private:
  void Head(int status, std::string body) {
    auto on_head = cb_.on_head;
    if (status != 200) Close();
    if (on_head) on_head(status, std::move(body));
  }
  void End() {
    auto on_end = cb_.on_end;
    Close();
    if (on_end) on_end();
  }

  void OnHead(const error_code& ec) {
    if (closed_) return;
    if (ec) return Head(502, JsonError("the daemon's event feed: " + ec.message()));
    int status = static_cast<int>(head_->get().result_int());
    if (status != 200) {
      // An error answer (503: too many watchers) has a length: read it for its message.
      auto self = std::static_pointer_cast<EventBridge>(shared_from_this());
      http::async_read(sock_, buf_, *head_, [self, status](const error_code& rec, size_t) {
        if (self->closed_) return;
        self->Head(status, rec ? JsonError("the daemon refused the event feed") : std::move(self->head_->get().body()));
      });
      return;
    }
    Head(200, "");
    if (closed_) return;
    // Body bytes that came with the head.
    std::string out;
    std::string_view first(static_cast<const char*>(buf_.data().data()), buf_.size());
    Status s = encoder_.Add(first, out);
    buf_.consume(buf_.size());
    head_.reset();
    if (!s.ok()) return End();
    if (!out.empty()) return cb_.on_data(std::move(out));
    ReadMore();
  }

  void ReadMore() {
    auto self = std::static_pointer_cast<EventBridge>(shared_from_this());
    sock_.async_read_some(asio::buffer(chunk_), [self](const error_code& ec, size_t n) {
      if (self->closed_) return;
      if (ec) return self->End();
      std::string out;
      if (!self->encoder_.Add(std::string_view(self->chunk_.data(), n), out).ok()) return self->End();
      if (out.empty()) return self->ReadMore();  // part of a line
      self->cb_.on_data(std::move(out));
    });
  }

  local::socket sock_;
  std::string path_;
  std::string target_;
  Callbacks cb_;
  std::string req_;
  beast::flat_buffer buf_;
  std::optional<http::response_parser<http::string_body>> head_;
  std::array<char, kUiReadChunkBytes> chunk_{};
  SseEncoder encoder_;
  bool closed_ = false;
};

}  // namespace

void CallControl(asio::io_context& ioc, const std::string& socket_path, const UiRequest& request,
                 std::function<void(int status, std::string body)> done) {
  if (socket_path.empty()) {
    asio::post(ioc, [done = std::move(done)] {
      done(503, JsonError("this proxy does not know the daemon's control socket (run it under `corral serve`)"));
    });
    return;
  }
  auto call = std::make_shared<ControlCall>(ioc, std::move(done));
  call->Run(socket_path, request);
}

std::shared_ptr<UiEventBridge> UiEventBridge::Create(asio::io_context& ioc, std::string socket_path,
                                                     std::string target) {
  return std::make_shared<EventBridge>(ioc, std::move(socket_path), std::move(target));
}

}  // namespace corral::proxy
