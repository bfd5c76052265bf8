// Unit tests of src/pull without a network: pull references, the hub's JSON answers (hostile
// ones included), quant choice, shards and mmproj, the cache layout and the token file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include "pull/hub.h"

#include "pull/hub_cache.h"
#include "pull/ollama_progress.h"
#include "pull/token.h"
#include "support/test_support.h"

namespace corral::pull {
namespace {

const std::string kSha(64, 'a');

RemoteFile F(const std::string& path, uint64_t mib) {
  return {path, mib << 20, kSha};
}

TEST(PullRef, Spellings) {
  auto a = ParsePullRef("bartowski/Qwen3-8B-GGUF:Q4_K_M");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->repo, "bartowski/Qwen3-8B-GGUF");
  EXPECT_EQ(a->quant, "Q4_K_M");
  auto b = ParsePullRef("hf.co/unsloth/gemma-3-4b-it-GGUF:q8_0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->repo, "unsloth/gemma-3-4b-it-GGUF");
  EXPECT_EQ(b->quant, "q8_0");
  auto c = ParsePullRef("owner/repo/sub/x-Q4_0.gguf");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->file, "sub/x-Q4_0.gguf");
  auto d = ParsePullRef("https://huggingface.co/owner/repo/blob/main/x.gguf");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->repo, "owner/repo");
  EXPECT_EQ(d->file, "x.gguf");
  auto e = ParsePullRef("hf.co/owner/repo:latest");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->quant, "");
}

TEST(PullRef, Refusals) {
  for (const char* bad : {"", "repo", "owner/../x", "../owner/repo", "owner/repo/../../etc/passwd.gguf",
                          "owner/repo/x.bin", "owner/repo:Q4;rm", "owner/re po", "-x/repo", "owner/repo:Q4/x.gguf"}) {
    EXPECT_FALSE(ParsePullRef(bad).ok()) << bad;
  }
}

TEST(SafeRepoPath, Traversal) {
  EXPECT_TRUE(SafeRepoPath("a/b.gguf"));
  for (const char* bad : {"../x.gguf", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "a/", ".", "..", "a\nb"}) {
    EXPECT_FALSE(SafeRepoPath(bad)) << bad;
  }
  EXPECT_FALSE(SafeRepoPath(std::string(300, 'x')));
}

TEST(Listing, Revision) {
  auto r = ParseRevision(R"({"id":"a/b","sha":")" + std::string(40, 'c') + R"(","gated":"manual"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit, std::string(40, 'c'));
  EXPECT_EQ(r->gated, "manual");
  EXPECT_FALSE(ParseRevision(R"({"sha":"../../x"})").ok());
  EXPECT_FALSE(ParseRevision("[]").ok());
  EXPECT_FALSE(ParseRevision("not json").ok());
}

TEST(Listing, Tree) {
  const std::string json = R"([{"type":"directory","path":"sub","size":0},
    {"type":"file","path":"sub/m-Q4_K_M.gguf","size":10,"lfs":{"oid":")" +
                           kSha + R"(","size":10,"pointerSize":134}},
    {"type":"file","path":"README.md","size":5}])";
  auto t = ParseTree(json);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].path, "sub/m-Q4_K_M.gguf");
  EXPECT_EQ((*t)[0].sha256, kSha);
  EXPECT_EQ((*t)[1].sha256, "");
}

TEST(Listing, HostileTrees) {
  const std::string lfs = R"(,"lfs":{"oid":")" + kSha + R"(","size":1}})";
  for (const std::string& bad : {
           std::string(R"([{"type":"file","path":"../../.bashrc","size":1)") + lfs + "]",
           std::string(R"([{"type":"file","path":"/etc/x.gguf","size":1)") + lfs + "]",
           std::string(R"([{"type":"file","path":"x.gguf","size":-1}])"),
           std::string(R"([{"type":"file","path":"x.gguf","size":2)") + lfs + "]",  // lfs.size disagrees
           std::string(R"([{"type":"file","path":"x.gguf","size":1,"lfs":{"oid":"zz"}}])"),
           std::string(R"([{"type":"file"}])"),
           std::string(R"({"a":1})"),
           std::string(100000, '['),
           std::string("[1,2"),
       }) {
    EXPECT_FALSE(ParseTree(bad).ok()) << bad.substr(0, 80);
  }
}

TEST(Quant, NamesShardsRanks) {
  EXPECT_EQ(QuantOf("Qwen3-8B-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(QuantOf("gemma-3-4b-it-UD-IQ2_XXS.gguf"), "IQ2_XXS");
  EXPECT_EQ(QuantOf("Llama-3.2-1B-Instruct-f16.gguf"), "F16");
  EXPECT_EQ(QuantOf("model-q8_0-00001-of-00002.gguf"), "Q8_0");
  EXPECT_EQ(QuantOf("model.gguf"), "");
  EXPECT_EQ(QuantOf("XQ4_K_MX.gguf"), "");
  EXPECT_GT(QuantRank("Q8_0"), QuantRank("Q4_K_M"));
  EXPECT_GT(QuantRank("Q4_K_M"), QuantRank("Q2_K"));
  auto s = ShardOf("a/m-Q4_K_M-00002-of-00003.gguf");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(ShardOf("m-00004-of-00003.gguf").count, 0);
  EXPECT_EQ(ShardOf("m.gguf").count, 0);
}

TEST(Choose, DefaultIsQ4KMWhenItFits) {
  std::vector<RemoteFile> files = {F("m-Q8_0.gguf", 8000), F("m-Q4_K_M.gguf", 4800), F("m-Q2_K.gguf", 3000),
                                   F("m-F16.gguf", 16000), F("README.md", 0)};
  auto s = Choose({"o/m", "", ""}, files, uint64_t{64} << 30, true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->model.quant, "Q4_K_M");
  // A 4 GiB budget: Q4_K_M does not fit, the best below it that does is Q2_K.
  s = Choose({"o/m", "", ""}, files, uint64_t{4} << 30, true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->model.quant, "Q2_K");
  // Nothing fits: the error lists the quants.
  s = Choose({"o/m", "", ""}, files, uint64_t{1} << 30, true);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("Q4_K_M"), std::string::npos);
  // Only bigger quants than Q4_K_M: the smallest that fits.
  s = Choose({"o/m", "", ""}, {F("m-F16.gguf", 16000), F("m-Q8_0.gguf", 8000)}, uint64_t{64} << 30, true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->model.quant, "Q8_0");
}

TEST(Choose, NamedQuantFileShardsMmproj) {
  std::vector<RemoteFile> files = {F("m-Q8_0-00002-of-00002.gguf", 10),
                                   F("m-Q8_0-00001-of-00002.gguf", 10),
                                   F("m-Q4_K_M.gguf", 5),
                                   F("m-Q6_K-00001-of-00002.gguf", 5),  // a shard missing
                                   F("mmproj-m-Q8_0.gguf", 1),
                                   F("mmproj-m-F16.gguf", 2)};
  auto s = Choose({"o/m", "q8_0", ""}, files, 0, true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->model.files.size(), 2u);
  EXPECT_EQ(s->model.files[0].path, "m-Q8_0-00001-of-00002.gguf");
  EXPECT_EQ(s->model.bytes, uint64_t{20} << 20);
  ASSERT_EQ(s->mmproj.size(), 1u);
  EXPECT_EQ(s->mmproj[0].path, "mmproj-m-F16.gguf");
  auto none = Choose({"o/m", "Q6_K", ""}, files, 0, true);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("Q8_0, Q4_K_M"), std::string::npos) << none.status().message();
  auto by_file = Choose({"o/m", "", "m-Q8_0-00002-of-00002.gguf"}, files, 0, false);
  ASSERT_TRUE(by_file.ok());
  EXPECT_EQ(by_file->model.files.size(), 2u);
  EXPECT_TRUE(by_file->mmproj.empty());
  EXPECT_FALSE(Choose({"o/m", "", "other.gguf"}, files, 0, true).ok());
}

TEST(HubCache, LayoutAndLinks) {
  testing::TempDir dir;
  HubRepoCache cache(dir.path(), "acme/tiny-GGUF");
  EXPECT_EQ(cache.dir(), dir.path() + "/models--acme--tiny-GGUF");
  ASSERT_TRUE(cache.Prepare().ok());
  const std::string commit(40, 'b');
  std::ofstream(cache.BlobPath(kSha)) << "bytes";
  ASSERT_TRUE(cache.LinkSnapshot(commit, "sub/x.gguf", kSha).ok());
  ASSERT_TRUE(cache.LinkSnapshot(commit, "sub/x.gguf", kSha).ok());  // again: replaced
  const std::string link = cache.SnapshotPath(commit, "sub/x.gguf");
  EXPECT_EQ(std::filesystem::read_symlink(link).string(), "../../../blobs/" + kSha);
  std::ifstream in(link);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "bytes");
  ASSERT_TRUE(cache.WriteRef("main", commit).ok());
  auto ref = cache.ReadRef("main");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(*ref, commit);
  FileLock a, b;
  ASSERT_TRUE(a.TryLock(cache.LockPath(kSha)).ok());
  EXPECT_EQ(b.TryLock(cache.LockPath(kSha)).code(), StatusCode::kFailedPrecondition);
}

TEST(Token, WorldReadableFileRefused) {
  testing::TempDir dir;
  const std::string path = dir.File("token");
  std::ofstream(path) << "hf_secret\n";
  ::chmod(path.c_str(), 0644);
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HUGGING_FACE_HUB_TOKEN");
  ::setenv("HF_TOKEN_PATH", path.c_str(), 1);
  auto t = LoadToken();
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(t.status().message().find("hf_secret"), std::string::npos);
  ::chmod(path.c_str(), 0600);
  t = LoadToken();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "hf_secret");
  ::setenv("HF_TOKEN", "hf_env", 1);
  t = LoadToken();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "hf_env");
  EXPECT_EQ(t->source, "HF_TOKEN");
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HF_TOKEN_PATH");
}

}  // namespace
}  // namespace corral::pull

namespace corral::pull {
namespace {

TEST(OllamaPull, TranslatesCorralPullLines) {
  const std::string sha(64, 'f');
  EXPECT_EQ(OllamaPullLines(R"({"event":"resolved","repo":"a/b@1","total":9})"), "{\"status\":\"pulling manifest\"}\n");
  auto progress = nlohmann::json::parse(
      OllamaPullLines(R"({"event":"progress","file":"x.gguf","sha256":")" + sha + R"(","completed":5,"total":9})"));
  EXPECT_EQ(progress["status"], "pulling ffffffffffff");
  EXPECT_EQ(progress["digest"], "sha256:" + sha);
  EXPECT_EQ(progress["completed"], 5);
  EXPECT_EQ(progress["total"], 9);
  EXPECT_EQ(OllamaPullLines(R"({"event":"success","files":[]})"),
            "{\"status\":\"verifying sha256 digest\"}\n{\"status\":\"writing manifest\"}\n{\"status\":\"success\"}\n");
  EXPECT_EQ(OllamaPullLines(R"({"event":"error","message":"no quant"})"), "{\"error\":\"no quant\"}\n");
  EXPECT_EQ(OllamaPullLines(R"({"event":"retry"})"), "");
  EXPECT_EQ(OllamaPullLines("not json"), "");
  EXPECT_EQ(OllamaPullLines(std::string(100, '[')), "");
}

}  // namespace
}  // namespace corral::pull
