// Email addresses and SMIMEA owner names (RFC 8162 section 3).
//
// parse_address() turns what an operator types into the exact octets that get hashed: the
// local-part unquoted and NFC-normalised, the domain in lower-case A-label form. The qname
// functions at the bottom are the query hot path: they take string_views and never allocate.
// Everything here is stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

inline constexpr std::string_view kSmimecertLabel = "_smimecert";

// Whether a name (any letter case already folded) is "_smimecert.<something>".
inline bool starts_with_smimecert(std::string_view name) {
  return name.size() > kSmimecertLabel.size() + 1 &&
         name.substr(0, kSmimecertLabel.size()) == kSmimecertLabel &&
         name[kSmimecertLabel.size()] == '.';
}

inline constexpr std::size_t kMaxLocalPartBytes = 64;  // RFC 5321 section 4.5.3.1.1

struct MailAddress {
  std::string local_part;  // unquoted, NFC, UTF-8: the octets RFC 8162 hashes
  std::string domain;      // lower-case A-labels, no trailing dot

  // "local@domain", re-quoting the local-part when it needs quotes.
  std::string to_string() const;
};

// Parses "local@domain". Accepts a dot-atom or quoted local-part (RFC 5322 section 3.4.1, with
// RFC 6531 UTF-8), and a domain as U-labels or A-labels (IDNA2008 via libidn2). Refuses, with
// a one-line reason, anything else: no '@', empty parts, bad characters, invalid UTF-8, an
// over-long local-part, label or name (the owner name must fit in 255 octets).
Result<MailAddress> parse_address(std::string_view text);

// Converts a DNS name typed by an operator (trailing dot optional, U-labels allowed) into
// lower-case A-label form without the trailing dot. Labels may contain '_' (zone apexes such
// as _smimecert.example.com) only if allow_underscore is set.
Result<std::string> normalize_domain(std::string_view text, bool allow_underscore = false);

// The first 28 octets of SHA2-256 over local_part as given.
OwnerHash owner_hash(std::string_view local_part);

// The owner hashes to publish for addr: the exact local-part, plus the ASCII-lower-cased one
// when it differs and lowercase_variant is set (clients such as GnuPG look that one up).
std::vector<OwnerHash> owner_hashes_for(const MailAddress& addr, bool lowercase_variant);

// "<56 hex>._smimecert.<domain>." (fully qualified).
std::string owner_name(const OwnerHash& hash, std::string_view domain);

// Hot path. qname is a DNS name in presentation form, any letter case, trailing dot optional.
// If its first label is 56 hex digits and its second is _smimecert, decodes the hash into
// *hash, sets *rest to the text after "<hex>." (i.e. "_smimecert.<domain>", without a
// trailing dot) and returns true. Otherwise returns false. Never allocates.
bool parse_owner_qname(std::string_view qname, OwnerHash* hash, std::string_view* rest);

// True if a and b are equal ignoring ASCII letter case.
bool iequals(std::string_view a, std::string_view b);

// Copies in[0..n) to out[0..n) with ASCII letters in lower case, every other byte as it is.
// Hot path (every name of every lookup): eight bytes per step.
void ascii_lower_copy(const char* in, std::size_t n, char* out);

// Removes one trailing dot, if any.
inline std::string_view strip_trailing_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

}  // namespace smimea
