// Wire-level vocabulary of RFC 8162 / RFC 6698: the SMIMEA RDATA fields and the owner hash.
// Plain value types; no state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace smimea {

// RFC 6698 section 2.1.1 (usage), 2.1.2 (selector), 2.1.3 (matching type).
enum class Usage : std::uint8_t { kPkixTa = 0, kPkixEe = 1, kDaneTa = 2, kDaneEe = 3 };
enum class Selector : std::uint8_t { kFullCert = 0, kSpki = 1 };
enum class MatchingType : std::uint8_t { kExact = 0, kSha256 = 1, kSha512 = 2 };

// One (usage, selector, matching type) triple: what a published record is made of.
struct RecordParams {
  Usage usage = Usage::kDaneEe;
  Selector selector = Selector::kFullCert;
  MatchingType matching_type = MatchingType::kExact;

  friend bool operator==(const RecordParams& a, const RecordParams& b) {
    return a.usage == b.usage && a.selector == b.selector && a.matching_type == b.matching_type;
  }
};

// Parses the three numbers, each in its RFC range (0-3, 0-1, 0-2); nullopt otherwise.
std::optional<RecordParams> make_record_params(int usage, int selector, int matching_type);

// RFC 8162 section 3: the first 28 octets of SHA2-256(local-part).
inline constexpr std::size_t kOwnerHashLen = 28;
using OwnerHash = std::array<std::uint8_t, kOwnerHashLen>;

using Bytes = std::vector<std::uint8_t>;

// The TTL range a record or SOA field may take (RFC 2181 section 8, capped at a week here).
inline constexpr std::uint32_t kMaxTtl = 604800;

}  // namespace smimea
