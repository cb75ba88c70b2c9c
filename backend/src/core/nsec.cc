#include "smimea/nsec.h"

#include <algorithm>
#include <array>

#include "smimea/hex.h"
#include "smimea/owner_name.h"

namespace smimea {
namespace {

constexpr std::size_t kHexLabelLen = 2 * kOwnerHashLen;  // 56
constexpr std::size_t kMaxLabelLen = 63;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// RFC 4034 section 6.1: labels compare as octet strings after ASCII lower-casing, a label
// that is a prefix of another sorts first.
int compare_label(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(lower(a[i]));
    const auto y = static_cast<unsigned char>(lower(b[i]));
    if (x != y) return x < y ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

std::string hex_label(const OwnerHash& owner) { return to_hex(owner.data(), owner.size()); }

}  // namespace

Result<std::vector<std::string>> split_name(std::string_view text) {
  std::vector<std::string> labels;
  if (text.empty() || text == ".") return labels;
  std::string label;
  bool ended_with_dot = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    ended_with_dot = false;
    if (c == '.') {
      if (label.empty()) return Status::invalid_argument(text, "empty label");
      labels.push_back(std::move(label));
      label.clear();
      ended_with_dot = true;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return Status::invalid_argument(text, "dangling backslash");
      if (text[i + 1] >= '0' && text[i + 1] <= '9') {
        if (i + 3 >= text.size()) return Status::invalid_argument(text, "short \\DDD escape");
        int value = 0;
        for (std::size_t k = 1; k <= 3; ++k) {
          const char d = text[i + k];
          if (d < '0' || d > '9') return Status::invalid_argument(text, "bad \\DDD escape");
          value = value * 10 + (d - '0');
        }
        if (value > 255) return Status::invalid_argument(text, "\\DDD escape over 255");
        c = static_cast<char>(static_cast<unsigned char>(value));
        i += 3;
      } else {
        c = text[++i];
      }
    }
    label.push_back(c);
    if (label.size() > kMaxLabelLen) return Status::invalid_argument(text, "label over 63 octets");
  }
  if (!ended_with_dot) labels.push_back(std::move(label));
  return labels;
}

std::optional<OwnerHash> owner_bound(std::string_view label) {
  // s becomes the greatest 56-digit hex string that sorts <= label. Every owner label has
  // exactly 56 digits, so "owner label <= label" is "owner label <= s", i.e. owner <= hash(s).
  std::array<char, kHexLabelLen> s{};
  std::size_t i = 0;
  // Position where s must drop below label's prefix: decrement s[0..i) and fill with 'f'.
  bool decrement = false;
  for (; i < kHexLabelLen; ++i) {
    if (i == label.size()) {
      // label is a proper prefix of every string starting with s[0..i): those sort after it.
      decrement = true;
      break;
    }
    const char c = lower(label[i]);
    if (is_lower_hex(c)) {
      s[i] = c;
      continue;
    }
    if (static_cast<unsigned char>(c) > 'f') {  // every digit sorts before c
      std::fill(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(), 'f');
      i = kHexLabelLen;
    } else if (c > '9') {  // between '9' and 'a' ('_', ':', ...): only '0'-'9' sort before it
      s[i] = '9';
      std::fill(s.begin() + static_cast<std::ptrdiff_t>(i) + 1, s.end(), 'f');
      i = kHexLabelLen;
    } else {  // below '0': no digit sorts before it
      decrement = true;
    }
    break;
  }
  if (decrement) {
    std::fill(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(), 'f');
    std::size_t j = i;
    while (j > 0 && s[j - 1] == '0') s[--j] = 'f';
    if (j == 0) return std::nullopt;  // s[0..i) was all zeros: nothing sorts before it
    s[j - 1] = s[j - 1] == 'a' ? '9' : static_cast<char>(s[j - 1] - 1);
  }
  OwnerHash hash{};
  decode_hex(std::string_view(s.data(), s.size()), hash.data(), hash.size());
  return hash;
}

bool looks_like_nsec3_hash(std::string_view label) {
  if (label.size() != 32) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    c = lower(c);
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'v');
  });
}

Result<NsecNeighbours> nsec_neighbours(std::string_view zone_name, bool has_records,
                                       const std::vector<std::string>& labels,
                                       OwnerReader& reader) {
  const bool subzone = starts_with_smimecert(zone_name);
  // What an owner is called relative to the zone, and the name just before the first owner.
  const std::string owner_suffix = subzone ? "" : "." + std::string(kSmimecertLabel);
  const std::string before_owners = subzone ? "" : std::string(kSmimecertLabel);
  auto owner = [&](const OwnerHash& h) { return hex_label(h) + owner_suffix; };

  NsecNeighbours out;            // both "" (the apex) unless set below
  if (!has_records) return out;  // the apex is the only name: it covers everything
  if (labels.empty()) {          // the apex itself
    if (!subzone) {
      out.after = before_owners;
      return out;
    }
    auto first = reader.first();
    if (!first.ok()) return first.status();
    if (*first) out.after = owner(**first);
    return out;
  }

  // In domain form everything else hangs off the rightmost label: before _smimecert, inside
  // its subtree, or after it.
  std::string_view owner_label = labels.back();
  if (!subzone) {
    const int cmp = compare_label(labels.back(), kSmimecertLabel);
    if (cmp < 0) {  // between the apex and _smimecert
      out.after = before_owners;
      return out;
    }
    if (cmp > 0) {  // after the last owner: wraps to the apex
      OwnerHash max{};
      max.fill(0xff);
      auto n = reader.neighbours(max);
      if (!n.ok()) return n.status();
      out.before = n->at_or_before ? owner(*n->at_or_before) : before_owners;
      return out;
    }
    if (labels.size() == 1) {  // _smimecert itself
      out.before = before_owners;
      auto first = reader.first();
      if (!first.ok()) return first.status();
      if (*first) out.after = owner(**first);
      return out;
    }
    owner_label = labels[labels.size() - 2];
  }

  // A name below the owners' parent: its owner-level label decides. A deeper name sorts after
  // the owner it hangs off and before the next one, as its owner-level label does.
  OwnerNeighbours n;
  if (const auto bound = owner_bound(owner_label)) {
    auto r = reader.neighbours(*bound);
    if (!r.ok()) return r.status();
    n = *r;
  } else {
    auto first = reader.first();
    if (!first.ok()) return first.status();
    n.after = *first;
  }
  out.before = n.at_or_before ? owner(*n.at_or_before) : before_owners;
  if (n.after) out.after = owner(*n.after);
  return out;
}

}  // namespace smimea
