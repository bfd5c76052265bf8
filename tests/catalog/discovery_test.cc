// Each cache layout built as a real directory tree from synthetic models: Hugging Face hub
// (snapshots → blobs symlinks, two revisions, an incomplete blob), Ollama (manifests → blobs,
// projector layer), LM Studio (publisher/repo + mmproj), llama.cpp's cache, user paths with a
// split model, links and broken files. Plus the index cache: warm, stale and corrupt.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "catalog/catalog.h"
#include "catalog/catalog_fixture.h"
#include "catalog/discovery.h"
#include "catalog/gguf_builder.h"
#include "common/fs.h"

namespace corral::catalog {
namespace {

using corral::testing::Copy;
using corral::testing::GgufBuilder;
using corral::testing::Symlink;
using corral::testing::SyntheticModels;
using corral::testing::TempDir;
using corral::testing::WriteText;

const std::string kDigestA(64, 'a');
const std::string kDigestP(64, 'b');

// A small split shard (gguf-split keys, one F32 tensor with data).
std::string Shard(uint16_t no, uint16_t count) {
  GgufBuilder b;
  b.Header(3, 1, 7);
  b.KvStr("general.architecture", "llama");
  b.KvStr("general.name", "Gamma");
  b.KvU32("general.file_type", 0);
  b.KvU32("llama.context_length", 2048);
  b.Key("split.no", 2).Pod<uint16_t>(no);
  b.Key("split.count", 2).Pod<uint16_t>(count);
  b.Key("split.tensors.count", 5).Pod<int32_t>(count);
  b.Tensor("t" + std::to_string(no), {256}, 0, 0);
  b.PadTo(32).Zeros(1024);
  return b.bytes();
}

std::string Projector() {
  GgufBuilder b;
  b.Header(3, 0, 2).KvStr("general.architecture", "clip").KvStr("general.type", "mmproj");
  return b.bytes();
}

struct Layout {
  TempDir root;
  Sources sources;
  std::string hf_blob, ollama_blob;

  Layout() {
    const auto& m = SyntheticModels::Get();
    const std::string r = root.path();
    // Hugging Face hub: two revisions of one repo share a blob; a third file is incomplete.
    const std::string repo = r + "/hf/models--acme--Alpha-GGUF";
    hf_blob = repo + "/blobs/0123abcd";
    Copy(m.alpha, hf_blob);
    Symlink("../../blobs/0123abcd", repo + "/snapshots/rev1/alpha-f16.gguf");
    Symlink("../../blobs/0123abcd", repo + "/snapshots/rev2/alpha-f16.gguf");
    WriteText(repo + "/blobs/ffff.incomplete", "partial");
    Symlink("../../blobs/ffff.incomplete", repo + "/snapshots/rev2/other.gguf.incomplete");
    WriteText(repo + "/refs/main", "rev2");
    // Ollama: a manifest naming a model blob and a projector blob.
    const std::string ol = r + "/ollama";
    ollama_blob = ol + "/blobs/sha256-" + kDigestA;
    Copy(m.beta, ollama_blob);
    WriteText(ol + "/blobs/sha256-" + kDigestP, Projector());
    WriteText(ol + "/manifests/registry.ollama.ai/library/beta/1b",
              R"({"schemaVersion":2,"layers":[
                  {"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" +
                  kDigestA + R"(","size":1},
                  {"mediaType":"application/vnd.ollama.image.projector","digest":"sha256:)" +
                  kDigestP + R"(","size":1},
                  {"mediaType":"application/vnd.ollama.image.template","digest":"sha256:)" +
                  std::string(64, 'c') + R"(","size":1}]})");
    WriteText(ol + "/manifests/registry.ollama.ai/library/broken/latest", "{not json");
    WriteText(ol + "/manifests/registry.ollama.ai/library/gone/latest",
              R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" +
                  std::string(64, 'd') + R"("}]})");
    WriteText(
        ol + "/manifests/registry.ollama.ai/library/evil/latest",
        R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../etc/passwd"}]})");
    // LM Studio: publisher/repo with a projector beside the model.
    const std::string lms = r + "/lmstudio";
    Copy(m.alpha, lms + "/lmstudio-community/Alpha-GGUF/Alpha-Q8.gguf");
    WriteText(lms + "/lmstudio-community/Alpha-GGUF/mmproj-Alpha-F16.gguf", Projector());
    // llama.cpp cache: flat names, one download in progress.
    const std::string lc = r + "/llamacpp";
    Copy(m.beta, lc + "/acme_Beta-GGUF_beta-q8_0.gguf");
    WriteText(lc + "/acme_Beta-GGUF_beta-f16.gguf.downloadInProgress", "partial");
    // User paths: a split model, a hard link and a symlink to files listed elsewhere,
    // a corrupt file, a broken symlink and a .part download.
    const std::string u = r + "/user";
    WriteText(u + "/gamma/Gamma-F32-00001-of-00002.gguf", Shard(0, 2));
    WriteText(u + "/gamma/Gamma-F32-00002-of-00002.gguf", Shard(1, 2));
    WriteText(u + "/lonely/Delta-00001-of-00002.gguf", Shard(0, 2));
    std::filesystem::create_hard_link(u + "/gamma/Gamma-F32-00002-of-00002.gguf", u + "/hardlink-of-shard.gguf");
    Symlink(hf_blob, u + "/link-to-hf.gguf");
    WriteText(u + "/corrupt.gguf", "GGUF\x03\0\0\0garbage");
    Symlink(u + "/nowhere.gguf", u + "/broken-link.gguf");
    WriteText(u + "/big.gguf.part", "partial");
    sources.user = {u};
    sources.huggingface = r + "/hf";
    sources.ollama = ol;
    sources.lmstudio = {lms};
    sources.llamacpp = lc;
    sources.index_file = r + "/cache/index.json";
  }
};

const Model* Find(const Catalog& c, const std::string& path_part) {
  for (const auto& m : c.models()) {
    if (m.path.find(path_part) != std::string::npos) return &m;
  }
  return nullptr;
}

bool AnyWarning(const Catalog& c, const std::string& part) {
  for (const auto& w : c.warnings()) {
    if (w.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(Discovery, EveryCacheLayout) {
  Layout l;
  auto cat = Catalog::Load(l.sources);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  std::string names;
  for (const auto& m : cat->models()) names += m.name + " (" + m.source + ") " + m.path + "\n";
  SCOPED_TRACE(names);
  // user symlink to the HF blob and the HF snapshots are one file: listed once, as user.
  ASSERT_EQ(cat->models().size(), 5u);
  const Model* link = Find(*cat, "link-to-hf.gguf");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->source, "user");
  EXPECT_EQ(Find(*cat, "snapshots"), nullptr);

  const Model* gamma = Find(*cat, "Gamma-F32-00001-of-00002.gguf");
  ASSERT_NE(gamma, nullptr);
  EXPECT_EQ(gamma->files.size(), 2u);
  EXPECT_EQ(gamma->n_params, 512u);
  EXPECT_EQ(gamma->info.tensor_bytes, 2048u);
  EXPECT_EQ(gamma->name, "gamma-512-f32");
  EXPECT_EQ(Find(*cat, "hardlink-of-shard"), nullptr);  // a link to shard 2, deduplicated

  const Model* ollama = Find(*cat, "sha256-" + kDigestA);
  ASSERT_NE(ollama, nullptr);
  EXPECT_EQ(ollama->source, "ollama");
  EXPECT_EQ(ollama->origin, "beta:1b");
  EXPECT_EQ(ollama->mmproj, l.sources.ollama + "/blobs/sha256-" + kDigestP);
  EXPECT_EQ(ollama->name, "beta-4m-q8_0");
  EXPECT_EQ(Find(*cat, "acme_Beta")->name, "beta-4m-q8_0-llamacpp");  // same model, later source

  const Model* lms = Find(*cat, "Alpha-Q8.gguf");
  ASSERT_NE(lms, nullptr);
  EXPECT_EQ(lms->source, "lmstudio");
  EXPECT_EQ(lms->origin, "lmstudio-community/Alpha-GGUF");
  EXPECT_NE(lms->mmproj.find("mmproj-Alpha-F16.gguf"), std::string::npos);
  EXPECT_EQ(lms->name, "alpha-4m-f16-lmstudio");  // the user's copy of the same model holds the bare name

  const Model* lc = Find(*cat, "acme_Beta-GGUF_beta-q8_0.gguf");
  ASSERT_NE(lc, nullptr);
  EXPECT_EQ(lc->source, "llama.cpp");

  // Warnings, not errors: a corrupt file, a broken link, a split with a missing shard,
  // a broken and a dangling Ollama manifest, a digest that tries to leave blobs/.
  EXPECT_TRUE(AnyWarning(*cat, "corrupt.gguf")) << names;
  EXPECT_TRUE(AnyWarning(*cat, "broken-link.gguf"));
  EXPECT_TRUE(AnyWarning(*cat, "1 of 2 shards"));
  EXPECT_TRUE(AnyWarning(*cat, "broken/latest"));
  EXPECT_TRUE(AnyWarning(*cat, "gone:latest"));
  EXPECT_TRUE(AnyWarning(*cat, "is not sha256"));
  for (const auto& w : cat->warnings()) {
    EXPECT_EQ(w.find(".part"), std::string::npos) << w;
    EXPECT_EQ(w.find("incomplete"), std::string::npos) << w;
  }
  // Names are unique.
  std::set<std::string> unique;
  for (const auto& m : cat->models()) EXPECT_TRUE(unique.insert(m.name).second) << m.name;
}

// Issue 14: the names people type reach the models of every cache, through Resolve (CLI)
// and ResolveName (requests) alike.
TEST(Discovery, NamesPeopleTypeInEveryCache) {
  Layout l;
  auto cat = Catalog::Load(l.sources);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  auto path_of = [&](std::string_view ref) {
    auto a = cat->Resolve(ref);
    auto b = cat->ResolveName(ref);
    EXPECT_EQ(a.ok(), b.ok()) << ref;
    return a.ok() ? a->path : "<" + a.status().message() + ">";
  };
  // The split model's first-shard stem, without -00001-of-00002.
  EXPECT_EQ(path_of("Gamma-F32"), l.sources.user[0] + "/gamma/Gamma-F32-00001-of-00002.gguf");
  // The HF repo, reached through a user link to its blob: the link keeps the repo's name.
  const std::string link = l.sources.user[0] + "/link-to-hf.gguf";
  EXPECT_EQ(path_of("acme/Alpha-GGUF"), link);
  EXPECT_EQ(path_of("acme/Alpha-GGUF:F16"), link);
  EXPECT_EQ(path_of("hf.co/acme/Alpha-GGUF:f16"), link);
  EXPECT_EQ(path_of("link-to-hf"), link);
  // Ollama's name (the blob has no stem anyone types).
  EXPECT_EQ(path_of("beta:1b"), l.ollama_blob);
  // LM Studio's publisher/repo and the llama.cpp cache's flat file stem.
  EXPECT_NE(path_of("lmstudio-community/Alpha-GGUF").find("Alpha-Q8.gguf"), std::string::npos);
  EXPECT_NE(path_of("acme_Beta-GGUF_beta-q8_0").find("llamacpp"), std::string::npos);
  const Model* alpha = Find(*cat, "link-to-hf.gguf");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->origin, "acme/Alpha-GGUF");
  auto j = ModelJson(*alpha);
  EXPECT_NE(j["names"].dump().find("hf.co/acme/Alpha-GGUF:F16"), std::string::npos) << j["names"].dump();
}

// Issue 14: what /api/show calls capabilities comes from the header: tools and thinking
// from the chat template, embedding from the pooling type, vision from a paired projector.
TEST(Discovery, CapabilitiesFromTheHeader) {
  TempDir root;
  auto model = [&](const std::string& file, const std::string& tmpl, int pooling) {
    GgufBuilder b;
    b.Header(3, 0, 3 + (pooling >= 0 ? 1 : 0));
    b.KvStr("general.architecture", "llama");
    b.KvStr("general.name", file);
    b.KvStr("tokenizer.chat_template", tmpl);
    if (pooling >= 0) b.KvU32("llama.pooling_type", static_cast<uint32_t>(pooling));
    WriteText(root.File("m/" + file + "/" + file + ".gguf"), b.bytes());
  };
  model("Agent", "{% for t in tools %}{{ t }}{% endfor %}<think>", -1);
  model("Plain", "{{ messages }}", -1);
  model("Embed", "{{ messages }}", 1);
  WriteText(root.File("m/Plain/mmproj-Plain.gguf"), Projector());
  Sources s;
  s.user = {root.File("m")};
  auto cat = Catalog::Load(s);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  auto caps = [&](const std::string& stem) {
    auto m = cat->Resolve(stem);
    EXPECT_TRUE(m.ok()) << stem << ": " << m.status().ToString();
    return m.ok() ? Capabilities(*m) : std::vector<std::string>{};
  };
  EXPECT_EQ(caps("Agent"), (std::vector<std::string>{"completion", "tools", "thinking"}));
  EXPECT_EQ(caps("Embed"), (std::vector<std::string>{"embedding"}));
  EXPECT_EQ(caps("Plain"), (std::vector<std::string>{"completion", "vision"}));  // its projector beside it
}

TEST(Discovery, NamesAreStableAcrossRuns) {
  Layout l;
  auto a = Catalog::Load(l.sources);
  auto b = Catalog::Load(l.sources);  // warm: from the index
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->models().size(), b->models().size());
  for (size_t k = 0; k < a->models().size(); ++k) {
    EXPECT_EQ(a->models()[k].name, b->models()[k].name);
    EXPECT_EQ(a->models()[k].path, b->models()[k].path);
    EXPECT_EQ(a->models()[k].n_params, b->models()[k].n_params);
  }
}

TEST(Discovery, SourcesCanBeSwitchedOff) {
  Layout l;
  l.sources.ollama.clear();
  l.sources.lmstudio.clear();
  l.sources.huggingface.clear();
  l.sources.llamacpp.clear();
  auto cat = Catalog::Load(l.sources);
  ASSERT_TRUE(cat.ok());
  for (const auto& m : cat->models()) EXPECT_EQ(m.source, "user") << m.path;
  EXPECT_EQ(cat->models().size(), 2u);
}

TEST(Discovery, ConfigOptionsSwitchSourcesOff) {
  TempDir home;
  config::Config c;
  c.config_file = home.File("none.yaml");
  c.scan_huggingface = false;
  c.scan_ollama = false;
  c.scan_lmstudio = true;
  c.scan_llamacpp = false;
  auto s = SourcesFromConfig(c);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->huggingface.empty());
  EXPECT_TRUE(s->ollama.empty());
  EXPECT_TRUE(s->llamacpp.empty());
  EXPECT_EQ(s->lmstudio.size(), 2u);
  // The options parse as booleans, and a wrong value names the key.
  config::Config parsed;
  ASSERT_TRUE(config::ApplyConfigText(parsed, "scan_huggingface: false\nscan_llamacpp: off\n", "c.yaml").ok());
  EXPECT_FALSE(parsed.scan_huggingface);
  EXPECT_FALSE(parsed.scan_llamacpp);
  EXPECT_TRUE(parsed.scan_ollama);
  Status bad = config::ApplyConfigText(parsed, "scan_ollama: maybe\n", "c.yaml");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("scan_ollama must be true or false"), std::string::npos) << bad.message();
  // Aliases in config.yaml must be a mapping.
  corral::testing::WriteText(home.File("bad.yaml"), "aliases: [a, b]\n");
  c.config_file = home.File("bad.yaml");
  EXPECT_EQ(SourcesFromConfig(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(Discovery, HubCacheOnlyWithoutLinksElsewhere) {
  Layout l;
  std::filesystem::remove(l.sources.user[0] + "/link-to-hf.gguf");
  auto cat = Catalog::Load(l.sources);
  ASSERT_TRUE(cat.ok());
  const Model* hf = Find(*cat, "snapshots/rev2/alpha-f16.gguf");  // refs/main; rev1 is the same blob
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->source, "huggingface");
  EXPECT_EQ(hf->origin, "acme/Alpha-GGUF");
  EXPECT_EQ(Find(*cat, "rev1"), nullptr);
}

TEST(Discovery, HubMainRevisionSupersedesOlderDownloads) {
  Layout l;
  std::filesystem::remove(l.sources.user[0] + "/link-to-hf.gguf");
  const std::string repo = l.sources.huggingface + "/models--acme--Alpha-GGUF";
  // rev1 holds an older blob for the same file name, and a file main does not have.
  std::filesystem::remove(repo + "/snapshots/rev1/alpha-f16.gguf");
  Copy(SyntheticModels::Get().beta, repo + "/blobs/old");
  Symlink("../../blobs/old", repo + "/snapshots/rev1/alpha-f16.gguf");
  Copy(SyntheticModels::Get().beta, repo + "/blobs/extra");
  Symlink("../../blobs/extra", repo + "/snapshots/rev1/extra-q8.gguf");
  auto cat = Catalog::Load(l.sources);
  ASSERT_TRUE(cat.ok());
  EXPECT_NE(Find(*cat, "snapshots/rev2/alpha-f16.gguf"), nullptr);
  EXPECT_EQ(Find(*cat, "snapshots/rev1/alpha-f16.gguf"), nullptr);
  EXPECT_NE(Find(*cat, "snapshots/rev1/extra-q8.gguf"), nullptr);
}

TEST(IndexCache, WarmListingReadsNoHeader) {
  Layout l;
  auto cold = Catalog::Load(l.sources);
  ASSERT_TRUE(cold.ok());
  EXPECT_GT(cold->stats().headers_read, 5u);
  auto warm = Catalog::Load(l.sources);
  ASSERT_TRUE(warm.ok());
  EXPECT_EQ(warm->stats().headers_read, 0u);
  EXPECT_EQ(warm->stats().index_hits, cold->stats().files_seen);
  EXPECT_EQ(warm->warnings().size(), cold->warnings().size());  // cached errors still reported
}

TEST(IndexCache, AChangedFileIsReadAgain) {
  Layout l;
  ASSERT_TRUE(Catalog::Load(l.sources).ok());
  // Rewrite shard 1 with a different mtime: only it is read again.
  const std::string shard = l.sources.user[0] + "/gamma/Gamma-F32-00001-of-00002.gguf";
  struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, shard.c_str(), times, 0), 0);
  auto again = Catalog::Load(l.sources);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stats().headers_read, 1u);
}

TEST(IndexCache, ACorruptIndexIsIgnoredAndRebuilt) {
  Layout l;
  auto first = Catalog::Load(l.sources);
  ASSERT_TRUE(first.ok());
  for (std::string junk :
       {std::string("{\"version\": 1, \"files\": {\"/x\": {\"size\": \"no\"}}}"), std::string("\x01\x02 not json"),
        std::string("{\"version\": 999, \"files\": {}}"), std::string("[]")}) {
    ASSERT_TRUE(WriteFileAtomic(l.sources.index_file, junk).ok());
    auto cat = Catalog::Load(l.sources);
    ASSERT_TRUE(cat.ok()) << cat.status().ToString();
    EXPECT_EQ(cat->models().size(), first->models().size());
    EXPECT_EQ(cat->stats().headers_read, first->stats().headers_read);
    auto warm = Catalog::Load(l.sources);  // the rebuilt index is whole again
    ASSERT_TRUE(warm.ok());
    EXPECT_EQ(warm->stats().headers_read, 0u) << junk;
  }
}

// Issue 11 (3): a GGUF another user dropped where anyone can write (/tmp) could claim any
// model's name in its metadata; such files are not listed.
TEST(Discovery, ForeignFilesInOpenPlacesRule) {
  const uid_t me = 1000;
  EXPECT_FALSE(IsForeignInOpenPlace(me, 0644, 01777, me));  // mine, in /tmp
  EXPECT_FALSE(IsForeignInOpenPlace(0, 0644, 01777, me));   // root's
  EXPECT_FALSE(
      IsForeignInOpenPlace(2000, 0644, 0755, me));  // another user's, in their own dir (a shared read-only store)
  EXPECT_TRUE(IsForeignInOpenPlace(2000, 0644, 01777, me));  // another user's, in /tmp
  EXPECT_TRUE(IsForeignInOpenPlace(2000, 0666, 0755, me));   // another user's, writable by anyone
}

TEST(Discovery, ForeignFilesInOpenPlacesAreNotListed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  TempDir root;
  const auto& m = SyntheticModels::Get();
  Copy(m.alpha, root.File("open/theirs.gguf"));
  Copy(m.beta, root.File("open/mine.gguf"));
  ASSERT_EQ(::chmod(root.File("open").c_str(), 01777), 0);
  ASSERT_EQ(::chown(root.File("open/theirs.gguf").c_str(), 65534, 65534), 0);
  DiscoveryResult found = Discover({{root.File("open")}, "", "", {}, ""});
  ASSERT_EQ(found.files.size(), 1u);
  EXPECT_EQ(found.files[0].path, root.File("open/mine.gguf"));
  bool warned = false;
  for (const auto& w : found.warnings)
    warned = warned || w.find("theirs.gguf: owned by another user") != std::string::npos;
  EXPECT_TRUE(warned);
  // The same file in a directory only its owner can write is listed.
  ASSERT_EQ(::chmod(root.File("open").c_str(), 0755), 0);
  EXPECT_EQ(Discover({{root.File("open")}, "", "", {}, ""}).files.size(), 2u);
}

TEST(Discovery, IncompleteDownloadNames) {
  EXPECT_TRUE(IsIncompleteDownload("x.gguf.part"));
  EXPECT_TRUE(IsIncompleteDownload("blob.incomplete"));
  EXPECT_TRUE(IsIncompleteDownload("x.gguf.downloadInProgress"));
  EXPECT_TRUE(IsIncompleteDownload("x.gguf.downloading"));
  EXPECT_FALSE(IsIncompleteDownload("x.gguf"));
}

}  // namespace
}  // namespace corral::catalog
