// nginx as suite C's reference reverse proxy: found on the machine (never installed by the
// bench), given a private configuration in a temporary directory (no root needed: pid file,
// error log and every temp path live there), started in the foreground as one process with
// response and request buffering off and a keep-alive upstream pool to the same llama-server
// child that the direct and corral-proxy targets reach. The bench alternates it with them.
// Thread-safety: free functions are pure or read-only; an NginxProxy belongs to one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"

namespace corral::bench {

// How to get nginx when it is missing (Debian 12; `make bench` does this for you).
inline constexpr const char* kNginxInstallHint =
    "apt-get install nginx-light (or `make bench`, which installs deps/bench-packages.txt)";

// The nginx binary: `flag` when given, else nginx on $PATH, else /usr/sbin/nginx,
// /usr/local/sbin/nginx, /usr/local/nginx/sbin/nginx; "" when none is executable.
std::string FindNginx(const std::string& flag = "");

// What the binary says about itself (`nginx -V`).
struct NginxBuild {
  std::string version;                                         // "1.22.1"
  std::string line;                                            // "nginx version: nginx/1.22.1"
  bool has_fastcgi = true, has_uwsgi = true, has_scgi = true;  // modules that own a temp path
  bool supports_error_log_flag = true;                         // -e (nginx >= 1.19.5)
};
// Parses `nginx -V` output (stderr). Pure; unknown text gives the defaults.
NginxBuild ParseNginxBuild(const std::string& v_output);
Result<NginxBuild> ProbeNginx(const std::string& binary);

struct NginxSettings {
  std::string dir;  // absolute private directory: pid, error log, temp paths
  int listen_port = 0;
  std::string upstream_host = "127.0.0.1";
  int upstream_port = 0;
  // Idle keep-alive connections nginx keeps to llama-server, and how long. Below
  // llama-server's own 5 s keep-alive (cpp-httplib) so nginx rarely reuses a connection
  // the server is closing - the same choice Corral's pool makes.
  int upstream_keepalive = 8;
  int upstream_keepalive_timeout_s = 4;
  int worker_connections = 4096;
  NginxBuild build;  // which temp-path directives this binary knows
  // TLS on the listener (both set): the PEM chain and key files, e.g. Corral's own server
  // certificate so that nginx-tls and Corral's TLS listener do the same handshake.
  // TLS 1.2 minimum, 1.3 preferred, X25519 then P-256, session tickets on (nginx's default).
  std::string tls_cert;
  std::string tls_key;
};

// The nginx.conf text for `s`. Pure, so the report can show the exact file and tests can
// check it: daemon off, master_process off (one process, in the foreground), access log
// off, proxy_buffering off, proxy_request_buffering off, proxy_cache off, HTTP/1.1 with
// keep-alive to the upstream, chunked passthrough.
std::string NginxConf(const NginxSettings& s);

// A running private nginx. Stopped (process group) and its directory removed on destruction.
class NginxProxy {
 public:
  // TLS files for Start: the listener's chain and key, and the CA the health probe checks
  // the chain against.
  struct Tls {
    std::string cert, key, ca;
  };
  // Writes the configuration, starts `binary` on a free loopback port (TLS when `tls.cert`
  // is set) and waits until a GET /health through it answers 200 (so the upstream is
  // reachable too).
  static Result<std::unique_ptr<NginxProxy>> Start(const std::string& binary, const NginxBuild& build,
                                                   const std::string& upstream_host, int upstream_port,
                                                   std::chrono::seconds timeout, const Tls& tls = {});
  ~NginxProxy();
  NginxProxy(const NginxProxy&) = delete;
  NginxProxy& operator=(const NginxProxy&) = delete;

  std::string url() const { return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  const std::string& config() const { return config_; }
  const std::string& config_path() const { return config_path_; }
  std::string ErrorLogTail(size_t bytes) const;

 private:
  NginxProxy() = default;
  void Stop();
  pid_t pid_ = -1;
  int port_ = 0;
  bool tls_ = false;
  std::string dir_;
  std::string config_;
  std::string config_path_;
};

}  // namespace corral::bench
