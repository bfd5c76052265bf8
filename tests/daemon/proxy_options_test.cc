// ProxyOptionsFor (issue 12 item 5): the one conversion from the config to the proxy's
// options, used by the daemon at start and on reload and by `corral proxy`; and
// SupervisorLimitsFor, the one conversion to the supervisor's reloadable limits.
#include "daemon/proxy_options.h"

#include <gtest/gtest.h>

#include <chrono>

namespace corral::daemon {
namespace {

TEST(ProxyOptionsTest, ConfigDefaultsAreTheProxysOwn) {
  const proxy::ProxyOptions from_config = ProxyOptionsFor(config::Config{});
  const proxy::ProxyOptions own;
  EXPECT_EQ(from_config.listen, own.listen);
  EXPECT_EQ(from_config.threads, own.threads);
  EXPECT_EQ(from_config.preconnect, own.preconnect);
  EXPECT_EQ(from_config.max_body_bytes, own.max_body_bytes);
  EXPECT_EQ(from_config.client_timeout, own.client_timeout);
  EXPECT_EQ(from_config.upstream_timeout, own.upstream_timeout);
  EXPECT_EQ(from_config.max_json_depth, own.max_json_depth);
  EXPECT_EQ(from_config.cors_origins, own.cors_origins);
  EXPECT_EQ(from_config.max_connections, own.max_connections);
  EXPECT_EQ(from_config.max_connections_per_client, own.max_connections_per_client);
  EXPECT_EQ(from_config.max_buffered_body_bytes, own.max_buffered_body_bytes);
  EXPECT_EQ(from_config.allow_unauthenticated_lan, own.allow_unauthenticated_lan);
  EXPECT_EQ(from_config.require_key_on_loopback, own.require_key_on_loopback);
  // What the caller wires itself is left at the proxy's defaults.
  EXPECT_EQ(from_config.tls_cert, own.tls_cert);
  EXPECT_EQ(from_config.keys_file, own.keys_file);
  EXPECT_EQ(from_config.llama_ui_dir, own.llama_ui_dir);
  EXPECT_EQ(from_config.version, own.version);
}

TEST(ProxyOptionsTest, EveryProxyOptionIsCarried) {
  config::Config c;
  c.listen = "127.0.0.1:9,https://[::1]:10";
  c.proxy_threads = 3;
  c.proxy_preconnect = false;
  c.max_body_bytes = 1000;
  c.proxy_client_timeout_s = 7;
  c.proxy_upstream_timeout_s = 8;
  c.max_json_depth = 9;
  c.cors_origins = {"http://a:1", "*"};
  c.max_connections = 11;
  c.max_connections_per_client = 12;
  c.max_buffered_body_bytes = 13;
  c.allow_unauthenticated_lan = true;
  c.require_key_on_loopback = true;
  const proxy::ProxyOptions p = ProxyOptionsFor(c);
  EXPECT_EQ(p.listen, c.listen);
  EXPECT_EQ(p.threads, 3);
  EXPECT_FALSE(p.preconnect);
  EXPECT_EQ(p.max_body_bytes, 1000U);
  EXPECT_EQ(p.client_timeout, std::chrono::seconds(7));
  EXPECT_EQ(p.upstream_timeout, std::chrono::seconds(8));
  EXPECT_EQ(p.max_json_depth, 9U);
  EXPECT_EQ(p.cors_origins, c.cors_origins);
  EXPECT_EQ(p.max_connections, 11U);
  EXPECT_EQ(p.max_connections_per_client, 12U);
  EXPECT_EQ(p.max_buffered_body_bytes, 13U);
  EXPECT_TRUE(p.allow_unauthenticated_lan);
  EXPECT_TRUE(p.require_key_on_loopback);
}

// SupervisorLimitsFor: the daemon's start and the reload set the supervisor's limits through it.
TEST(ProxyOptionsTest, SupervisorLimitsCarryTheBudgetAndEveryTimeout) {
  config::Config c;
  c.health_timeout_s = 5;
  c.health_timeout_per_gib_s = 6;
  c.stop_timeout_s = 7;
  const supervisor::Supervisor::Limits l = SupervisorLimitsFor(c, 123);
  EXPECT_EQ(l.memory_budget_bytes, 123U);
  EXPECT_EQ(l.health_timeout_base, std::chrono::seconds(5));
  EXPECT_EQ(l.health_timeout_per_gib, std::chrono::seconds(6));
  EXPECT_EQ(l.stop_grace, std::chrono::seconds(7));
  // The config's defaults are the supervisor's own (a daemon without a config file behaves
  // like a bare Supervisor).
  const supervisor::SupervisorOptions own;
  const supervisor::Supervisor::Limits d = SupervisorLimitsFor(config::Config{}, 0);
  EXPECT_EQ(d.health_timeout_base, own.health_timeout_base);
  EXPECT_EQ(d.health_timeout_per_gib, own.health_timeout_per_gib);
  EXPECT_EQ(d.stop_grace, own.stop_grace);
}

}  // namespace
}  // namespace corral::daemon
