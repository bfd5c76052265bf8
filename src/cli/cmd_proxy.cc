// `corral proxy --upstream NAME=http://127.0.0.1:PORT ...`: runs the proxy data plane alone
// in front of fixed upstreams (a StaticProvider). A debugging and measuring tool; the
// daemon embeds the same Proxy over the supervisor.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/url.h"
#include "daemon/lan.h"
#include "daemon/proxy_options.h"
#include "engine/engine.h"
#include "proxy/listen.h"
#include "proxy/proxy.h"
#include "proxy/static_provider.h"

namespace corral::cli {
namespace {

struct ProxyArgs {
  std::vector<std::string> upstreams;
};

int RunProxy(const GlobalOptions& global, const ProxyArgs& args) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  auto specs = proxy::StaticProvider::ParseSpecs(args.upstreams);
  if (!specs.ok()) return Fail(ExitCode::kUsage, "proxy: " + specs.status().message());
  if (specs->empty()) return Fail(ExitCode::kUsage, "proxy: give at least one --upstream NAME=http://HOST:PORT");

  // Block the signals before any thread starts so only sigwait() below sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  proxy::StaticProvider provider(*specs);
  proxy::RoutingTable routes;
  provider.PublishTo(routes);
  proxy::ProxyOptions options = daemon::ProxyOptionsFor(*config);
  // Issue 13: open door (75), TLS material, keys. A bad listen address stays exit 71, as
  // it was when the proxy found it at Start.
  std::vector<std::string> notes;
  if (Status lan = daemon::PrepareLan(*config, options, &notes); !lan.ok()) {
    return Fail(lan.code() == StatusCode::kFailedPrecondition ? ExitCode::kOpenBindRefused : ExitCode::kOther,
                "proxy: " + lan.message());
  }
  for (const auto& n : notes) std::fprintf(stderr, "%s\n", n.c_str());
  auto llama_ui = engine::LlamaUiDir(config->llama_ui);
  if (!llama_ui.ok()) return Fail(ExitCode::kOther, "proxy: " + llama_ui.status().message());
  options.llama_ui_dir = *llama_ui;
  proxy::Proxy px(options, provider, routes);
  Status st = px.Start();
  if (!st.ok()) return Fail(ExitCode::kOther, "proxy: " + st.message());
  auto listens = proxy::ParseListenList(options.listen);
  std::vector<uint16_t> ports = px.ports();
  for (size_t i = 0; listens.ok() && i < listens->size() && i < ports.size(); ++i) {
    const std::string host = BracketHost((*listens)[i].host);
    std::printf("corral proxy listening on %s://%s:%u\n", (*listens)[i].tls ? "https" : "http", host.c_str(), ports[i]);
  }
  for (const auto& [name, ep] : *specs) std::printf("  %s -> http://%s\n", name.c_str(), ep.ToString().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  px.Stop();
  return 0;
}

}  // namespace

static void RegisterProxy(CLI::App& app, GlobalOptions& global, RunFn& run) {
  static ProxyArgs args;
  auto* cmd = app.add_subcommand("proxy", "Run the proxy alone in front of fixed llama-server upstreams (debugging)");
  cmd->add_option("--upstream", args.upstreams, "NAME=http://HOST:PORT (repeatable): route model NAME there")
      ->required();
  cmd->fallthrough();  // global flags (--listen, --max-body-bytes, ...) may follow `proxy`
  cmd->footer(std::string("Listens on --listen (default ") + defaults::kListen + "). Stop with Ctrl-C.");
  cmd->callback([&global, &run] { run = [&global] { return RunProxy(global, args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterProxy);

}  // namespace corral::cli
