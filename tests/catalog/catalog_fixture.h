// Test-only: synthetic models made once per test binary and copied into cache layouts.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "support/test_support.h"

namespace corral::testing {

// Two small synthetic models with distinct general.name and weight types.
class SyntheticModels {
 public:
  static SyntheticModels& Get() {
    static SyntheticModels models;  // lives for the whole binary; its directory goes at exit
    return models;
  }
  std::string alpha;  // "Alpha" F16
  std::string beta;   // "Beta" Q8_0, grouped-query attention

 private:
  SyntheticModels() {
    alpha = MakeModel(
        dir_.path(), "alpha.gguf",
        {"--name", "Alpha", "--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-ff", "128", "--ctx", "512"});
    beta = MakeModel(dir_.path(), "beta.gguf",
                     {"--name", "Beta", "--type", "q8_0", "--n-embd", "64", "--n-layer", "2", "--n-head", "4",
                      "--n-head-kv", "2", "--n-ff", "128", "--ctx", "1024"});
  }
  TempDir dir_;
};

inline void Copy(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(std::filesystem::path(to).parent_path());
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

inline void Symlink(const std::string& target, const std::string& link) {
  std::filesystem::create_directories(std::filesystem::path(link).parent_path());
  std::filesystem::create_symlink(target, link);
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

}  // namespace corral::testing
