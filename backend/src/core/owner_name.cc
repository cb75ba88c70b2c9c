#include "smimea/owner_name.h"

#include <idn2.h>
#include <openssl/sha.h>
#include <uninorm.h>
#include <unistr.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "openssl_util.h"
#include "smimea/hex.h"

namespace smimea {
namespace {

constexpr std::size_t kMaxNameBytes = 253;  // presentation form without the trailing dot
constexpr std::size_t kMaxLabelBytes = 63;
// "<56 hex>._smimecert." takes 68 octets of the 253.
constexpr std::size_t kMaxMailDomainBytes = kMaxNameBytes - (2 * kOwnerHashLen + 1 + 10 + 1);

bool is_ascii_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool is_ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// RFC 5322 atext; RFC 6531 adds any UTF-8 non-ASCII octet (UTF-8 validity is checked later).
bool is_atext(unsigned char c) {
  if (is_ascii_alpha(c) || is_ascii_digit(c) || c >= 0x80) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
    prev = ch;
  }
  return true;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool is_valid_utf8(std::string_view s) {
  return u8_check(reinterpret_cast<const uint8_t*>(s.data()), s.size()) == nullptr;
}

// Unicode NFC (RFC 8162 section 3 asks for the local-part to be normalised before hashing).
Result<std::string> to_nfc(std::string_view s) {
  std::size_t len = 0;
  uint8_t* out = u8_normalize(UNINORM_NFC, reinterpret_cast<const uint8_t*>(s.data()), s.size(),
                              nullptr, &len);
  if (out == nullptr) return Status::invalid_argument(s, "cannot normalise to Unicode NFC");
  std::string result(reinterpret_cast<const char*>(out), len);
  std::free(out);  // NOLINT(cppcoreguidelines-no-malloc): allocated by libunistring
  return result;
}

// Quoted-string local-part (RFC 5322 section 3.2.4): returns the unquoted content and sets
// *end to the index just past the closing quote.
Result<std::string> unquote_local_part(std::string_view text, std::size_t* end) {
  std::string out;
  for (std::size_t i = 1; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"') {
      *end = i + 1;
      return out;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) break;
      const auto next = static_cast<unsigned char>(text[++i]);
      if (next < 0x20 && next != '\t')
        return Status::invalid_argument(text, "control character in local-part");
      out.push_back(static_cast<char>(next));
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return Status::invalid_argument(text, "control character in local-part");
    }
    out.push_back(static_cast<char>(c));
  }
  return Status::invalid_argument(text, "unterminated quoted local-part");
}

Status check_ldh_labels(std::string_view name, std::string_view shown, bool allow_underscore) {
  if (name.empty()) return Status::invalid_argument(shown, "empty domain");
  if (name.size() > kMaxNameBytes) {
    return Status::invalid_argument(shown, "domain longer than 253 octets");
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return Status::invalid_argument(shown, "empty label in domain");
    if (label.size() > kMaxLabelBytes) {
      return Status::invalid_argument(shown, "label longer than 63 octets");
    }
    if (label.front() == '-' || label.back() == '-') {
      return Status::invalid_argument(shown, "label starts or ends with '-'");
    }
    for (char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      if (!is_ascii_alpha(c) && !is_ascii_digit(c) && c != '-' && !(allow_underscore && c == '_')) {
        return Status::invalid_argument(shown, "invalid character in domain");
      }
    }
    start = dot + 1;
  }
  return Status();
}

}  // namespace

Result<std::string> normalize_domain(std::string_view text, bool allow_underscore) {
  std::string_view name = strip_trailing_dot(text);
  if (name.empty()) return Status::invalid_argument(text, "empty domain");
  if (name.front() == '[')
    return Status::invalid_argument(text, "address literals are not supported");
  std::string ascii;
  bool needs_idna = !is_ascii(name);
  if (!needs_idna) {
    ascii.assign(name);
    for (char& c : ascii) c = ascii_lower(c);
    needs_idna = ascii.rfind("xn--", 0) == 0 || ascii.find(".xn--") != std::string::npos;
  }
  if (needs_idna) {
    if (!is_valid_utf8(name)) return Status::invalid_argument(text, "domain is not valid UTF-8");
    char* out = nullptr;
    const std::string input(name);
    const int rc =
        idn2_lookup_u8(reinterpret_cast<const uint8_t*>(input.c_str()),
                       reinterpret_cast<uint8_t**>(&out), IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      return Status::invalid_argument(
          text, std::string("invalid internationalised domain (") + idn2_strerror(rc) + ")");
    }
    ascii = out;
    idn2_free(out);
    for (char& c : ascii) c = ascii_lower(c);
  }
  SMIMEA_RETURN_IF_ERROR(check_ldh_labels(ascii, text, allow_underscore));
  return ascii;
}

Result<MailAddress> parse_address(std::string_view text) {
  if (text.empty()) return Status::invalid_argument("address", "empty");
  MailAddress addr;
  std::string_view domain_text;
  if (text.front() == '"') {
    std::size_t end = 0;
    auto unquoted = unquote_local_part(text, &end);
    if (!unquoted.ok()) return unquoted.status();
    if (end >= text.size() || text[end] != '@') {
      return Status::invalid_argument(text, "expected '@' after the quoted local-part");
    }
    addr.local_part = std::move(unquoted).value();
    domain_text = text.substr(end + 1);
  } else {
    const std::size_t at = text.rfind('@');
    if (at == std::string_view::npos)
      return Status::invalid_argument(text, "not an address: no '@'");
    const std::string_view local = text.substr(0, at);
    domain_text = text.substr(at + 1);
    if (local.empty()) return Status::invalid_argument(text, "empty local-part");
    if (!is_dot_atom(local)) {
      return Status::invalid_argument(text,
                                      "invalid local-part (quote it if it must contain "
                                      "spaces, '@' or other special characters)");
    }
    addr.local_part.assign(local);
  }
  if (addr.local_part.empty()) return Status::invalid_argument(text, "empty local-part");
  if (domain_text.empty()) return Status::invalid_argument(text, "empty domain");
  if (!is_valid_utf8(addr.local_part)) {
    return Status::invalid_argument(text, "local-part is not valid UTF-8");
  }
  if (!is_ascii(addr.local_part)) {
    auto nfc = to_nfc(addr.local_part);
    if (!nfc.ok()) return nfc.status();
    addr.local_part = std::move(nfc).value();
  }
  if (addr.local_part.size() > kMaxLocalPartBytes) {
    return Status::invalid_argument(text, "local-part longer than 64 octets");
  }
  if (domain_text.find('@') != std::string_view::npos) {
    return Status::invalid_argument(text, "more than one '@'");
  }
  auto domain = normalize_domain(domain_text);
  if (!domain.ok()) return Status::invalid_argument(text, domain.status().message());
  if (domain->size() > kMaxMailDomainBytes) {
    return Status::invalid_argument(text, "domain too long for an owner name (max 185 octets)");
  }
  if (domain->find('.') == std::string::npos) {
    return Status::invalid_argument(text, "domain must have at least two labels");
  }
  addr.domain = std::move(domain).value();
  return addr;
}

std::string MailAddress::to_string() const {
  if (is_dot_atom(local_part)) return local_part + "@" + domain;
  std::string out = "\"";
  for (char c : local_part) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out += "\"@";
  out += domain;
  return out;
}

OwnerHash owner_hash(std::string_view local_part) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  detail::sha2(detail::Sha2::k256, local_part.data(), local_part.size(), digest);
  OwnerHash hash{};
  for (std::size_t i = 0; i < kOwnerHashLen; ++i) hash[i] = digest[i];
  return hash;
}

std::vector<OwnerHash> owner_hashes_for(const MailAddress& addr, bool lowercase_variant) {
  std::vector<OwnerHash> hashes{owner_hash(addr.local_part)};
  if (lowercase_variant) {
    std::string lower = addr.local_part;
    for (char& c : lower) c = ascii_lower(c);
    if (lower != addr.local_part) hashes.push_back(owner_hash(lower));
  }
  return hashes;
}

std::string owner_name(const OwnerHash& hash, std::string_view domain) {
  std::string name;
  name.reserve(2 * kOwnerHashLen + kSmimecertLabel.size() + domain.size() + 3);
  append_hex(name, hash.data(), hash.size());
  name += '.';
  name += kSmimecertLabel;
  name += '.';
  name += strip_trailing_dot(domain);
  name += '.';
  return name;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

void ascii_lower_copy(const char* in, std::size_t n, char* out) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x;
    std::memcpy(&x, in + i, 8);
    // Per byte, on its low seven bits (no carry crosses into the next byte): the high bit of
    // ge_a is set from 'A' up, that of gt_z from 'Z' + 1 up. Bytes >= 0x80 are left alone.
    const std::uint64_t low7 = x & ~kHigh;
    const std::uint64_t ge_a = low7 + kOnes * (0x80 - 'A');
    const std::uint64_t gt_z = low7 + kOnes * (0x7f - 'Z');
    const std::uint64_t upper = ge_a & ~gt_z & ~x & kHigh;
    x |= upper >> 2;  // 0x80 >> 2 == 0x20, the case bit
    std::memcpy(out + i, &x, 8);
  }
  for (; i < n; ++i) out[i] = ascii_lower(in[i]);
}

bool parse_owner_qname(std::string_view qname, OwnerHash* hash, std::string_view* rest) {
  constexpr std::size_t kHexLen = 2 * kOwnerHashLen;
  qname = strip_trailing_dot(qname);
  if (qname.size() < kHexLen + 1 + kSmimecertLabel.size() || qname[kHexLen] != '.') return false;
  const std::string_view after = qname.substr(kHexLen + 1);
  if (!iequals(after.substr(0, kSmimecertLabel.size()), kSmimecertLabel)) return false;
  if (after.size() > kSmimecertLabel.size() && after[kSmimecertLabel.size()] != '.') return false;
  if (!decode_hex(qname.substr(0, kHexLen), hash->data(), kOwnerHashLen)) return false;
  *rest = after;
  return true;
}

}  // namespace smimea
