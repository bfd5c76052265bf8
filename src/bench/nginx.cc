#include "bench/nginx.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <thread>

#include "bench/client.h"
#include "common/fs.h"
#include "common/subprocess.h"

namespace corral::bench {

namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(10);
constexpr auto kNginxPoll = std::chrono::milliseconds(20);
constexpr int kStartAttempts = 3;  // a free port can be taken between probing and nginx's bind

// A loopback port nothing listens on right now.
Result<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int e = errno;
    ::close(fd);
    return ErrnoError("finding a free port", e);
  }
  ::close(fd);
  return static_cast<int>(ntohs(a.sin_port));
}

// "1.22.1" >= "1.19.5"
bool VersionAtLeast(const std::string& v, int major, int minor, int patch) {
  int a = 0, b = 0, c = 0;
  if (std::sscanf(v.c_str(), "%d.%d.%d", &a, &b, &c) < 2) return true;  // unknown: assume recent
  if (a != major) return a > major;
  if (b != minor) return b > minor;
  return c >= patch;
}

}  // namespace

std::string FindNginx(const std::string& flag) {
  if (!flag.empty()) return ::access(flag.c_str(), X_OK) == 0 ? flag : "";
  if (std::string p = FindOnPath("nginx"); !p.empty()) return p;
  for (const char* p : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

NginxBuild ParseNginxBuild(const std::string& out) {
  NginxBuild b;
  static const std::regex kVersion(R"(nginx version: [^/\s]+/(\S+))");
  std::smatch m;
  if (std::regex_search(out, m, kVersion)) {
    b.version = m[1];
    const size_t start = static_cast<size_t>(m.position(0));
    const size_t end = out.find('\n', start);
    b.line = out.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  b.has_fastcgi = out.find("--without-http_fastcgi_module") == std::string::npos;
  b.has_uwsgi = out.find("--without-http_uwsgi_module") == std::string::npos;
  b.has_scgi = out.find("--without-http_scgi_module") == std::string::npos;
  b.supports_error_log_flag = b.version.empty() || VersionAtLeast(b.version, 1, 19, 5);
  return b;
}

Result<NginxBuild> ProbeNginx(const std::string& binary) {
  auto r = RunCapture({binary, "-V"}, kProbeTimeout, 1 << 16);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return Unavailable(binary + " -V failed: " + r->output.substr(0, 500));
  NginxBuild b = ParseNginxBuild(r->output);
  if (b.version.empty()) return Unavailable(binary + " -V printed no version: " + r->output.substr(0, 500));
  return b;
}

std::string NginxConf(const NginxSettings& s) {
  const std::string d = s.dir;
  const std::string port = std::to_string(s.listen_port);
  std::string c;
  c += "# Written by corral bench: nginx as the reference reverse proxy of suite C.\n";
  c += "# One foreground process, private paths, no buffering, keep-alive to llama-server.\n";
  c += "daemon off;\n";
  c += "master_process off;\n";
  c += "worker_processes 1;\n";
  c += "pid " + d + "/nginx.pid;\n";
  c += "error_log " + d + "/error.log warn;\n";
  c += "events {\n";
  c += "  worker_connections " + std::to_string(s.worker_connections) + ";\n";
  c += "}\n";
  c += "http {\n";
  c += "  access_log off;\n";
  c += "  client_body_temp_path " + d + "/client_body;\n";
  c += "  proxy_temp_path " + d + "/proxy;\n";
  if (s.build.has_fastcgi) c += "  fastcgi_temp_path " + d + "/fastcgi;\n";
  if (s.build.has_uwsgi) c += "  uwsgi_temp_path " + d + "/uwsgi;\n";
  if (s.build.has_scgi) c += "  scgi_temp_path " + d + "/scgi;\n";
  c += "  tcp_nodelay on;\n";
  c += "  keepalive_requests 1000000;\n";
  c += "  client_max_body_size 64m;\n";
  c += "  upstream llama_server {\n";
  c += "    server " + s.upstream_host + ":" + std::to_string(s.upstream_port) + ";\n";
  c += "    keepalive " + std::to_string(s.upstream_keepalive) + ";\n";
  c += "    keepalive_timeout " + std::to_string(s.upstream_keepalive_timeout_s) + "s;\n";
  c += "  }\n";
  c += "  server {\n";
  const bool tls = !s.tls_cert.empty() && !s.tls_key.empty();
  c += "    listen 127.0.0.1:" + port + (tls ? " ssl" : "") + ";\n";
  if (tls) {
    c += "    ssl_certificate " + s.tls_cert + ";\n";
    c += "    ssl_certificate_key " + s.tls_key + ";\n";
    c += "    ssl_protocols TLSv1.2 TLSv1.3;\n";
    c += "    ssl_ecdh_curve X25519:prime256v1;\n";
    c += "    ssl_session_tickets on;\n";
    c += "    ssl_session_timeout 1h;\n";
  }
  c += "    location / {\n";
  c += "      proxy_pass http://llama_server;\n";
  c += "      proxy_http_version 1.1;\n";
  c += "      proxy_set_header Connection \"\";\n";
  c += "      proxy_set_header Host $host;\n";
  c += "      proxy_buffering off;\n";
  c += "      proxy_request_buffering off;\n";
  c += "      proxy_cache off;\n";
  c += "      chunked_transfer_encoding on;\n";
  // A reused keep-alive connection that llama-server has just closed fails before any
  // response byte; let nginx resend the POST once on a fresh connection, as Corral's pool
  // does, instead of answering 502 (nginx only retries idempotent requests by default).
  c += "      proxy_next_upstream error timeout non_idempotent;\n";
  c += "      proxy_next_upstream_tries 2;\n";
  c += "      proxy_connect_timeout 5s;\n";
  c += "      proxy_read_timeout 600s;\n";
  c += "      proxy_send_timeout 600s;\n";
  c += "    }\n";
  c += "  }\n";
  c += "}\n";
  return c;
}

Result<std::unique_ptr<NginxProxy>> NginxProxy::Start(const std::string& binary, const NginxBuild& build,
                                                      const std::string& upstream_host, int upstream_port,
                                                      std::chrono::seconds timeout, const Tls& tls) {
  std::unique_ptr<NginxProxy> n(new NginxProxy());
  char tmpl[] = "/tmp/corral-bench-nginx-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return ErrnoError("creating nginx's directory", errno);
  n->dir_ = tmpl;
  n->config_path_ = n->dir_ + "/nginx.conf";
  Status last = Unavailable("nginx did not start");
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    CORRAL_ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
    NginxSettings s;
    s.dir = n->dir_;
    s.listen_port = port;
    s.upstream_host = upstream_host;
    s.upstream_port = upstream_port;
    s.build = build;
    s.tls_cert = tls.cert;
    s.tls_key = tls.key;
    n->tls_ = !tls.cert.empty();
    n->config_ = NginxConf(s);
    CORRAL_RETURN_IF_ERROR(WriteFileAtomic(n->config_path_, n->config_));
    std::vector<std::string> argv_s = {binary};
    if (build.supports_error_log_flag) argv_s.insert(argv_s.end(), {"-e", n->dir_ + "/error.log"});
    argv_s.insert(argv_s.end(), {"-p", n->dir_ + "/", "-c", n->config_path_});
    const std::string out_path = n->dir_ + "/stderr.log";
    auto pid = SpawnToLog(argv_s, out_path, /*append=*/true, /*own_group=*/true);
    if (!pid.ok()) return pid.status();
    n->pid_ = *pid;
    n->port_ = port;
    Endpoint ep{"127.0.0.1", std::to_string(port), ""};
    ep.tls = n->tls_;
    ep.ca_file = tls.ca;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(n->pid_, &status, WNOHANG) == n->pid_) {
        n->pid_ = -1;
        exited = true;
        break;
      }
      auto r = HttpRequest(ep, "/health", "", std::chrono::seconds(2));
      if (r.ok() && r->status == 200) return n;
      std::this_thread::sleep_for(kNginxPoll);
    }
    auto out = ReadFileBounded(out_path, 1 << 16);
    last = Unavailable(std::string(exited ? "nginx exited during start" : "nginx answered no /health 200 in time") +
                       "; error log: " + n->ErrorLogTail(1000) + (out.ok() ? " " + out->substr(0, 1000) : ""));
    n->Stop();
  }
  return last;
}

void NginxProxy::Stop() {
  StopProcessGroup(pid_, std::chrono::seconds(5));  // SIGTERM: nginx's fast shutdown
  pid_ = -1;
}

NginxProxy::~NginxProxy() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string NginxProxy::ErrorLogTail(size_t bytes) const {
  auto text = ReadFileBounded(dir_ + "/error.log", 16 << 20);
  if (!text.ok()) return "";
  return text->size() > bytes ? text->substr(text->size() - bytes) : *text;
}

}  // namespace corral::bench
