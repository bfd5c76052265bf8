// TLS material for the proxy (issue 13): the server certificate and key the HTTPS listeners
// use, a local CA made on first use, fingerprints for pinning, and the OpenSSL settings of
// the server context.
//
// Local CA (when the user gives no cert/key), in <ConfigDir>/tls/:
//   ca.pem      the CA certificate (clients pin it: curl --cacert, SSL_CERT_FILE, …)
//   ca.key      its P-256 key, 0600
//   server.pem  the server certificate signed by the CA, then the CA (the chain sent)
//   server.key  its P-256 key, 0600
// The server certificate's SAN holds localhost, the host name (and NAME.local), 127.0.0.1,
// ::1, every address of the host's interfaces and the listen addresses. Valid 825 days
// (the CA: 10 years). `Rotate` makes a new server key and certificate under the same CA, so
// clients that pinned the CA keep working; `rotate_ca` makes a new CA too.
//
// Thread-safety: free functions; they touch only the files named. Not for the data plane's
// hot path (called at start-up and from the CLI).
#pragma once

#include <openssl/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace corral::tls {

struct ServerFiles {
  std::string cert;  // PEM chain, leaf first
  std::string key;   // PEM private key
  std::string ca;    // the local CA's certificate (empty for a user's certificate)
};

std::string DefaultDir();  // ConfigDir()/tls

// The local CA's files in `dir`, created when missing (with `extra_sans`: "IP:…" or "DNS:…").
Result<ServerFiles> EnsureLocalCert(const std::string& dir, const std::vector<std::string>& extra_sans);
// New server key and certificate (and a new CA when rotate_ca) in `dir`.
Result<ServerFiles> Rotate(const std::string& dir, const std::vector<std::string>& extra_sans, bool rotate_ca);

struct CertInfo {
  std::string subject;
  std::string not_after;           // as OpenSSL prints it
  std::string sha256_fingerprint;  // AA:BB:… of the DER certificate
  std::string spki_sha256;         // hex SHA-256 of the public key (a node's identity, DESIGN.md)
  std::vector<std::string> san;    // "DNS:…", "IP:…"
};
// The first certificate in a PEM file.
Result<CertInfo> ReadCertInfo(const std::string& pem_path);

// The server context settings: TLS 1.2 minimum and 1.3 preferred (AES-128-GCM first,
// X25519 then P-256), stateless session tickets (2 per handshake), no 0-RTT (early data is
// replayable), no compression, no renegotiation, SSL_MODE_RELEASE_BUFFERS (idle connections
// give their record buffers back), and the certificate chain and key, checked to match.
Status ConfigureServerContext(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem);

}  // namespace corral::tls
