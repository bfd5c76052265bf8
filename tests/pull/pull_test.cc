// `corral pull` end to end: the real corral binary against tests/pull/fake_hub.py (the hub's
// HTTP API on one host, the CDN on another), serving synthetic GGUFs, with faults: a cut
// connection (resumed, byte-equal), a wrong sha256 (rejected, nothing visible), a stalled
// server (timeout), a full disk (tmpfs; root only), gated repos and tokens, 404s, offline.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.h"

namespace corral::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Synthetic repos, made once per test binary: acme/tiny-GGUF (Q8_0 and Q4_K_M files, and an
// mmproj), acme/split-GGUF (a Q4_K_M model in two shards), acme/gated-GGUF.
class Repos {
 public:
  static Repos& Get() {
    static Repos r;  // destroyed at exit, which removes its directory
    return r;
  }
  std::string root() const { return dir_.path() + "/repos"; }
  std::string q4;  // the Q4_K_M file's path in the repo tree
  std::string q8;

 private:
  Repos() {
    const std::vector<std::string> dims = {"--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128"};
    auto with = [&](std::vector<std::string> extra) {
      extra.insert(extra.end(), dims.begin(), dims.end());
      return extra;
    };
    const std::string tiny = root() + "/acme/tiny-GGUF";
    fs::create_directories(tiny);
    q4 = MakeModel(tiny, "tiny-Q4_K_M.gguf", with({"--name", "Tiny", "--type", "q4_0", "--seed", "1"}));
    q8 = MakeModel(tiny, "tiny-Q8_0.gguf", with({"--name", "Tiny", "--type", "q8_0", "--seed", "2"}));
    std::ofstream(tiny + "/mmproj-tiny-F16.gguf") << std::string(1000, 'p');
    std::ofstream(tiny + "/README.md") << "# tiny\n";
    const std::string split = root() + "/acme/split-GGUF";
    fs::create_directories(split);
    const std::string whole = ReadAll(q4);
    std::ofstream(split + "/big-Q4_K_M-00001-of-00002.gguf", std::ios::binary) << whole.substr(0, whole.size() / 2);
    std::ofstream(split + "/big-Q4_K_M-00002-of-00002.gguf", std::ios::binary) << whole.substr(whole.size() / 2);
    fs::create_directories(root() + "/acme/gated-GGUF");
    fs::copy_file(q4, root() + "/acme/gated-GGUF/g-Q4_K_M.gguf");
  }
  TempDir dir_;
};

// The fake hub as a child process; stopped (and reaped) on destruction.
class FakeHub {
 public:
  explicit FakeHub(const std::vector<std::string>& extra, const std::string& log) {
    std::vector<std::string> argv = {"python3", SourceDir() + "/tests/pull/fake_hub.py",
                                     "--root",  Repos::Get().root(),
                                     "--log",   log,
                                     "--token", "hf_sekrit_token"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp("python3", args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    std::istringstream(line) >> hub_port_ >> cdn_port_;
  }
  ~FakeHub() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string endpoint() const { return "http://localhost:" + std::to_string(hub_port_); }
  bool ok() const { return hub_port_ > 0 && cdn_port_ > 0; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int hub_port_ = 0;
  int cdn_port_ = 0;
};

std::vector<nlohmann::json> LogLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)Repos::Get();
    hub_dir_ = dir_.path() + "/hub";
    log_ = dir_.File("requests.log");
  }
  std::map<std::string, std::string> Env(const FakeHub& hub) const {
    auto env = PrivateDaemonEnv(dir_);
    env["HF_ENDPOINT"] = hub.endpoint();
    env["HF_HUB_CACHE"] = hub_dir_;
    env["HF_TOKEN_PATH"] = dir_.File("no-token");
    env["HF_TOKEN"] = "";
    env["CORRAL_PULL_RETRY_DELAY_MS"] = "10";
    return env;
  }
  RunResult Pull(const FakeHub& hub, std::vector<std::string> args,
                 std::map<std::string, std::string> extra_env = {}) const {
    auto env = Env(hub);
    for (auto& [k, v] : extra_env) env[k] = v;
    args.insert(args.begin(), "pull");
    return RunCorral(args, env, std::chrono::seconds(60));
  }
  std::string Repo(const std::string& name) const { return hub_dir_ + "/models--acme--" + name; }
  bool SnapshotFiles(const std::string& name) const {
    for (const auto& p : Visible(name)) {
      if (p.find("/snapshots/") != std::string::npos) return true;
    }
    return false;
  }
  // Every regular file and link under the repo's snapshots/ and blobs/.
  std::vector<std::string> Visible(const std::string& name) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const char* sub : {"/snapshots", "/blobs"}) {
      for (auto it = fs::recursive_directory_iterator(Repo(name) + sub, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (!it->is_directory()) out.push_back(it->path().string());
      }
    }
    return out;
  }

  TempDir dir_;
  std::string hub_dir_;
  std::string log_;
};

TEST_F(PullTest, DefaultQuantIntoTheHubCacheLayoutThenCached) {
  FakeHub hub({}, log_);
  ASSERT_TRUE(hub.ok());
  auto r = Pull(hub, {"acme/tiny-GGUF"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = ReadAll(Repo("tiny-GGUF") + "/refs/main");
  ASSERT_EQ(commit.size(), 40u);
  const std::string link = Repo("tiny-GGUF") + "/snapshots/" + commit + "/tiny-Q4_K_M.gguf";
  EXPECT_EQ(r.out, link + "\n");
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link).string().substr(0, 12), "../../blobs/");
  EXPECT_EQ(ReadAll(link), ReadAll(Repos::Get().q4));
  EXPECT_TRUE(fs::is_symlink(Repo("tiny-GGUF") + "/snapshots/" + commit + "/mmproj-tiny-F16.gguf"));
  EXPECT_FALSE(fs::exists(Repo("tiny-GGUF") + "/snapshots/" + commit + "/tiny-Q8_0.gguf"));
  EXPECT_NE(r.err.find("corral start tiny-Q4_K_M"), std::string::npos) << r.err;
  // Downloads went through the CDN host, after a redirect from the hub.
  int cdn = 0;
  for (const auto& l : LogLines(log_)) cdn += l["server"] == "cdn" ? 1 : 0;
  EXPECT_EQ(cdn, 2);
  // The catalog lists it (source huggingface, origin acme/tiny-GGUF).
  auto list = RunCorral({"list", "--json"}, Env(hub));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out);
  bool found = false;
  for (const auto& m : j["models"]) found = found || (m["source"] == "huggingface" && m["origin"] == "acme/tiny-GGUF");
  EXPECT_TRUE(found) << list.out;
  // Again: nothing is fetched from the CDN.
  auto again = Pull(hub, {"acme/tiny-GGUF:Q4_K_M", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  cdn = 0;
  for (const auto& l : LogLines(log_)) cdn += l["server"] == "cdn" ? 1 : 0;
  EXPECT_EQ(cdn, 2);
  std::istringstream lines(again.out);
  std::string line, last;
  while (std::getline(lines, line)) last = line;
  auto success = nlohmann::json::parse(last);
  EXPECT_EQ(success["event"], "success");
  EXPECT_EQ(success["downloaded_bytes"], 0);
  EXPECT_EQ(success["name"], "tiny-Q4_K_M");
}

TEST_F(PullTest, CutConnectionIsResumedWithRangeAndByteEqual) {
  FakeHub hub({"--cut-after", "300000", "--cut-times", "2"}, log_);
  ASSERT_TRUE(hub.ok());
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0", "--no-mmproj", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find(R"("event":"retry")"), std::string::npos) << r.out;
  const std::string commit = ReadAll(Repo("tiny-GGUF") + "/refs/main");
  EXPECT_EQ(ReadAll(Repo("tiny-GGUF") + "/snapshots/" + commit + "/tiny-Q8_0.gguf"), ReadAll(Repos::Get().q8));
  std::vector<std::string> ranges;
  for (const auto& l : LogLines(log_)) {
    if (l["server"] == "cdn" && l["range"].is_string()) ranges.push_back(l["range"]);
  }
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "bytes=300000-");
  EXPECT_EQ(ranges[1], "bytes=600000-");
}

TEST_F(PullTest, ResumeAcrossRunsAfterFailure) {
  {
    FakeHub cutting({"--cut-after", "250000", "--cut-times", "100"}, log_);
    ASSERT_TRUE(cutting.ok());
    auto r = Pull(cutting, {"acme/tiny-GGUF:Q8_0", "--no-mmproj", "--retries", "0"});
    EXPECT_EQ(r.exit_code, 72) << r.err;
    EXPECT_FALSE(SnapshotFiles("tiny-GGUF"));  // nothing visible
  }
  bool partial = false;
  for (const auto& p : Visible("tiny-GGUF")) partial = partial || p.ends_with(".incomplete");
  EXPECT_TRUE(partial);
  FakeHub healthy({}, log_);
  auto r = Pull(healthy, {"acme/tiny-GGUF:Q8_0", "--no-mmproj"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = ReadAll(Repo("tiny-GGUF") + "/refs/main");
  EXPECT_EQ(ReadAll(Repo("tiny-GGUF") + "/snapshots/" + commit + "/tiny-Q8_0.gguf"), ReadAll(Repos::Get().q8));
  auto lines = LogLines(log_);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["range"], "bytes=250000-");
}

TEST_F(PullTest, ServerIgnoringRangeStartsOver) {
  FakeHub hub({"--cut-after", "200000", "--ignore-range"}, log_);
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0", "--no-mmproj"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = ReadAll(Repo("tiny-GGUF") + "/refs/main");
  EXPECT_EQ(ReadAll(Repo("tiny-GGUF") + "/snapshots/" + commit + "/tiny-Q8_0.gguf"), ReadAll(Repos::Get().q8));
}

TEST_F(PullTest, WrongShaIsRejectedAndNothingIsVisible) {
  FakeHub hub({"--wrong-sha"}, log_);
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0"});
  EXPECT_EQ(r.exit_code, 72) << r.err;
  EXPECT_NE(r.err.find("sha256 mismatch"), std::string::npos) << r.err;
  EXPECT_TRUE(Visible("tiny-GGUF").empty());
  EXPECT_FALSE(fs::exists(Repo("tiny-GGUF") + "/refs/main"));
}

TEST_F(PullTest, StalledServerTimesOutClearly) {
  FakeHub hub({"--stall-after", "100000"}, log_);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0", "--stall-timeout", "1", "--retries", "0"});
  EXPECT_EQ(r.exit_code, 72) << r.err;
  EXPECT_NE(r.err.find("stalled"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_FALSE(SnapshotFiles("tiny-GGUF"));
}

TEST_F(PullTest, GatedRepoNeedsTokenWhichNeverReachesTheCdn) {
  FakeHub hub({}, log_);
  auto denied = Pull(hub, {"acme/gated-GGUF"});
  EXPECT_EQ(denied.exit_code, 73) << denied.err;
  EXPECT_NE(denied.err.find("HF_TOKEN"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("gated"), std::string::npos) << denied.err;
  const std::string token_file = dir_.File("token");
  std::ofstream(token_file) << "hf_sekrit_token\n";
  ::chmod(token_file.c_str(), 0644);
  auto refused = Pull(hub, {"acme/gated-GGUF"}, {{"HF_TOKEN_PATH", token_file}});
  EXPECT_EQ(refused.exit_code, 73) << refused.err;
  EXPECT_NE(refused.err.find("chmod 600"), std::string::npos) << refused.err;
  ::chmod(token_file.c_str(), 0600);
  auto ok = Pull(hub, {"acme/gated-GGUF", "--json"}, {{"HF_TOKEN_PATH", token_file}});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ((ok.out + ok.err + denied.err + refused.err).find("sekrit"), std::string::npos);
  int hub_auth = 0;
  for (const auto& l : LogLines(log_)) {
    if (l["server"] == "cdn") {
      EXPECT_FALSE(l["auth"].get<bool>()) << l.dump();
    }
    if (l["server"] == "hub" && l["auth"].get<bool>()) ++hub_auth;
  }
  EXPECT_GE(hub_auth, 3);  // revision, tree, resolve
}

TEST_F(PullTest, NotFoundAndMissingQuantSayWhatExists) {
  FakeHub hub({}, log_);
  auto repo = Pull(hub, {"acme/tiny-GGUFF"});
  EXPECT_EQ(repo.exit_code, 66) << repo.err;
  EXPECT_NE(repo.err.find("did you mean: acme/tiny-GGUF"), std::string::npos) << repo.err;
  auto quant = Pull(hub, {"hf.co/acme/tiny-GGUF:Q2_K"});
  EXPECT_EQ(quant.exit_code, 66) << quant.err;
  EXPECT_NE(quant.err.find("Q8_0, Q4_K_M"), std::string::npos) << quant.err;
  auto file = Pull(hub, {"acme/tiny-GGUF/nope.gguf"});
  EXPECT_EQ(file.exit_code, 66) << file.err;
  EXPECT_NE(file.err.find("tiny-Q8_0.gguf"), std::string::npos) << file.err;
}

TEST_F(PullTest, SplitShardsPagedListingAndOffline) {
  FakeHub hub({"--page-size", "1"}, log_);
  auto r = Pull(hub, {"acme/split-GGUF"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = ReadAll(Repo("split-GGUF") + "/refs/main");
  const std::string snap = Repo("split-GGUF") + "/snapshots/" + commit + "/";
  EXPECT_EQ(ReadAll(snap + "big-Q4_K_M-00001-of-00002.gguf") + ReadAll(snap + "big-Q4_K_M-00002-of-00002.gguf"),
            ReadAll(Repos::Get().q4));
  EXPECT_NE(r.err.find("corral start big-Q4_K_M"), std::string::npos) << r.err;
  // Offline: from the cache, with no server at all.
  auto off = Pull(hub, {"acme/split-GGUF", "--offline"}, {{"HF_ENDPOINT", "http://127.0.0.1:1"}});
  EXPECT_EQ(off.exit_code, 0) << off.err;
  EXPECT_EQ(off.out, snap + "big-Q4_K_M-00001-of-00002.gguf\n");
  auto missing = Pull(hub, {"acme/tiny-GGUF", "--offline"});
  EXPECT_EQ(missing.exit_code, 66) << missing.err;
}

// A small tmpfs as the hub cache. Root only (mount); skipped otherwise.
class TmpfsTest : public PullTest {
 protected:
  bool Mount(const std::string& size) {
    if (::geteuid() != 0) return false;
    fs::create_directories(hub_dir_);
    if (::mount("tmpfs", hub_dir_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) return false;
    mounted_ = true;
    return true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(hub_dir_.c_str(), MNT_DETACH);
  }
  bool mounted_ = false;
};

TEST_F(TmpfsTest, NotEnoughSpaceIsRefusedBeforeAnyByte) {
  if (!Mount("512k")) GTEST_SKIP() << "needs root to mount a tmpfs";
  FakeHub hub({}, log_);
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0"});
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_NE(r.err.find("not enough disk space"), std::string::npos) << r.err;
  for (const auto& l : LogLines(log_)) EXPECT_NE(l["server"], "cdn");
  EXPECT_TRUE(Visible("tiny-GGUF").empty());
}

TEST_F(TmpfsTest, DiskFillingUpMidwayLeavesNothingHalfWritten) {
  const uint64_t size = fs::file_size(Repos::Get().q8);
  if (!Mount(std::to_string(size + (2u << 20)))) GTEST_SKIP() << "needs root to mount a tmpfs";
  FakeHub hub({"--fill-disk", hub_dir_ + ":200000"}, log_);
  auto r = Pull(hub, {"acme/tiny-GGUF:Q8_0", "--no-mmproj"});
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_NE(r.err.find("disk is full"), std::string::npos) << r.err;
  EXPECT_TRUE(Visible("tiny-GGUF").empty());  // no snapshot, no blob, no .incomplete
}

// POST /api/pull on the proxy (issue 14): a private daemon whose proxy runs `corral pull --json`
// against the fake hub (HF_ENDPOINT) and streams Ollama's progress NDJSON; the pulled model is
// then listed by /api/tags and answers /api/chat.
class ProxyPullTest : public PullTest {
 protected:
  void TearDown() override {
    if (hub_) RunCorral({"daemon", "stop"}, Env(*hub_));
  }
  // Starts the fake hub and the daemon; returns the proxy's port (0 on failure).
  int Start() {
    hub_ = std::make_unique<FakeHub>(std::vector<std::string>{}, log_);
    if (!hub_->ok()) return 0;
    auto env = Env(*hub_);
    if (RunCorral({"daemon", "start"}, env).exit_code != 0) return 0;
    auto status = RunCorral({"status", "--json"}, env);
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    if (j.is_discarded()) return 0;
    const std::string base = j["proxy"].value("base_url", std::string());
    const size_t colon = base.rfind(':');
    return colon == std::string::npos ? 0 : std::stoi(base.substr(colon + 1));
  }
  static std::vector<nlohmann::json> Lines(const std::string& body) {
    std::vector<nlohmann::json> out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line, nullptr, false));
    }
    return out;
  }
  std::unique_ptr<FakeHub> hub_;
};

TEST_F(ProxyPullTest, StreamsOllamaProgressThenTheModelIsListedAndAnswers) {
  const int port = Start();
  ASSERT_GT(port, 0);
  auto r = Http("POST", port, "/api/pull", R"({"model":"hf.co/acme/tiny-GGUF:Q4_K_M","stream":true})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->headers["content-type"], "application/x-ndjson");
  auto lines = Lines(r->body);
  ASSERT_GE(lines.size(), 5U) << r->body;
  EXPECT_EQ(lines.front(), nlohmann::json({{"status", "pulling manifest"}}));
  // Each file: "pulling <12 hex>" with its digest, total and completed; the last one complete.
  const uint64_t size = fs::file_size(Repos::Get().q4);
  bool model_done = false;
  for (const auto& l : lines) {
    ASSERT_FALSE(l.is_discarded()) << r->body;
    ASSERT_FALSE(l.contains("error")) << l.dump();
    const std::string status = l.value("status", "");
    if (status.rfind("pulling ", 0) != 0 || status == "pulling manifest") continue;
    EXPECT_EQ(status.size(), 8U + 12U) << status;
    EXPECT_EQ(l.value("digest", "").substr(0, 7), "sha256:") << l.dump();
    EXPECT_LE(l.value("completed", 0ULL), l.value("total", 0ULL)) << l.dump();
    model_done = model_done || (l.value("total", 0ULL) == size && l.value("completed", 0ULL) == size);
  }
  EXPECT_TRUE(model_done) << r->body;
  const size_t n = lines.size();
  EXPECT_EQ(lines[n - 3].value("status", ""), "verifying sha256 digest");
  EXPECT_EQ(lines[n - 2].value("status", ""), "writing manifest");
  EXPECT_EQ(lines[n - 1].value("status", ""), "success");
  EXPECT_TRUE(SnapshotFiles("tiny-GGUF"));

  // Listed at once (the catalog was refreshed before "success"), under its hf.co name.
  auto tags = Http("GET", port, "/api/tags");
  ASSERT_TRUE(tags.ok());
  std::string hf_name;
  const auto tag_list = nlohmann::json::parse(tags->body, nullptr, false);
  for (const auto& m : tag_list["models"]) {
    const std::string name = m.value("name", "");
    if (name.rfind("hf.co/acme/tiny-GGUF:", 0) == 0) hf_name = name;
  }
  ASSERT_FALSE(hf_name.empty()) << tags->body;
  auto chat = Http("POST", port, "/api/chat",
                   nlohmann::json{{"model", hf_name},
                                  {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                                  {"stream", false},
                                  {"options", {{"num_predict", 4}, {"temperature", 0}}}}
                       .dump());
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->status, 200) << chat->body;
  EXPECT_TRUE(nlohmann::json::parse(chat->body, nullptr, false).contains("message")) << chat->body;

  // Again with stream:false: one object; nothing is fetched from the CDN this time.
  size_t cdn_before = 0;
  for (const auto& l : LogLines(log_)) cdn_before += l["server"] == "cdn" ? 1 : 0;
  auto again = Http("POST", port, "/api/pull", R"({"name":"hf.co/acme/tiny-GGUF:Q4_K_M","stream":false})");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(nlohmann::json::parse(again->body, nullptr, false), nlohmann::json({{"status", "success"}}));
  size_t cdn_after = 0;
  for (const auto& l : LogLines(log_)) cdn_after += l["server"] == "cdn" ? 1 : 0;
  EXPECT_EQ(cdn_after, cdn_before);
}

TEST_F(ProxyPullTest, ErrorsAreOllamaShaped) {
  const int port = Start();
  ASSERT_GT(port, 0);
  // No such repo: streamed, the last line is {"error": ...}.
  auto missing = Http("POST", port, "/api/pull", R"({"model":"hf.co/acme/nope-GGUF"})");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 200) << missing->body;
  auto lines = Lines(missing->body);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines.back().contains("error")) << missing->body;
  EXPECT_NE(lines.back().value("error", "").find("not found"), std::string::npos) << missing->body;
  // The same with stream:false: a 404 and Ollama's {"error": ...}.
  auto missing_once = Http("POST", port, "/api/pull", R"({"model":"hf.co/acme/nope-GGUF","stream":false})");
  ASSERT_TRUE(missing_once.ok());
  EXPECT_EQ(missing_once->status, 404) << missing_once->body;
  EXPECT_TRUE(nlohmann::json::parse(missing_once->body, nullptr, false).contains("error")) << missing_once->body;
  // No file for that quant: the error names the quants there are.
  auto quant = Http("POST", port, "/api/pull", R"({"model":"hf.co/acme/tiny-GGUF:Q2_K"})");
  ASSERT_TRUE(quant.ok());
  lines = Lines(quant->body);
  ASSERT_FALSE(lines.empty());
  const std::string error = lines.back().value("error", "");
  EXPECT_NE(error.find("Q8_0"), std::string::npos) << quant->body;
  // Bad requests never start a pull.
  for (const char* body : {R"({})", R"({"model":7})", R"({"model":"--endpoint=http://x"})", "nope"}) {
    auto bad = Http("POST", port, "/api/pull", body);
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(bad->status, 400) << body << ": " << bad->body;
    EXPECT_TRUE(nlohmann::json::parse(bad->body, nullptr, false).contains("error")) << bad->body;
  }
  EXPECT_FALSE(fs::exists(Repo("nope-GGUF") + "/snapshots"));
}

}  // namespace
}  // namespace corral::testing
