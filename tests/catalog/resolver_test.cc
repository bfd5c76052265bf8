// Names and the resolver: canonical names from metadata, exact names, case, aliases, unique
// and ambiguous substrings, paths inside and outside the scanned trees, no match.
#include <gtest/gtest.h>

#include <filesystem>

#include "catalog/catalog.h"
#include "catalog/catalog_fixture.h"

namespace corral::catalog {
namespace {

using corral::testing::Copy;
using corral::testing::Symlink;
using corral::testing::SyntheticModels;
using corral::testing::TempDir;
using corral::testing::WriteText;

TEST(Names, FamilySizeQuantFromMetadata) {
  ModelInfo m;
  m.basename = "Llama-3.2";
  m.finetune = "Instruct";
  m.size_label = "3B";
  m.quant = "Q4_K_M";
  EXPECT_EQ(BaseName(m, "/x/whatever.gguf"), "llama-3.2-instruct-3b-q4_k_m");
  ModelInfo n;
  n.name = "Qwen2.5 7B Instruct Q8_0";
  n.quant = "Q8_0";
  n.n_params = 7615616512ULL;
  EXPECT_EQ(BaseName(n, "/x/y.gguf"), "qwen2.5-7b-instruct-q8_0");
  ModelInfo bare;  // no metadata at all: the file name
  bare.quant = "F16";
  bare.n_params = 25000000;
  EXPECT_EQ(BaseName(bare, "/m/My_Model-F16-00001-of-00002.gguf"), "my_model-25m-f16");
  ModelInfo mix;
  mix.name = "corral-synth-tiny-f16";
  mix.quant = "F16";
  mix.n_params = 4178240;
  EXPECT_EQ(BaseName(mix, ""), "corral-synth-tiny-4m-f16");
}

struct ResolverTree {
  TempDir root;
  Sources sources;
  ResolverTree() {
    const auto& m = SyntheticModels::Get();
    Copy(m.alpha, root.File("user/alpha.gguf"));
    Copy(m.beta, root.File("user/beta.gguf"));
    Copy(m.beta, root.File("user/sub/beta-copy.gguf"));  // same metadata: a second, disambiguated name
    Copy(m.alpha, root.File("outside/alpha-elsewhere.gguf"));
    Symlink(root.File("user/alpha.gguf"), root.File("outside/link.gguf"));
    WriteText(root.File("outside/junk.gguf"), "not a model");
    sources.user = {root.File("user")};
    sources.index_file = root.File("index.json");
  }
};

TEST(Resolver, NamesAliasesSubstringsAndPaths) {
  ResolverTree t;
  t.sources.aliases = {{"chat", "alpha"}, {"amb", "bet"}, {"alpha-4m-f16", "beta.gguf"}, {"nothing", "zzz"}};
  auto cat = Catalog::Load(t.sources);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  ASSERT_EQ(cat->models().size(), 3u);
  std::string names;
  for (const auto& m : cat->models()) names += m.name + " ";
  SCOPED_TRACE(names);

  auto exact = cat->Resolve("alpha-4m-f16");
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->path, t.root.File("user/alpha.gguf"));
  EXPECT_TRUE(cat->Resolve("ALPHA-4M-F16").ok());  // names are case-insensitive

  // Disambiguation inside one source uses the file name.
  EXPECT_TRUE(cat->Resolve("beta-4m-q8_0").ok());
  auto copy = cat->Resolve("beta-4m-q8_0-beta-copy");
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->path, t.root.File("user/sub/beta-copy.gguf"));

  // Alias from config; an alias to an ambiguous reference or to nothing is a warning; an
  // alias that is also a model name is refused.
  auto alias = cat->Resolve("chat");
  ASSERT_TRUE(alias.ok()) << alias.status().ToString();
  EXPECT_EQ(alias->name, "alpha-4m-f16");
  EXPECT_EQ(alias->aliases, std::vector<std::string>{"chat"});
  bool warned_amb = false, warned_nothing = false, warned_shadow = false;
  for (const auto& w : cat->warnings()) {
    warned_amb = warned_amb || w.find("alias 'amb'") != std::string::npos;
    warned_nothing = warned_nothing || w.find("alias 'nothing'") != std::string::npos;
    warned_shadow = warned_shadow || w.find("alias 'alpha-4m-f16' is also a model name") != std::string::npos;
  }
  EXPECT_TRUE(warned_amb && warned_nothing && warned_shadow);

  // Unique substring; ambiguous substring lists the candidates. (Issue 14: "beta" is now
  // the file stem of beta.gguf, so the ambiguous spelling is "bet".)
  EXPECT_EQ(cat->Resolve("lph")->name, "alpha-4m-f16");
  EXPECT_EQ(cat->Resolve("beta")->path, t.root.File("user/beta.gguf"));
  EXPECT_EQ(cat->Resolve("beta-copy")->path, t.root.File("user/sub/beta-copy.gguf"));
  auto amb = cat->Resolve("bet");
  ASSERT_FALSE(amb.ok());
  EXPECT_EQ(amb.status().code(), StatusCode::kAmbiguous);
  EXPECT_NE(amb.status().message().find("beta-4m-q8_0,"), std::string::npos) << amb.status().message();
  EXPECT_NE(amb.status().message().find("beta-4m-q8_0-beta-copy"), std::string::npos);
  auto everything = cat->Resolve("4m");
  EXPECT_EQ(everything.status().code(), StatusCode::kAmbiguous);

  // No match names what exists.
  auto none = cat->Resolve("gpt-17");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("alpha-4m-f16"), std::string::npos) << none.status().message();
  EXPECT_EQ(cat->Resolve("").status().code(), StatusCode::kInvalidArgument);

  // Paths: a scanned file, a symlink to one, a file outside every tree, a bad file.
  auto by_path = cat->Resolve(t.root.File("user/beta.gguf"));
  ASSERT_TRUE(by_path.ok());
  EXPECT_EQ(by_path->name, "beta-4m-q8_0");
  auto by_link = cat->Resolve(t.root.File("outside/link.gguf"));
  ASSERT_TRUE(by_link.ok());
  EXPECT_EQ(by_link->name, "alpha-4m-f16");
  EXPECT_EQ(by_link->source, "user");
  auto outside = cat->Resolve(t.root.File("outside/alpha-elsewhere.gguf"));
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  EXPECT_EQ(outside->source, "path");
  EXPECT_EQ(outside->architecture, "llama");
  auto junk = cat->Resolve(t.root.File("outside/junk.gguf"));
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(cat->Resolve(t.root.File("outside/missing.gguf")).status().code(), StatusCode::kNotFound);
}

// Issue 11 (2, 3): names from requests never reach the filesystem, control characters are
// refused everywhere, and a file outside the catalog never takes a catalog model's name.
TEST(Resolver, RequestNamesAreNamesNeverPaths) {
  ResolverTree t;
  t.sources.aliases = {{"chat", "alpha"}};
  auto cat = Catalog::Load(t.sources);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();

  // Names, aliases and substrings resolve as in Resolve.
  EXPECT_EQ(cat->ResolveName("alpha-4m-f16")->name, "alpha-4m-f16");
  EXPECT_EQ(cat->ResolveName("ALPHA-4M-F16")->name, "alpha-4m-f16");
  EXPECT_EQ(cat->ResolveName("chat")->name, "alpha-4m-f16");
  EXPECT_EQ(cat->ResolveName("lph")->name, "alpha-4m-f16");

  // A path, even one to a catalog model's own file, is refused before any matching.
  for (const std::string& ref :
       {t.root.File("user/alpha.gguf"), std::string("/etc/passwd"), std::string("../../etc/passwd"),
        std::string("./alpha.gguf"), std::string("~/alpha.gguf"), std::string("a/../b"), std::string("..")}) {
    auto r = cat->ResolveName(ref);
    ASSERT_FALSE(r.ok()) << ref;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << ref;
    EXPECT_NE(r.status().message().find("not file paths"), std::string::npos) << r.status().message();
  }
  // A relative file name is only a name: no file in the working directory is read.
  EXPECT_EQ(cat->ResolveName("alpha.gguf").status().code(), StatusCode::kNotFound);

  // Control characters: refused by every resolver, without echoing the reference.
  for (const std::string& ref : {std::string("alpha\r\nSet-Cookie: x"), std::string("a\x1b[2Jb"),
                                 std::string("al\0pha", 6), std::string("x\x7f")}) {
    for (auto r : {cat->ResolveName(ref), cat->Resolve(ref)}) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("control character"), std::string::npos) << r.status().message();
      EXPECT_EQ(r.status().message().find("Set-Cookie"), std::string::npos);
    }
  }
  EXPECT_FALSE(CheckReference(std::string(kMaxReferenceBytes + 1, 'a')).ok());
  EXPECT_TRUE(CheckReference("llama3.2:3b").ok());

  // FindExact: canonical names (any case) and aliases, nothing else.
  ASSERT_NE(cat->FindExact("Alpha-4M-F16"), nullptr);
  EXPECT_EQ(cat->FindExact("chat")->name, "alpha-4m-f16");
  EXPECT_EQ(cat->FindExact("lph"), nullptr);

  // A file outside the catalog whose metadata says "Alpha": read on the spot, but never
  // named like the catalog's alpha (a name belongs to one file).
  auto outside = cat->ResolveFile(t.root.File("outside/alpha-elsewhere.gguf"));
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  EXPECT_NE(outside->name, "alpha-4m-f16");
  EXPECT_TRUE(outside->name.starts_with("alpha-4m-f16-path-")) << outside->name;
  EXPECT_EQ(cat->Resolve(t.root.File("outside/alpha-elsewhere.gguf"))->name, outside->name);
  // A link to a catalog file is that model.
  EXPECT_EQ(cat->ResolveFile(t.root.File("outside/link.gguf"))->name, "alpha-4m-f16");
}

// Issue 14: every rule of catalog/names.h, on plain entries.
TEST(Names, MatchReferenceRules) {
  const std::vector<NameEntry> e = {
      {"qwen3-8b-q4_k_m", {}, "Qwen3-8B-Q4_K_M", "Qwen/Qwen3-8B-GGUF", "Q4_K_M"},
      {"qwen3-8b-q8_0", {"fast"}, "Qwen3-8B-Q8_0", "Qwen/Qwen3-8B-GGUF", "Q8_0"},
      {"qwen3-8b-q4_k_m-hf", {}, "Qwen3-8B-UD-Q4_K_XL", "unsloth/Qwen3-8B-GGUF", "Q4_K_M"},
      {"llama-3.2-3b-q4_k_m", {}, "", "llama3.2:3b", "Q4_K_M"},
      {"gemma-3-1b-q4_0", {}, "", "gemma3:latest", "Q4_0"},
      {"bar-tiny-25m-q8_0", {}, "bar-tiny", "", "Q8_0"},
      {"big-1b-f16", {}, "big", "", "F16"},
      {"other-1b-f16", {}, "big", "", "F16"},  // two files with one stem
  };
  auto name_of = [&](std::string_view ref) -> std::string {
    auto r = MatchReference(ref, e);
    return r.ok() ? e[*r].name : "<" + std::string(to_string(r.status().code())) + ">";
  };
  // 1, 2: canonical (any case) and alias (any case).
  EXPECT_EQ(name_of("QWEN3-8B-Q8_0"), "qwen3-8b-q8_0");
  EXPECT_EQ(name_of("Fast"), "qwen3-8b-q8_0");
  // 3: the file stem, exactly (the issue's `corral start Qwen3-8B-Q4_K_M`).
  EXPECT_EQ(name_of("Qwen3-8B-Q4_K_M"), "qwen3-8b-q4_k_m");
  EXPECT_EQ(name_of("bar-tiny"), "bar-tiny-25m-q8_0");
  EXPECT_EQ(name_of("bar-tiny:latest"), "bar-tiny-25m-q8_0");
  EXPECT_EQ(name_of("big"), "<ambiguous>");
  // Hugging Face: owner/repo:QUANT, Ollama's hf.co/ spelling, the quant as a stem token, and
  // the repo alone picks its Q4_K_M.
  EXPECT_EQ(name_of("Qwen/Qwen3-8B-GGUF:Q8_0"), "qwen3-8b-q8_0");
  EXPECT_EQ(name_of("hf.co/Qwen/Qwen3-8B-GGUF:q8_0"), "qwen3-8b-q8_0");
  EXPECT_EQ(name_of("huggingface.co/Qwen/Qwen3-8B-GGUF:Q4_K_M"), "qwen3-8b-q4_k_m");
  EXPECT_EQ(name_of("Qwen/Qwen3-8B-GGUF"), "qwen3-8b-q4_k_m");
  EXPECT_EQ(name_of("hf.co/Qwen/Qwen3-8B-GGUF:latest"), "qwen3-8b-q4_k_m");
  EXPECT_EQ(name_of("unsloth/Qwen3-8B-GGUF:UD-Q4_K_XL"), "qwen3-8b-q4_k_m-hf");
  EXPECT_EQ(name_of("unsloth/Qwen3-8B-GGUF"), "qwen3-8b-q4_k_m-hf");
  EXPECT_EQ(name_of("Qwen/Qwen3-8B-GGUF:Q2_K"), "<not found>");
  // Ollama names: the tag, and :latest spelt or not.
  EXPECT_EQ(name_of("llama3.2:3b"), "llama-3.2-3b-q4_k_m");
  EXPECT_EQ(name_of("gemma3"), "gemma-3-1b-q4_0");
  EXPECT_EQ(name_of("gemma3:latest"), "gemma-3-1b-q4_0");
  // 4: unique substring of a name, stem or origin; several: the candidates.
  EXPECT_EQ(name_of("llama3"), "llama-3.2-3b-q4_k_m");
  EXPECT_EQ(name_of("UD-Q4"), "qwen3-8b-q4_k_m-hf");
  auto amb = MatchReference("qwen3", e);
  ASSERT_FALSE(amb.ok());
  EXPECT_EQ(amb.status().code(), StatusCode::kAmbiguous);
  EXPECT_NE(amb.status().message().find("qwen3-8b-q8_0"), std::string::npos) << amb.status().message();
  auto none = MatchReference("mistral", e);
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("known models:"), std::string::npos);
  EXPECT_EQ(MatchReference("x", {}).status().code(), StatusCode::kNotFound);
  // Odd input: never a crash, never a match by accident.
  for (std::string_view ref : {":", "zz:latest", "hf.co/", "/", "a/b:c:d", "hf.co/:latest", "::::"}) {
    auto r = MatchReference(ref, e);
    EXPECT_FALSE(r.ok()) << ref;
  }
}

TEST(Names, FileStemsAndOtherNames) {
  EXPECT_EQ(ModelFileStem("/m/bar-tiny.gguf"), "bar-tiny");
  EXPECT_EQ(ModelFileStem("/m/Big-Q4_K_M-00001-of-00003.gguf"), "Big-Q4_K_M");
  EXPECT_EQ(ModelFileStem("plain.GGUF"), "plain");
  EXPECT_EQ(ModelFileStem("/m/x-00001-of-0000y.gguf"), "x-00001-of-0000y");
  EXPECT_EQ(NormalizeReference("hf.co/a/b:latest"), "a/b");
  EXPECT_EQ(NormalizeReference("llama3.2:3b"), "llama3.2:3b");
  const NameEntry e{"qwen3-8b-q4_k_m", {"chat"}, "Qwen3-8B-Q4_K_M", "Qwen/Qwen3-8B-GGUF", "Q4_K_M"};
  // (the stem equals the canonical name but for case: not repeated)
  EXPECT_EQ(OtherNames(e), (std::vector<std::string>{"Qwen/Qwen3-8B-GGUF", "Qwen/Qwen3-8B-GGUF:Q4_K_M",
                                                     "hf.co/Qwen/Qwen3-8B-GGUF:Q4_K_M"}));
  const NameEntry same{"bar", {}, "BAR", "", "F16"};  // a stem equal to the name adds nothing
  EXPECT_TRUE(OtherNames(same).empty());
}

TEST(Resolver, EmptyCatalogSaysSo) {
  TempDir root;
  Sources s;
  s.user = {root.File("none")};
  auto cat = Catalog::Load(s);
  ASSERT_TRUE(cat.ok());
  auto r = cat->Resolve("x");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no models found"), std::string::npos);
}

}  // namespace
}  // namespace corral::catalog
