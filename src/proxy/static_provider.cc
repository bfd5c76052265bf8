#include "proxy/static_provider.h"

#include "common/url.h"

namespace corral::proxy {

Result<Endpoint> ParseUpstreamUrl(std::string_view url) {
  if (!url.starts_with("http://")) {
    return InvalidArgument("upstream '" + std::string(url) + "' must be http://HOST:PORT");
  }
  auto hp = ParseHostPort(url, true);
  if (!hp.ok()) return InvalidArgument("upstream: " + hp.status().message());
  return Endpoint{hp->host, hp->port};
}

StaticProvider::StaticProvider(std::map<std::string, Endpoint> upstreams) : upstreams_(std::move(upstreams)) {}

Result<std::map<std::string, Endpoint>> StaticProvider::ParseSpecs(const std::vector<std::string>& specs) {
  std::map<std::string, Endpoint> out;
  for (const auto& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--upstream '" + spec + "' must be NAME=http://HOST:PORT");
    }
    CORRAL_ASSIGN_OR_RETURN(Endpoint ep, ParseUpstreamUrl(std::string_view(spec).substr(eq + 1)));
    if (!out.emplace(spec.substr(0, eq), ep).second) {
      return InvalidArgument("--upstream names model '" + spec.substr(0, eq) + "' twice");
    }
  }
  return out;
}

void StaticProvider::PublishTo(RoutingTable& table) const {
  RouteMap map;
  for (const auto& [name, ep] : upstreams_) map.routes.emplace(name, ep);
  table.Publish(std::move(map));
}

std::vector<ModelInfo> StaticProvider::ListModels() const {
  std::vector<ModelInfo> out;
  for (const auto& [name, ep] : upstreams_) {
    ModelInfo m;
    m.name = name;
    m.state = ModelState::kReady;
    out.push_back(std::move(m));
  }
  return out;
}

void StaticProvider::EnsureReady(const std::string& model, std::chrono::steady_clock::time_point /*deadline*/,
                                 std::function<void(EnsureResult)> done) {
  auto it = upstreams_.find(model);
  if (it != upstreams_.end()) {
    done(it->second);
    return;
  }
  std::vector<std::string> names;
  for (const auto& [name, ep] : upstreams_) names.push_back(name);
  EnsureError err;
  err.code = EnsureErrorCode::kNotFound;
  err.close_matches = CloseMatches(model, names);
  err.message = "model '" + model + "' not found";
  done(std::move(err));
}

void StaticProvider::OnRequestStart(const std::string& model, const Endpoint& /*upstream*/) {
  started_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_[model];
}

void StaticProvider::OnRequestEnd(const std::string& model, const Endpoint& /*upstream*/) {
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_[model];
}

bool StaticProvider::SetKeepAlive(const std::string& model, std::chrono::seconds keep_alive) {
  std::lock_guard<std::mutex> lock(mu_);
  keep_alive_.emplace_back(model, static_cast<int64_t>(keep_alive.count()));
  return upstreams_.count(model) != 0;
}

int StaticProvider::InFlight(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_flight_.find(model);
  return it == in_flight_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, int64_t>> StaticProvider::KeepAliveCalls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keep_alive_;
}

}  // namespace corral::proxy
