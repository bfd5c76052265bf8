// `corral keys create|list|revoke` and `corral tls show|rotate` (issue 13). The key file and
// the TLS files are read by the proxy itself (a revocation holds from the next request on;
// a rotated certificate from the next proxy start), so these commands need no daemon.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "auth/keys.h"
#include "cli/commands.h"
#include "tls/tls.h"

namespace corral::cli {
namespace {

struct KeyArgs {
  std::string name;
  std::vector<std::string> models;
  std::string scope = "inference";
  std::string ref;
  bool rotate_ca = false;
};

int RunKeysCreate(const GlobalOptions& global, const KeyArgs& a) {
  auto scope = auth::ParseScope(a.scope);
  if (!scope.ok()) return Fail(ExitCode::kUsage, scope.status().message());
  const std::string path = auth::DefaultKeyFile();
  auto keys = auth::LoadKeyFile(path);
  if (!keys.ok()) return Fail(ExitCode::kOther, keys.status().message());
  auto nk = auth::CreateKey(*keys, a.name, *scope, a.models, static_cast<int64_t>(std::time(nullptr)));
  if (!nk.ok()) {
    return Fail(nk.status().code() == StatusCode::kInvalidArgument ? ExitCode::kUsage : ExitCode::kOther,
                nk.status().message());
  }
  if (Status s = auth::SaveKeyFile(path, *keys); !s.ok()) return Fail(ExitCode::kOther, s.message());
  if (global.json) {
    std::cout << nlohmann::json{{"id", nk->record.id},
                                {"name", nk->record.name},
                                {"scope", std::string(auth::to_string(nk->record.scope))},
                                {"models", nk->record.models},
                                {"key", nk->token}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("%s\n", nk->token.c_str());
  std::fprintf(stderr,
               "created key '%s' (id %s, scope %s%s). This is the only time the key is shown; only its hash is "
               "stored in %s.\n",
               nk->record.name.c_str(), nk->record.id.c_str(), std::string(auth::to_string(nk->record.scope)).c_str(),
               nk->record.models.empty() ? ", all models" : ", some models", path.c_str());
  return 0;
}

int RunKeysList(const GlobalOptions& global) {
  auto keys = auth::LoadKeyFile(auth::DefaultKeyFile());
  if (!keys.ok()) return Fail(ExitCode::kOther, keys.status().message());
  if (global.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& k : keys->keys) {
      list.push_back({{"id", k.id},
                      {"name", k.name},
                      {"scope", std::string(auth::to_string(k.scope))},
                      {"models", k.models},
                      {"created", k.created_unix_s}});
    }
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  if (keys->keys.empty()) {
    std::printf("no API keys (corral keys create)\n");
    return 0;
  }
  std::printf("%-16s  %-20s  %-9s  %s\n", "ID", "NAME", "SCOPE", "MODELS");
  for (const auto& k : keys->keys) {
    std::string models;
    for (const auto& m : k.models) models += (models.empty() ? "" : ",") + m;
    std::printf("%-16s  %-20s  %-9s  %s\n", k.id.c_str(), k.name.c_str(), std::string(auth::to_string(k.scope)).c_str(),
                models.empty() ? "*" : models.c_str());
  }
  return 0;
}

int RunKeysRevoke(const KeyArgs& a) {
  const std::string path = auth::DefaultKeyFile();
  auto keys = auth::LoadKeyFile(path);
  if (!keys.ok()) return Fail(ExitCode::kOther, keys.status().message());
  if (Status s = auth::RevokeKey(*keys, a.ref); !s.ok()) return Fail(ExitCode::kUsage, s.message());
  if (Status s = auth::SaveKeyFile(path, *keys); !s.ok()) return Fail(ExitCode::kOther, s.message());
  std::printf("revoked '%s'; the proxy refuses it from its next request on\n", a.ref.c_str());
  return 0;
}

void PrintCert(const GlobalOptions& global, const std::string& label, const std::string& path) {
  auto info = tls::ReadCertInfo(path);
  if (!info.ok()) {
    std::printf("%s: %s\n", label.c_str(), info.status().message().c_str());
    return;
  }
  if (global.json) {
    std::cout << nlohmann::json{{"role", label},
                                {"file", path},
                                {"subject", info->subject},
                                {"not_after", info->not_after},
                                {"sha256", info->sha256_fingerprint},
                                {"spki_sha256", info->spki_sha256},
                                {"san", info->san}}
                     .dump(2)
              << "\n";
    return;
  }
  std::string san;
  for (const auto& s : info->san) san += (san.empty() ? "" : ", ") + s;
  std::printf("%s: %s\n  subject   %s\n  expires   %s\n  SHA-256   %s\n", label.c_str(), path.c_str(),
              info->subject.c_str(), info->not_after.c_str(), info->sha256_fingerprint.c_str());
  if (!san.empty()) std::printf("  names     %s\n", san.c_str());
}

int RunTlsShow(const GlobalOptions& global) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  if (!config->tls_cert.empty()) {
    PrintCert(global, "server (tls_cert)", config->tls_cert);
    return 0;
  }
  const std::string dir = tls::DefaultDir();
  auto files = tls::EnsureLocalCert(dir, {});
  if (!files.ok()) return Fail(ExitCode::kOther, files.status().message());
  PrintCert(global, "CA", files->ca);
  PrintCert(global, "server", files->cert);
  if (!global.json)
    std::printf("clients trust the CA: curl --cacert %s https://HOST:PORT/v1/models\n", files->ca.c_str());
  return 0;
}

int RunTlsRotate(const GlobalOptions& global, const KeyArgs& a) {
  auto config = LoadConfigOrReport(global);
  if (!config.ok()) return ToInt(ExitCode::kUsage);
  if (!config->tls_cert.empty()) {
    return Fail(ExitCode::kUsage, "tls_cert is set: rotate that certificate where it comes from");
  }
  auto files = tls::Rotate(tls::DefaultDir(), {}, a.rotate_ca);
  if (!files.ok()) return Fail(ExitCode::kOther, files.status().message());
  PrintCert(global, "server", files->cert);
  if (!global.json) {
    std::printf(
        "rotated%s; a running proxy uses it after `corral daemon stop` and a new start\n",
        a.rotate_ca ? " (new CA: clients must trust the new ca.pem)" : " (same CA: pinned clients keep working)");
  }
  return 0;
}

}  // namespace

static void RegisterKeys(CLI::App& app, GlobalOptions& global, RunFn& run) {
  static KeyArgs args;
  auto* keys = app.add_subcommand("keys", "API keys for the proxy (needed to serve a LAN address)");
  keys->require_subcommand(1);
  keys->fallthrough();
  auto* create = keys->add_subcommand("create", "Create a key; prints it once (only its hash is stored)");
  create->add_option("--name", args.name, "A name for people and metrics labels (default key-<id>)");
  create->add_option("--models", args.models, "Model globs the key may use and see (default: all)")->expected(1, -1);
  create->add_option("--scope", args.scope, "inference (default), read (list, metrics) or admin (load/unload)");
  auto* list = keys->add_subcommand("list", "List keys (never the secrets)");
  auto* revoke = keys->add_subcommand("revoke", "Revoke a key by id or name (effective on the next request)");
  revoke->add_option("KEY", args.ref, "id or name")->required();
  for (auto* s : {create, list, revoke}) {
    s->fallthrough();
    s->add_flag("--json", global.json, "Print JSON");
  }
  create->callback([&global, &run] { run = [&global] { return RunKeysCreate(global, args); }; });
  list->callback([&global, &run] { run = [&global] { return RunKeysList(global); }; });
  revoke->callback([&run] { run = [] { return RunKeysRevoke(args); }; });

  auto* tlsc = app.add_subcommand("tls", "The proxy's TLS certificate (https:// listen addresses)");
  tlsc->require_subcommand(1);
  tlsc->fallthrough();
  auto* show =
      tlsc->add_subcommand("show", "Show the certificate and its SHA-256 fingerprint (makes the local CA if none)");
  auto* rotate = tlsc->add_subcommand("rotate", "New server key and certificate (same local CA unless --ca)");
  rotate->add_flag("--ca", args.rotate_ca, "Make a new CA too (clients must trust the new ca.pem)");
  for (auto* s : {show, rotate}) {
    s->fallthrough();
    s->add_flag("--json", global.json, "Print JSON");
  }
  show->callback([&global, &run] { run = [&global] { return RunTlsShow(global); }; });
  rotate->callback([&global, &run] { run = [&global] { return RunTlsRotate(global, args); }; });
}

CORRAL_REGISTER_COMMAND(RegisterKeys);

}  // namespace corral::cli
