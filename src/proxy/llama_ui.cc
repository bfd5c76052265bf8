#include "proxy/llama_ui.h"

#include <openssl/evp.h>

#include <array>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "common/fs.h"

namespace corral::proxy {
namespace {

namespace fs = std::filesystem;

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string Base64(const std::array<unsigned char, 32>& digest) {
  std::array<unsigned char, 48> out{};  // 4 * ceil(32 / 3) + NUL
  const int n = EVP_EncodeBlock(out.data(), digest.data(), static_cast<int>(digest.size()));
  return {reinterpret_cast<const char*>(out.data()), static_cast<size_t>(n)};
}

std::string Etag(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto digest = Sha256(bytes);
  std::string out = "\"";
  for (size_t i = 0; i < 16; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out + "\"";
}

// A file name the table keeps: the characters a built UI uses; nothing hidden, no "..".
bool SafeRelativePath(std::string_view rel) {
  if (rel.empty() || rel.size() > 512 || rel.find("..") != std::string_view::npos) return false;
  char prev = '/';
  for (char c : rel) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-' || c == '/' || c == '@' || c == '+' || c == '~';
    if (!ok || (prev == '/' && c == '.')) return false;
    prev = c;
  }
  return true;
}

// The CSP of the stock UI. Scripts: its own files plus the inline bootstrap of index.html,
// by hash (never 'unsafe-inline'); Svelte sets style attributes, so inline styles are allowed
// (they cannot run code). Connections: this origin only (its API is Corral's). Workers: its
// own service worker and blob: ones (pdf.js, the code sandbox). Images: also data: and blob:
// (pasted and attached images).
std::string SecurityFields(const std::vector<std::string>& script_hashes) {
  std::string script_src = "'self' 'wasm-unsafe-eval'";
  for (const auto& h : script_hashes) script_src += " " + h;
  return "Content-Security-Policy: default-src 'self'; script-src " + script_src +
         "; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
         "connect-src 'self'; worker-src 'self' blob:; media-src 'self' data: blob:; object-src 'none'; "
         "base-uri 'self'; form-action 'none'; frame-ancestors 'none'\r\n"
         "X-Content-Type-Options: nosniff\r\n"
         "X-Frame-Options: DENY\r\n"
         "Referrer-Policy: no-referrer\r\n"
         "Cross-Origin-Resource-Policy: same-origin\r\n";
}

}  // namespace

std::string_view LlamaUiContentType(std::string_view path) {
  struct Type {
    std::string_view ext, type;
  };
  static constexpr Type kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".jpg", "image/jpeg"},
      {".webp", "image/webp"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".ttf", "font/ttf"},
      {".wasm", "application/wasm"},
      {".txt", "text/plain; charset=utf-8"},
      {".md", "text/markdown; charset=utf-8"},
      {".map", "application/json"},
  };
  for (const auto& t : kTypes) {
    if (path.ends_with(t.ext)) return t.type;
  }
  return "application/octet-stream";
}

std::vector<std::string> InlineScriptHashes(std::string_view html) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = html.find("<script", at)) != std::string_view::npos) {
    const size_t tag_end = html.find('>', at);
    if (tag_end == std::string_view::npos) break;
    const std::string_view tag = html.substr(at, tag_end - at);
    const size_t close = html.find("</script>", tag_end);
    if (close == std::string_view::npos) break;
    if (tag.find(" src=") == std::string_view::npos) {
      out.push_back("'sha256-" + Base64(Sha256(html.substr(tag_end + 1, close - tag_end - 1))) + "'");
    }
    at = close;
  }
  return out;
}

Result<std::shared_ptr<const LlamaUi>> LlamaUi::Load(const std::string& dir) {
  auto ui = std::make_shared<LlamaUi>();
  ui->dir_ = dir;
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(dir) / "index.html", ec)) {
    return InvalidArgument("llama_ui: " + dir + " holds no index.html (build it with `make llama-ui`)");
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;  // symlinks are never followed
    const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    if (ec || !SafeRelativePath(rel)) continue;
    if (ui->files_.size() >= kLlamaUiMaxFiles) {
      return InvalidArgument("llama_ui: " + dir + " has more than " + std::to_string(kLlamaUiMaxFiles) + " files");
    }
    CORRAL_ASSIGN_OR_RETURN(std::string bytes, ReadFileBounded(it->path().string(), kLlamaUiMaxFileBytes));
    ui->total_bytes_ += bytes.size();
    if (ui->total_bytes_ > kLlamaUiMaxTotalBytes) {
      return InvalidArgument("llama_ui: " + dir + " holds more than " + std::to_string(kLlamaUiMaxTotalBytes >> 20) +
                             " MiB");
    }
    LlamaUiFile f{std::string(LlamaUiContentType(rel)), Etag(bytes), std::move(bytes)};
    ui->files_.emplace("/" + rel, std::move(f));
  }
  if (ec) return InvalidArgument("llama_ui: reading " + dir + ": " + ec.message());
  const auto index = ui->files_.find("/index.html");
  if (index == ui->files_.end()) return InvalidArgument("llama_ui: " + dir + "/index.html could not be read");
  ui->security_fields_ = SecurityFields(InlineScriptHashes(index->second.bytes));
  return std::shared_ptr<const LlamaUi>(std::move(ui));
}

const LlamaUiFile* LlamaUi::Find(std::string_view target) const {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path == "/") path = "/index.html";
  const auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

LlamaUiTarget ClassifyLlamaUi(const LlamaUi& ui, std::string_view target) {
  LlamaUiTarget out;
  if (!target.starts_with(kLlamaUiPrefix)) return out;
  std::string_view rest = target.substr(kLlamaUiPrefix.size());
  if (rest.empty() || rest[0] == '?') {
    out.kind = LlamaUiTarget::Kind::kRedirect;
    return out;
  }
  if (rest[0] != '/') return out;  // "/llamafoo": not ours
  out.file = ui.Find(rest);
  if (out.file != nullptr) {
    out.kind = LlamaUiTarget::Kind::kFile;
    return out;
  }
  out.kind = LlamaUiTarget::Kind::kApi;
  out.api_target = std::string(rest);
  return out;
}

}  // namespace corral::proxy
