// The one builder of the response heads the proxy writes (issue 12): local answers, reshaped
// upstream errors, translated responses, event streams, the pass-through head rebuilt from
// the upstream's, and the canned refusals of the connection caps.
//
//   std::string head;
//   ResponseHead(head, 200).ContentType("application/json").ContentLength(body.size())
//       .Own({model, cors_origin}).End(keep_alive);
//
// It writes into the caller's string (cleared first), so a connection reuses one buffer's
// capacity across keep-alive requests. Order is the caller's: fields appear as appended.
// Values that come from outside (Field) are checked: one holding a byte that could end the
// field or the head (CR, LF, NUL, other controls) is dropped, never emitted (response
// splitting). Thread-safety: a builder is a short-lived value on one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace corral::proxy {

// The standard reason phrase of `status` ("OK", "Not Found"; Beast's "<unknown-status>" for a
// code without one).
std::string_view ReasonPhrase(int status);

// The fields the proxy adds to its own answers: x-corral-model (empty: not sent) and, for an
// allowed Origin (empty: none), the CORS answer.
struct OwnFields {
  std::string_view model;
  std::string_view cors_origin;
};

class ResponseHead {
 public:
  // Clears `out` and writes "HTTP/1.1 <status> <reason>\r\n": `reason` when it is given and
  // safe (an upstream's own), otherwise the standard phrase.
  ResponseHead(std::string& out, int status, std::string_view reason = {});

  // Trusted values (the proxy's own constants and computed numbers), appended as given.
  ResponseHead& ContentType(std::string_view type);
  ResponseHead& ContentLength(uint64_t bytes);
  ResponseHead& Chunked();                       // Transfer-Encoding: chunked
  ResponseHead& Fields(std::string_view lines);  // whole "Name: value\r\n" lines, built by the proxy
  // A field whose value may come from outside: dropped when the value is not safe.
  ResponseHead& Field(std::string_view name, std::string_view value);
  ResponseHead& Own(const OwnFields& own);
  // Ends the head: "Connection: close" when the connection closes after this answer, then
  // the empty line. Returns the finished head.
  std::string& End(bool keep_alive);

 private:
  std::string& out_;
};

}  // namespace corral::proxy
