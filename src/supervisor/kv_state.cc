#include "supervisor/kv_state.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "common/fs.h"

namespace corral::supervisor {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxResponseBytes = size_t{1} << 20;  // /slots answers are small; more is refused
constexpr uint64_t kMaxIndexBytes = uint64_t{64} * 1024;
constexpr int kMaxSlots = 256;

uint64_t Fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t HashPieces(const std::vector<std::string>& pieces) {
  uint64_t h = 14695981039346656037ULL;
  for (const auto& p : pieces) {
    h = Fnv1a(h, p);
    h = Fnv1a(h, std::string_view("\0", 1));  // "ab","c" differs from "a","bc"
  }
  return h;
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

bool PassesSlotSavePath(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--slot-save-path" || a.starts_with("--slot-save-path=");
  });
}

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1:port with Connection: close, everything before `deadline`.
Result<HttpAnswer> LoopbackHttp(int port, const std::string& method, const std::string& target, const std::string& body,
                                SteadyClock::time_point deadline) {
  auto left_ms = [&]() -> int {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
  };
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    return IoError(std::string("connect: ") + std::strerror(errno));
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty()) {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  size_t sent = 0;
  while (sent < request.size()) {
    pollfd p{fd, POLLOUT, 0};
    int left = left_ms();
    if (left == 0 || ::poll(&p, 1, left) <= 0) return Status(StatusCode::kTimeout, "no answer in time (sending)");
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return IoError(std::string("send: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[16384];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int left = left_ms();
    if (left == 0 || ::poll(&p, 1, left) <= 0) return Status(StatusCode::kTimeout, "no answer in time");
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return IoError(std::string("recv: ") + std::strerror(errno));
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxResponseBytes) return Corrupt("answer larger than 1 MiB");
  }
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos || !in.starts_with("HTTP/1.") || in.size() < 12) {
    return Corrupt("not an HTTP answer");
  }
  HttpAnswer a;
  for (size_t i = 9; i < 12; ++i) {
    if (std::isdigit(static_cast<unsigned char>(in[i])) == 0) return Corrupt("bad HTTP status line");
    a.status = a.status * 10 + (in[i] - '0');
  }
  std::string head = in.substr(0, head_end);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  a.body = in.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    std::string plain;
    size_t pos = 0;
    while (pos < a.body.size()) {
      size_t eol = a.body.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = 0;
      try {
        len = std::stoul(a.body.substr(pos, eol - pos), nullptr, 16);
      } catch (...) {
        return Corrupt("bad chunk size");
      }
      if (len == 0 || eol + 2 + len > a.body.size()) break;
      plain.append(a.body, eol + 2, len);
      pos = eol + 2 + len + 2;
    }
    a.body = std::move(plain);
  }
  return a;
}

Result<json> PostJson(int port, const std::string& target, const json& body, SteadyClock::time_point deadline) {
  CORRAL_ASSIGN_OR_RETURN(HttpAnswer a, LoopbackHttp(port, "POST", target, body.dump(), deadline));
  json j = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
  if (a.status != 200) {
    std::string why = "HTTP " + std::to_string(a.status);
    if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string()) {
      why += ": " + j["error"]["message"].get<std::string>();
    }
    return Unavailable(why);
  }
  if (!j.is_object()) return Corrupt("the answer is not a JSON object");
  return j;
}

uint64_t JsonU64(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer()) return 0;
  int64_t v = j[key].get<int64_t>();
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

std::string SlotFile(int id) {
  return "slot-" + std::to_string(id) + ".bin";
}

struct Index {
  std::string model;
  int64_t saved_at = 0;
  std::vector<int> slots;
};

std::optional<Index> ReadIndex(const std::string& dir) {
  auto text = ReadFileBounded(dir + "/" + kKvIndexFile, kMaxIndexBytes);
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("slots") || !j["slots"].is_array()) return std::nullopt;
  Index idx;
  if (j.contains("model") && j["model"].is_string()) idx.model = j["model"].get<std::string>();
  if (j.contains("saved_at") && j["saved_at"].is_number_integer()) idx.saved_at = j["saved_at"].get<int64_t>();
  for (const auto& s : j["slots"]) {
    if (!s.is_object() || !s.contains("id") || !s["id"].is_number_integer()) continue;
    int64_t id = s["id"].get<int64_t>();
    if (id < 0 || id >= kMaxSlots) continue;
    idx.slots.push_back(static_cast<int>(id));
    if (idx.slots.size() >= static_cast<size_t>(kMaxSlots)) break;
  }
  return idx;
}

uint64_t DirBytes(const std::filesystem::path& dir) {
  uint64_t sum = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (it->is_regular_file(sec)) sum += it->file_size(sec);
  }
  return sum;
}

}  // namespace

std::string KvModelKey(const std::string& model_path) {
  return Hex16(HashPieces({"model", model_path}));
}

bool KvKeeps(const LaunchSpec& spec) {
  return !spec.kv_root.empty() && !PassesSlotSavePath(spec.preset_args) && !PassesSlotSavePath(spec.raw_args);
}

std::string KvDirFor(const std::string& llama_server, const LaunchSpec& spec) {
  if (!KvKeeps(spec)) return "";
  std::vector<std::string> pieces = {"engine", llama_server, "model", spec.model_path};
  struct stat st {};
  if (::stat(spec.model_path.c_str(), &st) == 0) {
    pieces.push_back(std::to_string(st.st_size));
    pieces.push_back(std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  } else {
    pieces.push_back(std::to_string(spec.model_bytes));
  }
  pieces.push_back("ctx");
  pieces.push_back(std::to_string(spec.ctx));
  pieces.emplace_back("args");
  pieces.insert(pieces.end(), spec.preset_args.begin(), spec.preset_args.end());
  pieces.emplace_back("raw");
  pieces.insert(pieces.end(), spec.raw_args.begin(), spec.raw_args.end());
  // A readable prefix (the model's name, filtered to safe characters) and the identity.
  std::string label;
  for (char c : spec.model.empty() ? spec.name : spec.model) {
    if (label.size() >= 48) break;
    label += std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-' ? c : '_';
  }
  if (label.empty() || label[0] == '.') label = "model" + label;
  return spec.kv_root + "/" + label + "-" + Hex16(HashPieces(pieces));
}

Result<int> PrepareKvDir(const std::string& root, const std::string& dir, const std::string& model_path) {
  CORRAL_RETURN_IF_ERROR(MakeDirs(root, 0700));
  CORRAL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const std::string model = KvModelKey(model_path);
  const std::filesystem::path mine = std::filesystem::path(dir).lexically_normal();
  int deleted = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dec;
    if (!it->is_directory(dec) || it->path().lexically_normal() == mine) continue;
    auto idx = ReadIndex(it->path().string());
    if (!idx || idx->model != model) continue;
    std::filesystem::remove_all(it->path(), dec);  // the file or the argv changed: the state is stale
    if (!dec) ++deleted;
  }
  return deleted;
}

KvResult SaveKvState(int port, const std::string& dir, const std::string& model_path,
                     std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  KvResult r;
  // The old index goes first: a save cut short must not leave an index naming a file half
  // rewritten.
  const std::string index_path = dir + "/" + kKvIndexFile;
  std::error_code ec;
  std::filesystem::remove(index_path, ec);
  auto slots = LoopbackHttp(port, "GET", "/slots", "", deadline);
  if (!slots.ok()) {
    r.error = "GET /slots: " + slots.status().message();
    return r;
  }
  json list = json::parse(slots->body, nullptr, /*allow_exceptions=*/false);
  if (slots->status != 200 || !list.is_array()) {
    r.error = "GET /slots: HTTP " + std::to_string(slots->status);
    return r;
  }
  json saved = json::array();
  std::set<std::string> keep;
  for (const auto& s : list) {
    if (!s.is_object() || !s.contains("id") || !s["id"].is_number_integer()) continue;
    const int64_t id = s["id"].get<int64_t>();
    // Only slots that served something hold tokens ("busy recently"); the rest have nothing.
    if (id < 0 || id >= kMaxSlots || JsonU64(s, "n_prompt_tokens") == 0) continue;
    const std::string file = SlotFile(static_cast<int>(id));
    auto answer = PostJson(port, "/slots/" + std::to_string(id) + "?action=save", {{"filename", file}}, deadline);
    if (!answer.ok()) {
      if (r.error.empty()) r.error = "slot " + std::to_string(id) + ": " + answer.status().message();
      if (answer.status().code() == StatusCode::kTimeout) break;
      continue;
    }
    const uint64_t tokens = JsonU64(*answer, "n_saved");
    const uint64_t bytes = JsonU64(*answer, "n_written");
    if (tokens == 0) continue;
    ::chmod((dir + "/" + file).c_str(), 0600);  // llama-server creates it with the daemon's umask
    keep.insert(file);
    saved.push_back({{"id", id}, {"file", file}, {"tokens", tokens}, {"bytes", bytes}});
    ++r.slots;
    r.tokens += tokens;
    r.bytes += bytes;
  }
  // Files of slots not saved this time (a timeout, a slot that is empty now) are stale.
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name != kKvIndexFile && keep.count(name) == 0) {
      std::error_code rec;
      std::filesystem::remove(it->path(), rec);
    }
  }
  if (r.slots == 0) return r;
  // The index: ids, file names and counts; the model path only as a hash; no prompt text.
  const json index = {{"version", 1},
                      {"model", KvModelKey(model_path)},
                      {"saved_at", static_cast<int64_t>(std::time(nullptr))},
                      {"slots", saved}};
  if (Status s = WriteFileAtomic(index_path, index.dump(), 0600); !s.ok() && r.error.empty()) {
    r.error = "index: " + s.message();
  }
  return r;
}

KvResult RestoreKvState(int port, const std::string& dir, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  KvResult r;
  auto idx = ReadIndex(dir);
  if (!idx) return r;  // nothing saved (or an index that does not parse: nothing to trust)
  for (int id : idx->slots) {
    auto answer =
        PostJson(port, "/slots/" + std::to_string(id) + "?action=restore", {{"filename", SlotFile(id)}}, deadline);
    if (!answer.ok()) {
      if (r.error.empty()) r.error = "slot " + std::to_string(id) + ": " + answer.status().message();
      if (answer.status().code() == StatusCode::kTimeout) break;
      continue;
    }
    ++r.slots;
    r.tokens += JsonU64(*answer, "n_restored");
    r.bytes += JsonU64(*answer, "n_read");
  }
  return r;
}

uint64_t KvBytesUsed(const std::string& root) {
  uint64_t sum = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dec;
    if (it->is_directory(dec)) sum += DirBytes(it->path());
  }
  return sum;
}

int EnforceKvBudget(const std::string& root, uint64_t budget_bytes, const std::string& keep) {
  struct Entry {
    bool keep = false;
    int64_t saved_at = 0;
    uint64_t bytes = 0;
    std::filesystem::path path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  const std::filesystem::path kept = std::filesystem::path(keep).lexically_normal();
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code dec;
    if (!it->is_directory(dec)) continue;
    Entry e;
    e.path = it->path();
    e.keep = !keep.empty() && e.path.lexically_normal() == kept;
    auto idx = ReadIndex(e.path.string());
    e.saved_at = idx ? idx->saved_at : 0;  // no index: nothing restorable, first to go
    e.bytes = DirBytes(e.path);
    total += e.bytes;
    entries.push_back(std::move(e));
    if (entries.size() > 100000) break;  // a bound on a directory someone filled by hand
  }
  // Oldest first; the one just saved last; ties by name so the order is stable.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.keep != b.keep) return !a.keep;
    if (a.saved_at != b.saved_at) return a.saved_at < b.saved_at;
    return a.path < b.path;
  });
  int deleted = 0;
  for (const auto& e : entries) {
    if (total <= budget_bytes) break;
    if (e.bytes == 0 && ReadIndex(e.path.string())) continue;
    std::error_code rec;
    std::filesystem::remove_all(e.path, rec);
    if (rec) continue;
    total -= std::min(total, e.bytes);
    ++deleted;
  }
  return deleted;
}

}  // namespace corral::supervisor
