// TLS material and server settings: see tls.h.
//
// Error policy: every OpenSSL failure becomes a Status with OpenSSL's own reason; nothing
// here throws. Objects are held in unique_ptrs with their OpenSSL free functions.
#include "tls/tls.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>
#include <set>

#include "common/fs.h"
#include "common/paths.h"

namespace corral::tls {
namespace {

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;

constexpr long kLeafDays = 825;
constexpr long kCaDays = 3650;
constexpr size_t kMaxPemBytes = 1U << 20;

Status SslError(const std::string& what) {
  std::string reason;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;  // the last (outermost) reason
  }
  return Status(StatusCode::kInternal, what + (reason.empty() ? "" : ": " + reason));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return SslError("writing a certificate");
  return BioText(bio.get());
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslError("writing a private key");
  }
  return BioText(bio.get());
}

Result<X509Ptr> LoadCert(const std::string& path) {
  CORRAL_ASSIGN_OR_RETURN(std::string pem, ReadFileBounded(path, kMaxPemBytes));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError("reading the certificate " + path);
  return cert;
}

Result<PKeyPtr> LoadKey(const std::string& path) {
  CORRAL_ASSIGN_OR_RETURN(std::string pem, ReadFileBounded(path, kMaxPemBytes));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError("reading the private key " + path);
  return key;
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1;
}

// A certificate for `key` named `cn`, signed by `issuer_key` (self-signed when issuer is null).
Result<X509Ptr> MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, long days,
                         bool is_ca, const std::string& san) {
  X509Ptr cert(X509_new());
  if (!cert) return SslError("X509_new");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return SslError("RAND_bytes");
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  ok = ok && X509_set_version(cert.get(), X509_VERSION_3) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600) != nullptr;
  ok = ok && X509_set_pubkey(cert.get(), key) == 1;
  X509_NAME* name = X509_get_subject_name(cert.get());
  ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Corral"), -1,
                                        -1, 0) == 1;
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                        -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name) == 1;
  if (!ok) return SslError("building the certificate " + cn);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  if (is_ca) {
    ok = AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
         AddExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         AddExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    ok = AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature") &&
         AddExt(cert.get(), iss, NID_ext_key_usage, "serverAuth") &&
         AddExt(cert.get(), iss, NID_subject_key_identifier, "hash") &&
         AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid") &&
         AddExt(cert.get(), iss, NID_subject_alt_name, san);
  }
  if (!ok) return SslError("adding extensions to " + cn);
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) <= 0) {
    return SslError("signing " + cn);
  }
  return cert;
}

// localhost, the host name, NAME.local, loopback and every interface address, the extras.
std::string SanList(const std::vector<std::string>& extra) {
  std::set<std::string> names{"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') {
    std::string h(host);
    names.insert("DNS:" + h);
    if (h.find('.') == std::string::npos) names.insert("DNS:" + h + ".local");
  }
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&a6->sin6_addr)) continue;  // needs a zone; not nameable in a SAN
        ::inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
      } else {
        continue;
      }
      names.insert(std::string("IP:") + buf);
    }
    ::freeifaddrs(ifs);
  }
  for (const auto& e : extra) {
    if ((e.starts_with("IP:") || e.starts_with("DNS:")) && e.find(',') == std::string::npos) names.insert(e);
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

Status WriteSecret(const std::string& path, const std::string& pem) {
  return WriteFileAtomic(path, pem, 0600);
}

Result<ServerFiles> MakeLeaf(const std::string& dir, X509* ca, EVP_PKEY* ca_key,
                             const std::vector<std::string>& extra) {
  PKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslError("generating the server key");
  char host[256] = {};
  std::string cn = ::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0' ? host : "localhost";
  CORRAL_ASSIGN_OR_RETURN(X509Ptr leaf, MakeCert(key.get(), cn, ca, ca_key, kLeafDays, false, SanList(extra)));
  CORRAL_ASSIGN_OR_RETURN(std::string leaf_pem, CertPem(leaf.get()));
  CORRAL_ASSIGN_OR_RETURN(std::string ca_pem, CertPem(ca));
  CORRAL_ASSIGN_OR_RETURN(std::string key_pem, KeyPem(key.get()));
  ServerFiles f{dir + "/server.pem", dir + "/server.key", dir + "/ca.pem"};
  // The key first: a certificate on disk always has its key beside it.
  CORRAL_RETURN_IF_ERROR(WriteSecret(f.key, key_pem));
  CORRAL_RETURN_IF_ERROR(WriteFileAtomic(f.cert, leaf_pem + ca_pem, 0644));
  return f;
}

Result<ServerFiles> MakeCa(const std::string& dir, const std::vector<std::string>& extra) {
  PKeyPtr ca_key(EVP_EC_gen("P-256"));
  if (!ca_key) return SslError("generating the CA key");
  char host[256] = {};
  std::string cn = std::string("Corral local CA ") + (::gethostname(host, sizeof host - 1) == 0 ? host : "");
  CORRAL_ASSIGN_OR_RETURN(X509Ptr ca, MakeCert(ca_key.get(), cn, nullptr, nullptr, kCaDays, true, ""));
  CORRAL_ASSIGN_OR_RETURN(std::string ca_pem, CertPem(ca.get()));
  CORRAL_ASSIGN_OR_RETURN(std::string ca_key_pem, KeyPem(ca_key.get()));
  CORRAL_RETURN_IF_ERROR(WriteSecret(dir + "/ca.key", ca_key_pem));
  CORRAL_RETURN_IF_ERROR(WriteFileAtomic(dir + "/ca.pem", ca_pem, 0644));
  return MakeLeaf(dir, ca.get(), ca_key.get(), extra);
}

bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

std::string DefaultDir() {
  return ConfigDir() + "/tls";
}

Result<ServerFiles> EnsureLocalCert(const std::string& dir, const std::vector<std::string>& extra_sans) {
  ServerFiles f{dir + "/server.pem", dir + "/server.key", dir + "/ca.pem"};
  if (Exists(f.cert) && Exists(f.key)) return f;
  CORRAL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  if (Exists(dir + "/ca.pem") && Exists(dir + "/ca.key")) return Rotate(dir, extra_sans, false);
  return MakeCa(dir, extra_sans);
}

Result<ServerFiles> Rotate(const std::string& dir, const std::vector<std::string>& extra_sans, bool rotate_ca) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  if (rotate_ca || !Exists(dir + "/ca.pem") || !Exists(dir + "/ca.key")) return MakeCa(dir, extra_sans);
  CORRAL_ASSIGN_OR_RETURN(X509Ptr ca, LoadCert(dir + "/ca.pem"));
  CORRAL_ASSIGN_OR_RETURN(PKeyPtr ca_key, LoadKey(dir + "/ca.key"));
  return MakeLeaf(dir, ca.get(), ca_key.get(), extra_sans);
}

Result<CertInfo> ReadCertInfo(const std::string& pem_path) {
  CORRAL_ASSIGN_OR_RETURN(X509Ptr cert, LoadCert(pem_path));
  CertInfo info;
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert.get()), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  info.subject = BioText(bio.get());
  BioPtr bio2(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio2.get(), X509_get0_notAfter(cert.get()));
  info.not_after = BioText(bio2.get());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &n) != 1) return SslError("fingerprint");
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned i = 0; i < n; ++i) {
    if (i != 0) info.sha256_fingerprint += ':';
    info.sha256_fingerprint += kHex[md[i] >> 4];
    info.sha256_fingerprint += kHex[md[i] & 15];
  }
  if (X509_pubkey_digest(cert.get(), EVP_sha256(), md, &n) == 1) {
    static constexpr char kLower[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; ++i) {
      info.spki_sha256 += kLower[md[i] >> 4];
      info.spki_sha256 += kLower[md[i] & 15];
    }
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
      if (g->type == GEN_DNS) {
        info.san.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                                static_cast<size_t>(ASN1_STRING_length(g->d.dNSName))));
      } else if (g->type == GEN_IPADD) {
        const unsigned char* p = ASN1_STRING_get0_data(g->d.iPAddress);
        int len = ASN1_STRING_length(g->d.iPAddress);
        char buf[INET6_ADDRSTRLEN] = {};
        if (len == 4) ::inet_ntop(AF_INET, p, buf, sizeof buf);
        if (len == 16) ::inet_ntop(AF_INET6, p, buf, sizeof buf);
        info.san.push_back(std::string("IP:") + buf);
      }
    }
    GENERAL_NAMES_free(names);
  }
  return info;
}

Status ConfigureServerContext(SSL_CTX* ctx, const std::string& cert_pem, const std::string& key_pem) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // AES-128-GCM first: measured 0.5 µs per token-sized record (research/lan-rpc.md §4).
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") !=
          1 ||
      SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1) {
    return SslError("setting the TLS ciphers");
  }
  SSL_CTX_set_num_tickets(ctx, 2);     // stateless tickets: resumed sessions skip the signature
  SSL_CTX_set_max_early_data(ctx, 0);  // no 0-RTT: early data can be replayed
  SSL_CTX_set_recv_max_early_data(ctx, 0);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem.c_str()) != 1) {
    return SslError("loading the certificate chain " + cert_pem);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_pem.c_str(), SSL_FILETYPE_PEM) != 1) {
    return SslError("loading the private key " + key_pem);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) return SslError("the key " + key_pem + " does not match " + cert_pem);
  return Status::Ok();
}

}  // namespace corral::tls
