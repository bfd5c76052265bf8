#include "common/paths.h"

#include <unistd.h>

#include <cstdlib>

namespace corral {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v == '/') ? std::string(v) : std::string();
}

std::string Home() {
  const char* h = std::getenv("HOME");
  return (h != nullptr && *h != '\0') ? std::string(h) : std::string("/tmp");
}

std::string XdgDir(const char* var, const char* fallback_under_home) {
  std::string base = Env(var);
  if (base.empty()) base = Home() + "/" + fallback_under_home;
  return base + "/corral";
}

}  // namespace

std::string ConfigDir() {
  return XdgDir("XDG_CONFIG_HOME", ".config");
}
std::string StateDir() {
  return XdgDir("XDG_STATE_HOME", ".local/state");
}
std::string DataDir() {
  return XdgDir("XDG_DATA_HOME", ".local/share");
}

std::string CacheDir() {
  std::string explicit_dir = Env("CORRAL_CACHE_DIR");
  if (!explicit_dir.empty()) return explicit_dir;
  return XdgDir("XDG_CACHE_HOME", ".cache");
}

std::string RuntimeDir() {
  std::string base = Env("XDG_RUNTIME_DIR");
  if (!base.empty()) return base + "/corral";
  return "/tmp/corral-" + std::to_string(::getuid());
}

std::string DefaultModelDir() {
  return DataDir() + "/models";
}
std::string DefaultConfigFile() {
  return ConfigDir() + "/config.yaml";
}

}  // namespace corral
