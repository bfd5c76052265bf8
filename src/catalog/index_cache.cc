#include "catalog/index_cache.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fs.h"

namespace corral::catalog {
namespace {
constexpr uint64_t kMaxIndexBytes = 256u << 20;
}  // namespace

Index Index::Load(const std::string& file) {
  Index index;
  if (file.empty()) return index;
  auto text = ReadFileBounded(file, kMaxIndexBytes);
  if (!text.ok()) {
    index.load_problem_ = text.status().message();
    return index;
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    index.load_problem_ = file + ": not JSON; rebuilding";
    index.dirty_ = true;
    return index;
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != kVersion) {
    index.load_problem_ = file + ": another index version; rebuilding";
    index.dirty_ = true;
    return index;
  }
  auto files = j.find("files");
  if (files == j.end() || !files->is_object()) {
    index.load_problem_ = file + ": no files object; rebuilding";
    index.dirty_ = true;
    return index;
  }
  for (auto it = files->begin(); it != files->end(); ++it) {
    const auto& e = it.value();
    Entry entry;
    try {
      entry.size = e.at("size").get<uint64_t>();
      entry.mtime_ns = e.at("mtime_ns").get<int64_t>();
      if (e.contains("error")) {
        entry.error = e.at("error").get<std::string>();
      } else {
        auto info = ModelInfoFromJson(e.at("info"));
        if (!info.ok()) throw std::runtime_error(info.status().message());
        entry.info = std::move(info).value();
        entry.ok = true;
      }
    } catch (const std::exception&) {
      index.dirty_ = true;  // drop the bad entry; the file is read again
      continue;
    }
    index.entries_.emplace(it.key(), std::move(entry));
  }
  return index;
}

Index::Entry* Index::Find(const std::string& path, uint64_t size, int64_t mtime_ns) {
  auto it = entries_.find(path);
  if (it == entries_.end() || it->second.size != size || it->second.mtime_ns != mtime_ns) return nullptr;
  it->second.used = true;
  return &it->second;
}

void Index::Put(const std::string& path, Entry entry) {
  entry.used = true;
  entries_[path] = std::move(entry);
  dirty_ = true;
}

Status Index::Save(const std::string& file) {
  if (file.empty()) return Status::Ok();
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.used) {
      it = entries_.erase(it);
      dirty_ = true;
    } else {
      ++it;
    }
  }
  if (!dirty_) return Status::Ok();
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [path, e] : entries_) {
    nlohmann::json je = {{"size", e.size}, {"mtime_ns", e.mtime_ns}};
    if (e.ok) {
      je["info"] = ToJson(e.info);
    } else {
      je["error"] = e.error;
    }
    files[path] = std::move(je);
  }
  nlohmann::json j = {{"version", kVersion}, {"files", std::move(files)}};
  auto parent = std::filesystem::path(file).parent_path();
  if (!parent.empty()) CORRAL_RETURN_IF_ERROR(MakeDirs(parent.string()));
  CORRAL_RETURN_IF_ERROR(WriteFileAtomic(file, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  dirty_ = false;
  return Status::Ok();
}

}  // namespace corral::catalog
