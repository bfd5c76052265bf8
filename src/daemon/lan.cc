#include "daemon/lan.h"

#include "auth/keys.h"
#include "common/url.h"
#include "proxy/listen.h"
#include "tls/tls.h"

namespace corral::daemon {

Status CheckOpenDoor(const config::Config& config) {
  CORRAL_ASSIGN_OR_RETURN(auto specs, proxy::ParseListenList(config.listen));
  std::vector<std::string> routable = proxy::RoutableListens(specs);
  if (routable.empty()) return Status::Ok();
  CORRAL_ASSIGN_OR_RETURN(auth::KeySet keys, auth::LoadKeyFile(auth::DefaultKeyFile()));
  return auth::CheckOpenDoor(routable, keys.keys.size(), config.allow_unauthenticated_lan);
}

Status PrepareLan(const config::Config& config, proxy::ProxyOptions& popts, std::vector<std::string>* notes) {
  CORRAL_RETURN_IF_ERROR(CheckOpenDoor(config));
  CORRAL_ASSIGN_OR_RETURN(auto specs, proxy::ParseListenList(config.listen));
  popts.keys_file = auth::DefaultKeyFile();
  std::vector<std::string> routable = proxy::RoutableListens(specs);
  CORRAL_ASSIGN_OR_RETURN(auth::KeySet keys, auth::LoadKeyFile(popts.keys_file));
  if (!routable.empty() && keys.keys.empty()) {
    notes->push_back("WARNING: serving " + routable.front() +
                     " with NO API KEY (--allow-unauthenticated-lan): anyone who can reach it may use every model");
  }
  bool any_tls = false;
  std::vector<std::string> sans;
  for (const auto& s : specs) {
    any_tls = any_tls || s.tls;
    if (s.host != "0.0.0.0" && s.host != "::") sans.push_back("IP:" + s.host);
    if (!s.loopback && !s.tls) {
      notes->push_back("note: " + s.text + " is plain HTTP: API keys cross the network readable; prefer https://");
    }
  }
  if (!any_tls) return Status::Ok();
  if (!config.tls_cert.empty() || !config.tls_key.empty()) {
    if (config.tls_cert.empty() || config.tls_key.empty()) {
      return InvalidArgument("tls_cert and tls_key go together (the certificate chain and its key)");
    }
    popts.tls_cert = config.tls_cert;
    popts.tls_key = config.tls_key;
  } else {
    auto files = tls::EnsureLocalCert(tls::DefaultDir(), sans);
    if (!files.ok()) return files.status().WithContext("creating the local CA in " + tls::DefaultDir());
    popts.tls_cert = files->cert;
    popts.tls_key = files->key;
    if (auto ca = tls::ReadCertInfo(files->ca); ca.ok()) {
      notes->push_back("TLS: local CA " + files->ca + " (give it to clients: curl --cacert, SSL_CERT_FILE), SHA-256 " +
                       ca->sha256_fingerprint);
    }
  }
  auto leaf = tls::ReadCertInfo(popts.tls_cert);
  if (!leaf.ok()) return leaf.status();
  notes->push_back("TLS: server certificate " + popts.tls_cert + ", SHA-256 " + leaf->sha256_fingerprint);
  return Status::Ok();
}

std::string FirstProxyUrl(const std::string& listen, uint16_t port) {
  auto specs = proxy::ParseListenList(listen);
  if (!specs.ok() || specs->empty()) return "http://127.0.0.1:" + std::to_string(port);
  const auto& s = specs->front();
  std::string host = BracketHost(s.host);
  return std::string(s.tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

}  // namespace corral::daemon
