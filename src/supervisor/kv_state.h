// KV state kept across unloads (docs/kv.md): before Corral unloads a llama-server child it
// asks the child to save its busy slots (POST /slots/{id}?action=save, llama-server's own
// file format: the slot's tokens and its KV cells), and when the same model starts again
// with the same cache-affecting argv it asks the new child to restore them
// (POST /slots/{id}?action=restore) before the model is announced ready. The next request
// that continues a conversation then reuses the restored prefix (cache_prompt's prefix
// match) instead of prefilling it again.
//
// On disk, under the kv root (StateDir()/kv), one directory per identity (0700):
//   <model>-<16 hex>/            the hex: FNV-1a over the engine path, the model file's path,
//                                size and mtime, -c and every preset/raw arg (not the port, the
//                                name or the alias); another identity is another directory
//     slot-<id>.bin              llama-server's slot files (chmod 0600 after each save)
//     corral-kv.json             Corral's index: slot ids, file names, token and byte counts,
//                                a hash of the model path, when it was saved; never prompt text
// A directory whose index names the same model path but another identity is deleted when the
// model starts (the file or the argv changed); the sum of all directories is kept under a
// budget by deleting the least recently saved first.
//
// Thread-safety: stateless functions; the caller serialises work on one directory (the
// supervisor saves before a child stops and restores after it is ready, one child per
// directory at a time). Blocking: the HTTP calls block up to their timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "supervisor/launch.h"

namespace corral::supervisor {

inline constexpr char kKvIndexFile[] = "corral-kv.json";

// True when `spec` keeps KV state: a kv root is set and neither the preset nor the raw args
// pass their own --slot-save-path (then the user's own save path wins and Corral keeps out).
bool KvKeeps(const LaunchSpec& spec);

// The directory `spec`'s slots are saved in (see the layout above). Reads the model file's
// size and mtime (stat); "" when !KvKeeps(spec).
std::string KvDirFor(const std::string& llama_server, const LaunchSpec& spec);

// The index's "model": a hash of the model file's path (the path itself stays out).
std::string KvModelKey(const std::string& model_path);

// Before a start: creates `dir` (0700) and deletes the directories under `root` that hold
// an older identity of the same model file. Returns how many were deleted.
Result<int> PrepareKvDir(const std::string& root, const std::string& dir, const std::string& model_path);

struct KvResult {
  int slots = 0;        // slots saved or restored
  uint64_t tokens = 0;  // their tokens together
  uint64_t bytes = 0;   // bytes written or read
  std::string error;    // the first thing that went wrong ("" = none); the rest was still tried
};

// Saves every slot of the child on 127.0.0.1:`port` that holds tokens into `dir`, writes
// the index, makes the files 0600, and deletes slot files no longer listed. Gives up (and
// keeps no partial file in the index) at `timeout`.
KvResult SaveKvState(int port, const std::string& dir, const std::string& model_path,
                     std::chrono::milliseconds timeout);

// Restores the slots `dir`'s index lists into the child on 127.0.0.1:`port`, up to `timeout`.
// A directory with no index restores nothing (not an error).
KvResult RestoreKvState(int port, const std::string& dir, std::chrono::milliseconds timeout);

// Deletes whole state directories under `root`, least recently saved first, until they
// use at most `budget_bytes` together; `keep` (a directory just saved) goes last. Returns
// the directories deleted.
int EnforceKvBudget(const std::string& root, uint64_t budget_bytes, const std::string& keep);

// The bytes the state directories under `root` use together.
uint64_t KvBytesUsed(const std::string& root);

}  // namespace corral::supervisor
