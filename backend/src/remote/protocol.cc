#include "protocol.h"

#include <charconv>
#include <cstring>

#include "smimea/hex.h"

namespace smimea::remote {

std::string_view Request::string_param(const char* key) const {
  auto it = parameters.find(key);
  if (it == parameters.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

std::int64_t Request::int_param(const char* key, std::int64_t fallback) const {
  auto it = parameters.find(key);
  if (it == parameters.end()) return fallback;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  // pdns's own intFromJson accepts numeric strings too.
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);  // NOLINT(google-runtime-int)
    if (!s.empty() && end == s.c_str() + s.size()) return v;
  }
  return fallback;
}

Result<Request> parse_request(std::string_view line) {
  if (line.size() > kMaxRequestBytes) return Status::invalid_argument("request", "line too long");
  nlohmann::json doc = nlohmann::json::parse(line.begin(), line.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::invalid_argument("request", "malformed JSON");
  if (!doc.is_object()) return Status::invalid_argument("request", "not a JSON object");
  auto method = doc.find("method");
  if (method == doc.end() || !method->is_string()) {
    return Status::invalid_argument("request", "no method");
  }
  Request req;
  req.method = method->get<std::string>();
  auto params = doc.find("parameters");
  if (params == doc.end() || params->is_null()) {
    req.parameters = nlohmann::json::object();
  } else if (params->is_object()) {
    req.parameters = std::move(*params);
  } else {
    return Status::invalid_argument("request", "parameters is not an object");
  }
  return req;
}

namespace {

// How many bytes at the start of [p, p + n) are printable ASCII other than '"' and '\\': the
// characters a JSON string holds as they are. Looks at eight bytes per step with the bit tricks
// of "Bit Twiddling Hacks" (haszero, hasless): a byte's high bit is set in `flagged` if it is
// >= 0x80, < 0x20, '"' or '\\'. Borrows only run upwards, so the lowest flag is exact: on a
// little-endian machine it is the first such byte.
std::size_t plain_prefix(const char* p, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, p + i, 8);
    const std::uint64_t quote = x ^ (kOnes * '"');
    const std::uint64_t backslash = x ^ (kOnes * '\\');
    const std::uint64_t flagged = (x | ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) |
                                   ((backslash - kOnes) & ~backslash)) &
                                  kHigh;
    if (flagged != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return i + static_cast<std::size_t>(__builtin_ctzll(flagged) / 8);
#else
      break;  // find it byte by byte
#endif
    }
  }
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
  }
  return i;
}

// True if no byte of [p, p + n) is a control character, a backslash or non-ASCII. In such a
// line every JSON string ends at the next '"'. Eight bytes per step, as plain_prefix().
bool escape_free(const char* p, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  std::uint64_t flagged = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, p + i, 8);
    const std::uint64_t backslash = x ^ (kOnes * '\\');
    flagged |= x | ((x - kOnes * 0x20) & ~x) | ((backslash - kOnes) & ~backslash);
  }
  for (; i < n; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c >= 0x80 || c == '\\') return false;
  }
  return (flagged & kHigh) == 0;
}

// A cursor over one of pdns's lookup lines, in an escape_free() text: each step matches the
// next piece of the layout or fails.
class LayoutCursor {
 public:
  explicit LayoutCursor(std::string_view text) : rest_(text) {}

  bool literal(std::string_view piece) {
    if (rest_.substr(0, piece.size()) != piece) return false;
    rest_.remove_prefix(piece.size());
    return true;
  }
  // A string's content up to its closing quote (escape_free: nothing is escaped).
  bool string_content(std::string_view* out) {
    const std::size_t quote = rest_.find('"');
    if (quote == std::string_view::npos) return false;
    *out = rest_.substr(0, quote);
    rest_.remove_prefix(quote);
    return true;
  }
  // -?(0|[1-9][0-9]*): a JSON integer into *value; the layout's next piece rules out a
  // fraction. One that does not fit 64 bits is left to the JSON library.
  bool integer(std::int64_t* value) {
    const bool negative = !rest_.empty() && rest_.front() == '-';
    if (negative) rest_.remove_prefix(1);
    std::size_t digits = 0;
    while (digits < rest_.size() && rest_[digits] >= '0' && rest_[digits] <= '9') ++digits;
    if (digits == 0 || (digits > 1 && rest_.front() == '0') || digits > 18) return false;
    std::int64_t v = 0;
    for (std::size_t i = 0; i < digits; ++i) v = v * 10 + (rest_[i] - '0');
    *value = negative ? -v : v;
    rest_.remove_prefix(digits);
    return true;
  }
  bool at_end() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace

bool parse_lookup_request(std::string_view line, LookupRequest* out) {
  if (line.size() > kMaxRequestBytes || !escape_free(line.data(), line.size())) return false;
  // pdns (json11) writes the members of every lookup in this order, with ": " and ", ".
  LayoutCursor in(line);
  std::string_view ignored;
  LookupRequest req;
  const bool matched = in.literal(R"({"method": "lookup", "parameters": {"local": ")") &&
                       in.string_content(&ignored) && in.literal(R"(", "qname": ")") &&
                       in.string_content(&req.qname) && in.literal(R"(", "qtype": ")") &&
                       in.string_content(&req.qtype) && in.literal(R"(", "real-remote": ")") &&
                       in.string_content(&ignored) && in.literal(R"(", "remote": ")") &&
                       in.string_content(&ignored) && in.literal(R"(", "zone-id": )") &&
                       in.integer(&req.zone_id) && in.literal("}}") && in.at_end();
  if (!matched || req.qname.empty() || req.qtype.empty()) return false;
  *out = req;
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Names need no escaping: copy runs of plain characters in one append each.
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t plain = plain_prefix(s.data() + i, s.size() - i);
    out.append(s.data() + i, plain);
    i += plain;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i++]);
    if (c >= 0x80) {
      out.push_back(static_cast<char>(c));  // UTF-8 goes as it is
    } else if (c < 0x20) {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    } else {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void ReplyWriter::begin() {
  out_.clear();
  out_.append("{\"result\":[");
  count_ = 0;
  flushed_ = false;
  failed_ = false;
}

void ReplyWriter::end() { out_.append("]}\n"); }

void ReplyWriter::fail(std::string_view message) {
  if (!flushed_) {
    write_failure(out_, message);
    return;
  }
  out_.append("],\"result\":false,\"log\":[");
  append_json_string(out_, message);
  out_.append("]}\n");
}

void ReplyWriter::open_record(std::string_view qname, std::string_view qtype) {
  if (count_++ > 0) out_.push_back(',');
  out_.append("{\"qname\":");
  append_json_string(out_, qname);
  out_.append(",\"qtype\":\"");
  out_.append(qtype);
  out_.append("\",\"content\":");
}

void ReplyWriter::close_record(std::uint32_t ttl, std::int64_t zone_id, bool auth) {
  char digits[24];
  out_.append(",\"ttl\":");
  out_.append(digits, static_cast<std::size_t>(
                          std::to_chars(digits, digits + sizeof digits, ttl).ptr - digits));
  out_.append(",\"domain_id\":");
  out_.append(digits, static_cast<std::size_t>(
                          std::to_chars(digits, digits + sizeof digits, zone_id).ptr - digits));
  out_.append(auth ? ",\"auth\":1}" : ",\"auth\":0}");
  if (stream_ != nullptr && out_.size() >= flush_bytes_) {
    // After a failed send the rest is dropped: the peer is gone, the caller stops.
    if (!failed_ && !stream_->send(out_)) failed_ = true;
    flushed_ = true;
    out_.clear();
  }
}

void ReplyWriter::add_text(std::string_view qname, QType qtype, std::uint32_t ttl,
                           std::int64_t zone_id, std::string_view content, bool auth) {
  open_record(qname, qtype_name(qtype));
  append_json_string(out_, content);
  close_record(ttl, zone_id, auth);
}

void ReplyWriter::add_smimea(std::string_view qname, std::int64_t zone_id, const RecordView& rr) {
  open_record(qname, "SMIMEA");
  // "u s m hex": digits and hex only, no escaping needed.
  out_.push_back('"');
  out_.push_back(static_cast<char>('0' + static_cast<int>(rr.params.usage)));
  out_.push_back(' ');
  out_.push_back(static_cast<char>('0' + static_cast<int>(rr.params.selector)));
  out_.push_back(' ');
  out_.push_back(static_cast<char>('0' + static_cast<int>(rr.params.matching_type)));
  out_.push_back(' ');
  append_hex(out_, rr.data, rr.size);
  out_.push_back('"');
  close_record(rr.ttl, zone_id);
}

void ReplyWriter::add_ent(std::string_view qname, std::int64_t zone_id) {
  open_record(qname, "ENT");
  out_.append("\"\"");
  close_record(0, zone_id);
}

void write_result(std::string& out, const nlohmann::json& result) {
  out.clear();
  out.append("{\"result\":");
  out.append(result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  out.append("}\n");
}

void write_failure(std::string& out, std::string_view message) {
  out.clear();
  out.append("{\"result\":false,\"log\":[");
  append_json_string(out, message);
  out.append("]}\n");
}

void write_error(std::string& out, std::string_view message) {
  out.clear();
  out.append("{\"error\":");
  append_json_string(out, message);
  out.append("}\n");
}

}  // namespace smimea::remote
