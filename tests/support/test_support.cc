#include "support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>

#include "common/fs.h"

extern char** environ;

namespace corral::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/corral-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) std::abort();
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string PinnedLlamaServer() {
  return std::string(CORRAL_TEST_ENGINE_DIR) + "/bin/llama-server";
}
std::string CorralBinary() {
  return CORRAL_TEST_CORRAL_BINARY;
}
std::string SourceDir() {
  return CORRAL_TEST_SOURCE_DIR;
}

namespace {

// Reads everything from fd until EOF or the deadline.
void Drain(int fd, std::string& out) {
  char buf[8192];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    out.append(buf, static_cast<size_t>(r));
  }
}

}  // namespace

RunResult RunCorral(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                    std::chrono::seconds timeout) {
  RunResult res;
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return res;
  std::vector<std::string> argv_s = {CorralBinary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_s;
  for (const auto& [k, v] : merged) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    res.err = "spawn failed";
    return res;
  }
  std::thread t_err([&] { Drain(err_pipe[0], res.err); });
  std::thread t_out([&] { Drain(out_pipe[0], res.out); });
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      res.err += "\n[test: killed after timeout]";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  t_out.join();
  t_err.join();
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

std::map<std::string, std::string> PrivateDaemonEnv(const TempDir& dir) {
  return {{"XDG_RUNTIME_DIR", dir.File("run")},
          {"XDG_STATE_HOME", dir.File("state")},
          {"XDG_CONFIG_HOME", dir.File("config")},
          {"XDG_DATA_HOME", dir.File("data")},
          {"HOME", dir.File("home")},
          {"CORRAL_CACHE_DIR", dir.File("cache")},
          {"CORRAL_LLAMA_SERVER", PinnedLlamaServer()},
          {"CORRAL_LISTEN", "127.0.0.1:0"}};
}

const std::vector<std::string> kTinyDims = {"--n-embd", "64",     "--n-layer", "2",     "--n-head",
                                            "4",        "--n-ff", "128",       "--ctx", "512"};

bool MakeAlphaBravo(const std::string& dir) {
  std::vector<std::string> a = kTinyDims, b = kTinyDims;
  a.insert(a.end(), {"--name", "alpha", "--seed", "1"});
  b.insert(b.end(), {"--name", "bravo", "--seed", "2"});
  return !MakeModel(dir, "alpha.gguf", a).empty() && !MakeModel(dir, "bravo.gguf", b).empty();
}

std::string MakeModel(const std::string& dir, const std::string& file, const std::vector<std::string>& extra_args) {
  std::string path = dir + "/" + file;
  std::vector<std::string> args = {"model", "synth", "--out", path, "--force"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  RunResult r = RunCorral(args);
  if (r.exit_code != 0) return "";
  return path;
}

Result<HttpResponse> Http(const std::string& method, int port, const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = boost::asio::ip::tcp;
  try {
    boost::asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(120));
    stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST") {
      if (headers.find("Content-Type") == headers.end()) req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256U << 20);
    http::read(stream, buffer, parser);
    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
  } catch (const std::exception& e) {
    return Unavailable(std::string("http: ") + e.what());
  }
}

Result<std::unique_ptr<LlamaServer>> LlamaServer::Start(const std::string& model,
                                                        const std::vector<std::string>& extra_args,
                                                        std::chrono::seconds timeout) {
  std::unique_ptr<LlamaServer> s(new LlamaServer());
  s->dir_ = std::make_unique<TempDir>();
  std::string log = s->dir_->File("server.log");
  std::vector<std::string> argv_s = {PinnedLlamaServer(), "-m", model, "--host", "127.0.0.1", "--port", "0"};
  argv_s.insert(argv_s.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  int rc = ::posix_spawn(&s->pid_, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError("spawning llama-server", rc);

  static const std::regex kListening(R"(listening on http://127\.0\.0\.1:(\d+))");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      return Unavailable("llama-server exited during start:\n" + s->log());
    }
    if (s->port_ == 0) {
      std::smatch m;
      std::string text = s->log();
      if (std::regex_search(text, m, kListening)) s->port_ = std::stoi(m[1]);
    }
    if (s->port_ != 0) {
      auto r = Http("GET", s->port_, "/health");
      if (r.ok() && r->status == 200) return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status(StatusCode::kTimeout, "llama-server not ready in time:\n" + s->log());
}

LlamaServer::~LlamaServer() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string LlamaServer::log() const {
  auto text = ReadFileBounded(dir_->File("server.log"), 64U << 20);
  return text.ok() ? *text : std::string();
}

}  // namespace corral::testing
