// `corral list`: every model the catalog found. A table on a terminal, byte-stable TSV when
// piped (one header line, raw numbers, sorted by name), JSON with --json.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

#include "catalog/catalog.h"
#include "cli/commands.h"

namespace corral::cli {
namespace {

struct ListArgs {
  std::string source;
  std::string arch;
  std::string quant;
  std::string filter;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

bool Keep(const catalog::Model& m, const ListArgs& a) {
  if (!a.source.empty() && Lower(m.source) != Lower(a.source)) return false;
  if (!a.arch.empty() && Lower(m.architecture) != Lower(a.arch)) return false;
  if (!a.quant.empty() && Lower(m.quant) != Lower(a.quant)) return false;
  if (!a.filter.empty()) {
    const std::string f = Lower(a.filter);
    bool hit = Lower(m.name).find(f) != std::string::npos || Lower(m.origin).find(f) != std::string::npos ||
               Lower(m.path).find(f) != std::string::npos;
    for (const auto& al : m.aliases) hit = hit || Lower(al).find(f) != std::string::npos;
    if (!hit) return false;
  }
  return true;
}

// TSV fields may not hold tabs or newlines; replace them so every row stays one line.
std::string Field(std::string s) {
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

int RunList(const GlobalOptions& global, const ListArgs& args) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  auto cat = catalog::Catalog::Load(*config);
  if (!cat.ok()) return Fail(ExitCodeFor(cat.status()), "list: " + cat.status().message());
  std::vector<const catalog::Model*> shown;
  for (const auto& m : cat->models()) {
    if (Keep(m, args)) shown.push_back(&m);
  }
  if (global.json) {
    nlohmann::json models = nlohmann::json::array();
    for (const auto* m : shown) models.push_back(catalog::ModelJson(*m));
    nlohmann::json j = {{"models", models}, {"warnings", cat->warnings()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  for (const auto& w : cat->warnings()) std::cerr << "corral: warning: " << w << "\n";
  if (::isatty(1) == 0) {
    std::cout << "name\tsource\torigin\tarchitecture\tparams\tquant\tctx\tsize_bytes\tmmproj\tpath\n";
    for (const auto* m : shown) {
      std::cout << Field(m->name) << '\t' << m->source << '\t' << Field(m->origin) << '\t' << Field(m->architecture)
                << '\t' << m->n_params << '\t' << Field(m->quant) << '\t' << m->n_ctx_train << '\t' << m->size_bytes
                << '\t' << Field(m->mmproj) << '\t' << Field(m->path) << '\n';
    }
    return 0;
  }
  if (shown.empty()) {
    std::cout << (cat->models().empty() ? "No models found. Make one with: corral model synth\n"
                                        : "No model matches the filters.\n");
    return 0;
  }
  size_t wn = 4, ws = 6, wa = 4;
  for (const auto* m : shown) {
    wn = std::max(wn, m->name.size());
    ws = std::max(ws, m->source.size());
    wa = std::max(wa, m->architecture.size());
  }
  std::printf("%-*s  %-*s  %-*s  %7s  %-8s  %7s  %9s\n", static_cast<int>(wn), "NAME", static_cast<int>(ws), "SOURCE",
              static_cast<int>(wa), "ARCH", "PARAMS", "QUANT", "CTX", "SIZE");
  for (const auto* m : shown) {
    std::printf("%-*s  %-*s  %-*s  %7s  %-8s  %7u  %9s%s\n", static_cast<int>(wn), m->name.c_str(),
                static_cast<int>(ws), m->source.c_str(), static_cast<int>(wa), m->architecture.c_str(),
                catalog::HumanCount(m->n_params).c_str(), m->quant.c_str(), m->n_ctx_train,
                catalog::HumanBytes(m->size_bytes).c_str(), m->mmproj.empty() ? "" : "  +mmproj");
  }
  return 0;
}

}  // namespace

static void RegisterList(CLI::App& app, GlobalOptions& global, RunFn& run) {
  auto args = std::make_shared<ListArgs>();
  auto* c = app.add_subcommand("list", "List every local model (your paths and the caches of other tools)");
  c->alias("ls");
  c->add_option("filter", args->filter, "Only models whose name, origin or path contains this");
  c->add_option("--source", args->source, "Only this source: user, huggingface, ollama, lmstudio, llama.cpp");
  c->add_option("--arch", args->arch, "Only this architecture (llama, qwen2, ...)");
  c->add_option("--quant", args->quant, "Only this quantisation (Q4_K_M, F16, ...)");
  c->add_flag("--json", global.json, "Print JSON");
  c->callback([&global, &run, args] { run = [&global, args] { return RunList(global, *args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterList);

}  // namespace corral::cli
