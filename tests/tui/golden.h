// Golden files for the terminal dashboard's tests: `name`.txt under CORRAL_TUI_GOLDEN_DIR;
// CORRAL_UPDATE_GOLDEN=1 rewrites them instead of comparing.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace corral::tui {

inline void Golden(const std::string& name, const std::string& text) {
  const std::string path = std::string(CORRAL_TUI_GOLDEN_DIR) + "/" + name + ".txt";
  const char* update = std::getenv("CORRAL_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path) << text;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing golden " << path << " (CORRAL_UPDATE_GOLDEN=1 writes it); got:\n" << text;
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(text, want.str()) << "golden " << path << " differs";
}

}  // namespace corral::tui
