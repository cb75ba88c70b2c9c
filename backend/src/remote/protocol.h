// The PowerDNS remote-backend wire format (one JSON object per line), kept apart from the
// transports and from what the answers mean. Pure functions; thread-safe.
//
// Requests are parsed with nlohmann::json. Replies holding records are written straight into
// a reusable string by ReplyWriter: the query path builds no JSON document.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "smimea/answer.h"
#include "smimea/status.h"

namespace smimea::remote {

// Longest request line accepted; pdns's own requests are far below this.
inline constexpr std::size_t kMaxRequestBytes = 1024 * 1024;

struct Request {
  std::string method;
  nlohmann::json parameters;  // always an object

  // Typed access to parameters: the value if present with the right type, else fallback.
  std::string_view string_param(const char* key) const;
  std::int64_t int_param(const char* key, std::int64_t fallback) const;
};

// Parses one request line. InvalidArgument with a short reason for anything that is not a
// JSON object with a string "method" (and an object "parameters", if present).
Result<Request> parse_request(std::string_view line);

// The hot path: a lookup request as pdns writes it, read without building a JSON document.
struct LookupRequest {
  std::string_view qname;  // views into the line
  std::string_view qtype;
  std::int64_t zone_id = -1;
};

// Fills *out and returns true if line is a lookup request exactly as pdns writes it (json11:
// the members local, qname, qtype, real-remote, remote and zone-id in that order, ": " and
// ", " between them), with non-empty qname and qtype, and no backslash, control character or
// non-ASCII byte anywhere. Returns false for everything else, which parse_request() then
// handles: it never accepts what parse_request() would reject, and reads the same qname and
// qtype.
bool parse_lookup_request(std::string_view line, LookupRequest* out);

// Appends s as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view s);

// Where a transport lets a long reply go out before it is complete (the records of a zone
// transfer): the reply is still one JSON line, sent in pieces.
class ReplyStream {
 public:
  virtual ~ReplyStream() = default;
  // Sends bytes now. False if the peer is gone.
  virtual bool send(std::string_view bytes) = 0;
};

// Writes `{"result":[record,...]}\n` into a caller-owned buffer, one record per sink call.
// Records carry integer ttl, domain_id and auth (pdns reads a JSON bool "auth" as 1).
// With a stream, the buffer is sent and cleared whenever it holds flush_bytes or more after a
// record, so it never grows much beyond that; what is left is the caller's to send.
class ReplyWriter : public RecordSink {
 public:
  static constexpr std::size_t kFlushBytes = 64 * 1024;

  explicit ReplyWriter(std::string& out, ReplyStream* stream = nullptr,
                       std::size_t flush_bytes = kFlushBytes)
      : out_(out), stream_(stream), flush_bytes_(flush_bytes) {}
  void begin();  // clears out and opens the result array
  void end();    // closes it and appends '\n'
  // Ends a reply of which a part may have been sent already with a failure: a second
  // "result" member, false, which wins in pdns's parser (json11 keeps an object's last
  // duplicate key), so pdns never takes a partial list for the whole zone.
  void fail(std::string_view message);
  std::size_t count() const { return count_; }
  bool flushed() const { return flushed_; }       // part of the reply has been sent
  bool stream_failed() const { return failed_; }  // the peer went away while sending

  void add_text(std::string_view qname, QType qtype, std::uint32_t ttl, std::int64_t zone_id,
                std::string_view content, bool auth) override;
  void add_smimea(std::string_view qname, std::int64_t zone_id, const RecordView& rr) override;
  void add_ent(std::string_view qname, std::int64_t zone_id) override;

 private:
  void open_record(std::string_view qname, std::string_view qtype);
  void close_record(std::uint32_t ttl, std::int64_t zone_id, bool auth = true);

  std::string& out_;
  ReplyStream* stream_;
  std::size_t flush_bytes_;
  std::size_t count_ = 0;
  bool flushed_ = false;
  bool failed_ = false;
};

// {"result":true}\n and friends.
void write_result(std::string& out, const nlohmann::json& result);
// {"result":false,"log":["<message>"]}\n: pdns reads it as "no" (no records, no such zone).
void write_failure(std::string& out, std::string_view message);
// {"error":"<message>"}\n: no result member, which pdns reads as a failure of the backend
// (an exception: SERVFAIL for the question, and a new connection or pipe process).
void write_error(std::string& out, std::string_view message);

}  // namespace smimea::remote
