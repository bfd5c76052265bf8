// The Hugging Face token, read the way huggingface_hub reads it: $HF_TOKEN (or the older
// $HUGGING_FACE_HUB_TOKEN), else the file $HF_TOKEN_PATH, else $HF_HOME/token, else
// ~/.cache/huggingface/token. A token file other users can read is refused (the token is a
// password). The token is only ever sent to the endpoint's host; it is never logged, and
// Corral's children (llama-server) never get it.
// Thread-safety: reads the environment and one file; call from any thread.
#pragma once

#include <string>

#include "common/status.h"

namespace corral::pull {

struct Token {
  std::string value;   // "" when none is configured
  std::string source;  // "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", a file path, or ""
};

// The token file's path (whether or not it exists).
std::string TokenFilePath();

// kFailedPrecondition when the file is readable or writable by other users (with the chmod
// that fixes it), kIoError when it cannot be read.
Result<Token> LoadToken();

// The problem with the token file's permissions, or "" (also "" when there is no file).
std::string TokenFileProblem(const std::string& path);

}  // namespace corral::pull
