#include "bench/sse.h"

#include <nlohmann/json.hpp>

namespace corral::bench {

namespace {
constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
}

Status SseParser::Feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event) {
  if (failed_) return Status(StatusCode::kFailedPrecondition, "event stream parser already failed");
  size_t i = 0;
  // Skip a UTF-8 byte order mark at the very start, even when split across reads.
  while (at_start_ && i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) == kBom[bom_matched_]) {
      ++bom_matched_;
      ++i;
      if (bom_matched_ == sizeof(kBom)) at_start_ = false;
      continue;
    }
    // Not a BOM: the bytes matched so far were content (cannot happen for valid UTF-8 text
    // other than a BOM, but keep them rather than drop them).
    line_.append(reinterpret_cast<const char*>(kBom), bom_matched_);
    at_start_ = false;
  }
  while (i < bytes.size()) {
    const char c = bytes[i];
    if (c == '\n' && after_cr_) {  // the LF of a CRLF split from its CR, or right after it
      after_cr_ = false;
      ++i;
      continue;
    }
    after_cr_ = false;
    // Take a run of ordinary bytes at once.
    size_t end = bytes.find_first_of("\r\n", i);
    if (end == std::string_view::npos) end = bytes.size();
    if (end > i) {
      if (line_.size() + (end - i) > max_line_bytes_) {
        failed_ = true;
        return Status(StatusCode::kResourceExhausted,
                      "event stream line longer than " + std::to_string(max_line_bytes_) + " bytes");
      }
      line_.append(bytes.data() + i, end - i);
      i = end;
      continue;
    }
    // c is CR or LF: the line ends.
    after_cr_ = (c == '\r');
    ++i;
    Status st = Line(line_, on_event);
    line_.clear();
    if (!st.ok()) {
      failed_ = true;
      return st;
    }
  }
  return Status::Ok();
}

Status SseParser::Line(std::string_view line, const std::function<void(const SseEvent&)>& on_event) {
  if (line.empty()) {  // dispatch
    if (has_data_) {
      ++events_;
      on_event(pending_);
    }
    pending_.event.clear();
    pending_.data.clear();
    has_data_ = false;
    return Status::Ok();
  }
  if (line.front() == ':') {
    ++comments_;
    return Status::Ok();
  }
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (pending_.data.size() + value.size() + 1 > max_event_bytes_) {
      return Status(StatusCode::kResourceExhausted,
                    "event stream event larger than " + std::to_string(max_event_bytes_) + " bytes");
    }
    if (has_data_) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) pending_.id.assign(value);
  }
  // `retry` and unknown fields are ignored, as the specification says.
  return Status::Ok();
}

namespace {

std::optional<int64_t> IntField(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  if (it->is_number_integer() || it->is_number_unsigned()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (v >= -9.0e18 && v <= 9.0e18) return static_cast<int64_t>(v);  // finite and in range
  }
  return std::nullopt;
}

double NumberField(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

ChatChunk InterpretChatChunk(std::string_view data) {
  ChatChunk out;
  std::string_view trimmed = data;
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n')) trimmed.remove_suffix(1);
  if (trimmed == "[DONE]") {
    out.kind = ChatChunk::Kind::kDone;
    return out;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception&) {  // module edge: nlohmann may still throw (e.g. bad_alloc)
    return out;
  }
  if (!j.is_object()) return out;  // discarded (parse error) or not an object: malformed
  out.kind = ChatChunk::Kind::kJson;
  if (auto e = j.find("error"); e != j.end()) {
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
      out.error = (*e)["message"].get<std::string>();
    } else if (e->is_string()) {
      out.error = e->get<std::string>();
    } else {
      out.error = e->dump();
    }
  }
  if (auto ch = j.find("choices"); ch != j.end() && ch->is_array() && !ch->empty() && (*ch)[0].is_object()) {
    const auto& c0 = (*ch)[0];
    if (auto d = c0.find("delta"); d != c0.end() && d->is_object()) {
      for (const char* key : {"reasoning_content", "content"}) {
        if (auto t = d->find(key); t != d->end() && t->is_string()) out.content += t->get<std::string>();
      }
    }
    if (auto fr = c0.find("finish_reason"); fr != c0.end() && fr->is_string()) out.has_finish_reason = true;
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    out.prompt_tokens = IntField(*u, "prompt_tokens");
    out.completion_tokens = IntField(*u, "completion_tokens");
  }
  if (auto t = j.find("timings"); t != j.end() && t->is_object()) {
    out.has_timings = true;
    out.timings_prompt_n = NumberField(*t, "prompt_n");
    out.timings_prompt_ms = NumberField(*t, "prompt_ms");
    out.timings_predicted_n = NumberField(*t, "predicted_n");
    out.timings_predicted_ms = NumberField(*t, "predicted_ms");
    if (const auto cached = IntField(*t, "cache_n"); cached && *cached >= 0) out.timings_cache_n = *cached;
    const auto drafted = IntField(*t, "draft_n"), accepted = IntField(*t, "draft_n_accepted");
    if (drafted && accepted && *accepted >= 0 && *accepted <= *drafted) {
      out.timings_draft_n = *drafted;
      out.timings_draft_accepted = *accepted;
    }
  }
  return out;
}

}  // namespace corral::bench
