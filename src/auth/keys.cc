// API keys: see keys.h for the format and the rules.
#include "auth/keys.h"

#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fs.h"
#include "common/paths.h"

namespace corral::auth {
namespace {

constexpr size_t kIdHexDigits = 16;
constexpr size_t kSecretChars = 43;  // 32 bytes in unpadded base64url
constexpr size_t kTokenChars = 4 + kIdHexDigits + 1 + kSecretChars;
constexpr size_t kMaxCredentialBytes = 4096;
constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxGlobs = 64;
constexpr size_t kMaxGlobBytes = 256;

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
bool IsB64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

bool Sha256(std::string_view data, unsigned char out[32]) {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char d[32];
  if (!Sha256(data, d)) return {};
  return Hex(d, sizeof d);
}

std::string Base64Url(const unsigned char* p, size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

// Standard base64 (RFC 4648 §4, padding optional) for Basic credentials. Hand-written:
// OpenSSL's EVP_DecodeBlock keeps pad bytes as zeros and accepts whitespace. Returns false
// on any character outside the alphabet.
bool DecodeBase64(std::string_view in, std::string* out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

bool IEqualsPrefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = s[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != prefix[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status CheckName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return InvalidArgument("a key name must be 1-64 characters");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == '@';
    if (!ok) return InvalidArgument("a key name may hold only letters, digits and - _ . @ (it is a metrics label)");
  }
  return Status::Ok();
}

Status CheckGlobs(const std::vector<std::string>& globs) {
  if (globs.size() > kMaxGlobs) return InvalidArgument("at most 64 model globs per key");
  for (const auto& g : globs) {
    if (g.empty() || g.size() > kMaxGlobBytes) return InvalidArgument("a model glob must be 1-256 characters");
    for (unsigned char c : g) {
      if (c < 0x20 || c == 0x7f) return InvalidArgument("a model glob must not hold control characters");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view to_string(Scope s) {
  switch (s) {
    case Scope::kRead: return "read";
    case Scope::kInference: return "inference";
    case Scope::kAdmin: return "admin";
  }
  return "?";
}

Result<Scope> ParseScope(std::string_view text) {
  if (text == "read") return Scope::kRead;
  if (text == "inference") return Scope::kInference;
  if (text == "admin") return Scope::kAdmin;
  return InvalidArgument("scope must be inference, read or admin, got '" + std::string(text.substr(0, 64)) + "'");
}

bool GlobMatch(std::string_view glob, std::string_view text) {
  size_t g = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g;
      ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

bool KeyRecord::AllowsModel(std::string_view model) const {
  if (models.empty()) return true;
  return std::any_of(models.begin(), models.end(), [&](const std::string& g) { return GlobMatch(g, model); });
}

const KeyRecord* KeySet::FindById(std::string_view id) const {
  for (const auto& k : keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

const KeyRecord* KeySet::FindByName(std::string_view name) const {
  for (const auto& k : keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

Result<KeySet> ParseKeyFile(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status(StatusCode::kCorrupt, "the key file is not a JSON object");
  if (j.value("version", 0) != 1) return Status(StatusCode::kCorrupt, "the key file has an unknown version");
  auto it = j.find("keys");
  if (it == j.end() || !it->is_array()) return Status(StatusCode::kCorrupt, "the key file has no \"keys\" list");
  if (it->size() > kMaxKeys) return Status(StatusCode::kCorrupt, "the key file holds too many keys");
  KeySet set;
  for (const auto& k : *it) {
    if (!k.is_object()) return Status(StatusCode::kCorrupt, "a key record is not an object");
    KeyRecord r;
    auto str = [&](const char* field, std::string* out) {
      auto f = k.find(field);
      if (f == k.end() || !f->is_string()) return false;
      *out = f->get<std::string>();
      return true;
    };
    std::string scope;
    if (!str("id", &r.id) || !str("name", &r.name) || !str("sha256", &r.sha256_hex) || !str("scope", &scope)) {
      return Status(StatusCode::kCorrupt, "a key record lacks id, name, sha256 or scope");
    }
    if (r.id.size() != kIdHexDigits || !std::all_of(r.id.begin(), r.id.end(), IsHex) || r.sha256_hex.size() != 64 ||
        !std::all_of(r.sha256_hex.begin(), r.sha256_hex.end(), IsHex) || !CheckName(r.name).ok()) {
      return Status(StatusCode::kCorrupt, "a key record has a malformed id, name or hash");
    }
    auto s = ParseScope(scope);
    if (!s.ok()) return Status(StatusCode::kCorrupt, s.status().message());
    r.scope = *s;
    if (auto m = k.find("models"); m != k.end()) {
      if (!m->is_array()) return Status(StatusCode::kCorrupt, "\"models\" must be a list of globs");
      for (const auto& g : *m) {
        if (!g.is_string()) return Status(StatusCode::kCorrupt, "\"models\" must be a list of globs");
        r.models.push_back(g.get<std::string>());
      }
      if (Status gs = CheckGlobs(r.models); !gs.ok()) return Status(StatusCode::kCorrupt, gs.message());
    }
    if (auto c = k.find("created"); c != k.end() && c->is_number_integer()) r.created_unix_s = c->get<int64_t>();
    set.keys.push_back(std::move(r));
  }
  return set;
}

std::string SerializeKeyFile(const KeySet& set) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : set.keys) {
    keys.push_back({{"id", k.id},
                    {"name", k.name},
                    {"sha256", k.sha256_hex},
                    {"scope", std::string(to_string(k.scope))},
                    {"models", k.models},
                    {"created", k.created_unix_s}});
  }
  return nlohmann::json{{"version", 1}, {"keys", keys}}.dump(2) + "\n";
}

Result<KeySet> LoadKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return KeySet{};
    return IoError("cannot read " + path + ": " + std::strerror(errno));
  }
  CORRAL_ASSIGN_OR_RETURN(std::string text, ReadFileBounded(path, kMaxKeyFileBytes));
  auto set = ParseKeyFile(text);
  if (!set.ok()) return set.status().WithContext(path);
  return set;
}

Status SaveKeyFile(const std::string& path, const KeySet& keys) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (Status s = MakeDirs(path.substr(0, slash), 0700); !s.ok()) return s;
  }
  return WriteFileAtomic(path, SerializeKeyFile(keys), 0600);
}

std::string DefaultKeyFile() {
  return ConfigDir() + "/keys.json";
}

Result<NewKey> CreateKey(KeySet& keys, std::string name, Scope scope, std::vector<std::string> models,
                         int64_t now_unix_s) {
  if (keys.keys.size() >= kMaxKeys) return Status(StatusCode::kResourceExhausted, "too many keys");
  unsigned char id_bytes[kIdHexDigits / 2];
  unsigned char secret[32];
  if (RAND_bytes(id_bytes, sizeof id_bytes) != 1 || RAND_bytes(secret, sizeof secret) != 1) {
    return Status(StatusCode::kInternal, "the system random generator failed");
  }
  NewKey nk;
  nk.record.id = Hex(id_bytes, sizeof id_bytes);
  if (name.empty()) name = "key-" + nk.record.id.substr(0, 8);
  if (Status s = CheckName(name); !s.ok()) return s;
  if (keys.FindByName(name) != nullptr) return Status(StatusCode::kAlreadyExists, "a key named '" + name + "' exists");
  if (Status s = CheckGlobs(models); !s.ok()) return s;
  nk.token = "crl_" + nk.record.id + "_" + Base64Url(secret, sizeof secret);
  OPENSSL_cleanse(secret, sizeof secret);
  nk.record.name = std::move(name);
  nk.record.sha256_hex = Sha256Hex(nk.token);
  nk.record.scope = scope;
  nk.record.models = std::move(models);
  nk.record.created_unix_s = now_unix_s;
  keys.keys.push_back(nk.record);
  return nk;
}

Status RevokeKey(KeySet& keys, std::string_view ref) {
  auto it = std::find_if(keys.keys.begin(), keys.keys.end(),
                         [&](const KeyRecord& k) { return k.id == ref || k.name == ref; });
  if (it == keys.keys.end()) return NotFound("no key with id or name '" + std::string(ref.substr(0, 64)) + "'");
  keys.keys.erase(it);
  return Status::Ok();
}

Credential ParseCredential(std::string_view authorization, std::string_view x_api_key) {
  Credential c;
  if (!authorization.empty()) {
    if (authorization.size() > kMaxCredentialBytes) {
      c.malformed = true;
      return c;
    }
    std::string_view v = Trim(authorization);
    if (IEqualsPrefix(v, "bearer ")) {
      c.source = CredentialSource::kBearer;
      c.token.assign(Trim(v.substr(7)));
    } else if (IEqualsPrefix(v, "basic ")) {
      c.source = CredentialSource::kBasic;
      std::string decoded;
      if (!DecodeBase64(Trim(v.substr(6)), &decoded)) {
        c.malformed = true;
        return c;
      }
      size_t colon = decoded.find(':');
      if (colon == std::string::npos) {
        c.malformed = true;
        return c;
      }
      std::string_view user(decoded.data(), colon);
      std::string_view pass(decoded.data() + colon + 1, decoded.size() - colon - 1);
      c.token.assign(pass.empty() ? user : pass);
      OPENSSL_cleanse(decoded.data(), decoded.size());
    } else {
      c.malformed = true;
      return c;
    }
  } else if (!x_api_key.empty()) {
    if (x_api_key.size() > kMaxCredentialBytes) {
      c.malformed = true;
      return c;
    }
    c.source = CredentialSource::kApiKey;
    c.token.assign(Trim(x_api_key));
  }
  if (c.source != CredentialSource::kNone && c.token.empty()) c.malformed = true;
  return c;
}

bool SplitToken(std::string_view token, std::string_view* id) {
  if (token.size() != kTokenChars || token.substr(0, 4) != "crl_" || token[4 + kIdHexDigits] != '_') return false;
  std::string_view i = token.substr(4, kIdHexDigits);
  std::string_view s = token.substr(5 + kIdHexDigits);
  if (!std::all_of(i.begin(), i.end(), IsHex) || !std::all_of(s.begin(), s.end(), IsB64Url)) return false;
  *id = i;
  return true;
}

const KeyRecord* Authenticate(const KeySet& keys, std::string_view token) {
  std::string_view id;
  if (!SplitToken(token, &id)) return nullptr;
  const KeyRecord* k = keys.FindById(id);
  if (k == nullptr) return nullptr;
  unsigned char got[32];
  if (!Sha256(token, got)) return nullptr;
  std::string want = k->sha256_hex;
  unsigned char expected[32];
  for (size_t i = 0; i < 32; ++i) {
    auto nib = [](char c) { return static_cast<unsigned char>(c <= '9' ? c - '0' : c - 'a' + 10); };
    expected[i] = static_cast<unsigned char>(nib(want[2 * i]) << 4 | nib(want[2 * i + 1]));
  }
  return CRYPTO_memcmp(got, expected, sizeof got) == 0 ? k : nullptr;
}

std::shared_ptr<const KeySet> KeyStore::Current() {
  struct stat st {};
  bool exists = ::stat(path_.c_str(), &st) == 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (!exists) {
    if (size_ != -1) {
      set_ = std::make_shared<KeySet>();
      dev_ = 0;
      ino_ = 0;
      size_ = -1;
      mtime_ns_ = -1;
    }
    return set_;
  }
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (st.st_dev == dev_ && st.st_ino == ino_ && st.st_size == size_ && mtime_ns == mtime_ns_) return set_;
  auto loaded = LoadKeyFile(path_);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  if (!loaded.ok()) {
    error_ = loaded.status().message();
    return set_;  // keep the previous set: a bad edit never opens the door
  }
  error_.clear();
  set_ = std::make_shared<const KeySet>(std::move(*loaded));
  return set_;
}

std::string KeyStore::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status CheckOpenDoor(const std::vector<std::string>& routable, size_t key_count, bool allow_unauthenticated_lan) {
  if (routable.empty() || key_count > 0 || allow_unauthenticated_lan) return Status::Ok();
  std::string list;
  for (const auto& r : routable) list += (list.empty() ? "" : ", ") + r;
  return Status(StatusCode::kFailedPrecondition,
                "refusing to listen on " + list +
                    " with no API key: anyone on the network could use every model. Create one with "
                    "`corral keys create` (and use TLS: --listen https://HOST:PORT), or pass "
                    "--allow-unauthenticated-lan to open it anyway");
}

}  // namespace corral::auth
