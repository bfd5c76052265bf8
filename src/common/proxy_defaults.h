// The proxy's defaults, written once. The config's options (config/options.h, what a user
// sees in `corral config options`) start from them, and so does proxy::ProxyOptions, which
// also runs without a config (tests, `corral proxy` before its flags are read). They live in
// common because neither module may include the other. Constants only.
#pragma once

#include <cstdint>

namespace corral::defaults {

inline constexpr const char* kListen = "127.0.0.1:11450";             // proxy listen addresses
inline constexpr int64_t kProxyThreads = 0;                           // 0 = min(hardware threads, 4)
inline constexpr bool kProxyPreconnect = true;                        // a spare upstream connection
inline constexpr int64_t kMaxBodyBytes = int64_t{32} << 20;           // request body limit -> 413
inline constexpr int64_t kClientTimeoutS = 60;                        // idle keep-alive, slow client
inline constexpr int64_t kUpstreamTimeoutS = 600;                     // no upstream byte this long
inline constexpr int64_t kMaxJsonDepth = 128;                         // deeper request bodies -> 400
inline constexpr int64_t kMaxConnections = 4096;                      // client connections at once
inline constexpr int64_t kMaxConnectionsPerClient = 2048;             // ... from one IP address
inline constexpr int64_t kMaxBufferedBodyBytes = int64_t{256} << 20;  // bodies buffered at once

}  // namespace corral::defaults
