// API keys for the proxy (issue 13): the key file, the token format, the parsing of the
// credentials a client presents, and the scope rules.
//
// Token:  crl_<id>_<secret>   id = 16 hex digits (public, names the record),
//                             secret = 43 base64url characters (256 random bits).
// File:   <ConfigDir>/keys.json, mode 0600, written atomically (AtomicFile):
//   {"version":1,"keys":[{"id":"…","name":"…","sha256":"<hex of SHA-256(token)>",
//     "scope":"inference|read|admin","models":["glob",…],"created":<unix s>}]}
//   Only the hash is stored; the token is shown once by `corral keys create`.
//
// Why SHA-256 and not a password hash (Argon2, scrypt): the secret is 256 random bits, not
// something a person chose, so no dictionary applies and brute force is out of reach; a
// slow hash would add milliseconds to every request (the check runs per request, on the
// proxy's event loop) and buy nothing. The compare is constant-time (CRYPTO_memcmp).
//
// Scopes are ordered: read ⊂ inference ⊂ admin.
//   read:      /v1/models, /api/tags, /api/ps, /api/show, /metrics, /health
//   inference: read + every forwarded / translated inference route, for the models its
//              globs match (no globs: every model); the model list it sees is filtered too
//   admin:     inference + management (Ollama load/unload, the dashboard's actions)
//
// Thread-safety: KeySet and the free functions are plain values / pure. KeyStore is
// thread-safe (a mutex around the snapshot; the file is re-checked with one stat(2) per
// request, so a revocation takes effect on the next request, even on a live keep-alive
// connection).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::auth {

enum class Scope { kRead = 0, kInference = 1, kAdmin = 2 };
std::string_view to_string(Scope s);
Result<Scope> ParseScope(std::string_view text);

struct KeyRecord {
  std::string id;          // 16 hex digits
  std::string name;        // for people and for metrics labels; never secret
  std::string sha256_hex;  // of the whole token
  Scope scope = Scope::kInference;
  std::vector<std::string> models;  // globs ('*', '?'); empty = all models
  int64_t created_unix_s = 0;

  // True when `model` is one this key may use (and see).
  bool AllowsModel(std::string_view model) const;
};

// '*' any run of characters, '?' one character; everything else literal. Iterative
// (no recursion, O(n*m) worst case) because the model name comes from the network.
bool GlobMatch(std::string_view glob, std::string_view text);

// The key file's contents.
struct KeySet {
  std::vector<KeyRecord> keys;
  const KeyRecord* FindById(std::string_view id) const;
  const KeyRecord* FindByName(std::string_view name) const;
};

inline constexpr size_t kMaxKeyFileBytes = 4U << 20;
inline constexpr size_t kMaxKeys = 10000;

Result<KeySet> ParseKeyFile(std::string_view json);
std::string SerializeKeyFile(const KeySet& keys);
// Missing file = no keys. Errors: unreadable, too large, malformed.
Result<KeySet> LoadKeyFile(const std::string& path);
Status SaveKeyFile(const std::string& path, const KeySet& keys);  // 0600, atomic
std::string DefaultKeyFile();                                     // ConfigDir()/keys.json

// A new key: returns the token (shown once) and appends its record to `keys`.
struct NewKey {
  std::string token;
  KeyRecord record;
};
Result<NewKey> CreateKey(KeySet& keys, std::string name, Scope scope, std::vector<std::string> models,
                         int64_t now_unix_s);
// Removes the key whose id or name is `ref`. NotFound when none.
Status RevokeKey(KeySet& keys, std::string_view ref);

// ---- what a request presents ----

// Where the token came from (for the error message only).
enum class CredentialSource { kNone, kBearer, kApiKey, kBasic };

struct Credential {
  CredentialSource source = CredentialSource::kNone;
  std::string token;       // empty unless a credential was found
  bool malformed = false;  // an Authorization header we could not read
};

// Reads `Authorization: Bearer <t>`, `Authorization: Basic base64(user:<t>)` (the password,
// or the user name when the password is empty: browsers prompt for both) and `x-api-key: <t>`.
// Authorization wins when both are present. Bounded: values over 4 KiB are malformed.
// Pure; fuzzed (fuzz_auth_header).
Credential ParseCredential(std::string_view authorization, std::string_view x_api_key);

// Splits a token into its id; false when it is not crl_<16 hex>_<43 base64url>.
bool SplitToken(std::string_view token, std::string_view* id);

enum class AuthOutcome {
  kOk,
  kMissing,       // no credential: 401
  kInvalid,       // malformed, unknown or revoked: 401
  kInsufficient,  // a valid key whose scope does not cover the route: 403
};

// Looks the token up (by id, then a constant-time compare of SHA-256(token)).
const KeyRecord* Authenticate(const KeySet& keys, std::string_view token);

// ---- the live store (the proxy's view) ----

class KeyStore {
 public:
  explicit KeyStore(std::string path) : path_(std::move(path)) {}
  // The current key set: one stat(2); the file is re-read when its inode, size or mtime
  // changed. A file that fails to parse keeps the previous set (and is reported once through
  // last_error()); a file that disappears means no keys.
  std::shared_ptr<const KeySet> Current();
  const std::string& path() const { return path_; }
  std::string last_error() const;

 private:
  const std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> set_ = std::make_shared<KeySet>();  // guarded by mu_
  dev_t dev_ = 0;                                                   // guarded by mu_
  ino_t ino_ = 0;
  off_t size_ = -1;
  int64_t mtime_ns_ = -1;
  std::string error_;
};

// The open-door rule: binding a routable address with no key is refused unless the user
// said so. `routable`: the listen addresses that are not loopback.
Status CheckOpenDoor(const std::vector<std::string>& routable, size_t key_count, bool allow_unauthenticated_lan);

}  // namespace corral::auth
