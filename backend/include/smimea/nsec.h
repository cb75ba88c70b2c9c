// Plain NSEC (RFC 4034) for the zones we sign ourselves: where a name falls among the names
// that exist in one of our authoritative zones, in canonical DNS order (RFC 4034 section 6.1).
// This is what PowerDNS asks getBeforeAndAfterNamesAbsolute for when a zone uses NSEC (the
// state right after `pdnsutil secure-zone`); NSEC3 narrow never asks.
//
// The names of a zone, in canonical order:
//   domain form (zone example.com):             apex, _smimecert (an empty non-terminal, only
//                                               if the zone has records), then every
//                                               <56 hex>._smimecert in owner order;
//   subzone form (zone _smimecert.example.com): apex, then every <56 hex> in owner order.
// Lower-case hex sorts like the hash octets it encodes, so owner order (memcmp on the 28
// stored octets) is canonical order, and one indexed read places any name.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smimea/status.h"
#include "smimea/types.h"

namespace smimea {

// The owners of a zone next to a bound, in owner (= canonical DNS) order.
struct OwnerNeighbours {
  std::optional<OwnerHash> at_or_before;  // the greatest owner <= bound
  std::optional<OwnerHash> after;         // the smallest owner > bound
};

// Reads a zone's owners (implemented over the store by the adapters).
class OwnerReader {
 public:
  virtual ~OwnerReader() = default;
  virtual Result<OwnerNeighbours> neighbours(const OwnerHash& bound) = 0;
  virtual Result<std::optional<OwnerHash>> first() = 0;
};

// The existing names around a name, relative to the zone and lower case: "" is the apex,
// otherwise "_smimecert", "<hex>._smimecert" (domain form) or "<hex>" (subzone form).
// before is the greatest existing name <= the name (the name itself if it exists), after the
// smallest existing name > it; both wrap around to the apex at the end of the zone.
struct NsecNeighbours {
  std::string before;
  std::string after;
};

// labels: the name relative to the zone, raw labels left to right (none for the apex); any
// case. zone_name is the zone as stored (lower case, no trailing dot); has_records says
// whether it has at least one SMIMEA record (Zone::has_records). At most one reader call.
Result<NsecNeighbours> nsec_neighbours(std::string_view zone_name, bool has_records,
                                       const std::vector<std::string>& labels, OwnerReader& reader);

// Splits a name in presentation format (RFC 1035 section 5.1 escapes \X and \DDD, trailing
// dot optional, "" and "." have no labels) into raw labels, left to right. InvalidArgument for
// empty labels, bad escapes or labels over 63 octets.
Result<std::vector<std::string>> split_name(std::string_view text);

// The greatest owner hash whose hex label sorts at or before label in canonical order (ASCII
// case ignored), or nullopt if every 56-digit hex label sorts after it.
std::optional<OwnerHash> owner_bound(std::string_view label);

// True if label has the shape of an NSEC3 hashed owner label: 32 base32hex digits (RFC 5155
// section 3.3), either case.
bool looks_like_nsec3_hash(std::string_view label);

}  // namespace smimea
