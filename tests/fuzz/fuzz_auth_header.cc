// Fuzzes the parsing of the credentials a request presents (auth/keys.h): Authorization
// (Bearer, Basic with base64) and x-api-key, then the token split and the lookup. The
// input is split at the first NUL into the two header values. Nothing may crash, read out
// of bounds or accept a token that is not in the set.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static corral::auth::KeySet keys = [] {
    corral::auth::KeySet k;
    (void)corral::auth::CreateKey(k, "fuzz", corral::auth::Scope::kInference, {"a*"}, 0);
    return k;
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view authorization = in.substr(0, nul);
  std::string_view api_key = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  corral::auth::Credential c = corral::auth::ParseCredential(authorization, api_key);
  if (c.source == corral::auth::CredentialSource::kNone && !c.token.empty()) __builtin_trap();
  std::string_view id;
  (void)corral::auth::SplitToken(c.token, &id);
  // The only key's secret is random and unknown to the fuzzer: nothing may authenticate.
  if (corral::auth::Authenticate(keys, c.token) != nullptr) __builtin_trap();
  (void)corral::auth::GlobMatch(authorization.substr(0, 64), api_key.substr(0, 256));
  return 0;
}
