#include "pull/token.h"

#include <sys/stat.h>

#include <cstdlib>

#include "common/fs.h"

namespace corral::pull {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string Clean(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t k = 0;
  while (k < s.size() && (s[k] == ' ' || s[k] == '\t')) ++k;
  return s.substr(k);
}

bool Printable(const std::string& s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string TokenFilePath() {
  if (std::string p = Env("HF_TOKEN_PATH"); !p.empty()) return p;
  if (std::string h = Env("HF_HOME"); !h.empty()) return h + "/token";
  std::string cache = Env("XDG_CACHE_HOME");
  if (cache.empty()) cache = Env("HOME") + "/.cache";
  return cache + "/huggingface/token";
}

std::string TokenFileProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    return path + " can be read by every user of this machine; run: chmod 600 " + path;
  }
  if ((st.st_mode & (S_IRGRP | S_IWGRP)) != 0) {
    return path + " can be read by its group; run: chmod 600 " + path;
  }
  return {};
}

Result<Token> LoadToken() {
  for (const char* var : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    std::string v = Clean(Env(var));
    if (!v.empty()) {
      if (!Printable(v) || v.size() > 4096) return InvalidArgument(std::string("$") + var + " is not a token");
      return Token{v, var};
    }
  }
  const std::string path = TokenFilePath();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Token{};
  if (const std::string problem = TokenFileProblem(path); !problem.empty()) {
    return Status(StatusCode::kFailedPrecondition, "refusing the token file: " + problem);
  }
  auto text = ReadFileBounded(path, 4096);
  if (!text.ok()) return text.status().WithContext("reading the token file");
  std::string v = Clean(*text);
  if (v.empty()) return Token{};
  if (!Printable(v)) return InvalidArgument(path + " does not hold a token (one line, no spaces)");
  return Token{v, path};
}

}  // namespace corral::pull
