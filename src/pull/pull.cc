#include "pull/pull.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs.h"
#include "common/interrupt.h"
#include "pull/hub_cache.h"

namespace corral::pull {
namespace {

constexpr uint64_t kSpaceMarginBytes = 1u << 20;  // headroom beyond the bytes still to fetch
constexpr int kMaxListingPages = 100;

std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e != nullptr ? e : "";
  curl_free(e);
  return out;
}

// "a/b c.gguf" → "a/b%20c.gguf": each component escaped, the slashes kept.
std::string EscapePath(const std::string& path) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    out += Escape(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

// rel="next" from a Link header: `<https://...>; rel="next"`.
std::string NextLink(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("link");
  if (it == headers.end()) return {};
  const std::string& v = it->second;
  const size_t rel = v.find("rel=\"next\"");
  if (rel == std::string::npos) return {};
  const size_t open = v.rfind('<', rel);
  const size_t close = v.find('>', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos || close > rel) return {};
  return v.substr(open + 1, close - open - 1);
}

// Offline: what the cache has for `commit` stands in for the listing.
Result<std::vector<RemoteFile>> ListSnapshot(const HubRepoCache& cache, const std::string& commit) {
  const std::string root = cache.dir() + "/snapshots/" + commit;
  std::vector<RemoteFile> out;
  std::vector<std::string> stack = {""};
  while (!stack.empty() && out.size() < kMaxListingEntries) {
    const std::string rel = stack.back();
    stack.pop_back();
    DIR* d = ::opendir((root + (rel.empty() ? "" : "/" + rel)).c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string r = rel.empty() ? name : rel + "/" + name;
      const std::string full = root + "/" + r;
      struct stat st {};
      if (::stat(full.c_str(), &st) != 0) continue;  // a broken link: not there
      if (S_ISDIR(st.st_mode)) {
        if (stack.size() < 64) stack.push_back(r);
        continue;
      }
      RemoteFile f;
      f.path = r;
      f.size = static_cast<uint64_t>(st.st_size);
      char target[4096];
      const ssize_t n = ::readlink(full.c_str(), target, sizeof(target) - 1);
      if (n > 0) {
        const std::string t(target, static_cast<size_t>(n));
        f.sha256 = t.substr(t.rfind('/') + 1);
      }
      out.push_back(std::move(f));
    }
    ::closedir(d);
  }
  if (out.empty()) return NotFound("no files of commit " + commit + " in " + cache.dir());
  return out;
}

Result<std::string> FetchJson(HttpClient& http, const std::string& url, const std::string& what) {
  CORRAL_ASSIGN_OR_RETURN(HttpAnswer a, http.Get(url));
  if (a.status != 200) return HttpError(a.status, a.headers, a.body, what);
  return std::move(a.body);
}

// Asks the hub's search for repos named like `repo` (for a 404's "did you mean").
std::string DidYouMean(HttpClient& http, const std::string& endpoint, const std::string& repo) {
  const std::string name = repo.substr(repo.find('/') + 1);
  auto a = http.Get(endpoint + "/api/models?limit=5&search=" + Escape(name), 1 << 20);
  if (!a.ok() || a->status != 200) return {};
  nlohmann::json j = nlohmann::json::parse(a->body, nullptr, false);
  if (!j.is_array()) return {};
  std::string out;
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("id") || !m["id"].is_string()) continue;
    const std::string id = m["id"].get<std::string>();
    if (!ValidRepoId(id) || id == repo) continue;
    out += (out.empty() ? "; did you mean: " : ", ") + id;
  }
  return out;
}

// One file into blobs/SHA (verified), resuming what is there; retries cuts and stalls.
Status FetchBlob(HttpClient& http, const PullOptions& o, const HubRepoCache& cache, const std::string& url,
                 const RemoteFile& f, const EventFn& on_event, uint64_t& downloaded) {
  if (cache.HasBlob(f.sha256)) {
    if (FileSize(cache.BlobPath(f.sha256)) == f.size) {
      on_event({PullEvent::Kind::kFileDone, f.path, f.sha256, f.size, f.size, "cached"});
      return Status::Ok();
    }
    ::unlink(cache.BlobPath(f.sha256).c_str());  // a blob of the wrong size is not that blob
  }
  FileLock lock;
  CORRAL_RETURN_IF_ERROR(lock.TryLock(cache.LockPath(f.sha256)));
  const std::string part = cache.IncompletePath(f.sha256);
  on_event({PullEvent::Kind::kFileStart, f.path, f.sha256, FileSize(part), f.size, ""});
  auto delay = o.retry_delay;
  for (int attempt = 0;; ++attempt) {
    const uint64_t before = FileSize(part);
    auto r = http.Download(url, part, f.size, [&](uint64_t done, uint64_t total) {
      on_event({PullEvent::Kind::kProgress, f.path, f.sha256, done, total, ""});
    });
    const uint64_t after = FileSize(part);
    if (after > before) downloaded += after - before;
    if (!r.ok()) {
      const StatusCode code = r.status().code();
      const bool retry =
          (code == StatusCode::kUnavailable || code == StatusCode::kTimeout) && attempt < o.retries && !Interrupted();
      if (code == StatusCode::kResourceExhausted || code == StatusCode::kCorrupt) {
        ::unlink(part.c_str());  // a full disk wants its space back; a bad range starts over
      }
      if (!retry) return r.status().WithContext(f.path);
      on_event({PullEvent::Kind::kRetry, f.path, f.sha256, after, f.size, r.status().message()});
      std::this_thread::sleep_for(delay);
      delay *= 2;
      continue;
    }
    if (r->sha256 != f.sha256) {
      ::unlink(part.c_str());
      return Status(StatusCode::kCorrupt, f.path + ": sha256 mismatch: the listing says " + f.sha256 +
                                              ", the bytes received hash to " + r->sha256 +
                                              "; the download was removed (nothing was added to the cache)");
    }
    break;
  }
  const std::string blob = cache.BlobPath(f.sha256);
  if (::rename(part.c_str(), blob.c_str()) != 0) return ErrnoError("renaming " + part, errno);
  SyncDir(cache.dir() + "/blobs");
  on_event({PullEvent::Kind::kFileDone, f.path, f.sha256, f.size, f.size, ""});
  return Status::Ok();
}

}  // namespace

std::string DefaultEndpoint() {
  const char* e = std::getenv("HF_ENDPOINT");
  std::string s = (e != nullptr && *e != '\0') ? e : "https://huggingface.co";
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

Result<PullResult> Pull(const PullRef& ref, const PullOptions& o, const EventFn& on_event) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!ValidRepoId(ref.repo)) return InvalidArgument("'" + ref.repo + "' is not a valid owner/repo");
  if (!ValidRevision(o.revision)) return InvalidArgument("'" + o.revision + "' is not a valid revision");
  HubRepoCache cache(o.hub_dir, ref.repo);
  PullResult result;
  result.repo = ref.repo;
  std::vector<RemoteFile> files;
  HttpClient http(o.http);
  if (o.offline) {
    if (ValidCommit(o.revision)) {
      result.commit = o.revision;
    } else {
      auto c = cache.ReadRef(o.revision);
      if (!c.ok()) {
        return NotFound(ref.repo + " (" + o.revision + ") is not in the cache at " + o.hub_dir +
                        " and --offline forbids fetching it");
      }
      result.commit = *c;
    }
    if (!ValidCommit(result.commit)) return Corrupt(cache.dir() + "/refs/" + o.revision + " does not hold a commit");
    CORRAL_ASSIGN_OR_RETURN(files, ListSnapshot(cache, result.commit));
  } else {
    if (o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0) {
      return InvalidArgument("the endpoint '" + o.endpoint + "' is not an http(s) URL (HF_ENDPOINT)");
    }
    const std::string api = o.endpoint + "/api/models/" + ref.repo;
    auto rev_json = FetchJson(http, api + "/revision/" + EscapePath(o.revision), "repo " + ref.repo);
    if (!rev_json.ok()) {
      if (rev_json.status().code() == StatusCode::kNotFound) {
        return NotFound(rev_json.status().message() + " (check the name and the revision '" + o.revision + "'" +
                        DidYouMean(http, o.endpoint, ref.repo) + ")");
      }
      return rev_json.status();
    }
    CORRAL_ASSIGN_OR_RETURN(RevisionInfo rev, ParseRevision(*rev_json));
    result.commit = rev.commit;
    std::string url = api + "/tree/" + rev.commit + "?recursive=true";
    const std::string host = UrlHost(o.endpoint);
    for (int page = 0; !url.empty(); ++page) {
      if (page >= kMaxListingPages)
        return Corrupt("file listing: more than " + std::to_string(kMaxListingPages) + " pages");
      CORRAL_ASSIGN_OR_RETURN(HttpAnswer a, http.Get(url));
      if (a.status != 200) return HttpError(a.status, a.headers, a.body, "listing " + ref.repo);
      CORRAL_ASSIGN_OR_RETURN(std::vector<RemoteFile> more, ParseTree(a.body));
      files.insert(files.end(), more.begin(), more.end());
      if (files.size() > kMaxListingEntries) return Corrupt("file listing: too many files");
      url = NextLink(a.headers);
      if (!url.empty() && UrlHost(url) != host) url.clear();  // pages stay on the endpoint
    }
  }
  CORRAL_ASSIGN_OR_RETURN(Selection sel, Choose(ref, files, o.budget_bytes, o.with_mmproj));
  result.quant = sel.model.quant;
  std::vector<RemoteFile> wanted = sel.model.files;
  wanted.insert(wanted.end(), sel.mmproj.begin(), sel.mmproj.end());
  for (const auto& f : wanted) {
    result.total_bytes += f.size;
    if (f.sha256.empty() && !o.offline) {
      return Status(StatusCode::kFailedPrecondition,
                    f.path + " is not stored in LFS, so the listing gives no sha256 to verify it; not pulled");
    }
  }
  {
    std::string msg = (sel.model.quant.empty() ? sel.model.name : sel.model.quant) + ", " +
                      std::to_string(sel.model.files.size()) + " file(s)" + (sel.mmproj.empty() ? "" : " + mmproj") +
                      ", " + Mib(result.total_bytes);
    for (const auto& n : sel.notes) msg += "; " + n;
    on_event(
        {PullEvent::Kind::kResolved, ref.repo + "@" + result.commit.substr(0, 12), "", 0, result.total_bytes, msg});
  }
  if (o.offline) {
    for (const auto& f : sel.model.files) result.files.push_back(cache.SnapshotPath(result.commit, f.path));
    if (!sel.mmproj.empty()) result.mmproj = cache.SnapshotPath(result.commit, sel.mmproj.front().path);
    return result;
  }
  CORRAL_RETURN_IF_ERROR(cache.Prepare());
  uint64_t needed = 0;
  for (const auto& f : wanted) {
    if (!cache.HasBlob(f.sha256)) {
      const uint64_t have = FileSize(cache.IncompletePath(f.sha256));
      needed += f.size > have ? f.size - have : 0;
    }
  }
  if (needed > 0) {
    CORRAL_ASSIGN_OR_RETURN(uint64_t free_bytes, FreeBytes(cache.dir() + "/blobs"));
    if (free_bytes < needed + kSpaceMarginBytes) {
      return Status(StatusCode::kResourceExhausted, "not enough disk space in " + o.hub_dir + ": the download needs " +
                                                        Mib(needed) + ", " + Mib(free_bytes) +
                                                        " are free (set HF_HUB_CACHE to a bigger disk)");
    }
  }
  for (const auto& f : wanted) {
    const std::string url = o.endpoint + "/" + ref.repo + "/resolve/" + result.commit + "/" + EscapePath(f.path);
    CORRAL_RETURN_IF_ERROR(FetchBlob(http, o, cache, url, f, on_event, result.downloaded_bytes));
  }
  for (const auto& f : wanted) CORRAL_RETURN_IF_ERROR(cache.LinkSnapshot(result.commit, f.path, f.sha256));
  CORRAL_RETURN_IF_ERROR(cache.WriteRef(o.revision, result.commit));
  for (const auto& f : sel.model.files) result.files.push_back(cache.SnapshotPath(result.commit, f.path));
  if (!sel.mmproj.empty()) result.mmproj = cache.SnapshotPath(result.commit, sel.mmproj.front().path);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace corral::pull
