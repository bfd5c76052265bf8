#include "supervisor/launch.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/fs.h"
#include "supervisor/kv_state.h"

namespace corral::supervisor {

const std::vector<std::string_view>& OwnedFlags() {
  static const std::vector<std::string_view> kOwned = {"--host",         "--port",         "--api-key",
                                                       "--api-key-file", "--ssl-key-file", "--ssl-cert-file"};
  return kOwned;
}

Status CheckRawArgs(const std::vector<std::string>& args) {
  for (const auto& arg : args) {
    std::string_view flag = arg;
    if (size_t eq = flag.find('='); eq != std::string_view::npos && flag.starts_with("--")) flag = flag.substr(0, eq);
    for (std::string_view owned : OwnedFlags()) {
      if (flag != owned) continue;
      std::string why = owned == "--host" || owned == "--port"
                            ? "the child always listens on 127.0.0.1 at the port Corral gives it; use "
                              "`corral start --port P` for a fixed port, and the proxy (`listen`) for other addresses"
                            : "authentication and TLS belong to Corral's proxy, not to the child";
      return InvalidArgument("llama-server flag " + std::string(owned) +
                             " is owned by Corral and refused in raw args: " + why);
    }
    if (flag == "-m" || flag == "--model") {
      return InvalidArgument("llama-server flag " + std::string(flag) +
                             " is refused in raw args: the model comes from `corral start MODEL`");
    }
  }
  return Status::Ok();
}

namespace {
bool PassesAlias(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& a) { return a == "-a" || a == "--alias" || a.starts_with("--alias="); });
}

// The pinned llama-server's flags that choose speculative decoding (common/arg.cpp).
constexpr std::string_view kSpecFlags[] = {"--spec-type", "--spec-default", "--spec-draft-model",
                                           "-md",         "--model-draft",  "--spec-draft-hf",
                                           "-hfd",        "-hfrd",          "--hf-repo-draft"};
}  // namespace

bool PassesSpec(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) {
    std::string_view flag = a;
    if (size_t eq = flag.find('='); eq != std::string_view::npos && flag.starts_with("--")) flag = flag.substr(0, eq);
    return std::find(std::begin(kSpecFlags), std::end(kSpecFlags), flag) != std::end(kSpecFlags);
  });
}

std::vector<std::string> BuildArgv(const std::string& llama_server, const LaunchSpec& spec) {
  std::vector<std::string> argv = {llama_server, "-m",     spec.model_path,          "--host",
                                   "127.0.0.1",  "--port", std::to_string(spec.port)};
  if (spec.ctx != 0) {
    argv.emplace_back("-c");
    argv.push_back(std::to_string(spec.ctx));
  }
  // Responses name the model as clients do ("model": NAME), not by its file's path.
  if (!spec.model.empty() && !PassesAlias(spec.preset_args) && !PassesAlias(spec.raw_args)) {
    argv.emplace_back("--alias");
    argv.push_back(spec.model);
  }
  // KV state kept across unloads: llama-server saves and restores slots only under this path.
  if (std::string kv_dir = KvDirFor(llama_server, spec); !kv_dir.empty()) {
    argv.emplace_back("--slot-save-path");
    argv.push_back(std::move(kv_dir));
  }
  // Speculative decoding: the model's MTP heads or a draft model, unless the user chose.
  if ((spec.spec_mtp || !spec.draft_path.empty()) && !PassesSpec(spec.preset_args) && !PassesSpec(spec.raw_args)) {
    argv.emplace_back("--spec-type");
    if (spec.spec_mtp) {
      argv.emplace_back("draft-mtp");
    } else {
      argv.emplace_back("draft-simple");
      argv.emplace_back("--spec-draft-model");
      argv.push_back(spec.draft_path);
      argv.emplace_back("--spec-draft-n-max");
      argv.push_back(std::to_string(kDraftTokensPerStep));
    }
  }
  argv.insert(argv.end(), spec.preset_args.begin(), spec.preset_args.end());
  argv.insert(argv.end(), spec.raw_args.begin(), spec.raw_args.end());
  return argv;
}

std::string ShellQuote(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
             std::string_view("-_./:=,+@%").find(c) != std::string_view::npos;
    });
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

int ParseListeningPort(std::string_view text) {
  static constexpr std::string_view kMarker = "listening on http://";
  size_t pos = 0;
  while ((pos = text.find(kMarker, pos)) != std::string_view::npos) {
    pos += kMarker.size();
    // The authority runs to the next whitespace ("127.0.0.1:8080", "[::1]:8080"); the port
    // follows its last ':'. An authority cut off by the end of `text` is not trusted yet.
    size_t end = pos;
    while (end < text.size() && text[end] != ' ' && text[end] != '\n' && text[end] != '\r' && text[end] != '\t' &&
           text[end] != '/') {
      ++end;
    }
    if (end == text.size()) return 0;
    std::string_view authority = text.substr(pos, end - pos);
    size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) continue;
    std::string_view digits = authority.substr(colon + 1);
    if (digits.empty() || digits.size() > 5) continue;
    long port = 0;
    bool ok = true;
    for (char c : digits) {
      if (std::isdigit(static_cast<unsigned char>(c)) == 0) ok = false;
      port = port * 10 + (c - '0');
    }
    if (ok && port > 0 && port <= 65535) return static_cast<int>(port);
  }
  return 0;
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string s(text);
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }),
          s.end());
  if (s.empty()) return InvalidArgument("empty size");
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) != 0 || s[i] == '.')) ++i;
  if (i == 0 || i > 24) return InvalidArgument("size must start with a number: '" + std::string(text) + "'");
  double number = 0;
  try {
    size_t used = 0;
    number = std::stod(s.substr(0, i), &used);
    if (used != i) return InvalidArgument("bad size number: '" + std::string(text) + "'");
  } catch (...) {
    return InvalidArgument("bad size number: '" + std::string(text) + "'");
  }
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KB" || unit == "KIB") {
    mult = 1024.0;
  } else if (unit == "M" || unit == "MB" || unit == "MIB") {
    mult = 1024.0 * 1024;
  } else if (unit == "G" || unit == "GB" || unit == "GIB") {
    mult = 1024.0 * 1024 * 1024;
  } else if (unit == "T" || unit == "TB" || unit == "TIB") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return InvalidArgument("unknown size unit '" + unit + "' in '" + std::string(text) +
                           "' (use B, KiB, MiB, GiB, TiB)");
  }
  double bytes = number * mult;
  if (!std::isfinite(bytes) || bytes < 1 || bytes > 9.0e18) {
    return InvalidArgument("size out of range: '" + std::string(text) + "'");
  }
  return static_cast<uint64_t>(bytes);
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

namespace {
// "Key:   123 kB" → 123*1024; 0 when absent.
uint64_t ProcKbField(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != std::string_view::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      size_t p = pos + key.size();
      while (p < text.size() && (text[p] == ' ' || text[p] == '\t')) ++p;
      uint64_t v = 0;
      size_t digits = 0;
      while (p < text.size() && std::isdigit(static_cast<unsigned char>(text[p])) != 0 && digits < 15) {
        v = v * 10 + static_cast<uint64_t>(text[p] - '0');
        ++p;
        ++digits;
      }
      return digits == 0 ? 0 : v * 1024;
    }
    pos += key.size();
  }
  return 0;
}
}  // namespace

Result<uint64_t> ParseMemTotal(std::string_view meminfo_text) {
  uint64_t v = ProcKbField(meminfo_text, "MemTotal:");
  if (v == 0) return Corrupt("no MemTotal in /proc/meminfo");
  return v;
}

Result<uint64_t> TotalMemoryBytes() {
  CORRAL_ASSIGN_OR_RETURN(std::string text, ReadFileBounded("/proc/meminfo", 1 << 20));
  return ParseMemTotal(text);
}

uint64_t DefaultMemoryBudget(uint64_t total_bytes) {
  uint64_t margin = std::max<uint64_t>(1ULL << 30, total_bytes / 10);
  return total_bytes > margin ? total_bytes - margin : total_bytes / 2;
}

uint64_t ProcessRssBytes(pid_t pid) {
  auto text = ReadFileBounded("/proc/" + std::to_string(pid) + "/status", 1 << 20);
  if (!text.ok()) return 0;
  return ProcKbField(*text, "VmRSS:");
}

}  // namespace corral::supervisor
