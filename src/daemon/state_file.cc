#include "daemon/state_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "control/api.h"

namespace corral::daemon {
namespace {

using nlohmann::json;

constexpr int64_t kMaxPid = 4194304;  // PID_MAX_LIMIT on 64-bit Linux
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMaxVersion = 1000;
constexpr size_t kMaxNameBytes = 4096;
constexpr size_t kMaxArgBytes = size_t{64} * 1024;

Status Bad(const std::string& field, const std::string& why) {
  return Corrupt(field + " " + why);
}

Result<int> Int(const json& obj, const std::string& prefix, const char* key, int64_t max, int fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  const std::string field = prefix + key;
  if (!it->is_number_integer()) return Bad(field, "must be a whole number 0.." + std::to_string(max));
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(max)) return Bad(field, "must be a whole number 0.." + std::to_string(max));
    return static_cast<int>(v);
  }
  const int64_t v = it->get<int64_t>();
  if (v < 0 || v > max) return Bad(field, "must be a whole number 0.." + std::to_string(max));
  return static_cast<int>(v);
}

Result<std::string> Str(const json& obj, const std::string& prefix, const char* key, size_t max_bytes) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  const std::string field = prefix + key;
  if (!it->is_string()) return Bad(field, "must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_bytes) return Bad(field, "is longer than " + std::to_string(max_bytes) + " bytes");
  if (s.find('\0') != std::string::npos) return Bad(field, "contains a NUL byte");
  return s;
}

Result<StateModel> ModelFrom(const json& m, const std::string& prefix) {
  if (!m.is_object()) return Bad(prefix.substr(0, prefix.size() - 1), "must be an object");
  StateModel out;
  CORRAL_ASSIGN_OR_RETURN(out.name, Str(m, prefix, "name", kMaxNameBytes));
  CORRAL_ASSIGN_OR_RETURN(out.model, Str(m, prefix, "model", kMaxNameBytes));
  CORRAL_ASSIGN_OR_RETURN(out.model_path, Str(m, prefix, "model_path", kMaxNameBytes));
  CORRAL_ASSIGN_OR_RETURN(out.state, Str(m, prefix, "state", 64));
  CORRAL_ASSIGN_OR_RETURN(out.pid, Int(m, prefix, "pid", kMaxPid, 0));
  CORRAL_ASSIGN_OR_RETURN(out.port, Int(m, prefix, "port", kMaxPort, 0));
  if (auto it = m.find("argv"); it != m.end() && !it->is_null()) {
    const std::string field = prefix + "argv";
    if (!it->is_array()) return Bad(field, "must be an array of strings");
    if (it->size() > kMaxStateArgv) return Bad(field, "has more than " + std::to_string(kMaxStateArgv) + " entries");
    for (const auto& a : *it) {
      if (!a.is_string()) return Bad(field, "must be an array of strings");
      const auto& s = a.get_ref<const std::string&>();
      if (s.size() > kMaxArgBytes || s.find('\0') != std::string::npos) return Bad(field, "has an unusable entry");
      out.argv.push_back(s);
    }
  }
  return out;
}

}  // namespace

Result<StateFile> ParseStateFile(std::string_view text) {
  CORRAL_ASSIGN_OR_RETURN(json j, control::ParseJsonBounded(text, {kMaxStateFileBytes, kMaxStateDepth}));
  if (!j.is_object()) return Corrupt("the state file must be a JSON object");
  StateFile out;
  CORRAL_ASSIGN_OR_RETURN(out.version, Int(j, "", "version", kMaxVersion, 1));
  CORRAL_ASSIGN_OR_RETURN(out.daemon_pid, Int(j, "", "daemon_pid", kMaxPid, 0));
  auto models = j.find("models");
  if (models == j.end()) return Corrupt("models is missing");
  if (!models->is_array()) return Bad("models", "must be an array");
  if (models->size() > kMaxStateModels) {
    return Bad("models", "has more than " + std::to_string(kMaxStateModels) + " entries");
  }
  for (size_t i = 0; i < models->size(); ++i) {
    CORRAL_ASSIGN_OR_RETURN(StateModel m, ModelFrom((*models)[i], "models[" + std::to_string(i) + "]."));
    out.models.push_back(std::move(m));
  }
  return out;
}

std::string FormatStateFile(const StateFile& state) {
  json models = json::array();
  for (const auto& m : state.models) {
    models.push_back({{"name", m.name},
                      {"model", m.model},
                      {"model_path", m.model_path},
                      {"pid", m.pid},
                      {"port", m.port},
                      {"state", m.state},
                      {"argv", m.argv}});
  }
  json j = {{"version", state.version}, {"daemon_pid", state.daemon_pid}, {"models", models}};
  // A path that is not UTF-8 must not throw: replace its bad bytes (it is informational).
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Status WriteStateFile(const std::string& path, const StateFile& state) {
  return WriteFileAtomic(path, FormatStateFile(state), 0600);
}

StateRead ReadStateFile(const std::string& path, std::time_t now) {
  StateRead out;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return out;  // none yet
  Status why = Status::Ok();
  if (!S_ISREG(st.st_mode)) {
    why = Corrupt("not a regular file");  // a FIFO would block the read
  } else {
    auto text = ReadFileBounded(path, kMaxStateFileBytes);
    if (!text.ok()) {
      why = text.status();
    } else {
      auto parsed = ParseStateFile(*text);
      if (parsed.ok()) {
        out.state = std::move(*parsed);
        return out;
      }
      why = parsed.status();
    }
  }
  const std::string aside = path + ".corrupt-" + std::to_string(static_cast<long long>(now));
  if (::rename(path.c_str(), aside.c_str()) == 0) {
    out.notice = "the state file " + path + " was not valid (" + why.message() + "); moved it aside to " + aside;
  } else {
    const int e = errno;
    out.notice = "the state file " + path + " was not valid (" + why.message() + ") and could not be moved aside (" +
                 ErrnoError("rename", e).message() + "); it will be overwritten";
  }
  return out;
}

}  // namespace corral::daemon
