#include <iostream>

#include "cli/commands.h"

namespace corral::cli {

std::vector<RegisterFn>& CommandRegistry() {
  static std::vector<RegisterFn> registry;
  return registry;
}

int Fail(ExitCode code, const std::string& message) {
  std::cerr << "corral: " << message << "\n";
  return ToInt(code);
}

Result<config::Config> LoadConfigOrReport(const GlobalOptions& global) {
  auto c = config::Load(global.flags);
  if (!c.ok()) std::cerr << "corral: configuration: " << c.status().message() << "\n";
  return c;
}

}  // namespace corral::cli
