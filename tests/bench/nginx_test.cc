// nginx as suite C's reference proxy: the configuration the bench writes (private paths,
// no buffering, keep-alive upstream), what it reads from `nginx -V`, and - when nginx is
// installed - that nginx accepts the file (`nginx -t`). Running it is covered by
// bench_integration_test.
#include "bench/nginx.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/subprocess.h"
#include "support/test_support.h"

namespace corral::bench {
namespace {

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

NginxSettings Settings() {
  NginxSettings s;
  s.dir = "/tmp/corral-bench-nginx-test";
  s.listen_port = 41234;
  s.upstream_port = 8081;
  return s;
}

TEST(NginxConf, ForegroundPrivatePathsNoBufferingKeepAliveUpstream) {
  const std::string c = NginxConf(Settings());
  // One foreground process whose every file lives in the private directory (no root needed).
  EXPECT_TRUE(Has(c, "daemon off;\n"));
  EXPECT_TRUE(Has(c, "master_process off;\n"));
  EXPECT_TRUE(Has(c, "pid /tmp/corral-bench-nginx-test/nginx.pid;\n"));
  EXPECT_TRUE(Has(c, "error_log /tmp/corral-bench-nginx-test/error.log"));
  for (const char* temp :
       {"client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"}) {
    EXPECT_TRUE(Has(c, std::string(temp) + " /tmp/corral-bench-nginx-test/")) << temp;
  }
  EXPECT_FALSE(Has(c, "/var/")) << "nothing outside the private directory";
  EXPECT_TRUE(Has(c, "access_log off;"));
  // Loopback listener on the chosen port, upstream to the same child with keep-alive.
  EXPECT_TRUE(Has(c, "listen 127.0.0.1:41234;\n"));
  EXPECT_TRUE(Has(c, "server 127.0.0.1:8081;\n"));
  EXPECT_TRUE(Has(c, "keepalive 8;\n"));
  EXPECT_TRUE(Has(c, "keepalive_timeout 4s;\n"));
  EXPECT_TRUE(Has(c, "proxy_http_version 1.1;\n"));
  EXPECT_TRUE(Has(c, "proxy_set_header Connection \"\";\n")) << "keep-alive upstream needs the header cleared";
  // No buffering either way, no cache, chunked passthrough.
  EXPECT_TRUE(Has(c, "proxy_buffering off;\n"));
  EXPECT_TRUE(Has(c, "proxy_request_buffering off;\n"));
  EXPECT_TRUE(Has(c, "proxy_cache off;\n"));
  EXPECT_TRUE(Has(c, "chunked_transfer_encoding on;\n"));
  // A stale upstream keep-alive is retried once on a fresh connection, not answered 502.
  EXPECT_TRUE(Has(c, "proxy_next_upstream error timeout non_idempotent;\n"));
  // Balanced braces: nginx -t would reject anything else.
  EXPECT_EQ(std::count(c.begin(), c.end(), '{'), std::count(c.begin(), c.end(), '}'));
}

TEST(NginxConf, LeavesOutTempPathsOfModulesTheBuildLacks) {
  NginxSettings s = Settings();
  s.build.has_uwsgi = false;
  s.build.has_scgi = false;
  const std::string c = NginxConf(s);
  EXPECT_FALSE(Has(c, "uwsgi_temp_path"));
  EXPECT_FALSE(Has(c, "scgi_temp_path"));
  EXPECT_TRUE(Has(c, "fastcgi_temp_path"));
}

TEST(NginxBuild, ParsesVersionAndMissingModules) {
  const NginxBuild b = ParseNginxBuild(
      "nginx version: nginx/1.22.1\nbuilt with OpenSSL 3.0.15\nconfigure arguments: --prefix=/usr/share/nginx "
      "--without-http_uwsgi_module --without-http_scgi_module\n");
  EXPECT_EQ(b.version, "1.22.1");
  EXPECT_EQ(b.line, "nginx version: nginx/1.22.1");
  EXPECT_TRUE(b.has_fastcgi);
  EXPECT_FALSE(b.has_uwsgi);
  EXPECT_FALSE(b.has_scgi);
  EXPECT_TRUE(b.supports_error_log_flag);
  EXPECT_FALSE(ParseNginxBuild("nginx version: nginx/1.18.0\n").supports_error_log_flag) << "-e came in 1.19.5";
  EXPECT_TRUE(ParseNginxBuild("nginx version: openresty/1.21.4.1\n").supports_error_log_flag);
  EXPECT_EQ(ParseNginxBuild("something else").version, "");
}

// The generated file is accepted by the nginx on this machine (`nginx -t`), as an
// unprivileged process would run it: every path is inside the private directory.
TEST(NginxConf, InstalledNginxAcceptsIt) {
  const std::string binary = FindNginx();
  if (binary.empty()) {
    GTEST_SKIP() << "nginx is not installed (apt-get install nginx-light, or `make bench`); "
                    "the generated config was checked as text only";
  }
  auto build = ProbeNginx(binary);
  ASSERT_TRUE(build.ok()) << build.status().ToString();
  testing::TempDir dir;
  NginxSettings s = Settings();
  s.dir = dir.path();
  s.build = *build;
  ASSERT_TRUE(WriteFileAtomic(dir.File("nginx.conf"), NginxConf(s)).ok());
  std::vector<std::string> argv = {binary, "-t", "-q", "-p", dir.path() + "/", "-c", dir.File("nginx.conf")};
  if (build->supports_error_log_flag) argv.insert(argv.begin() + 1, {"-e", dir.File("error.log")});
  auto r = RunCapture(argv, std::chrono::seconds(20));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->output << "\n" << NginxConf(s);
}

TEST(NginxFind, AnExplicitPathMustBeExecutable) {
  EXPECT_EQ(FindNginx("/nonexistent/nginx"), "");
  EXPECT_EQ(FindNginx("/bin/sh"), "/bin/sh");
}

}  // namespace
}  // namespace corral::bench
