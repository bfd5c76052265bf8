// Helpers shared by Corral's tests: temp dirs, the pinned llama-server, synthetic models,
// a blocking HTTP client and a way to run the corral binary. Test-only code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string PinnedLlamaServer();  // the pinned build's llama-server
std::string CorralBinary();       // the corral binary of this build tree
std::string SourceDir();          // the repository root

// Writes a synthetic model (tiny preset unless `extra_args` says otherwise) with the corral
// binary and returns its path.
std::string MakeModel(const std::string& dir, const std::string& file, const std::vector<std::string>& extra_args = {});
// The smallest dimensions llama-server serves quickly (2 layers, 64 wide, context 512).
extern const std::vector<std::string> kTinyDims;
// Writes alpha.gguf and bravo.gguf into `dir`: tiny, named "alpha" and "bravo", different
// seeds (so different weights). False when either could not be made.
bool MakeAlphaBravo(const std::string& dir);

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Environment for a private daemon under `dir` (its own XDG dirs, socket, state, caches, and
// a proxy on a free port), so a test never touches the user's daemon or another test's.
std::map<std::string, std::string> PrivateDaemonEnv(const TempDir& dir);

// Runs the corral binary with `args`, environment `env` added to this process's.
RunResult RunCorral(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                    std::chrono::seconds timeout = std::chrono::seconds(120));

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};
// One blocking HTTP/1.1 request to 127.0.0.1:port. The whole response is read.
Result<HttpResponse> Http(const std::string& method, int port, const std::string& target, const std::string& body = "",
                          const std::map<std::string, std::string>& headers = {});

// A llama-server child for tests: port 0, the address learned from its log, ready when
// /health answers 200. Killed (whole process group) on destruction.
class LlamaServer {
 public:
  static Result<std::unique_ptr<LlamaServer>> Start(const std::string& model,
                                                    const std::vector<std::string>& extra_args = {},
                                                    std::chrono::seconds timeout = std::chrono::seconds(60));
  ~LlamaServer();
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;

 private:
  LlamaServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<TempDir> dir_;
};

}  // namespace corral::testing
