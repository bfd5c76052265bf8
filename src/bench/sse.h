// Server-sent events (text/event-stream) parsing for the bench load client, and the
// interpretation of one OpenAI chat-completion chunk.
//
// SseParser is incremental: bytes arrive in arbitrary pieces (an event, a line, even a CRLF
// may be split across reads) and every complete event is handed to a callback. It follows
// the WHATWG event-stream rules: lines end in LF, CRLF or CR; a line starting with ':' is a
// comment; "field: value" drops one space after the colon; `data` lines are joined with
// '\n'; an empty line dispatches the event; a leading UTF-8 BOM is skipped. Sizes are
// bounded (max_line_bytes, max_event_bytes) so a hostile server cannot make it allocate
// without limit.
//
// Thread-safety: a parser belongs to one stream on one thread. Ownership: plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral::bench {

struct SseEvent {
  std::string event;  // the `event:` field; "" means the default "message"
  std::string data;   // the `data:` lines joined with '\n'
  std::string id;     // the last `id:` field seen
};

class SseParser {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 1 << 20;
  static constexpr size_t kDefaultMaxEventBytes = 4 << 20;

  explicit SseParser(size_t max_line_bytes = kDefaultMaxLineBytes, size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_line_bytes_(max_line_bytes), max_event_bytes_(max_event_bytes) {}

  // Feeds the next bytes of the stream. Calls `on_event` for each event completed by them.
  // After an error the parser stays failed and ignores further input.
  Status Feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event);

  // Events dispatched so far and comment lines seen so far.
  uint64_t events() const { return events_; }
  uint64_t comments() const { return comments_; }

 private:
  Status Line(std::string_view line, const std::function<void(const SseEvent&)>& on_event);

  size_t max_line_bytes_;
  size_t max_event_bytes_;
  std::string line_;        // the unfinished line
  SseEvent pending_;        // the event being assembled
  bool has_data_ = false;   // a data field was seen in the pending event
  bool after_cr_ = false;   // the previous byte was CR (a following LF belongs to it)
  bool at_start_ = true;    // nothing consumed yet (BOM check)
  size_t bom_matched_ = 0;  // BOM bytes matched so far at the start
  bool failed_ = false;
  uint64_t events_ = 0;
  uint64_t comments_ = 0;
};

// What one `data:` payload of a streaming chat completion says.
struct ChatChunk {
  enum class Kind {
    kDone,      // the literal "[DONE]"
    kJson,      // a JSON object (fields below)
    kMalformed  // not JSON or not an object
  };
  Kind kind = Kind::kMalformed;
  std::string content;                       // choices[0].delta.content (+ reasoning_content)
  bool has_finish_reason = false;            // choices[0].finish_reason is a string
  std::optional<int64_t> prompt_tokens;      // usage.prompt_tokens
  std::optional<int64_t> completion_tokens;  // usage.completion_tokens
  // llama-server's `timings` object, when present.
  bool has_timings = false;
  double timings_prompt_n = 0, timings_prompt_ms = 0, timings_predicted_n = 0, timings_predicted_ms = 0;
  // Speculative decoding: timings.draft_n and draft_n_accepted, whole numbers with
  // 0 <= accepted <= drafted; both -1 when absent or malformed.
  int64_t timings_draft_n = -1, timings_draft_accepted = -1;
  // timings.cache_n: prompt tokens taken from the slot's cache (not evaluated); -1 = absent.
  int64_t timings_cache_n = -1;
  std::string error;  // an `error` object's message, when the server streamed an error
};

// Interprets one event's data. Never throws; malformed input gives Kind::kMalformed.
ChatChunk InterpretChatChunk(std::string_view data);

}  // namespace corral::bench
