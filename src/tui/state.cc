#include "tui/state.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace corral::tui {
namespace {

using nlohmann::json;

template <typename T>
T Val(const json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;  // a newer daemon's shape: show what we can
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The context size from a child's argv (-c N / --ctx-size N); 0 when not given.
uint32_t CtxFromArgv(const json& argv) {
  if (!argv.is_array()) return 0;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (!argv[i].is_string() || !argv[i + 1].is_string()) continue;
    const std::string a = argv[i].get<std::string>();
    if (a == "-c" || a == "--ctx-size") {
      try {
        return static_cast<uint32_t>(std::stoul(argv[i + 1].get<std::string>()));
      } catch (...) {
        return 0;
      }
    }
  }
  return 0;
}

}  // namespace

std::string SpecFromArgv(const json& argv) {
  if (!argv.is_array()) return "";
  std::string type;
  std::string draft;
  std::string per_step;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (!argv[i].is_string() || !argv[i + 1].is_string()) continue;
    const std::string& a = argv[i].get_ref<const std::string&>();
    const std::string& v = argv[i + 1].get_ref<const std::string&>();
    if (a == "--spec-type") type = v;
    if (a == "--spec-draft-model" || a == "-md" || a == "--model-draft") draft = v;
    if (a == "--spec-draft-n-max") per_step = v;
  }
  if ((type.empty() || type == "none") && draft.empty()) return "";
  if (type == "draft-mtp") return "MTP heads";
  if (!draft.empty()) {
    std::string file = draft.substr(draft.find_last_of('/') + 1);  // npos + 1 == 0
    return "draft " + file + (per_step.empty() ? "" : " (" + per_step + " per step)");
  }
  return type;
}

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int StateRank(const ModelRow& r) {
  if (!r.running) return 9;
  if (r.state == "ready") return 0;
  if (r.state == "loading" || r.state == "starting") return 1;
  if (r.state == "failed") return 2;
  return 3;
}

}  // namespace

std::string_view to_string(SortKey k) {
  switch (k) {
    case SortKey::kState: return "state";
    case SortKey::kName: return "name";
    case SortKey::kMemory: return "memory";
    case SortKey::kRequests: return "requests";
  }
  return "state";
}

std::string HumanBytes(uint64_t b) {
  char buf[32];
  const double d = static_cast<double>(b);
  if (b >= (1ULL << 30)) {
    std::snprintf(buf, sizeof buf, "%.1fG", d / (1ULL << 30));
  } else if (b >= (1ULL << 20)) {
    std::snprintf(buf, sizeof buf, "%.0fM", d / (1ULL << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%.0fK", d / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(b));
  }
  return buf;
}

std::string HumanDuration(int64_t s) {
  char buf[32];
  if (s < 0) s = 0;
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60));
  }
  return buf;
}

void DashState::SetDisconnected(const std::string& why) {
  connected_ = false;
  why_ = why;
}

void DashState::Apply(const control::FeedEvent& ev, int64_t now_ms) {
  using Type = control::FeedEvent::Type;
  switch (ev.type) {
    case Type::kHello: {
      const json& h = ev.body;
      connected_ = true;
      why_.clear();
      children_.clear();
      catalog_.clear();
      recent_.clear();  // the replayed history follows
      gauges_ = control::Gauges();
      json daemon = h.value("daemon", json::object());
      json proxy = h.value("proxy", json::object());
      json memory = h.value("memory", json::object());
      version_ = Val<std::string>(daemon, "version", "");
      pid_ = Val<int>(daemon, "pid", 0);
      proxy_url_ = Val<std::string>(proxy, "url", "");
      proxy_base_ = Val<std::string>(proxy, "base_url", "");
      budget_ = Val<uint64_t>(memory, "budget_bytes", 0);
      gauges_.budget_bytes = budget_;
      gauges_.reserved_bytes = Val<uint64_t>(memory, "reserved_bytes", 0);
      if (auto m = h.find("models"); m != h.end() && m->is_array()) {
        for (const auto& c : *m) {
          std::string name = Val<std::string>(c, "name", "");
          if (!name.empty()) children_[name] = c;
        }
      }
      if (auto c = h.find("catalog"); c != h.end() && c->is_array()) {
        for (const auto& e : *c) {
          if (e.is_object() && !Val<std::string>(e, "name", "").empty()) catalog_.push_back(e);
        }
      }
      return;
    }
    case Type::kModel: children_[Val<std::string>(ev.body, "name", "")] = ev.body; return;
    case Type::kGone:
      children_.erase(ev.name);
      recent_.erase(ev.name);
      return;
    case Type::kRequest: {
      ++requests_seen_;
      auto& q = recent_[ev.request.child.empty() ? ev.request.model : ev.request.child];
      q.push_back(ev.request);
      while (q.size() > kMaxRecentPerModel || (!q.empty() && q.front().ts_ms < now_ms - kWindowMs)) q.pop_front();
      return;
    }
    case Type::kGauges: gauges_ = ev.gauges; return;
    case Type::kLagged: lagged_ += ev.dropped; return;
    case Type::kUnknown: return;
  }
}

std::vector<ModelRow> DashState::Rows(int64_t now_ms, SortKey sort, const std::string& filter) const {
  std::vector<ModelRow> rows;
  std::map<std::string, bool> served;  // catalog names a child serves
  for (const auto& [name, c] : children_) {
    ModelRow r;
    r.name = name;
    r.model = Val<std::string>(c, "model", "");
    r.running = true;
    r.state = Val<std::string>(c, "state", "?");
    if (auto f = c.find("failure"); f != c.end() && f->is_object()) r.failure = Val<std::string>(*f, "message", "");
    if (r.state == "starting" || r.state == "loading") {
      r.loading_s = now_ms / 1000 - Val<int64_t>(c, "started_at", now_ms / 1000);
    }
    r.pid = Val<int>(c, "pid", -1);
    r.estimate_bytes = Val<uint64_t>(c, "reserved_bytes", 0);
    r.rss_bytes = Val<uint64_t>(c, "rss_bytes", 0);
    r.ctx = CtxFromArgv(c.value("argv", json::array()));
    r.detail = c;
    for (const auto& g : gauges_.models) {
      if (g.name != name) continue;
      r.in_flight = g.in_flight;
      r.pinned = g.pinned;
      r.ttl_left_s = g.ttl_left_s;
      r.requests = g.requests;
      if (g.rss_bytes != 0) r.rss_bytes = g.rss_bytes;
    }
    served[r.model] = true;
    rows.push_back(std::move(r));
  }
  for (const auto& e : catalog_) {
    ModelRow r;
    r.name = Val<std::string>(e, "name", "");
    if (served.contains(r.name)) {
      for (auto& row : rows) {  // the running child takes the catalog's context when argv has none
        if (row.model == r.name && row.ctx == 0) row.ctx = Val<uint32_t>(e, "context", 0);
      }
      continue;
    }
    r.model = r.name;
    r.state = "off";
    r.estimate_bytes = Val<uint64_t>(e, "size_bytes", 0);
    r.detail = e;
    rows.push_back(std::move(r));
  }
  for (auto& r : rows) {
    auto it = recent_.find(r.name);
    if (it == recent_.end()) continue;
    std::vector<double> tok, ttft;
    for (const auto& q : it->second) {
      if (q.ts_ms < now_ms - kWindowMs) continue;
      if (q.tok_s > 0) tok.push_back(q.tok_s);
      if (q.ttft_ms >= 0) ttft.push_back(q.ttft_ms);
    }
    r.tok_s_p50 = Median(tok);
    r.ttft_p50 = Median(ttft);
  }
  if (!filter.empty()) {
    const std::string f = Lower(filter);
    std::erase_if(rows, [&](const ModelRow& r) { return Lower(r.name).find(f) == std::string::npos; });
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const ModelRow& a, const ModelRow& b) {
    if (a.running != b.running) return a.running;
    switch (sort) {
      case SortKey::kState:
        if (StateRank(a) != StateRank(b)) return StateRank(a) < StateRank(b);
        break;
      case SortKey::kName: break;
      case SortKey::kMemory:
        if (a.estimate_bytes != b.estimate_bytes) return a.estimate_bytes > b.estimate_bytes;
        break;
      case SortKey::kRequests:
        if (a.requests != b.requests) return a.requests > b.requests;
        break;
    }
    return a.name < b.name;
  });
  return rows;
}

}  // namespace corral::tui
